//! Language-model engines behind one trait, so pipelines do not depend on
//! mistral.rs (and tests can substitute a scripted engine).

pub mod baichuan;
pub mod checkpoint;
pub mod gbnf;
mod mistral;
mod openai;
pub mod sentencepiece;
pub mod tensors;
mod weights;

pub use mistral::{DTypeChoice, MistralEngine, MistralSettings, TimedCompletion, DEFAULT_KV_CACHE_TOKENS};
pub use openai::{ConstraintDialect, OpenAiEngine, OpenAiSettings};

use async_trait::async_trait;

/// One chat turn for the model: a system instruction, a user message, and
/// optionally a regular expression the output must match (constrained decoding).
#[derive(Debug, Clone)]
pub struct GenRequest {
    pub system: String,
    pub user: String,
    pub regex: Option<String>,
    pub max_tokens: usize,
}

#[derive(Debug, Clone, Default)]
pub struct GenOutput {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub prefill_ms: u64,
    pub decode_ms: u64,
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
