#!/usr/bin/env bash
# The product path on one GPU: `docent serve` on the random-weight Qwen3-4B (scripts/device-env.sh),
# then the same folder of corpus documents as one batch (`docent batch --server`, full-context
# pipeline), once with --batch-workers 1 and once with the GPU default, each on a fresh server and
# data dir (no cache shared between the two). Prints the wall time of each and the items' states.
# With DOCENT_BATCH_QUESTION set, every document is asked that question instead of summarized (the
# answer pipeline's two requests: evidence first, then the line; DOCENT_LOG=info,docent::llm=debug
# logs each request's prompt time in serve-W.log).
#
#   scripts/device-serve-batch.sh OUT_DIR [WORKERS...]      (default: 1 16)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1"; shift
workers=("$@"); [[ ${#workers[@]} -gt 0 ]] || workers=(1 16)
mkdir -p "$out"
exec > >(tee -a "$out/device.log") 2>&1
source scripts/device-env.sh

folder="$(mktemp -d)"
for f in bitcoin.pdf bitcoin_zh_cn.pdf bitcoin_ar.pdf bitcoin_intro.txt bitcoin_proof_of_work.txt \
  cuad_limeenergy_distributor_agreement.pdf cuad_limeenergy_termination.txt ethereum-whitepaper-zh.md \
  ethereum-yellowpaper-zh.pdf german_geotopo_117p.pdf latex_multicolumn.pdf arabic_rtl_docling.pdf \
  uk_highcourt_IL-2021-000008_wright_v_cobra_order.pdf; do
  cp "corpora/$f" "$folder/"
done
echo "batch of $(ls "$folder" | wc -l) documents"

addr=127.0.0.1:8099
question=()
if [[ -n "${DOCENT_BATCH_QUESTION:-}" ]]; then question=(--question "$DOCENT_BATCH_QUESTION"); fi
for w in "${workers[@]}"; do
  data="$(mktemp -d)"
  DOCENT_LOG="${DOCENT_LOG:-info}" timeout 500 "$bin" --model "$ckpt" --baseline-model same \
    serve --addr "$addr" --data-dir "$data" --batch-workers "$w" > "$out/serve-$w.log" 2>&1 &
  server=$!
  for _ in $(seq 1 180); do curl -sf "http://$addr/healthz" >/dev/null && break; sleep 1; done
  start=$(date +%s%N)
  "$bin" batch "$folder" --pipeline full "${question[@]}" --out "$out/results-$w.jsonl" --server "http://$addr" || true
  echo "workers $w: batch wall $(( ($(date +%s%N) - start) / 1000000 )) ms"
  python3 - "$out/results-$w.jsonl" <<'PY'
import collections, json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
print(" states:", dict(collections.Counter(l["state"] for l in lines)))
for l in lines:
    a = l.get("analysis")
    if a:
        print(f"  {l['filename']}: {a['usage']['prompt_tokens']} prompt, {a['usage']['completion_tokens']} answer tokens, "
              f"prefill {a['timings']['prefill_ms']} ms, decode {a['timings']['decode_ms']} ms, total {a['timings']['total_ms']} ms")
    else:
        print(f"  {l['filename']}: {l.get('error')}")
PY
  kill "$server"; wait "$server" || true
done
