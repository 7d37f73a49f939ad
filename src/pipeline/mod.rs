//! Pipelines turn a document and a task into an answer with cited spans.
//! Every pipeline returns the same `PipelineOutput`, so views and comparisons
//! treat them alike.

mod answer;
pub mod chunk;
mod chunked;
mod full;
mod prompt;

pub use chunked::Chunked;
pub use full::FullContext;
pub use prompt::REFUSAL;

use async_trait::async_trait;

use crate::domain::{Answer, Citation, PageSpan, PipelineKind, Retrieval, Task, Timings, Usage};
use crate::error::AppResult;

/// The document as a pipeline reads it.
pub struct DocInput<'a> {
    /// The stored document's id (the chunked pipeline finds its chunks by it).
    pub id: &'a str,
    pub text: &'a str,
    pub pages: &'a [PageSpan],
}

#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub task: Task,
    pub question: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PipelineOutput {
    pub model: String,
    pub answer: Answer,
    pub citations: Vec<Citation>,
    pub usage: Usage,
    pub timings: Timings,
    /// What the model read, for pipelines that do not read everything.
    pub retrieval: Option<Retrieval>,
}

#[async_trait]
pub trait Pipeline: Send + Sync {
    fn kind(&self) -> PipelineKind;
    async fn run(&self, doc: DocInput<'_>, task: &TaskSpec) -> AppResult<PipelineOutput>;
}
