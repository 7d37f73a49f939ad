#!/usr/bin/env bash
# Load test of a running docent build: read endpoints at a high rate, then many analyses at once
# on the small model. Prints wrk's status counts and latency percentiles (docs/reliability.md
# records a run). Usage: scripts/load-test.sh [SECONDS_READS] [SECONDS_ANALYSES] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
reads_s="${1:-20}" analyses_s="${2:-90}" conns="${3:-24}"
scripts/build-deps.sh wrk=wrk
export DOCENT_MODELS_DIR="${DOCENT_MODELS_DIR:-$PWD/models}"
scripts/fetch-models.sh "$DOCENT_MODELS_DIR" >/dev/null
cargo build --release --locked
bin="${CARGO_TARGET_DIR:-target}/release/docent"
data="$(mktemp -d)"
port=18181
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
"$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" 2>"$data/server.log" &
server=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
base="http://127.0.0.1:$port"
id=$(curl -sf -F file=@corpora/bitcoin_intro.txt "$base/api/v1/documents" | sed -E 's/.*"id":"([^"]+)".*/\1/')
echo "## reads: $conns connections, ${reads_s} s each (document $id)"
for path in /healthz "/api/v1/documents/$id" /api/v1/documents "/documents/$id"; do
  echo "### GET $path"
  wrk -t2 -c"$conns" -d"${reads_s}s" --latency -s benches/load/reads.lua "$base" -- "$path" | sed -n '/^status/,$p'
done
echo "## analyses: $conns connections posting summaries for ${analyses_s} s"
wrk -t2 -c"$conns" -d"${analyses_s}s" --timeout 120s -s benches/load/analyses.lua "$base" -- \
  "/api/v1/documents/$id/analyses" | sed -n '/^status/,$p'
echo "## server"
echo "panics in the log: $(grep -c 'panicked' "$data/server.log" || true)"
echo "stored analyses: $(curl -sf "$base/api/v1/documents/$id/analyses" | grep -o '"pipeline"' | wc -l)"
