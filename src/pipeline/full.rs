//! The full-context pipeline: the whole document, numbered into segments, in
//! one prompt; the model first points at the segments that hold the answer, then writes each
//! claim with its segment quoted before it, constrained so that it can cite only ids that exist.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::answer;
use super::prompt::{self, Step};
use super::{DocInput, Pipeline, PipelineOutput, TaskSpec};
use crate::cite;
use crate::domain::PipelineKind;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::llm::Engine;

pub struct FullContext {
    engine: Arc<dyn Engine>,
    max_answer_tokens: usize,
}

impl FullContext {
    pub fn new(engine: Arc<dyn Engine>, max_answer_tokens: usize) -> Self {
        Self { engine, max_answer_tokens }
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
        let numbered = cite::numbered_text(doc.text, &segments, &labels);
        let step = Step::Task(task);
        let request = prompt::request(&numbered, &labels, &step, self.max_answer_tokens);

        let prompt_tokens = self.engine.count_prompt_tokens(&request).await.map_err(|e| {
            AppError::new(ErrorCode::EngineFailed, "the model could not tokenize the prompt").with_cause(e)
        })?;
        let limit = self.engine.context_limit();
        let answer_tokens = request.max_tokens + prompt::reserve(&step);
        if prompt_tokens + answer_tokens > limit {
            return Err(AppError::new(
                ErrorCode::DocumentTooLong,
                format!(
                    "the document and prompt take {prompt_tokens} tokens and the answer up to {}; \
                     model {} accepts {limit} in all",
                    answer_tokens,
                    self.engine.model_name()
                ),
            ));
        }

        let failed =
            |e: anyhow::Error| AppError::new(ErrorCode::EngineFailed, "the model failed to answer").with_cause(e);
        let shown = answer::Shown { text: doc.text, segments: &segments, labels: &labels, numbered: &numbered };
        let (parsed, outputs) = if step.question().is_some() {
            answer::ask(&*self.engine, &shown, &step, request).await
        } else {
            answer::summarize(&*self.engine, &shown, &step, request, self.max_answer_tokens).await
        }
        .map_err(failed)?;
        let out = answer::combined(&outputs);
        if parsed.is_empty() {
            return Err(AppError::new(ErrorCode::EngineFailed, "the model returned an empty answer"));
        }
        let (answer, citations) = cite::resolve(doc.text, &segments, &parsed);
        let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(PipelineOutput {
            model: self.engine.model_name().to_owned(),
            answer,
            citations,
            usage: out.usage(),
            timings: out.timings(total_ms),
            retrieval: None,
        })
    }
}
