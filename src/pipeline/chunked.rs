//! The chunked-retrieval baseline: a short-context model (4K tokens, like Baichuan2-7B) reads
//! only what fits. A question gets the BM25 top-k chunks that fit the budget; a summary reads
//! every chunk by map-reduce: each window of chunks that fits is summarised with citations, and
//! the cited claims are summarised again until one call holds them all. Every final citation
//! points at a segment inside a chunk the model read, and is verified against the source.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::answer;
use super::prompt::{self, Step, REFUSAL};
use super::{DocInput, Pipeline, PipelineOutput, TaskSpec};
use crate::cite;
use crate::domain::{
    Answer, AnswerSentence, Chunk, PipelineKind, Retrieval, RetrievalMethod, Segment, Span, Task,
};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::index::ChunkIndex;
use crate::llm::{Engine, GenOutput, GenRequest};

pub struct Chunked {
    engine: Arc<dyn Engine>,
    index: Arc<ChunkIndex>,
    /// Tokens one call may use, prompt and answer together.
    budget: usize,
    max_answer_tokens: usize,
    top_k: usize,
}

/// A claim passed up a map-reduce level, with the document segment it cites.
#[derive(Clone)]
struct Claim {
    text: String,
    source: u32,
    page: u32,
}

/// What the calls of one run cost together.
#[derive(Default)]
struct Tally {
    cost: GenOutput,
    calls: usize,
}

impl Tally {
    fn add(&mut self, out: &GenOutput) {
        self.cost.add_cost(out);
        self.calls += 1;
    }
}

fn engine_failed(e: anyhow::Error) -> AppError {
    AppError::new(ErrorCode::EngineFailed, "the model failed to answer").with_cause(e)
}

/// Segments that lie inside one of `chunks`, in document order.
fn segments_in(segments: &[Segment], chunks: &[Chunk]) -> Vec<Segment> {
    segments
        .iter()
        .filter(|s| chunks.iter().any(|c| c.span.start <= s.span.start && s.span.end <= c.span.end))
        .cloned()
        .collect()
}

impl Chunked {
    pub fn new(engine: Arc<dyn Engine>, index: Arc<ChunkIndex>, budget: usize, max_answer_tokens: usize) -> Self {
        Self { engine, index, budget, max_answer_tokens: max_answer_tokens.min(budget / 4), top_k: 8 }
    }

    /// The request for `segments` of `text`, if its prompt fits the budget.
    async fn fitting(&self, text: &str, segments: &[Segment], step: &Step<'_>) -> AppResult<Option<GenRequest>> {
        let labels = cite::labels(segments.len());
        let request =
            prompt::request(&cite::numbered_text(text, segments, &labels), &labels, step, self.max_answer_tokens);
        let tokens = self.engine.count_prompt_tokens(&request).await.map_err(engine_failed)?;
        let limit = self.budget.min(self.engine.context_limit());
        Ok((tokens + request.max_tokens + prompt::reserve(step) <= limit).then_some(request))
    }

    /// Ask, and map the labels the model cited back to the ids of `segments`.
    async fn ask(
        &self,
        request: GenRequest,
        (text, segments): (&str, &[Segment]),
        step: &Step<'_>,
        tally: &mut Tally,
    ) -> AppResult<Vec<(String, Vec<u32>)>> {
        let labels = cite::labels(segments.len());
        let numbered = cite::numbered_text(text, segments, &labels);
        let shown = answer::Shown { text, segments, labels: &labels, numbered: &numbered };
        let (parsed, outputs) = if step.question().is_some() {
            answer::ask(&*self.engine, &shown, step, request).await
        } else {
            answer::summarize(&*self.engine, &shown, step, request, self.max_answer_tokens).await
        }
        .map_err(engine_failed)?;
        outputs.iter().for_each(|out| tally.add(out));
        Ok(parsed)
    }

    async fn question(
        &self,
        doc: &DocInput<'_>,
        task: &TaskSpec,
        question: &str,
        tally: &mut Tally,
    ) -> AppResult<Answered> {
        let index = Arc::clone(&self.index);
        let (id, q, k) = (doc.id.to_owned(), question.to_owned(), self.top_k);
        let hits = tokio::task::spawn_blocking(move || index.search(&id, &q, k))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        let all = cite::segment(doc.text, doc.pages);
        let mut chosen: Vec<Chunk> = Vec::new();
        let mut request = None;
        // Best first, each chunk that still fits the budget.
        for hit in hits {
            chosen.push(hit.chunk);
            let segments = segments_in(&all, &chosen);
            match self.fitting(doc.text, &segments, &Step::Excerpts(task)).await? {
                Some(r) => request = Some((r, segments)),
                None => {
                    chosen.pop();
                }
            }
        }
        chosen.sort_by_key(|c| c.span.start);
        let parsed = match request {
            Some((request, segments)) => {
                let parsed = self.ask(request, (doc.text, &segments), &Step::Excerpts(task), tally).await?;
                (parsed, segments)
            }
            // Nothing matched the question: no excerpt to read, so nothing to cite.
            None => (vec![(REFUSAL.to_owned(), vec![])], Vec::new()),
        };
        Ok(Answered { parsed: parsed.0, segments: parsed.1, chunks: chosen.iter().map(|c| c.id).collect() })
    }

    async fn summary(&self, doc: &DocInput<'_>, task: &TaskSpec, tally: &mut Tally) -> AppResult<Answered> {
        let index = Arc::clone(&self.index);
        let id = doc.id.to_owned();
        let chunks = tokio::task::spawn_blocking(move || index.chunks(&id))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        let all = cite::segment(doc.text, doc.pages);
        let chunk_ids = chunks.iter().map(|c| c.id).collect();

        // Map: windows of consecutive chunks, each as large as the budget allows.
        let mut windows: Vec<Vec<Segment>> = Vec::new();
        let mut used_to = 0usize;
        let mut i = 0;
        while i < chunks.len() {
            let mut best: Option<(usize, Vec<Segment>)> = None;
            let mut j = i;
            while j < chunks.len() {
                let fresh: Vec<Segment> = segments_in(&all, chunks.get(i..=j).unwrap_or_default())
                    .into_iter()
                    .filter(|s| s.span.start >= used_to)
                    .collect();
                if self.fitting(doc.text, &fresh, &Step::Excerpts(task)).await?.is_none() {
                    break;
                }
                best = Some((j, fresh));
                j += 1;
            }
            let (last, segments) = match best {
                Some(b) => b,
                // One chunk alone is over the budget (a huge table line): read what fits of it.
                None => (
                    i,
                    self.trim_to_fit(doc.text, segments_in(&all, chunks.get(i..=i).unwrap_or_default()), task).await?,
                ),
            };
            used_to = segments.last().map_or(used_to, |s| s.span.end);
            windows.push(segments);
            i = last + 1;
        }
        if windows.len() <= 1 {
            let segments = windows.pop().unwrap_or_default();
            let Some(request) = self.fitting(doc.text, &segments, &Step::Task(task)).await? else {
                return Err(AppError::new(ErrorCode::EngineFailed, "no part of the document fits the model's context"));
            };
            let parsed = self.ask(request, (doc.text, &segments), &Step::Task(task), tally).await?;
            return Ok(Answered { parsed, segments, chunks: chunk_ids });
        }

        let mut claims: Vec<Claim> = Vec::new();
        for segments in &windows {
            let step = Step::Excerpts(task);
            let Some(request) = self.fitting(doc.text, segments, &step).await? else { continue };
            for (text, ids) in self.ask(request, (doc.text, segments), &step, tally).await? {
                if let Some(seg) = ids.first().and_then(|id| segments.iter().find(|s| s.id == *id)) {
                    claims.push(Claim { text, source: seg.id, page: seg.page });
                }
            }
        }
        // Reduce until one call holds every claim.
        loop {
            let (text, segments) = claim_text(&claims);
            if let Some(request) = self.fitting(&text, &segments, &Step::Claims).await? {
                let parsed = self.ask(request, (&text, &segments), &Step::Claims, tally).await?;
                let by_claim = |id: u32| claim_at(&claims, id).map(|c| c.source);
                let parsed = parsed
                    .into_iter()
                    .map(|(claim, ids)| (claim, ids.into_iter().filter_map(by_claim).collect()))
                    .collect();
                return Ok(Answered { parsed, segments: all, chunks: chunk_ids });
            }
            let half = claims.len().div_ceil(2);
            if half == claims.len() {
                return Err(AppError::new(ErrorCode::EngineFailed, "a single claim does not fit the model's context"));
            }
            let mut next = Vec::new();
            for group in claims.chunks(half.max(1)) {
                let (text, segments) = claim_text(group);
                let Some(request) = self.fitting(&text, &segments, &Step::Claims).await? else { continue };
                for (t, ids) in self.ask(request, (&text, &segments), &Step::Claims, tally).await? {
                    if let Some(c) = ids.first().and_then(|id| claim_at(group, *id)) {
                        next.push(Claim { text: t, source: c.source, page: c.page });
                    }
                }
            }
            if next.len() >= claims.len() {
                return Err(AppError::new(ErrorCode::EngineFailed, "the summary did not shrink; giving up"));
            }
            claims = next;
        }
    }

    /// The leading segments of an oversized chunk that fit one call.
    async fn trim_to_fit(&self, text: &str, mut segments: Vec<Segment>, task: &TaskSpec) -> AppResult<Vec<Segment>> {
        while segments.len() > 1 && self.fitting(text, &segments, &Step::Excerpts(task)).await?.is_none() {
            segments.truncate(segments.len() / 2);
        }
        Ok(segments)
    }
}

/// What a run produced before verification: claims with the ids of the document segments they
/// cite, the segments those ids refer to, and the chunks read.
struct Answered {
    parsed: Vec<(String, Vec<u32>)>,
    segments: Vec<Segment>,
    chunks: Vec<u32>,
}

/// The claim a segment id of `claim_text` refers to (ids count from 1; 0 is "unknown").
fn claim_at(claims: &[Claim], id: u32) -> Option<&Claim> {
    (id as usize).checked_sub(1).and_then(|i| claims.get(i))
}

/// Claims laid out as a text of one line each, numbered from 1 like document segments.
fn claim_text(claims: &[Claim]) -> (String, Vec<Segment>) {
    let mut text = String::new();
    let mut segments = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        let start = text.len();
        text.push_str(&c.text);
        segments.push(Segment {
            id: u32::try_from(i + 1).unwrap_or(u32::MAX),
            span: Span { start, end: text.len() },
            page: c.page,
        });
        text.push('\n');
    }
    (text, segments)
}

#[async_trait]
impl Pipeline for Chunked {
    fn kind(&self) -> PipelineKind {
        PipelineKind::Chunked
    }

    async fn run(&self, doc: DocInput<'_>, task: &TaskSpec) -> AppResult<PipelineOutput> {
        let started = Instant::now();
        let mut tally = Tally::default();
        let (answered, method) = match (task.task, task.question.as_deref()) {
            (Task::Question, Some(q)) => (self.question(&doc, task, q, &mut tally).await?, RetrievalMethod::Bm25TopK),
            _ => (self.summary(&doc, task, &mut tally).await?, RetrievalMethod::MapReduce),
        };
        if answered.parsed.is_empty() {
            return Err(AppError::new(ErrorCode::EngineFailed, "the model returned an empty answer"));
        }
        let (answer, citations) = if answered.parsed.iter().all(|(_, ids)| ids.is_empty()) {
            let sentences = answered
                .parsed
                .iter()
                .map(|(text, _)| AnswerSentence { text: text.clone(), citations: vec![] })
                .collect::<Vec<_>>();
            let text = sentences.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
            (Answer { text, sentences }, Vec::new())
        } else {
            cite::resolve(doc.text, &answered.segments, &answered.parsed)
        };
        let total_chunks = {
            let index = Arc::clone(&self.index);
            let id = doc.id.to_owned();
            tokio::task::spawn_blocking(move || index.count(&id))
                .await
                .map_err(AppError::internal)?
                .map_err(AppError::internal)?
        };
        let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(PipelineOutput {
            model: self.engine.model_name().to_owned(),
            answer,
            citations,
            usage: tally.cost.usage(),
            timings: tally.cost.timings(total_ms),
            retrieval: Some(Retrieval {
                method,
                chunks: answered.chunks,
                total_chunks,
                calls: tally.calls,
                budget_tokens: self.budget,
            }),
        })
    }
}
