#!/usr/bin/env bash
# The Python checkers the operations tests run on what the server serves: Prometheus' text-format
# parser (prometheus_client) for /metrics, openapi-spec-validator for /api/v1/openapi.json and
# openapi-python-client, which generates a client from it, in a venv outside the clone. Idempotent: a venv that has both is kept. Prints its python last.
set -euo pipefail

dir="${1:-${HOME:-/root}/.cache/docent/pytools}"
py="$dir/bin/python"
if [ -x "$py" ] && "$py" -c 'import prometheus_client, openapi_spec_validator, openapi_python_client' 2>/dev/null; then
  echo "$py"
  exit 0
fi
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check \
  "prometheus_client==0.26.0" "openapi-spec-validator==0.9.0" "openapi-python-client==0.29.1" >&2
echo "$py"
