#!/usr/bin/env bash
# Run `docent bench gpu` on a GPU machine that has no Rust: the CUDA build of docent arrives as
# .docent/gpu/docent.xz (scripts/build-cuda.sh, then xz), the Qwen3 tokenizer as
# .docent/gpu/qwen3-tokenizer.tar.xz (or in models/qwen3-tokenizer),
# and Python with torch + transformers is already there (the peer).
#
#   scripts/device-bench.sh OUT_DIR [docent bench gpu flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1"; shift
mkdir -p "$out"
log="$out/device.log"
exec > >(tee -a "$log") 2>&1

python="$(command -v python3)"
# The CUDA 13 runtime libraries (cuBLAS, cuBLASLt, cuRAND, NVRTC, cudart) of the PyTorch install.
libs="$("$python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null || true)"
if [[ ! -e "$libs/libcublasLt.so.13" ]]; then
  libs="$(dirname "$(find / -name 'libcublasLt.so.13*' -not -path '/proc/*' 2>/dev/null | head -n 1)")"
fi
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "python: $python; CUDA libraries: $libs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'

bin="$PWD/.docent/gpu/docent"
xz -dc .docent/gpu/docent.xz > "$bin"
chmod +x "$bin"
ldd "$bin" | grep -E "not found|cuda|cublas|nvrtc|curand" || true

tokenizer=models/qwen3-tokenizer
if [[ -e .docent/gpu/qwen3-tokenizer.tar.xz ]]; then
  tar -xJf .docent/gpu/qwen3-tokenizer.tar.xz -C .docent/gpu
  tokenizer=.docent/gpu/qwen3-tokenizer
fi
ckpt="$PWD/.docent/qwen3-4b-random"
"$bin" checkpoint --shape qwen3-4b --out "$ckpt" --tokenizer "$tokenizer"
peer=(--peer-python "$python")
if [[ " $* " == *" --peer-python "* ]]; then peer=(); fi
DOCENT_LOG="${DOCENT_LOG:-info,mistralrs_core=info}" \
  "$bin" bench gpu --model "$ckpt" "${peer[@]}" --report "$out/gpu-bench.md" "$@"
