//! A tiny random checkpoint in Baichuan2-7B's published layout (fused `W_pack`, an unnormalised
//! NormHead, Baichuan's config.json), saved as Baichuan publishes it (`pytorch_model.bin`, as
//! `torch.save` writes a state dict) or as sharded safetensors: what the conversion is proven on.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::models::tensors::{Float, SafetensorsWriter, TensorSpec};

/// The SentencePiece model tiny checkpoints use, relative to the repository
/// (tests/fixtures/baichuan2-tiny/README.md says how it was trained).
pub const TOKENIZER_FIXTURE: &str = "tests/fixtures/baichuan2-tiny/tokenizer.model";

/// Float32 weights, small enough to hold in memory and to run a reference forward pass on.
pub struct TinyBaichuan2 {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub eps: f64,
    /// name -> (shape, row-major values)
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

struct Rng(u64);

impl Rng {
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + (hi - lo) * ((self.0 >> 40) as f32 / (1u64 << 24) as f32)
    }
}

impl TinyBaichuan2 {
    /// Hidden size 64, 4 heads, 2 layers, a 1,200-token vocabulary (the test tokenizer's). Weights
    /// large enough that attention is far from uniform and every tensor's role shows in the
    /// logits; LM-head rows of deliberately unequal norms, as a trained NormHead stores them.
    pub fn random(seed: u64) -> Self {
        let (hidden, heads, layers, intermediate, vocab) = (64, 4, 2, 176, 1200);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut tensors = BTreeMap::new();
        let mut add = |name: String, shape: Vec<usize>, lo: f32, hi: f32, rng: &mut Rng| {
            let n = shape.iter().product();
            tensors.insert(name, (shape, (0..n).map(|_| rng.uniform(lo, hi)).collect::<Vec<f32>>()));
        };
        let a = 0.25;
        add("model.embed_tokens.weight".into(), vec![vocab, hidden], -1.0, 1.0, &mut rng);
        for l in 0..layers {
            let p = |n: &str| format!("model.layers.{l}.{n}.weight");
            add(p("input_layernorm"), vec![hidden], 0.5, 1.5, &mut rng);
            add(p("self_attn.W_pack"), vec![3 * hidden, hidden], -a, a, &mut rng);
            add(p("self_attn.o_proj"), vec![hidden, hidden], -a, a, &mut rng);
            add(p("post_attention_layernorm"), vec![hidden], 0.5, 1.5, &mut rng);
            add(p("mlp.gate_proj"), vec![intermediate, hidden], -a, a, &mut rng);
            add(p("mlp.up_proj"), vec![intermediate, hidden], -a, a, &mut rng);
            add(p("mlp.down_proj"), vec![hidden, intermediate], -a, a, &mut rng);
        }
        add("model.norm.weight".into(), vec![hidden], 0.5, 1.5, &mut rng);
        add("lm_head.weight".into(), vec![vocab, hidden], -a, a, &mut rng);
        if let Some((_, head)) = tensors.get_mut("lm_head.weight") {
            for row in head.chunks_exact_mut(hidden) {
                let scale = rng.uniform(0.2, 3.0);
                row.iter_mut().for_each(|x| *x *= scale);
            }
        }
        Self { hidden, heads, layers, intermediate, vocab, eps: 1e-6, tensors }
    }

    /// Baichuan2-7B-Chat's config.json and generation_config.json with this shape, and the
    /// SentencePiece `tokenizer_model`.
    pub fn write_side_files(&self, dir: &Path, tokenizer_model: &Path) -> anyhow::Result<()> {
        fs_err::create_dir_all(dir)?;
        let config = serde_json::json!({
            "_from_model_config": true, "architectures": ["BaichuanForCausalLM"],
            "auto_map": {"AutoConfig": "configuration_baichuan.BaichuanConfig",
                         "AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM"},
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "hidden_act": "silu",
            "hidden_size": self.hidden, "initializer_range": 0.02, "intermediate_size": self.intermediate,
            "max_position_embeddings": 4096, "model_max_length": 4096, "model_type": "baichuan",
            "num_attention_heads": self.heads, "num_hidden_layers": self.layers, "rms_norm_eps": self.eps,
            "tie_word_embeddings": false, "tokenizer_class": "BaichuanTokenizer", "torch_dtype": "float32",
            "use_cache": true, "vocab_size": self.vocab, "z_loss_weight": 0
        });
        fs_err::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
        let generation = serde_json::json!({
            "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "user_token_id": 195,
            "assistant_token_id": 196, "max_new_tokens": 2048, "temperature": 0.3, "top_k": 5, "top_p": 0.85,
            "repetition_penalty": 1.05, "do_sample": true
        });
        fs_err::write(dir.join("generation_config.json"), serde_json::to_vec_pretty(&generation)?)?;
        fs_err::copy(tokenizer_model, dir.join("tokenizer.model"))?;
        Ok(())
    }

    /// `pytorch_model.bin` as `torch.save(model.state_dict())` writes it: a zip of a pickled
    /// OrderedDict of `_rebuild_tensor_v2` calls over float32 storages, one storage per tensor.
    pub fn write_pytorch_bin(&self, dir: &Path, tokenizer_model: &Path) -> anyhow::Result<()> {
        self.write_side_files(dir, tokenizer_model)?;
        let mut zip = zip::ZipWriter::new(fs_err::File::create(dir.join("pytorch_model.bin"))?);
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("archive/data.pkl", stored)?;
        zip.write_all(&self.pickle()?)?;
        for (key, (_, values)) in self.tensors.values().enumerate() {
            zip.start_file(format!("archive/data/{key}"), stored)?;
            zip.write_all(&values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
        }
        zip.start_file("archive/version", stored)?;
        zip.write_all(b"3\n")?;
        zip.finish()?;
        Ok(())
    }

    fn pickle(&self) -> anyhow::Result<Vec<u8>> {
        let mut p = Pickle(vec![0x80, 2]);
        p.global("collections", "OrderedDict");
        p.op(b")R(");
        for (key, (name, (shape, _))) in self.tensors.iter().enumerate() {
            p.unicode(name);
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op(b"((");
            p.unicode("storage");
            p.global("torch", "FloatStorage");
            p.unicode(&key.to_string());
            p.unicode("cpu");
            p.int(shape.iter().product())?;
            p.op(b"tQ");
            p.int(0)?;
            p.op(b"(");
            for d in shape {
                p.int(*d)?;
            }
            p.op(b"t(");
            let mut strides: Vec<usize> =
                shape.iter().rev().scan(1, |s, d| Some(std::mem::replace(s, *s * d))).collect();
            strides.reverse();
            for s in strides {
                p.int(s)?;
            }
            p.op(b"t\x89");
            p.global("collections", "OrderedDict");
            p.op(b")RtR");
        }
        p.op(b"u.");
        Ok(p.0)
    }

    /// The same tensors as two safetensors shards with a `model.safetensors.index.json`.
    pub fn write_sharded_safetensors(&self, dir: &Path, tokenizer_model: &Path) -> anyhow::Result<()> {
        self.write_side_files(dir, tokenizer_model)?;
        let tensors: Vec<_> = self.tensors.iter().collect();
        let (first, second) = tensors.split_at(tensors.len() / 2);
        let mut weight_map = serde_json::Map::new();
        for (file, part) in [("model-00001-of-00002.safetensors", first), ("model-00002-of-00002.safetensors", second)]
        {
            let specs = part.iter().map(|(n, (shape, _))| TensorSpec::new(*n, Float::F32, shape.clone())).collect();
            let mut out = SafetensorsWriter::create(&dir.join(file), specs)?;
            for (name, (_, values)) in part {
                let mut bytes = Vec::with_capacity(values.len() * 4);
                Float::F32.encode(values, &mut bytes);
                out.write(name, &bytes)?;
                weight_map.insert((*name).clone(), serde_json::json!(file));
            }
            out.finish()?;
        }
        let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
        fs_err::write(dir.join("model.safetensors.index.json"), serde_json::to_vec(&index)?)?;
        Ok(())
    }
}

/// Just the pickle opcodes a state dict needs (protocol 2).
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, ops: &[u8]) {
        self.0.extend_from_slice(ops);
    }

    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }

    fn unicode(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: usize) -> anyhow::Result<()> {
        self.0.push(b'J');
        self.0.extend_from_slice(&i32::try_from(v).context("a dimension over 2^31")?.to_le_bytes());
        Ok(())
    }
}
