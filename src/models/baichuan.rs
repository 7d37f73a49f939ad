//! Baichuan2-7B (Base or Chat) converted into a Llama checkpoint that mistral.rs loads with its
//! Llama loader. Baichuan2-7B is Llama with two differences: attention's q, k and v projections
//! are one fused `W_pack` (stacked by rows, in that order), and the LM head is a `NormHead` whose
//! rows are L2-normalised at inference. Both are undone here once, on disk. Tensors stream one at
//! a time, so memory stays near the largest tensor (the 1 GB head), not the 15 GB model.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;

use super::sentencepiece::SentencePieceModel;
use super::tensors::{Float, SafetensorsWriter, TensorSpec};
use super::weights::Weights;

/// Why a checkpoint is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0} is not a Baichuan checkpoint (config.json has model_type {1:?})")]
    NotBaichuan(PathBuf, String),
    #[error(
        "this is Baichuan2-13B ({layers} layers, hidden size {hidden}), which uses ALiBi position biases \
         instead of rotary embeddings; mistral.rs's Llama has no ALiBi, so only Baichuan2-7B converts"
    )]
    Alibi13B { layers: usize, hidden: usize },
    #[error(
        "a vocabulary of 64,000 is first-generation Baichuan-7B, which has no NormHead; this converts Baichuan2-7B"
    )]
    FirstGeneration,
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    #[error("unknown tensors, not part of Baichuan2-7B: {}", .0.join(", "))]
    UnknownTensors(Vec<String>),
    #[error("tensor {name} is missing")]
    MissingTensor { name: String },
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    WrongShape { name: String, found: Vec<usize>, expected: Vec<usize> },
}

/// The fields of a Baichuan2 `config.json` that fix the model.
#[derive(Debug, Clone, Deserialize)]
struct BaichuanConfig {
    #[serde(default)]
    model_type: String,
    #[serde(default)]
    architectures: Vec<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    vocab_size: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    eos_token_id: Option<u32>,
    #[serde(default)]
    pad_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-6
}

fn default_act() -> String {
    "silu".to_owned()
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct ChatTokens {
    #[serde(default = "user_token")]
    user_token_id: u32,
    #[serde(default = "assistant_token")]
    assistant_token_id: u32,
}

/// Baichuan2's user and assistant turn markers, `<reserved_106>` and `<reserved_107>`.
fn user_token() -> u32 {
    195
}

fn assistant_token() -> u32 {
    196
}

/// Baichuan2-7B's rotary base and trained context.
const ROPE_THETA: f64 = 10_000.0;
const CONTEXT: usize = 4096;

/// What a conversion wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Conversion {
    pub layers: usize,
    pub hidden: usize,
    pub vocab: usize,
    pub tensors: usize,
    pub bytes: u64,
    /// Source tensors deliberately not carried over (rotary caches).
    pub skipped: Vec<String>,
    /// Smallest and largest L2 norm of the LM head's rows before normalisation.
    pub head_row_norms: (f32, f32),
}

/// One step from source tensors to output tensors.
enum Step {
    Copy {
        from: String,
        to: String,
    },
    /// `W_pack` rows `[q; k; v]` into three projections.
    SplitPack {
        from: String,
        to: [String; 3],
    },
    /// The NormHead, written with unit-norm rows.
    NormaliseRows {
        from: String,
        to: String,
    },
}

/// Convert the Baichuan2-7B checkpoint in `src` into a Llama checkpoint in `dst`, which must not
/// exist yet (it appears whole or not at all).
pub fn convert_baichuan2(src: &Path, dst: &Path) -> anyhow::Result<Conversion> {
    if dst.exists() {
        bail!("{} already exists; pick a new directory", dst.display());
    }
    let config_path = src.join("config.json");
    let config: BaichuanConfig = serde_json::from_str(&fs_err::read_to_string(&config_path)?)
        .with_context(|| format!("reading {}", config_path.display()))?;
    check_config(src, &config)?;
    let chat: ChatTokens = match fs_err::read_to_string(src.join("generation_config.json")) {
        Ok(text) => serde_json::from_str(&text).context("reading generation_config.json")?,
        Err(_) => ChatTokens { user_token_id: user_token(), assistant_token_id: assistant_token() },
    };
    let sp =
        SentencePieceModel::parse(&fs_err::read(src.join("tokenizer.model"))?).context("reading tokenizer.model")?;
    if sp.pieces.len() > config.vocab_size {
        bail!(ConvertError::Unsupported(format!(
            "tokenizer.model has {} pieces for a vocabulary of {}",
            sp.pieces.len(),
            config.vocab_size
        )));
    }

    let weights = Weights::open(src)?;
    let (steps, specs, skipped) = plan(&config, &weights)?;

    let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let staging = tempfile::Builder::new().prefix(".baichuan2-convert-").tempdir_in(parent)?;
    let bytes = specs.iter().map(|s| s.bytes() as u64).sum();
    let tensors = specs.len();
    let mut out = SafetensorsWriter::create(&staging.path().join("model.safetensors"), specs)?;
    let mut head_row_norms = (f32::INFINITY, 0.0f32);
    for step in &steps {
        match step {
            Step::Copy { from, to } => out.write(to, &weights.read(from)?.1)?,
            Step::SplitPack { from, to } => {
                let (_, data) = weights.read(from)?;
                let third = data.len() / 3;
                for (name, part) in to.iter().zip(data.chunks_exact(third)) {
                    out.write(name, part)?;
                }
            }
            Step::NormaliseRows { from, to } => {
                let (dtype, mut data) = weights.read(from)?;
                let (lo, hi) = normalise_rows(dtype, &mut data, config.hidden_size);
                head_row_norms = (lo, hi);
                out.write(to, &data)?;
            }
        }
    }
    out.finish()?;
    write_side_files(staging.path(), &config, chat, &sp, &weights)?;
    fs_err::copy(src.join("tokenizer.model"), staging.path().join("tokenizer.model"))?;
    fs_err::rename(staging.keep(), dst)?;
    Ok(Conversion {
        layers: config.num_hidden_layers,
        hidden: config.hidden_size,
        vocab: config.vocab_size,
        tensors,
        bytes,
        skipped,
        head_row_norms,
    })
}

fn check_config(src: &Path, c: &BaichuanConfig) -> anyhow::Result<()> {
    let baichuan = c.model_type == "baichuan" || c.architectures.iter().any(|a| a.starts_with("Baichuan"));
    if !baichuan {
        bail!(ConvertError::NotBaichuan(src.to_owned(), c.model_type.clone()));
    }
    // Baichuan2-13B is the only other Baichuan2 size; nothing in its config names ALiBi.
    if c.hidden_size == 5120 || c.num_hidden_layers == 40 {
        bail!(ConvertError::Alibi13B { layers: c.num_hidden_layers, hidden: c.hidden_size });
    }
    if c.vocab_size == 64_000 {
        bail!(ConvertError::FirstGeneration);
    }
    if c.hidden_act != "silu" {
        bail!(ConvertError::Unsupported(format!("activation {:?}", c.hidden_act)));
    }
    if c.num_key_value_heads.is_some_and(|kv| kv != c.num_attention_heads) {
        bail!(ConvertError::Unsupported("grouped key/value heads".into()));
    }
    if c.tie_word_embeddings {
        bail!(ConvertError::Unsupported("tied embeddings (a NormHead is never tied)".into()));
    }
    if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        bail!(ConvertError::Unsupported(format!("{} heads for hidden size {}", c.num_attention_heads, c.hidden_size)));
    }
    Ok(())
}

/// Match the source tensors against Baichuan2-7B's, and lay out the Llama file.
fn plan(c: &BaichuanConfig, weights: &Weights) -> anyhow::Result<(Vec<Step>, Vec<TensorSpec>, Vec<String>)> {
    let (h, i, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
    let mut steps = Vec::new();
    let mut expected: Vec<(String, Vec<usize>)> = Vec::new();
    let mut specs = Vec::new();
    let mut want = |from: String, shape: Vec<usize>| {
        expected.push((from.clone(), shape));
        from
    };
    let copy = |from: String, to: &str| Step::Copy { from, to: to.to_owned() };
    steps.push(copy(want("model.embed_tokens.weight".into(), vec![v, h]), "model.embed_tokens.weight"));
    for l in 0..c.num_hidden_layers {
        let p = |name: &str| format!("model.layers.{l}.{name}.weight");
        steps.push(copy(want(p("input_layernorm"), vec![h]), &p("input_layernorm")));
        steps.push(Step::SplitPack {
            from: want(p("self_attn.W_pack"), vec![3 * h, h]),
            to: [p("self_attn.q_proj"), p("self_attn.k_proj"), p("self_attn.v_proj")],
        });
        steps.push(copy(want(p("self_attn.o_proj"), vec![h, h]), &p("self_attn.o_proj")));
        steps.push(copy(want(p("post_attention_layernorm"), vec![h]), &p("post_attention_layernorm")));
        steps.push(copy(want(p("mlp.gate_proj"), vec![i, h]), &p("mlp.gate_proj")));
        steps.push(copy(want(p("mlp.up_proj"), vec![i, h]), &p("mlp.up_proj")));
        steps.push(copy(want(p("mlp.down_proj"), vec![h, i]), &p("mlp.down_proj")));
    }
    steps.push(copy(want("model.norm.weight".into(), vec![h]), "model.norm.weight"));
    steps.push(Step::NormaliseRows { from: want("lm_head.weight".into(), vec![v, h]), to: "lm_head.weight".into() });

    for (name, shape) in &expected {
        let Some((_, found)) = weights.info(name) else { bail!(ConvertError::MissingTensor { name: name.clone() }) };
        if found != shape.as_slice() {
            bail!(ConvertError::WrongShape { name: name.clone(), found: found.to_vec(), expected: shape.clone() });
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let (skipped, unknown): (Vec<String>, Vec<String>) = weights
        .names()
        .filter(|n| !known.contains(n.as_str()))
        .cloned()
        .partition(|n| n.ends_with("rotary_emb.inv_freq"));
    if !unknown.is_empty() {
        bail!(ConvertError::UnknownTensors(unknown));
    }

    for step in &steps {
        let (from, to): (&str, Vec<&String>) = match step {
            Step::Copy { from, to } | Step::NormaliseRows { from, to } => (from, vec![to]),
            Step::SplitPack { from, to } => (from, to.iter().collect()),
        };
        let (dtype, shape) = weights.info(from).context("planned tensor vanished")?;
        for name in to {
            let mut shape = shape.to_vec();
            if let Some(rows) = shape.first_mut() {
                *rows /= if matches!(step, Step::SplitPack { .. }) { 3 } else { 1 };
            }
            specs.push(TensorSpec::new(name.clone(), dtype, shape));
        }
    }
    Ok((steps, specs, skipped))
}

/// Divide each row of a `[rows, width]` matrix by its L2 norm, as Baichuan2's NormHead does at
/// inference (`F.normalize`, eps 1e-12). Returns the smallest and largest norm seen.
fn normalise_rows(dtype: Float, data: &mut [u8], width: usize) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, 0.0f32);
    let mut encoded = Vec::with_capacity(width * dtype.size());
    for row in data.chunks_exact_mut(width * dtype.size()) {
        let values = dtype.decode(row);
        let norm = values.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt() as f32;
        lo = lo.min(norm);
        hi = hi.max(norm);
        let scale = 1.0 / norm.max(1e-12);
        let scaled: Vec<f32> = values.iter().map(|x| x * scale).collect();
        encoded.clear();
        dtype.encode(&scaled, &mut encoded);
        row.copy_from_slice(&encoded);
    }
    (lo, hi)
}

/// config.json for mistral.rs's Llama loader, and the tokenizer files with Baichuan2's chat format.
fn write_side_files(
    dir: &Path,
    c: &BaichuanConfig,
    chat: ChatTokens,
    sp: &SentencePieceModel,
    weights: &Weights,
) -> anyhow::Result<()> {
    let piece = |id: u32| {
        sp.pieces
            .get(id as usize)
            .map(|p| p.text.clone())
            .ok_or_else(|| ConvertError::Unsupported(format!("token id {id} is outside the tokenizer")))
    };
    let (bos, eos, pad) = (c.bos_token_id.unwrap_or(1), c.eos_token_id.unwrap_or(2), c.pad_token_id.unwrap_or(0));
    let dtype = weights.info("lm_head.weight").map_or(Float::Bf16, |(d, _)| d);
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_attention_heads, "hidden_act": "silu",
        "max_position_embeddings": CONTEXT, "rms_norm_eps": c.rms_norm_eps, "rope_theta": ROPE_THETA,
        "rope_scaling": null, "tie_word_embeddings": false, "vocab_size": c.vocab_size,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad, "torch_dtype": dtype.torch_name(),
    });
    fs_err::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    fs_err::write(dir.join("tokenizer.json"), serde_json::to_vec(&sp.to_tokenizer_json()?)?)?;
    let (user, assistant, eos_text) = (piece(chat.user_token_id)?, piece(chat.assistant_token_id)?, piece(eos)?);
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": CONTEXT,
        "add_bos_token": false, "add_eos_token": false, "clean_up_tokenization_spaces": false,
        "bos_token": piece(bos)?, "eos_token": eos_text, "unk_token": piece(0)?, "pad_token": piece(pad)?,
        "chat_template": chat_template(&user, &assistant, &eos_text),
    });
    fs_err::write(dir.join("tokenizer_config.json"), serde_json::to_vec_pretty(&tokenizer_config)?)?;
    let generation = json!({
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        "user_token_id": chat.user_token_id, "assistant_token_id": chat.assistant_token_id,
    });
    fs_err::write(dir.join("generation_config.json"), serde_json::to_vec_pretty(&generation)?)?;
    Ok(())
}

/// Baichuan2's chat format (`build_chat_input`): a system text as is, each user turn after the
/// user token, each assistant turn after the assistant token and closed by EOS; generation
/// starts after an assistant token.
fn chat_template(user: &str, assistant: &str, eos: &str) -> String {
    format!(
        "{{% for message in messages %}}{{% if message['role'] == 'user' %}}{{{{ '{user}' + message['content'] }}}}\
         {{% elif message['role'] == 'assistant' %}}{{{{ '{assistant}' + message['content'] + '{eos}' }}}}\
         {{% else %}}{{{{ message['content'] }}}}{{% endif %}}{{% endfor %}}\
         {{% if add_generation_prompt %}}{{{{ '{assistant}' }}}}{{% endif %}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_rows_have_unit_length_and_report_the_old_norms() {
        let mut data = Vec::new();
        Float::F32.encode(&[3.0, 4.0, 0.0, 0.5], &mut data);
        let (lo, hi) = normalise_rows(Float::F32, &mut data, 2);
        assert_eq!((lo, hi), (0.5, 5.0));
        assert_eq!(Float::F32.decode(&data), [0.6, 0.8, 0.0, 1.0]);
    }

    #[test]
    fn the_chat_template_is_baichuan2s_format() {
        let t = chat_template("<reserved_106>", "<reserved_107>", "</s>");
        assert!(t.contains("'<reserved_106>' + message['content']"), "{t}");
        assert!(t.ends_with("{% if add_generation_prompt %}{{ '<reserved_107>' }}{% endif %}"), "{t}");
    }
}
