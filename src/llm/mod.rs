//! Language-model engines behind one trait, so pipelines do not depend on
//! mistral.rs (and tests can substitute a scripted engine).

pub mod gbnf;
mod llama;
mod mistral;
mod openai;

pub use llama::{cpu_threads, LlamaEngine};
pub use mistral::{prefill_steps, MistralEngine, TimedCompletion, DEFAULT_KV_CACHE_TOKENS};
pub use openai::{ConstraintDialect, OpenAiEngine, OpenAiSettings};

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

/// One chat turn for the model: a system instruction, a user message, and
/// optionally a regular expression the output must match (constrained decoding).
#[derive(Debug, Clone, Default)]
pub struct GenRequest {
    pub system: String,
    pub user: String,
    pub regex: Option<String>,
    pub max_tokens: usize,
    /// This request continues one just made on the same prompt prefix (a question's second
    /// step): an engine whose cache of earlier prompts is off reuses that prefix all the same,
    /// so the pair costs one prefill, as it does with the cache on.
    pub reuse_prefix: bool,
}

/// What an engine reports while it answers: how far the prompt's prefill has come, then the
/// answer's text as it is decoded. Engines that cannot tell (mistral.rs, remote servers) report
/// nothing until the answer is complete.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// `done` of the prompt's `total` tokens are in the model's cache (computed, or kept from an
    /// earlier request on the same document).
    Prefill { done: usize, total: usize },
    /// The next piece of the model's answer as written (citation markers included).
    Text { text: String },
}

pub type ProgressSender = tokio::sync::mpsc::UnboundedSender<Progress>;

tokio::task_local! {
    /// Where an engine call made in this task reports its progress, when a client follows it (a
    /// streamed analysis). Task-local, so the service and the pipelines pass it on without
    /// knowing of it.
    pub static PROGRESS: ProgressSender;
}

/// The progress channel of the task this runs in, if it has one.
pub fn progress_sender() -> Option<ProgressSender> {
    PROGRESS.try_with(Clone::clone).ok()
}

#[derive(Debug, Clone, Default)]
pub struct GenOutput {
    pub text: String,
    pub prompt_tokens: usize,
    /// Of `prompt_tokens`, those whose keys and values an earlier request left in the cache;
    /// `None` when the engine does not say.
    pub cached_tokens: Option<usize>,
    pub completion_tokens: usize,
    pub prefill_ms: u64,
    pub decode_ms: u64,
}

impl GenOutput {
    /// The tokens, as an analysis reports them.
    pub fn usage(&self) -> crate::domain::Usage {
        crate::domain::Usage {
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            completion_tokens: self.completion_tokens,
        }
    }

    /// The engine's times, with the whole run's `total_ms`, as an analysis reports them.
    pub fn timings(&self, total_ms: u64) -> crate::domain::Timings {
        crate::domain::Timings { prefill_ms: self.prefill_ms, decode_ms: self.decode_ms, total_ms }
    }

    /// Add `other`'s tokens and times (not its text): the cost of several requests as one.
    pub fn add_cost(&mut self, other: &GenOutput) {
        self.prompt_tokens += other.prompt_tokens;
        if let Some(n) = other.cached_tokens {
            *self.cached_tokens.get_or_insert(0) += n;
        }
        self.completion_tokens += other.completion_tokens;
        self.prefill_ms += other.prefill_ms;
        self.decode_ms += other.decode_ms;
    }
}

#[async_trait]
pub trait Engine: Send + Sync {
    /// A name for the model, shown with every analysis.
    fn model_name(&self) -> &str;
    /// Tokens the model accepts in one sequence (prompt plus output).
    fn context_limit(&self) -> usize;
    /// Tokens of `text` alone, with the model's tokenizer.
    async fn count_tokens(&self, text: &str) -> anyhow::Result<usize>;
    /// Tokens of the full prompt `req` would send, chat template included.
    async fn count_prompt_tokens(&self, req: &GenRequest) -> anyhow::Result<usize>;
    async fn generate(&self, req: GenRequest) -> anyhow::Result<GenOutput>;
}

/// Activation dtype. `Auto` lets mistral.rs choose (BF16/F16 on GPU, F16 on
/// CPU); on CPU, F32 is about 5x faster because candle's F16 CPU matmuls are
/// not vectorised, so `Auto` on CPU resolves to F32 here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DTypeChoice {
    Auto,
    F32,
    F16,
    Bf16,
}

/// What PagedAttention stores keys and values as on a GPU: the model's dtype, or FP8 (E4M3, half
/// the bytes: twice the tokens in the same memory, half the bytes read per decoded token; values are
/// rounded to 3 mantissa bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KvCacheDtype {
    #[default]
    Auto,
    F8e4m3,
}

/// Which in-process library runs a local model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// mistral.rs: safetensors directories and GGUF files, on GPU (PagedAttention) or CPU.
    MistralRs,
    /// llama.cpp: GGUF files on CPU, several times faster there (README "CPU speed").
    LlamaCpp,
}

#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub runtime: Runtime,
    /// A `.gguf` file, or a directory with `config.json` and safetensors weights.
    pub model: PathBuf,
    pub dtype: DTypeChoice,
    /// Cap on prompt plus output tokens; the model's own limit when `None`.
    pub max_context: Option<usize>,
    pub force_cpu: bool,
    pub max_num_seqs: usize,
    /// Tokens of key/value cache PagedAttention reserves on a GPU, shared by all running
    /// sequences; it also caps one sequence's context there.
    pub kv_cache_tokens: usize,
    pub kv_cache_dtype: KvCacheDtype,
    /// Prompt tokens per prefill pass on a GPU; `None`: the engine's default (4,096 with
    /// FlashAttention-3, else a whole prompt in one pass).
    pub prefill_chunk_tokens: Option<usize>,
    /// Prompt tokens one engine step prefills before running sequences decode again (interleaved
    /// prefill); `None`: one chunk.
    pub prefill_step_tokens: Option<usize>,
    /// Keep the KV blocks of recent prompts for reuse (a second question on the same document
    /// skips its prefill).
    pub prefix_cache: bool,
    /// GPUs the model is split over by tensor parallelism (NCCL); 1 runs it on one device.
    pub tensor_parallel: usize,
}

/// A local model's name as analyses show it: its file or directory name, without `.gguf`.
fn model_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Load a local model with the runtime its settings name.
pub async fn load_local(settings: &LocalSettings) -> anyhow::Result<Arc<dyn Engine>> {
    Ok(match settings.runtime {
        Runtime::MistralRs => Arc::new(MistralEngine::load(settings).await?),
        Runtime::LlamaCpp => Arc::new(LlamaEngine::load(settings).await?),
    })
}
