#!/usr/bin/env bash
# Build llama.cpp's OpenAI-compatible server (llama-server), CPU only, from the llama.cpp source
# vendored in the llama-cpp-python 0.3.36 sdist on PyPI (this machine reaches PyPI, not GitHub),
# with CMake from PyPI. The remote-engine tests start it on the small GGUF. Idempotent: an
# existing build is kept. Prints the binary's path last.
set -euo pipefail

dir="${1:-${HOME:-/root}/.cache/docent/llama.cpp}"
VERSION=0.3.36
SDIST_SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
bin="$dir/$VERSION/bin/llama-server"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/docent-llama.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# PyPI has only the sdist: pip downloads it (and reads its metadata, with binary build tools).
python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" "llama-cpp-python==$VERSION" >&2
sdist="$tmp/llama_cpp_python-$VERSION.tar.gz"
[ "$(sha256sum "$sdist" | cut -d' ' -f1)" = "$SDIST_SHA" ] || { echo "sha256 mismatch for $sdist" >&2; exit 1; }
tar xzf "$sdist" -C "$tmp" "llama_cpp_python-$VERSION/vendor/llama.cpp"
src="$tmp/llama_cpp_python-$VERSION/vendor/llama.cpp"

python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "cmake==3.31.6" "ninja==1.11.1.4" >&2
export PATH="$tmp/venv/bin:$PATH"
# Portable x86-64 build (no -march=native): the binary may run on another machine of this kind.
cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$tmp/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$dir/$VERSION/bin"
cp "$tmp/build/bin/llama-server" "$bin.partial"
mv "$bin.partial" "$bin"
echo "$bin"
