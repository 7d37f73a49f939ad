"""Checks docent's next-token logits (`docent bench logits --out FILE`) against Hugging Face
transformers on the same checkpoint, and against each other (FlashAttention-3, -2, chunked).

    python3 benches/logits_check.py --model CKPT --reference LABEL=FILE [--docent LABEL=FILE ...]

The reference file's prompts are run through transformers (bf16, sdpa) three ways: right (causal),
and two deliberately wrong attention kernels (not causal; softmax scale 1 instead of 1/sqrt(d)).
For each docent file and prompt it prints the relative L2 error ||a - b|| / ||b|| of the logits and
whether the top token agrees (shown only: on random weights the top logits lie close together),
against transformers and against the reference file. A pair passes when the relative error is at
most --tolerance (default 0.05); the wrong kernels must fail it, or the check proves nothing. Exit status 1 when any expectation is not met.

Rows written with `--decode-tokens N` also carry, for each of N greedily decoded tokens, docent's 256
most likely next tokens and their log-probabilities: those come through the decode attention kernel,
which the next-token logits (a prefill) never reach. transformers runs the prompt followed by each
run's own decoded tokens in one causal pass (teacher forcing), and at each decoded position the
relative L2 error is taken over the log-probabilities of docent's 256 tokens, each vector centred on
its mean (log-probabilities differ from logits by one constant per position); a prompt's error is the
largest over its positions, against --decode-tolerance (default 0.2: this metric over 256 nearly
equal log-probabilities of a random-weight model is noisier than the full logits'). Against another
docent run the positions compared stop where the two decoded different tokens (on random weights the
top tokens lie close together, so two right kernels can part at a near tie).
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


def decoded(row):
    """The tokens a run decoded greedily: the first of each step's most likely tokens."""
    return [int(step[0][0]) for step in row["decode"]]


@torch.inference_mode()
def hf_decode_logprobs(model, row):
    """Log-probabilities of every token at each decoded position, teacher-forced on the row's own
    decoded tokens: one row per decoded token."""
    tokens = decoded(row)
    ids = row["ids"] + tokens[:-1]
    out = model(input_ids=torch.tensor([ids], device="cuda"), logits_to_keep=len(tokens))
    return torch.log_softmax(out.logits[0].float(), dim=-1)


def decode_error(steps, theirs, upto=None):
    """Largest centred relative L2 error over the positions, of docent's log-probabilities against
    `theirs` (a function of position and token ids)."""
    worst = 0.0
    for i, step in enumerate(steps[:upto]):
        ids = torch.tensor([int(t) for t, _ in step], device="cuda")
        ours = torch.tensor([float(lp) for _, lp in step], device="cuda")
        ref = theirs(i, ids)
        ours, ref = ours - ours.mean(), ref - ref.mean()
        worst = max(worst, (torch.linalg.vector_norm(ours - ref) / torch.linalg.vector_norm(ref)).item())
    return worst


def compare(a, b):
    rel = (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()
    return rel, bool(a.argmax() == b.argmax())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--reference", required=True, help="LABEL=FILE: the docent run others are compared with")
    parser.add_argument("--docent", action="append", default=[], help="LABEL=FILE: more docent runs")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--decode-tolerance", type=float, default=0.2)
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
        for label, rows in runs:
            for n, row in rows.items():
                if "decode" in row:
                    hf[impl, label, n] = hf_decode_logprobs(model, row)
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
    if any("decode" in row for row in reference.values()):
        print()
        print(f"Decoded tokens: centred relative L2 error of the log-probabilities of docent's 256 most likely")
        print(f"tokens, the largest over the decoded positions (tolerance {args.decode_tolerance}); transformers")
        print(f"teacher-forced on each run's own tokens")
        print()
        print("| docent run | tokens | vs | positions | relative L2 error | passes | expected |")
        print("|---|---:|---|---:|---:|---|---|")
        for label, rows in runs:
            for n, row in sorted(rows.items()):
                ref_row = reference[n]
                if "decode" not in row or "decode" not in ref_row:
                    continue
                ours, theirs = decoded(row), decoded(ref_row)
                same = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
                peers = [("transformers sdpa", "sdpa", True),
                         ("transformers, not causal (wrong)", "docent_not_causal", False),
                         ("transformers, scale 1 (wrong)", "docent_scale_one", False)]
                for name, impl, expect in peers:
                    table = hf[impl, label, n]
                    rel = decode_error(row["decode"], lambda i, ids: table[i][ids])
                    passes = rel <= args.decode_tolerance
                    ok &= passes == expect
                    print(f"| {label} | {n} | {name} | {len(ours)} | {rel:.4f} | {passes} | {'pass' if expect else 'fail'} |")
                if label != ref_label:
                    known = [{int(t): float(lp) for t, lp in step} for step in ref_row["decode"][:same]]
                    # Only tokens both runs listed can be compared; drop the rest at each position.
                    common = [[(t, lp) for t, lp in step if int(t) in known[i]]
                              for i, step in enumerate(row["decode"][:same])]
                    rel = decode_error(common, lambda i, ids: torch.tensor(
                        [known[i][int(t)] for t in ids.tolist()], device="cuda"))
                    passes = rel <= args.decode_tolerance
                    ok &= passes
                    print(f"| {label} | {n} | {ref_label} | {same} | {rel:.4f} | {passes} | pass |")
                if same < min(len(ours), len(theirs)):
                    print(f"{label}, {n} tokens: decoded tokens differ from {ref_label}'s from position {same}",
                          file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
