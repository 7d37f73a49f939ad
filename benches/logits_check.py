"""Checks docent's next-token logits (`docent bench logits --out FILE`) against Hugging Face
transformers on the same checkpoint, and against each other (FlashAttention-3, -2, chunked).

    python3 benches/logits_check.py --model CKPT --reference LABEL=FILE [--docent LABEL=FILE ...]

The reference file's prompts are run through transformers (bf16, sdpa) three ways: right (causal),
and two deliberately wrong attention kernels (not causal; softmax scale 1 instead of 1/sqrt(d)).
For each docent file and prompt it prints the relative L2 error ||a - b|| / ||b|| of the logits and
whether the top token agrees (shown only: on random weights the top logits lie close together),
against transformers and against the reference file. A pair passes when the relative error is at
most --tolerance (default 0.05); the wrong kernels must fail it, or the check proves nothing. Exit status 1 when any expectation is not met.
"""

import argparse
import json
import sys

import torch
from transformers import AttentionInterface, AutoModelForCausalLM


def read(path):
    return {row["tokens"]: row for row in map(json.loads, open(path))}


def wrong_attention(causal, scale_one):
    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        groups = query.shape[1] // key.shape[1]
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, is_causal=causal, scale=1.0 if scale_one else scaling
        )
        return out.transpose(1, 2).contiguous(), None

    return attention


@torch.inference_mode()
def hf_logits(model, ids):
    out = model(input_ids=torch.tensor([ids], device="cuda"), logits_to_keep=1)
    return out.logits[0, -1].float()


def compare(a, b):
    rel = (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()
    return rel, bool(a.argmax() == b.argmax())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--reference", required=True, help="LABEL=FILE: the docent run others are compared with")
    parser.add_argument("--docent", action="append", default=[], help="LABEL=FILE: more docent runs")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    AttentionInterface.register("docent_not_causal", wrong_attention(causal=False, scale_one=False))
    AttentionInterface.register("docent_scale_one", wrong_attention(causal=True, scale_one=True))
    ref_label, ref_path = args.reference.split("=", 1)
    runs = [(ref_label, read(ref_path))] + [(l, read(p)) for l, p in (d.split("=", 1) for d in args.docent)]
    reference = runs[0][1]
    hf = {}
    for impl in ["sdpa", "docent_not_causal", "docent_scale_one"]:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation=impl).cuda()
        hf[impl] = {n: hf_logits(model, row["ids"]) for n, row in reference.items()}
        del model
        torch.cuda.empty_cache()
    ok = True
    print(f"tolerance: relative L2 error <= {args.tolerance}")
    print("| docent run | tokens | vs | relative L2 error | top token agrees | passes | expected |")
    print("|---|---:|---|---:|---|---|---|")
    for label, rows in runs:
        for n, row in sorted(rows.items()):
            ids = reference[n]["ids"]
            if row["ids"] != ids:
                print(f"{label}: the {n}-token prompt differs from the reference's", file=sys.stderr)
                ok = False
                continue
            ours = torch.tensor(row["logits"], device="cuda")
            peers = [("transformers sdpa", hf["sdpa"][n], True),
                     ("transformers, not causal (wrong)", hf["docent_not_causal"][n], False),
                     ("transformers, scale 1 (wrong)", hf["docent_scale_one"][n], False)]
            if label != ref_label:
                peers.append((ref_label, torch.tensor(reference[n]["logits"], device="cuda"), True))
            for name, theirs, expect in peers:
                rel, top = compare(ours, theirs)
                passes = rel <= args.tolerance
                ok &= passes == expect
                print(f"| {label} | {n} | {name} | {rel:.4f} | {top} | {passes} | {'pass' if expect else 'fail'} |")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
