#!/usr/bin/env bash
# The prefill measurements of a CUDA build with the `flash-attn-v3` feature, on a GPU machine
# without Rust (as scripts/device-bench.sh; same binary, tokenizer and checkpoint):
#
#   scripts/device-prefill.sh OUT_DIR [STEPS]     STEPS: comma-separated, default all of
#                                                 logits,decode,attention,ttft,ttft-variants
#
# logits:    next-token logits of a 4-layer Qwen3-4B-shaped random checkpoint through
#            FlashAttention-3 (prompts of 512 and 4,096 tokens: one pass), FlashAttention-2
#            (MISTRALRS_FLASH_ATTN_V3=0) and FA3 in 1,024-token chunks, against transformers and two deliberately wrong attention kernels
#            (benches/logits_check.py; exit 1 when an expectation fails).
# decode:    the same checkpoint, 32 tokens decoded greedily after prompts of 512, 4,096 and 32,768
#            tokens, through docent's grouped-query decode kernel and FlashInfer's
#            (DOCENT_GQA_DECODE=0), against transformers teacher-forced on the decoded
#            tokens and the two wrong kernels (benches/logits_check.py).
# attention: the prefill attention kernels alone against torch's cuDNN and FA2 backends.
# ttft:      `docent bench gpu` TTFT and decode at 32K and 262,080 tokens, FA3 in docent's 4,096-token
#            chunks (every chunk after the first through the gather path), against transformers.
# ttft-variants: the same without the peer, FA3 in one pass and in 16,384-token chunks, and FA2 in
#            one pass.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1"
steps=",${2:-logits,decode,attention,ttft,ttft-variants},"
mkdir -p "$out"
exec > >(tee -a "$out/device.log") 2>&1

source scripts/device-env.sh
export DOCENT_LOG="${DOCENT_LOG:-info,mistralrs_core=info}"
limit="${DOCENT_BENCH_TIMEOUT:-900}"

small=/tmp/docent-qwen3-4b-4-layers
if [[ "$steps" == *",logits,"* || "$steps" == *",decode,"* ]] && [[ ! -e "$small/.complete" ]]; then
  rm -rf "$small"
  "$bin" checkpoint --shape qwen3-4b-4-layers --out "$small" --tokenizer "$tokenizer"
  touch "$small/.complete"
fi

if [[ "$steps" == *",logits,"* ]]; then
  timeout "$limit" "$bin" bench logits --model "$small" --out "$out/logits-fa3.jsonl"
  MISTRALRS_FLASH_ATTN_V3=0 timeout "$limit" "$bin" bench logits --model "$small" --out "$out/logits-fa2.jsonl"
  timeout "$limit" "$bin" bench logits --model "$small" --prefill-chunk-tokens 1024 \
    --out "$out/logits-fa3-chunks-1024.jsonl"
  "$python" benches/logits_check.py --model "$small" --reference "FA3 one pass=$out/logits-fa3.jsonl" \
    --docent "FA2 one pass=$out/logits-fa2.jsonl" --docent "FA3, 1024-token chunks=$out/logits-fa3-chunks-1024.jsonl" \
    | tee "$out/logits.md" || echo "logits check: an expectation failed (exit $?)"
  rm -f "$out"/logits-*.jsonl
fi

if [[ "$steps" == *",decode,"* ]]; then
  dec=(bench logits --model "$small" --lengths 512,4096,32768 --decode-tokens 32)
  timeout "$limit" "$bin" "${dec[@]}" --out "$out/decode-docent.jsonl"
  DOCENT_GQA_DECODE=0 timeout "$limit" "$bin" "${dec[@]}" --out "$out/decode-flashinfer.jsonl"
  "$python" benches/logits_check.py --model "$small" --reference "FlashInfer decode=$out/decode-flashinfer.jsonl" \
    --docent "docent GQA decode=$out/decode-docent.jsonl" \
    | tee "$out/decode.md" || echo "decode check: an expectation failed (exit $?)"
  rm -f "$out"/decode-*.jsonl
fi

if [[ "$steps" == *",attention,"* ]]; then
  timeout "$limit" "$bin" bench attention --peer-python "$python" --report "$out/attention.md"
fi

common=(--model "$ckpt" --lengths "${DOCENT_TTFT_LENGTHS:-32768,262080}" --decode-tokens 64 --concurrent 0 --throughput 0)
if [[ "$steps" == *",ttft,"* ]]; then
  timeout "$limit" "$bin" bench gpu "${common[@]}" --peer-python "$python" --report "$out/ttft-fa3.md" \
    || echo "ttft FA3: exit $?"
fi
if [[ "$steps" == *",ttft-variants,"* ]]; then
  # 1048576: more than any prompt, so each runs in one pass.
  for chunk in ${DOCENT_TTFT_CHUNKS:-1048576 16384}; do
    timeout "$limit" "$bin" bench gpu "${common[@]}" --peer-python none --prefill-chunk-tokens "$chunk" \
      --report "$out/ttft-fa3-chunks-$chunk.md" || echo "ttft FA3 in $chunk-token chunks: exit $?"
  done
  MISTRALRS_FLASH_ATTN_V3=0 timeout "$limit" "$bin" bench gpu "${common[@]}" --peer-python none \
    --prefill-chunk-tokens 1048576 --report "$out/ttft-fa2.md" || echo "ttft FA2: exit $?"
fi
