"""The peer of `docent bench attention`: torch's scaled_dot_product_attention on the same shapes
(one sequence, 32 query / 8 KV heads of 128, bf16, causal), with its cuDNN and FlashAttention-2
backends. Prints one JSON object per line: {"impl", "tokens", "ms"} or {"impl", "tokens", "error"}.
"""

import argparse
import json
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention


def timed(backend, n, iters):
    q = torch.randn(1, 32, n, 128, dtype=torch.bfloat16, device="cuda")
    # GQA: the 8 KV heads repeated to 32 as the backends take them (no cost in the timed call).
    k = torch.randn(1, 8, n, 128, dtype=torch.bfloat16, device="cuda").repeat_interleave(4, dim=1)
    v = torch.randn(1, 8, n, 128, dtype=torch.bfloat16, device="cuda").repeat_interleave(4, dim=1)
    with sdpa_kernel([backend]):
        scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000 / iters


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", default="32768,131072,262144")
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    for n in map(int, args.lengths.split(",")):
        for name, backend in [("cuDNN", SDPBackend.CUDNN_ATTENTION), ("FlashAttention-2", SDPBackend.FLASH_ATTENTION)]:
            try:
                print(json.dumps({"impl": name, "tokens": n, "ms": timed(backend, n, args.iters)}), flush=True)
            except Exception as e:  # a backend that refuses the shape is reported, not fatal
                print(json.dumps({"impl": name, "tokens": n, "error": str(e)[:300]}), flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
