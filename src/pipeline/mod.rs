//! Pipelines turn a document and a task into an answer with cited spans.
//! Every pipeline returns the same `PipelineOutput`, so views and comparisons
//! treat them alike.

mod full;

pub use full::{FullContext, REFUSAL};

use async_trait::async_trait;

use crate::domain::{Answer, Citation, PageSpan, PipelineKind, Task, Timings, Usage};
use crate::error::AppResult;

/// The document as a pipeline reads it.
pub struct DocInput<'a> {
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
}

#[async_trait]
pub trait Pipeline: Send + Sync {
    fn kind(&self) -> PipelineKind;
    async fn run(&self, doc: DocInput<'_>, task: &TaskSpec) -> AppResult<PipelineOutput>;
}
