"""The peer for `docent bench gpu`: Hugging Face transformers on the same checkpoint and GPU.

Reads the prompts docent wrote (little-endian u32 token ids, `prompt_<tokens>.u32`), and prints
one JSON object per line on stdout:
  {"kind": "gpu", "name": ...}
  {"kind": "matmul", "tflops": ..., "sustained_tflops": ...}
                                             dense bf16 matmul rate, a burst and after 10 s at the
                                             power cap: the two FLOP floors' divisors
  {"kind": "run", "impl": "sdpa", "tokens": N, "ttft_s": ..., "decode_tok_s": ..., "peak_gib": ...}
  {"kind": "error", "impl": ..., "tokens": N, "message": ...}
  {"kind": "tput", "tokens": N, "seconds": ..., "peak_gib": ...}   one throughput prompt (`tput_<j>.u32`),
                                                                 prefill and answer, one after another
TTFT is one forward over the prompt with logits for the last token only, then argmax; decode is a
greedy loop on the KV cache (DynamicCache), synchronised at both ends.
"""

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def emit(**fields):
    print(json.dumps(fields), flush=True)


def matmul_tflops(n=8192, iters=50):
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - start) / 1e12


def matmul_sustained_tflops(n=8192, seconds=10.0, window=3.0):
    """The matmul rate over the last `window` seconds of `seconds` back to back: the rate a
    30-40 s prefill meets once the board reaches its power cap (the H200 here drops from ~1,980
    to ~1,500 MHz within a second; benches/sustained_clocks.py)."""
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    marks = []
    done = 0
    start = time.perf_counter()
    while not marks or marks[-1][0] - start < seconds:
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        done += 10
        marks.append((time.perf_counter(), done))
    end_t, end_n = marks[-1]
    begin_t, begin_n = next((t, c) for t, c in marks if t >= end_t - window)
    if end_n == begin_n:
        begin_t, begin_n = start, 0
    return 2 * n**3 * (end_n - begin_n) / (end_t - begin_t) / 1e12


def load(model_dir, impl):
    try:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation=impl).cuda()
    except TypeError:  # transformers 4.x spells it torch_dtype
        return AutoModelForCausalLM.from_pretrained(
            model_dir, torch_dtype=torch.bfloat16, attn_implementation=impl
        ).cuda()


@torch.inference_mode()
def run(model, ids, decode_tokens):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    torch.cuda.synchronize()
    ttft = time.perf_counter() - start
    past = out.past_key_values
    del out
    start = time.perf_counter()
    for _ in range(decode_tokens - 1):
        out = model(input_ids=token, past_key_values=past, use_cache=True)
        past = out.past_key_values
        token = out.logits[:, -1].argmax(-1, keepdim=True)
    torch.cuda.synchronize()
    decode = (decode_tokens - 1) / (time.perf_counter() - start)
    del past
    return ttft, decode, torch.cuda.max_memory_allocated() / 2**30


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--lengths", required=True)
    p.add_argument("--decode", type=int, default=64)
    p.add_argument("--throughput-count", type=int, default=0)
    p.add_argument("--throughput-answer", type=int, default=256)
    args = p.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]

    emit(kind="gpu", name=torch.cuda.get_device_name(), torch=torch.__version__)
    emit(kind="matmul", tflops=matmul_tflops(), sustained_tflops=matmul_sustained_tflops())
    impls = ["sdpa"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") else [])
    for impl in impls:
        model = load(args.model, impl).eval()
        warm = torch.arange(256, device="cuda").unsqueeze(0)
        run(model, warm, 4)
        for n in lengths:
            raw = np.fromfile(Path(args.prompts) / f"prompt_{n}.u32", dtype="<u4").astype(np.int64)
            ids = torch.from_numpy(raw).unsqueeze(0).cuda()
            try:
                ttft, decode, peak = run(model, ids, args.decode)
                emit(kind="run", impl=impl, tokens=n, ttft_s=ttft, decode_tok_s=decode, peak_gib=peak)
            except torch.cuda.OutOfMemoryError as e:
                emit(kind="error", impl=impl, tokens=n, message=f"out of memory: {e}".splitlines()[0])
                torch.cuda.empty_cache()
            print(f"peer {impl} {n} done", file=sys.stderr, flush=True)
        if impl == "sdpa":
            for j in range(args.throughput_count):
                raw = np.fromfile(Path(args.prompts) / f"tput_{j}.u32", dtype="<u4").astype(np.int64)
                ids = torch.from_numpy(raw).unsqueeze(0).cuda()
                start = time.perf_counter()
                try:
                    _, _, peak = run(model, ids, args.throughput_answer)
                    emit(kind="tput", tokens=len(raw), seconds=time.perf_counter() - start, peak_gib=peak)
                except torch.cuda.OutOfMemoryError as e:
                    emit(kind="error", impl=impl, tokens=len(raw), message=f"out of memory: {e}".splitlines()[0])
                    torch.cuda.empty_cache()
            print(f"peer throughput sample of {args.throughput_count} done", file=sys.stderr, flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
