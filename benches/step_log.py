"""Summarise mistral.rs's step log (`MISTRALRS_DEBUG=1`: one line a step, "Prompt[lengths]
Completion[lengths] - N ms") from a `docent bench gpu` device log: where the engine's time went,
prompt steps against decode steps, and decode steps by batch size with the cache they read.

    python3 benches/step_log.py DEVICE_LOG [--from ISO_TIME] [--to ISO_TIME] [--kv-bytes-per-token 147456]
"""

import argparse
import re
import sys
from collections import defaultdict

LINE = re.compile(r"^(\S+Z)\s.*Prompt\[([^\]]*)\] Completion\[([^\]]*)\] - ([0-9.]+)ms")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def lengths(field):
    return [int(x) for x in field.split(",") if x.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--from", dest="start", default="")
    parser.add_argument("--to", dest="end", default="~")
    # Qwen3-4B: 36 layers x 8 KV heads x 128 x (K, V) x 2 bytes.
    parser.add_argument("--kv-bytes-per-token", type=int, default=36 * 8 * 128 * 2 * 2)
    args = parser.parse_args()
    steps = []
    with open(args.log, errors="replace") as f:
        for raw in f:
            m = LINE.match(ANSI.sub("", raw))
            if m and args.start <= m.group(1) <= args.end:
                steps.append((m.group(1), lengths(m.group(2)), lengths(m.group(3)), float(m.group(4))))
    if not steps:
        sys.exit("no step lines (was MISTRALRS_DEBUG=1 set?)")
    prompt = [s for s in steps if s[1]]
    decode = [s for s in steps if s[2]]
    total = sum(s[3] for s in steps)
    print(f"{len(steps)} steps, {total / 1000:.1f} s, from {steps[0][0]} to {steps[-1][0]}\n")
    print("| steps | count | s | share | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for name, group in (("prompt (a chunk each)", prompt), ("decode", decode)):
        t = sum(s[3] for s in group)
        print(f"| {name} | {len(group)} | {t / 1000:.1f} | {100 * t / total:.0f} % | {t / max(len(group), 1):.1f} |")
    print("\nDecode steps by batch size (sequences), with the KV cache each step reads:\n")
    print("| batch | steps | mean ms | mean context tokens a step | GB read a step (cache) | cache GB/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    buckets = defaultdict(list)
    for s in decode:
        n = len(s[2])
        bucket = n if n <= 8 else (16 if n <= 16 else (32 if n <= 32 else 64))
        buckets[bucket].append(s)
    for b in sorted(buckets):
        group = buckets[b]
        ms = sum(s[3] for s in group) / len(group)
        ctx = sum(sum(s[2]) for s in group) / len(group)
        gb = ctx * args.kv_bytes_per_token / 1e9
        label = str(b) if b <= 8 else f"≤{b}"
        print(f"| {label} | {len(group)} | {ms:.1f} | {ctx:.0f} | {gb:.1f} | {gb / (ms / 1000):.0f} |")


if __name__ == "__main__":
    main()
