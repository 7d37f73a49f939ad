#!/usr/bin/env bash
# The run command: fetch the default models, build, and serve docent on
# http://127.0.0.1:8080 (override with DOCENT_ADDR or --addr; more flags pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCENT_MODELS_DIR="${DOCENT_MODELS_DIR:-$PWD/models}"
scripts/fetch-models.sh "$DOCENT_MODELS_DIR"
scripts/build-deps.sh
scripts/fetch-pdfjs.sh
cargo run --release --locked -- serve "$@"
