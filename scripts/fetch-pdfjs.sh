#!/usr/bin/env bash
# PDF.js from npm (pdfjs-dist), vendored into static/vendor/pdfjs for the build to embed: the
# pages render a PDF's original pages with it, offline (no CDN). Checks the package's sha256;
# idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=5.4.296
SHA=01f7da2d0983256b7d9f8dde9d99e94479f075e30bc571b69cafc92bf419cee2
dest=static/vendor/pdfjs
if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$VERSION" ]; then
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/docent-pdfjs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "pdfjs-dist@$VERSION" >/dev/null)
tgz="$tmp/pdfjs-dist-$VERSION.tgz"
[ "$(sha256sum "$tgz" | cut -d' ' -f1)" = "$SHA" ] || { echo "sha256 mismatch for $tgz" >&2; exit 1; }
tar xzf "$tgz" -C "$tmp" package/build/pdf.min.mjs package/build/pdf.worker.min.mjs package/LICENSE
mkdir -p "$dest"
cp "$tmp/package/build/pdf.min.mjs" "$tmp/package/build/pdf.worker.min.mjs" "$tmp/package/LICENSE" "$dest/"
echo "$VERSION" > "$dest/VERSION"
