#!/usr/bin/env python3
"""Paired parse timings: `docent parse-worker` and poppler's `pdftotext` on the same PDF, run
alternately, so both see the same load on a shared machine. Prints the minimum over the runs of
wall and user+sys CPU seconds for each, their ratio, and the load average before and after.

usage: parse-vs-pdftotext.py DOCENT_BINARY RUNS PDF [PDF ...]
"""
import json
import os
import subprocess
import sys
import time


def timed(argv, stdin_bytes):
    """Wall and CPU (user+sys, children) seconds of one run."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, input=stdin_bytes, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def main():
    docent, runs, pdfs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    env_request = json.dumps({"media": "application/pdf", "password": None, "ocr_languages": None}).encode()
    os.environ["MALLOC_ARENA_MAX"] = "2"  # as the server starts its parse workers
    os.environ["RUST_LOG"] = "warn"
    print(f"load average before: {os.getloadavg()}")
    for pdf in pdfs:
        with open(pdf, "rb") as f:
            body = env_request + b"\n" + f.read()
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(timed([docent, "parse-worker"], body))
            theirs.append(timed(["pdftotext", "-q", "-enc", "UTF-8", pdf, "-"], None))
        ow, oc = min(w for w, _ in ours), min(c for _, c in ours)
        tw, tc = min(w for w, _ in theirs), min(c for _, c in theirs)
        name = os.path.basename(pdf)
        print(f"{name}: docent {ow:.2f} / {oc:.2f} s, pdftotext {tw:.2f} / {tc:.2f} s, "
              f"ratio wall {ow / tw:.2f}, cpu {oc / tc:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
