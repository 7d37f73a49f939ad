#!/usr/bin/env bash
# The run command: fetch the default models, build, and serve docent on
# http://127.0.0.1:8080 (override with DOCENT_ADDR or --addr; more flags pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCENT_MODELS_DIR="${DOCENT_MODELS_DIR:-$PWD/models}"
scripts/fetch-models.sh "$DOCENT_MODELS_DIR"
scripts/build-deps.sh
# OCR for scanned PDFs, where packages can be installed; without it they get pdf_no_text_layer.
scripts/build-deps.sh tesseract=tesseract-ocr pdftoppm=poppler-utils \
  '/usr/share/tesseract-ocr/*/tessdata/chi_sim.traineddata=tesseract-ocr-chi-sim' ||
  echo "OCR is not installed: scanned PDFs will be refused with pdf_no_text_layer" >&2
scripts/fetch-pdfjs.sh
cargo run --release --locked -- serve "$@"
