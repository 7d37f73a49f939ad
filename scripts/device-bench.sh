#!/usr/bin/env bash
# Run `docent bench gpu` on a GPU machine that has no Rust: the CUDA build of docent arrives as
# .docent/gpu/docent.xz (scripts/build-cuda.sh, then xz), the Qwen3 tokenizer as
# .docent/gpu/qwen3-tokenizer.tar.xz (or in models/qwen3-tokenizer),
# and Python with torch + transformers is already there (the peer).
#
#   scripts/device-bench.sh OUT_DIR [docent bench gpu flags...]
#   scripts/device-bench.sh OUT_DIR --versus-one-gpu N [flags...]
#
# The second form (a build with the `nccl` feature, on a host with N GPUs) runs the bench twice
# with the same flags: on GPU 0 alone, then split over N GPUs by tensor parallelism, whose report
# gives each figure as a ratio to the one-GPU run.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1"; shift
mkdir -p "$out"
log="$out/device.log"
exec > >(tee -a "$log") 2>&1

source scripts/device-env.sh
peer=(--peer-python "$python")
if [[ " $* " == *" --peer-python "* ]]; then peer=(); fi
export DOCENT_LOG="${DOCENT_LOG:-info,mistralrs_core=info}"
# A tensor-parallel worker that dies leaves mistral.rs waiting for it forever: bound each run.
# (Workers end by themselves when their main process does.)
limit="${DOCENT_BENCH_TIMEOUT:-1800}"
if [[ "${1:-}" == "--versus-one-gpu" ]]; then
  gpus="$2"; shift 2
  CUDA_VISIBLE_DEVICES=0 timeout "$limit" "$bin" bench gpu --model "$ckpt" "${peer[@]}" --tensor-parallel 1 \
    --report "$out/gpu-bench-1gpu.md" --json "$out/gpu-bench-1gpu.json" "$@"
  # The peer (one GPU) runs in the first run only.
  no_peer=(--peer-python none)
  if [[ " $* " == *" --peer-python "* ]]; then no_peer=(); fi
  timeout "$limit" "$bin" bench gpu --model "$ckpt" "${no_peer[@]}" --tensor-parallel "$gpus" \
    --versus "$out/gpu-bench-1gpu.json" --report "$out/gpu-bench-${gpus}gpu.md" \
    --json "$out/gpu-bench-${gpus}gpu.json" "$@"
else
  timeout "$limit" "$bin" bench gpu --model "$ckpt" "${peer[@]}" --report "$out/gpu-bench.md" "$@"
fi
