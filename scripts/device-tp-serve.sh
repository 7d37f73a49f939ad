#!/usr/bin/env bash
# Smoke test of the product path on a multi-GPU host: `docent serve --tensor-parallel N` on the
# random-weight Qwen3-4B (scripts/device-env.sh), one upload, then two analyses sent at the same
# time over HTTP (they queue: one sequence at a time), and the worker processes gone after the
# server stops.
#
#   scripts/device-tp-serve.sh OUT_DIR [N]      (default N: 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1"; gpus="${2:-2}"
mkdir -p "$out"
exec > >(tee -a "$out/device.log") 2>&1
source scripts/device-env.sh

addr=127.0.0.1:8099
data="$(mktemp -d)"
DOCENT_LOG=info timeout 300 "$bin" --model "$ckpt" --tensor-parallel "$gpus" --kv-cache-tokens 65536 \
  serve --addr "$addr" --data-dir "$data" > "$out/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do curl -sf "http://$addr/healthz" >/dev/null && break; sleep 1; done
curl -sf "http://$addr/healthz"; echo
doc="$(curl -sf -F "file=@corpora/bitcoin_intro.txt" "http://$addr/api/v1/documents" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
start=$(date +%s%N)
pids=()
for i in 1 2; do
  curl -s -o "$out/analysis-$i.json" -w "analysis $i: HTTP %{http_code} in %{time_total} s\n" \
    -H 'content-type: application/json' -d '{"pipeline":"full","task":"summary"}' \
    "http://$addr/api/v1/documents/$doc/analyses" &
  pids+=($!)
done
wait "${pids[@]}" || true
echo "both answered after $(( ($(date +%s%N) - start) / 1000000 )) ms"
python3 - "$out" <<'PY'
import json, sys
for i in (1, 2):
    a = json.load(open(f"{sys.argv[1]}/analysis-{i}.json"))
    if "error" in a:
        print(i, a["error"]); continue
    print(i, a["usage"], a["timings"], len(a["citations"]), "citations,", sum(c["valid"] for c in a["citations"]), "verified")
PY
kill "$server"; wait "$server" || true
sleep 3
echo "docent processes left after the server stopped: $(pgrep -fc "$bin" || true)"
