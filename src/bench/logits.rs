//! `docent bench logits`: the next-token logits the full-context engine gives raw-token prompts,
//! for a check against another kernel or Hugging Face transformers on the same checkpoint
//! (`benches/logits_check.py` compares them).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::llm::{DTypeChoice, LocalSettings, MistralEngine, Runtime};
use crate::models::checkpoint::Qwen3Shape;

#[derive(Debug, Clone, clap::Args)]
pub struct LogitsArgs {
    /// Safetensors checkpoint directory of a Qwen3 model (`docent checkpoint` writes one).
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt lengths in tokens; each prompt is `docent bench gpu`'s for that length.
    #[arg(long, value_delimiter = ',', default_value = "512,4096")]
    pub lengths: Vec<usize>,
    /// Prompt tokens per prefill pass (default: the engine's; 4,096 with FlashAttention-3, so a
    /// prompt up to that runs in one pass).
    #[arg(long)]
    pub prefill_chunk_tokens: Option<usize>,
    /// Greedy tokens to decode after each prompt (end-of-text banned); with more than 0, each
    /// object also holds `decode`: per generated token, the 256 most likely tokens as
    /// `[id, log-probability]` pairs, the generated one first. These come through the decode
    /// attention kernel, which next-token logits (a prefill) never touch.
    #[arg(long, default_value_t = 0)]
    pub decode_tokens: usize,
    /// Where to write one JSON object per prompt: `tokens`, `ids`, `logits` and maybe `decode`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Log-probabilities kept per decoded token.
const DECODE_TOP: usize = 256;

pub async fn run(args: &LogitsArgs) -> anyhow::Result<()> {
    let shape = Qwen3Shape::from_config(&args.model.join("config.json"))?;
    let Some(&longest) = args.lengths.iter().max() else { bail!("--lengths is empty") };
    let settings = LocalSettings {
        runtime: Runtime::MistralRs,
        model: args.model.clone(),
        dtype: DTypeChoice::Auto,
        max_context: None,
        force_cpu: false,
        max_num_seqs: 1,
        kv_cache_tokens: longest + args.decode_tokens + 1024,
        kv_cache_dtype: crate::llm::KvCacheDtype::Auto,
        prefill_chunk_tokens: args.prefill_chunk_tokens,
        prefill_step_tokens: None,
        prefix_cache: false,
        tensor_parallel: 1,
    };
    let engine = MistralEngine::load(&settings).await.context("loading the model into mistral.rs")?;
    let mut out = std::io::BufWriter::new(fs_err::File::create(&args.out)?);
    for &n in &args.lengths {
        let ids = super::gpu::prompt_ids(n, n as u64, shape.vocab);
        let logits = engine.next_token_logits(ids.clone()).await?;
        if logits.len() != shape.vocab || logits.iter().any(|x| !x.is_finite()) {
            bail!("{n}-token prompt: {} logits, not {} finite ones", logits.len(), shape.vocab);
        }
        let mut row = serde_json::json!({ "tokens": n, "ids": ids, "logits": logits });
        if args.decode_tokens > 0 {
            let steps = engine.decode_logprobs(ids, args.decode_tokens, DECODE_TOP).await?;
            if steps.len() != args.decode_tokens || steps.iter().any(|s| s.is_empty() || s.iter().any(|(_, lp)| !lp.is_finite())) {
                bail!("{n}-token prompt: {} decode steps with log-probabilities, not {}", steps.len(), args.decode_tokens);
            }
            if let Some(fields) = row.as_object_mut() {
                fields.insert("decode".to_owned(), serde_json::json!(steps));
            }
        }
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
        eprintln!("{n} tokens: logits written");
    }
    out.flush()?;
    Ok(())
}
