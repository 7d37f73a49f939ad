#!/usr/bin/env python3
"""Save the tiny Baichuan2 checkpoint with real PyTorch, and compute its logits with a PyTorch
forward pass of Baichuan2-7B's modelling code, for the conversion tests.

    docent checkpoint --shape baichuan2-tiny --seed 7 --format bin --out SRC/bin
    docent checkpoint --shape baichuan2-tiny --seed 7 --format safetensors --out SRC/st
    python3 scripts/baichuan2-torch-fixture.py SRC PROMPTS_JSON OUT_DIR

torch must read docent's own .bin identically to the safetensors. PROMPTS_JSON is a list of token
id lists (the fixture used the first sample of encodings.json, the fifth, and the first 9 ids of
the sixth). OUT_DIR gets pytorch_model.bin as torch.save writes it and logits.json.
"""
import json
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

src, prompts, out = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
ours = torch.load(src / "bin/pytorch_model.bin", weights_only=True)
index = json.loads((src / "st/model.safetensors.index.json").read_text())
shards = {f: load_file(src / "st" / f) for f in set(index["weight_map"].values())}
assert set(ours) == set(index["weight_map"]), "tensor names differ"
for name, shard in index["weight_map"].items():
    assert torch.equal(ours[name], shards[shard][name]), name
print(f"torch.load reads docent's pytorch_model.bin: {len(ours)} tensors equal to the safetensors")
torch.save(OrderedDict(ours), out / "pytorch_model.bin")

cfg = json.loads((src / "bin/config.json").read_text())
H, nh, L, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["rms_norm_eps"]
d = H // nh
sd = ours


def rms(x, w):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    return torch.cat((-x[..., d // 2:], x[..., : d // 2]), dim=-1)


def forward(ids):
    n = len(ids)
    h = sd["model.embed_tokens.weight"][torch.tensor(ids)][None]  # [1, n, H]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    freqs = torch.outer(torch.arange(n).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    for l in range(L):
        p = f"model.layers.{l}."
        x = rms(h, sd[p + "input_layernorm.weight"])
        # modeling_baichuan.py (7B): W_pack, then unflatten into q, k, v
        proj = F.linear(x, sd[p + "self_attn.W_pack.weight"])
        proj = proj.unflatten(-1, (3, H)).unsqueeze(0).transpose(0, -2).squeeze(-2)
        q, k, v = (proj[i].view(1, n, nh, d).transpose(1, 2) for i in range(3))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(1, n, H)
        h = h + F.linear(o, sd[p + "self_attn.o_proj.weight"])
        x = rms(h, sd[p + "post_attention_layernorm.weight"])
        gate, up = F.linear(x, sd[p + "mlp.gate_proj.weight"]), F.linear(x, sd[p + "mlp.up_proj.weight"])
        h = h + F.linear(F.silu(gate) * up, sd[p + "mlp.down_proj.weight"])
    h = rms(h, sd["model.norm.weight"])
    # NormHead at inference: F.linear(hidden, F.normalize(weight))
    return F.linear(h[0, -1], F.normalize(sd["lm_head.weight"]))


with torch.no_grad():
    logits = [{"ids": ids, "logits": forward(ids).tolist()} for ids in prompts]
(out / "logits.json").write_text(json.dumps(logits) + "\n")
print(torch.__version__, "logits for", len(prompts), "prompts")
