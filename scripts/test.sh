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
# Prometheus' text-format parser and an OpenAPI validator, which the operations tests run on
# /metrics and /api/v1/openapi.json (a venv, built once, cached).
DOCENT_PYTOOLS="${DOCENT_PYTOOLS:-$(scripts/fetch-pytools.sh | tail -1)}"
export DOCENT_PYTOOLS

# The build's CMake and libclang (llama.cpp); the page tests drive Debian's Chromium through
# chromedriver; the CPU benchmark's test compares the PDF parser with poppler's pdftotext, and qpdf
# encrypts a corpus PDF with each security handler for the parser's test; scanned
# PDFs are read by Tesseract from pages that poppler's pdftoppm renders.
scripts/build-deps.sh chromium=chromium chromedriver=chromium-driver pdftotext=poppler-utils qpdf=qpdf \
  tesseract=tesseract-ocr '/usr/share/tesseract-ocr/*/tessdata/chi_sim.traineddata=tesseract-ocr-chi-sim'
# PDF.js for the original-page view, embedded at build time (the browser test draws a page).
scripts/fetch-pdfjs.sh
cargo test --release --locked "$@"
