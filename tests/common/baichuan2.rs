//! A forward pass of Baichuan2-7B's *original* layout (fused `W_pack`, NormHead), written from
//! Baichuan2's modelling code, to check conversions of the tiny checkpoints against.

use std::path::PathBuf;

pub use docent::models::checkpoint::baichuan2::TinyBaichuan2;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/baichuan2-tiny")
}

/// The SentencePiece model the tiny checkpoints use (tests/fixtures/baichuan2-tiny/README.md).
pub fn tokenizer_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(docent::models::checkpoint::baichuan2::TOKENIZER_FIXTURE)
}

/// How the reference reads the original tensors: faithfully, or with a deliberate mistake a
/// converter could make, to show the comparison would catch it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    Faithful,
    /// `W_pack`'s row blocks taken as (q, k, v) = blocks[order[0]], blocks[order[1]], blocks[order[2]].
    PackOrder([usize; 3]),
    /// The LM head used as stored, without NormHead's normalisation.
    RawHead,
}

pub trait Reference {
    /// Logits for the token after `ids`, computed as Baichuan2-7B's modelling code does
    /// (float32, rotary embeddings with rotate_half, causal softmax attention, SiLU MLP,
    /// RMSNorm, `F.linear(x, F.normalize(lm_head))`).
    fn reference_logits(&self, ids: &[u32], reading: Reading) -> Vec<f32>;
}

fn t<'a>(model: &'a TinyBaichuan2, name: &str) -> &'a [f32] {
    &model.tensors[name].1
}

impl Reference for TinyBaichuan2 {
    fn reference_logits(&self, ids: &[u32], reading: Reading) -> Vec<f32> {
        let (h, n) = (self.hidden, ids.len());
        let d = h / self.heads;
        let embed = t(self, "model.embed_tokens.weight");
        let mut x: Vec<Vec<f32>> =
            ids.iter().map(|&id| embed[id as usize * h..(id as usize + 1) * h].to_vec()).collect();
        let order = match reading {
            Reading::PackOrder(o) => o,
            _ => [0, 1, 2],
        };
        for l in 0..self.layers {
            let w = |name: &str| t(self, &format!("model.layers.{l}.{name}.weight"));
            let pack = w("self_attn.W_pack");
            let block = |i: usize| &pack[order[i] * h * h..(order[i] + 1) * h * h];
            let normed: Vec<Vec<f32>> = x.iter().map(|v| rms_norm(v, w("input_layernorm"), self.eps)).collect();
            let q: Vec<Vec<f32>> =
                normed.iter().enumerate().map(|(p, v)| rope(&linear(block(0), v), p, self.heads)).collect();
            let k: Vec<Vec<f32>> =
                normed.iter().enumerate().map(|(p, v)| rope(&linear(block(1), v), p, self.heads)).collect();
            let v: Vec<Vec<f32>> = normed.iter().map(|v| linear(block(2), v)).collect();
            for i in 0..n {
                let mut out = vec![0f32; h];
                for head in 0..self.heads {
                    let r = head * d..(head + 1) * d;
                    let scores: Vec<f32> =
                        (0..=i).map(|j| dot(&q[i][r.clone()], &k[j][r.clone()]) / (d as f32).sqrt()).collect();
                    let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f32 = exps.iter().sum();
                    for (j, e) in exps.iter().enumerate() {
                        for c in r.clone() {
                            out[c] += e / total * v[j][c];
                        }
                    }
                }
                let attn = linear(w("self_attn.o_proj"), &out);
                x[i].iter_mut().zip(attn).for_each(|(a, b)| *a += b);
                let normed = rms_norm(&x[i], w("post_attention_layernorm"), self.eps);
                let gate = linear(w("mlp.gate_proj"), &normed);
                let up = linear(w("mlp.up_proj"), &normed);
                let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
                let mlp = linear(w("mlp.down_proj"), &act);
                x[i].iter_mut().zip(mlp).for_each(|(a, b)| *a += b);
            }
        }
        let last = rms_norm(&x[n - 1], t(self, "model.norm.weight"), self.eps);
        t(self, "lm_head.weight")
            .chunks_exact(h)
            .map(|row| {
                let norm = if reading == Reading::RawHead { 1.0 } else { dot(row, row).sqrt().max(1e-12) };
                dot(row, &last) / norm
            })
            .collect()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `weight` is `[out, in]`, row-major, as nn.Linear stores it.
fn linear(weight: &[f32], x: &[f32]) -> Vec<f32> {
    weight.chunks_exact(x.len()).map(|row| dot(row, x)).collect()
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f64) -> Vec<f32> {
    let mean = x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / x.len() as f64;
    let scale = (1.0 / (mean + eps).sqrt()) as f32;
    x.iter().zip(weight).map(|(v, w)| w * v * scale).collect()
}

/// Rotary embedding of each head of `x` at `position`, base 10000, halves rotated
/// (`q * cos + rotate_half(q) * sin`).
fn rope(x: &[f32], position: usize, heads: usize) -> Vec<f32> {
    let d = x.len() / heads;
    let half = d / 2;
    let mut out = vec![0f32; x.len()];
    for head in 0..heads {
        let base = head * d;
        for i in 0..half {
            let inv_freq = 1.0 / 10_000f64.powf((2 * i) as f64 / d as f64);
            let angle = position as f64 * inv_freq;
            let (sin, cos) = (angle.sin() as f32, angle.cos() as f32);
            let (a, b) = (x[base + i], x[base + i + half]);
            out[base + i] = a * cos - b * sin;
            out[base + i + half] = b * cos + a * sin;
        }
    }
    out
}
