//! The full-context pipeline: the whole document, numbered into segments, in
//! one prompt; the model answers one claim per line and cites segment ids,
//! constrained so that it can cite only ids that exist.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{DocInput, Pipeline, PipelineOutput, TaskSpec};
use crate::cite;
use crate::domain::{PipelineKind, Task, Timings, Usage};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::llm::{Engine, GenRequest};

/// The one line a question may be answered with when the document does not say.
pub const REFUSAL: &str = "The document does not say.";

const SYSTEM: &str = "You are docent, a careful analyst of documents. You answer only from the \
document you are given. The document comes as numbered segments, one per line, each ending \
with its marker, such as [S12]. You answer in lines. Every line is one short sentence that says \
only what a segment of the document says, ending with that segment's marker (up to three \
markers when it combines segments). An example of the format, from an answer about another \
document:\n\
The agreement starts on 1 May 2020 and lasts two years. [S3]\n\
Either party may end it with 30 days' written notice. [S7][S8]";

pub struct FullContext {
    engine: Arc<dyn Engine>,
    max_answer_tokens: usize,
}

impl FullContext {
    pub fn new(engine: Arc<dyn Engine>, max_answer_tokens: usize) -> Self {
        Self { engine, max_answer_tokens }
    }

    fn request(&self, numbered: &str, labels: &[u32], task: &TaskSpec) -> GenRequest {
        let (instruction, sentences, refusal) = match (task.task, task.question.as_deref()) {
            (Task::Question, Some(q)) => (
                format!(
                    "Question: {q}\nAnswer it from the document in one to three lines, each \
                     ending with the marker of the segment that states it. If the document does \
                     not answer it, write exactly: {REFUSAL}"
                ),
                3,
                Some(REFUSAL),
            ),
            _ => (
                "Summarize the document in three to five lines: its purpose, its main points and \
                 its conclusion. Each line ends with the marker of the segment it restates."
                    .to_owned(),
                5,
                None,
            ),
        };
        GenRequest {
            system: SYSTEM.to_owned(),
            user: format!("<document>\n{numbered}</document>\n\n{instruction}"),
            regex: Some(cite::answer_regex(labels, sentences, refusal)),
            max_tokens: self.max_answer_tokens,
        }
    }
}

#[async_trait]
impl Pipeline for FullContext {
    fn kind(&self) -> PipelineKind {
        PipelineKind::Full
    }

    async fn run(&self, doc: DocInput<'_>, task: &TaskSpec) -> AppResult<PipelineOutput> {
        let started = Instant::now();
        let segments = cite::segment(doc.text, doc.pages);
        let labels = cite::labels(segments.len());
        let request = self.request(&cite::numbered_text(doc.text, &segments, &labels), &labels, task);

        let prompt_tokens = self.engine.count_prompt_tokens(&request).await.map_err(|e| {
            AppError::new(ErrorCode::EngineFailed, "the model could not tokenize the prompt").with_cause(e)
        })?;
        let limit = self.engine.context_limit();
        if prompt_tokens + request.max_tokens > limit {
            return Err(AppError::new(
                ErrorCode::DocumentTooLong,
                format!(
                    "the document and prompt take {prompt_tokens} tokens and the answer up to {}; \
                     model {} accepts {limit} in all",
                    request.max_tokens,
                    self.engine.model_name()
                ),
            ));
        }

        let out = self
            .engine
            .generate(request)
            .await
            .map_err(|e| AppError::new(ErrorCode::EngineFailed, "the model failed to answer").with_cause(e))?;
        tracing::debug!(output = %out.text, completion_tokens = out.completion_tokens, "model output");
        let parsed = cite::labels_to_segments(cite::parse_answer(&out.text), &labels, &segments);
        if parsed.is_empty() {
            return Err(AppError::new(ErrorCode::EngineFailed, "the model returned an empty answer"));
        }
        let (answer, citations) = cite::resolve(doc.text, &segments, &parsed);
        let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(PipelineOutput {
            model: self.engine.model_name().to_owned(),
            answer,
            citations,
            usage: Usage { prompt_tokens: out.prompt_tokens, completion_tokens: out.completion_tokens },
            timings: Timings { prefill_ms: out.prefill_ms, decode_ms: out.decode_ms, total_ms },
        })
    }
}
