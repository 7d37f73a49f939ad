"""Validate the OpenAPI document on stdin as OpenAPI 3.1 with openapi-spec-validator, and print
one line per operation: "METHOD path". An invalid document fails the run (exit 1, the errors
on stderr)."""

import json
import sys

from openapi_spec_validator import OpenAPIV31SpecValidator

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def main() -> int:
    doc = json.load(sys.stdin)
    if not str(doc.get("openapi", "")).startswith("3.1."):
        print(f"not OpenAPI 3.1: {doc.get('openapi')!r}", file=sys.stderr)
        return 1
    errors = list(OpenAPIV31SpecValidator(doc).iter_errors())
    for e in errors:
        print(f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}", file=sys.stderr)
    if errors:
        return 1
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                print(f"{method.upper()} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
