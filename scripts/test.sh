#!/usr/bin/env bash
# The test command: fetch the models the end-to-end tests run on, then run
# every test (unit, parsing on real PDFs, HTTP API, real-model end to end).
# Release profile: the real model is unusably slow in a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCENT_MODELS_DIR="${DOCENT_MODELS_DIR:-$PWD/models}"
scripts/fetch-models.sh "$DOCENT_MODELS_DIR"
# llama.cpp's server, the real OpenAI-compatible peer of the remote-engine tests (built once, cached).
DOCENT_LLAMA_SERVER="${DOCENT_LLAMA_SERVER:-$(scripts/fetch-llama-server.sh | tail -1)}"
export DOCENT_LLAMA_SERVER

# The page tests drive Debian's Chromium through chromedriver.
if ! command -v chromedriver >/dev/null || [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
cargo test --release --locked "$@"
