"""Does the GPU keep its speed under sustained load? The FLOP floor of `docent bench gpu` comes from a
short burst of dense bf16 matmuls, and the attention bench times 3 calls; a 256K prefill keeps the
tensor cores busy for 30-40 s. This times the same work as a burst and as a sustained run, second
by second, with the SM clock, power and throttle reasons that nvidia-smi reports meanwhile.

    python3 benches/sustained_clocks.py [--seconds 25] [--out DIR]

Work timed: the 8192^3 bf16 matmul, and torch's cuDNN causal attention (32 query / 8 KV heads of
128, bf16) at 32K and 128K tokens. Prints a Markdown table; writes the raw samples to DIR.
"""

import argparse
import json
import os
import subprocess
import threading
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

FIELDS = "clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active"


class Sampler:
    """nvidia-smi every 100 ms in a thread: (time, SM MHz, memory MHz, W, °C, reasons)."""

    def __init__(self):
        self.samples = []
        fields = FIELDS
        probe = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                               capture_output=True, text=True)
        if probe.returncode != 0:  # drivers before the rename call them throttle reasons
            fields = fields.replace("clocks_event_reasons", "clocks_throttle_reasons")
        self.proc = subprocess.Popen(
            ["nvidia-smi", "-i", os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
             f"--query-gpu={fields}", "--format=csv,noheader,nounits", "-lms", "100"],
            stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            try:
                self.samples.append((time.time(), float(parts[0]), float(parts[1]), float(parts[2]),
                                     float(parts[3]), parts[4]))
            except (ValueError, IndexError):
                pass

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def stop(self):
        self.proc.terminate()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def matmul_work():
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    return (lambda: a @ b), 2 * 8192**3


def attention_work(n):
    q = torch.randn(1, 32, n, 128, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(1, 8, n, 128, dtype=torch.bfloat16, device="cuda").repeat_interleave(4, dim=1)
    v = torch.randn(1, 8, n, 128, dtype=torch.bfloat16, device="cuda").repeat_interleave(4, dim=1)

    def call():
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            return scaled_dot_product_attention(q, k, v, is_causal=True)

    # Causal: half of the 4·n²·d·heads multiply-adds of full attention.
    return call, 2 * 32 * n * n * 128


def timed_window(fn, flop, seconds):
    """Calls `fn` until `seconds` pass (synchronising each call batch); returns TFLOP/s."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    calls = 0
    while True:
        fn()
        calls += 1
        if calls % 4 == 0 or flop > 1e12:
            torch.cuda.synchronize()
            if time.perf_counter() - start >= seconds:
                break
    elapsed = time.perf_counter() - start
    return calls * flop / elapsed / 1e12, elapsed, calls


def run(name, fn, flop, seconds, sampler, rows, raw):
    fn()
    torch.cuda.synchronize()
    time.sleep(5)  # idle, so the burst starts from rested clocks
    t0 = time.time()
    burst, burst_s, burst_calls = timed_window(fn, flop, 0.05)
    t1 = time.time()
    windows = []
    while time.time() - t1 < seconds:
        w0 = time.time()
        tflops, _, _ = timed_window(fn, flop, 1.0)
        w1 = time.time()
        s = sampler.between(w0, w1)
        windows.append({"t": w1 - t1, "tflops": tflops, "sm_mhz": median([x[1] for x in s]),
                        "mem_mhz": median([x[2] for x in s]), "watts": median([x[3] for x in s]),
                        "celsius": median([x[4] for x in s]), "reasons": sorted({x[5] for x in s})})
    bs = sampler.between(t0, t1 + 0.1)
    raw[name] = {"burst_tflops": burst, "burst_s": burst_s, "burst_calls": burst_calls,
                 "burst_sm_mhz": [x[1] for x in bs], "windows": windows}
    last = windows[-5:]
    rows.append((name, burst, windows[0]["tflops"], median([w["tflops"] for w in last]),
                 median([w["sm_mhz"] for w in windows[:2]]), median([w["sm_mhz"] for w in last]),
                 median([w["watts"] for w in last]), median([w["celsius"] for w in last]),
                 ",".join(sorted({r for w in last for r in w["reasons"]}))))
    print(json.dumps({"work": name, "burst_tflops": burst, "windows": windows}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=25)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sampler = Sampler()
    rows, raw = [], {}
    try:
        fn, flop = matmul_work()
        run("bf16 matmul 8192³", fn, flop, args.seconds, sampler, rows, raw)
        for n in (32768, 131072):
            fn, flop = attention_work(n)
            run(f"cuDNN causal attention, {n} tokens", fn, flop, args.seconds, sampler, rows, raw)
            del fn
            torch.cuda.empty_cache()
    finally:
        sampler.stop()
    with open(os.path.join(args.out, "sustained-clocks.json"), "w") as f:
        json.dump(raw, f, indent=1)
    print(f"\n{torch.cuda.get_device_name()}, {args.seconds:.0f} s of each after 5 s idle\n")
    print("| work | burst TFLOP/s | first second | last 5 s (median) | SM MHz first 2 s | SM MHz last 5 s "
          "| W last 5 s | °C | throttle reasons (last 5 s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:.0f} | {r[6]:.0f} | {r[7]:.0f} | {r[8]} |")


if __name__ == "__main__":
    main()
