#!/usr/bin/env bash
# The test command: fetch the models the end-to-end tests run on, then run
# every test (unit, parsing on real PDFs, HTTP API, real-model end to end).
# Release profile: the real model is unusably slow in a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCENT_MODELS_DIR="${DOCENT_MODELS_DIR:-$PWD/models}"
scripts/fetch-models.sh "$DOCENT_MODELS_DIR"
cargo test --release --locked "$@"
