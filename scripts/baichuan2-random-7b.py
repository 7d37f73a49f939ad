#!/usr/bin/env python3
"""Write a random-weight checkpoint in Baichuan2-7B-Chat's exact layout (bf16, fused W_pack,
NormHead, 125,696-token vocabulary; two safetensors shards with an index), to time and size
`docent models convert-baichuan2` on a full-size model. The tokenizer is the small test one.

    python3 scripts/baichuan2-random-7b.py OUT_DIR     (needs numpy; writes 15 GB)
"""
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
H, I, L, V, HEADS = 4096, 11008, 32, 125696, 32

tensors = [("model.embed_tokens.weight", (V, H))]
for l in range(L):
    p = f"model.layers.{l}."
    tensors += [(p + "self_attn.W_pack.weight", (3 * H, H)), (p + "self_attn.o_proj.weight", (H, H)),
                (p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.down_proj.weight", (H, I)),
                (p + "mlp.up_proj.weight", (I, H)), (p + "input_layernorm.weight", (H,)),
                (p + "post_attention_layernorm.weight", (H,))]
tensors += [("model.norm.weight", (H,)), ("lm_head.weight", (V, H))]

# Random bf16 in about +-0.03: the top halves of float32 values, tiled from one 64 MB block.
rng = np.random.default_rng(1)
block = (rng.uniform(-0.03, 0.03, 32 << 20).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()

half = len(tensors) // 2
weight_map = {}
for shard, part in enumerate([tensors[:half], tensors[half:]], start=1):
    name = f"model-0000{shard}-of-00002.safetensors"
    header, offset = {}, 0
    for t, shape in part:
        size = 2 * int(np.prod(shape))
        header[t] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
        weight_map[t] = name
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(out / name, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for t, shape in part:
            left = 2 * int(np.prod(shape))
            while left:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
(out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
config = {"architectures": ["BaichuanForCausalLM"], "model_type": "baichuan", "hidden_size": H,
          "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": HEADS, "vocab_size": V,
          "rms_norm_eps": 1e-6, "hidden_act": "silu", "max_position_embeddings": 4096, "model_max_length": 4096,
          "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False,
          "torch_dtype": "bfloat16"}
(out / "config.json").write_text(json.dumps(config, indent=1))
(out / "generation_config.json").write_text(json.dumps({"user_token_id": 195, "assistant_token_id": 196}))
shutil.copy(ROOT / "tests/fixtures/baichuan2-tiny/tokenizer.model", out / "tokenizer.model")
print("wrote", sum(2 * int(np.prod(s)) for _, s in tensors) / 1e9, "GB to", out)
