#!/usr/bin/env bash
# Builds and runs flashinfer_tune.cu on the GPU machine; prints a markdown table.
# Usage: benches/decode-kernel/run.sh [context tokens…]   (default 8192 32768 262144)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
inc="$here/../../vendor/mistral.rs/mistralrs-paged-attn/src/cuda"
out=${TMPDIR:-/tmp}/flashinfer_tune
nvcc -std=c++17 -O3 -arch=sm_90a --use_fast_math --expt-relaxed-constexpr --expt-extended-lambda \
  -U__CUDA_NO_HALF_OPERATORS__ -U__CUDA_NO_HALF_CONVERSIONS__ -U__CUDA_NO_BFLOAT16_CONVERSIONS__ \
  -I"$inc" "$here/flashinfer_tune.cu" -o "$out"
"$out" "$@"
