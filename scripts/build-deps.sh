#!/usr/bin/env bash
# Debian packages docent's build needs, installed when missing: CMake and libclang, with which the
# crate llama-cpp-sys-2 builds the llama.cpp source it vendors (the CPU engine) and generates its
# bindings. More can be asked for as COMMAND=PACKAGE pairs, or FILE-GLOB=PACKAGE for a package
# without a command (the OCR set-up adds Tesseract, its Chinese data and poppler's pdftoppm; the
# tests add Chromium).
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || missing+=(libclang-dev)
for pair in "$@"; do
  want="${pair%%=*}"
  if [[ "$want" == */* ]]; then
    compgen -G "$want" >/dev/null || missing+=("${pair#*=}")
  else
    command -v "$want" >/dev/null || missing+=("${pair#*=}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "needs root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
