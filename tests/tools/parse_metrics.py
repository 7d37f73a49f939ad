"""Read /metrics from stdin with Prometheus' own text-format parser (prometheus_client) and print
one JSON line per sample: {"name", "labels", "value"}. A line the parser refuses, or a family
without its TYPE, fails the run (exit 1, the reason on stderr)."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as e:
        print(f"not Prometheus text format: {e}", file=sys.stderr)
        return 1
    if not families:
        print("no metric families", file=sys.stderr)
        return 1
    for family in families:
        if family.type == "unknown":
            print(f"{family.name} has no TYPE line", file=sys.stderr)
            return 1
        if not family.documentation:
            print(f"{family.name} has no HELP line", file=sys.stderr)
            return 1
        for s in family.samples:
            print(json.dumps({"name": s.name, "labels": s.labels, "value": s.value}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
