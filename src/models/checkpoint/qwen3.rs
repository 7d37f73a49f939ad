//! Random-weight Qwen3 checkpoints of any shape, laid out like a Hugging Face download
//! (config.json, bf16 `model.safetensors`, the real Qwen3 tokenizer). Tests load a tiny one on
//! CPU; GPU benchmarks load the full Qwen3-4B-Instruct-2507 shape, which costs exactly the time
//! real weights cost, since no kernel looks at the values.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::models::tensors::{Float, SafetensorsWriter, TensorSpec};
use serde::Serialize;

/// The hyper-parameters that fix a Qwen3 dense model's tensors and costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Qwen3Shape {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub max_positions: usize,
}

impl Qwen3Shape {
    /// Qwen3-4B-Instruct-2507 as published (config.json of the release).
    pub const QWEN3_4B: Self = Self {
        vocab: 151_936,
        hidden: 2560,
        layers: 36,
        heads: 32,
        kv_heads: 8,
        head_dim: 128,
        intermediate: 9728,
        max_positions: 262_144,
    };

    /// Qwen3-4B's layer shape with 4 of its 36 layers: the same attention kernels at a tenth of the
    /// load time, for numerics checks on the GPU (`docent bench logits`).
    pub const QWEN3_4B_4_LAYERS: Self = Self { layers: 4, ..Self::QWEN3_4B };

    /// A few-megabyte model with the real vocabulary, for CPU tests.
    pub const TINY: Self = Self {
        vocab: 151_936,
        hidden: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        head_dim: 16,
        intermediate: 128,
        max_positions: 4096,
    };

    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "qwen3-4b" => Some(Self::QWEN3_4B),
            "qwen3-4b-4-layers" => Some(Self::QWEN3_4B_4_LAYERS),
            "tiny" => Some(Self::TINY),
            _ => None,
        }
    }

    /// The shape of an existing checkpoint, from its config.json.
    pub fn from_config(path: &Path) -> anyhow::Result<Self> {
        #[derive(serde::Deserialize)]
        struct Config {
            vocab_size: usize,
            hidden_size: usize,
            num_hidden_layers: usize,
            num_attention_heads: usize,
            num_key_value_heads: usize,
            head_dim: Option<usize>,
            intermediate_size: usize,
            max_position_embeddings: usize,
        }
        let text = fs_err::read_to_string(path)?;
        let c: Config = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            vocab: c.vocab_size,
            hidden: c.hidden_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim.unwrap_or(c.hidden_size / c.num_attention_heads.max(1)),
            intermediate: c.intermediate_size,
            max_positions: c.max_position_embeddings,
        })
    }

    /// Weights of the linear layers one token passes through (embeddings excluded).
    pub fn linear_params(&self) -> u64 {
        let (h, q, kv) = (self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim);
        let per_layer = h * q + 2 * h * kv + q * h + 3 * h * self.intermediate;
        (self.layers * per_layer) as u64
    }

    /// Floating-point operations of a causal prefill of `tokens` tokens, with logits for the last
    /// token only: 2 per weight per token, plus QK^T and AV over the causal triangle.
    pub fn prefill_flops(&self, tokens: usize) -> f64 {
        let n = tokens as f64;
        let linear = 2.0 * n * self.linear_params() as f64;
        let attention = 2.0 * (self.layers * self.heads * self.head_dim) as f64 * n * n;
        let lm_head = 2.0 * (self.hidden * self.vocab) as f64;
        linear + attention + lm_head
    }

    /// Bytes of bf16 key and value cache per token.
    pub fn kv_bytes_per_token(&self) -> u64 {
        (2 * self.layers * self.kv_heads * self.head_dim * 2) as u64
    }

    fn tensors(&self) -> Vec<(String, Vec<usize>, Init)> {
        let (h, q, kv, d) = (self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.head_dim);
        let mut out = vec![("model.embed_tokens.weight".to_owned(), vec![self.vocab, h], Init::Random)];
        for l in 0..self.layers {
            let p = |name: &str| format!("model.layers.{l}.{name}.weight");
            out.extend([
                (p("input_layernorm"), vec![h], Init::Ones),
                (p("self_attn.q_proj"), vec![q, h], Init::Random),
                (p("self_attn.k_proj"), vec![kv, h], Init::Random),
                (p("self_attn.v_proj"), vec![kv, h], Init::Random),
                (p("self_attn.q_norm"), vec![d], Init::Ones),
                (p("self_attn.k_norm"), vec![d], Init::Ones),
                (p("self_attn.o_proj"), vec![h, q], Init::Random),
                (p("post_attention_layernorm"), vec![h], Init::Ones),
                (p("mlp.gate_proj"), vec![self.intermediate, h], Init::Random),
                (p("mlp.up_proj"), vec![self.intermediate, h], Init::Random),
                (p("mlp.down_proj"), vec![h, self.intermediate], Init::Random),
            ]);
        }
        out.push(("model.norm.weight".to_owned(), vec![h], Init::Ones));
        out
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
            "vocab_size": self.vocab, "hidden_size": self.hidden, "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads, "head_dim": self.head_dim, "hidden_act": "silu",
            "max_position_embeddings": self.max_positions, "rms_norm_eps": 1e-6, "rope_theta": 5_000_000.0,
            "rope_scaling": null, "attention_bias": false, "attention_dropout": 0.0,
            "sliding_window": null, "use_sliding_window": false, "max_window_layers": self.layers,
            "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true,
            "initializer_range": 0.02, "bos_token_id": 151_643, "eos_token_id": 151_645
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Init {
    Random,
    Ones,
}

/// Amplitude of the uniform weights (standard deviation ≈ 0.023, like a freshly initialised model),
/// small enough that 36 random layers stay finite in bf16.
const AMPLITUDE: f32 = 0.04;
const BF16_ONE: u16 = 0x3F80;

/// Write a checkpoint of `shape` into `dir` (created if missing). `tokenizer_dir` holds the Qwen3
/// `tokenizer.json` and `tokenizer_config.json` (scripts/fetch-models.sh puts them in
/// `models/qwen3-tokenizer`). The same seed writes the same bytes.
pub fn write_random_qwen3(dir: &Path, shape: &Qwen3Shape, tokenizer_dir: &Path, seed: u64) -> anyhow::Result<PathBuf> {
    fs_err::create_dir_all(dir)?;
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        let from = tokenizer_dir.join(name);
        if !from.is_file() {
            bail!("{} is missing (run scripts/fetch-models.sh)", from.display());
        }
        fs_err::copy(&from, dir.join(name))?;
    }
    fs_err::write(dir.join("config.json"), serde_json::to_vec_pretty(&shape.config_json())?)?;

    let tensors = shape.tensors();
    let specs =
        tensors.iter().map(|(name, dims, _)| TensorSpec::new(name.clone(), Float::Bf16, dims.clone())).collect();
    let path = dir.join("model.safetensors");
    let mut out = SafetensorsWriter::create(&path, specs)?;
    for (index, (name, dims, init)) in tensors.iter().enumerate() {
        let count = dims.iter().product::<usize>();
        let data = match init {
            Init::Ones => BF16_ONE.to_le_bytes().repeat(count),
            Init::Random => random_bf16(count, seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        };
        out.write(name, &data)?;
    }
    out.finish()?;
    Ok(path)
}

/// `count` uniform bf16 values in ±AMPLITUDE, generated on every core (each slice of 1M values has
/// its own stream, so the result does not depend on the number of threads).
fn random_bf16(count: usize, seed: u64) -> Vec<u8> {
    const SLICE: usize = 1 << 20;
    let mut data = vec![0u8; count * 2];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slices: Vec<(usize, &mut [u8])> = data.chunks_mut(SLICE * 2).enumerate().collect();
    let per_thread = slices.len().div_ceil(threads).max(1);
    let mut groups: Vec<Vec<(usize, &mut [u8])>> = Vec::new();
    let mut slices = slices.into_iter().peekable();
    while slices.peek().is_some() {
        groups.push(slices.by_ref().take(per_thread).collect());
    }
    std::thread::scope(|scope| {
        for group in groups {
            scope.spawn(move || {
                for (i, slice) in group {
                    fill_uniform(slice, seed.wrapping_add(i as u64));
                }
            });
        }
    });
    data
}

fn fill_uniform(out: &mut [u8], seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for pair in out.chunks_exact_mut(2) {
        // xorshift64*: fast, and plenty random for weights nobody reads.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        let unit = bits as f32 / (1u64 << 24) as f32 - 0.5;
        pair.copy_from_slice(&bf16_bits(unit * 2.0 * AMPLITUDE).to_le_bytes());
    }
}

/// Round-to-nearest-even f32 → bf16 (the values here are finite).
fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen3_4b_costs_match_the_published_model() {
        let s = Qwen3Shape::QWEN3_4B;
        // 36 layers x 2 (K,V) x 8 heads x 128 dims x 2 bytes = 144 KiB per token.
        assert_eq!(s.kv_bytes_per_token(), 144 * 1024);
        // About 4.0B parameters with the tied 389M-parameter embedding.
        let total = s.linear_params() + (s.vocab * s.hidden) as u64;
        assert!((3_900_000_000..4_100_000_000).contains(&total), "{total}");
        // A 256K prefill is about 22 PFLOP, over 90% of it attention.
        let flops = s.prefill_flops(262_144);
        assert!((21.5e15..22.5e15).contains(&flops), "{flops:e}");
        assert!(flops - 2.0 * 262_144.0 * s.linear_params() as f64 > 0.9 * flops);
    }

    #[test]
    fn bf16_rounding_keeps_exact_values_and_rounds_to_nearest() {
        assert_eq!(bf16_bits(1.0), BF16_ONE);
        assert_eq!(bf16_bits(-2.0), 0xC000);
        // 1 + 2^-8 lies halfway between two bf16 values and rounds to the even one (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), BF16_ONE);
        assert_eq!(bf16_bits(1.0 + 3.0 / 512.0), BF16_ONE + 1);
    }

    #[test]
    fn random_weights_are_bounded_varied_and_repeatable() {
        let a = random_bf16(3 << 20, 7);
        assert_eq!(a, random_bf16(3 << 20, 7));
        assert_ne!(a, random_bf16(3 << 20, 8));
        let values: Vec<f32> =
            a.chunks_exact(2).map(|p| f32::from_bits(u32::from(u16::from_le_bytes([p[0], p[1]])) << 16)).collect();
        assert!(values.iter().all(|v| v.abs() <= AMPLITUDE * 1.01));
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / values.len() as f32;
        assert!(mean.abs() < 1e-3 && (var.sqrt() - AMPLITUDE / 3f32.sqrt()).abs() < 1e-3, "{mean} {var}");
    }
}
