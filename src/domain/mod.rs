//! Pure data shared by every layer: documents with their page map, text
//! segments, analyses with cited spans. No I/O here.

mod batch;
mod compare;

pub use batch::{Batch, BatchEvent, BatchItem, BatchOptions, BatchStatus, BatchSummary, ItemState};
pub use compare::{overlap, Comparison, Overlap, Side, SideError, SideStats};

use serde::{Deserialize, Serialize};

/// Whose documents, analyses and batches a request may see: everyone's on a server without API
/// keys, else those of the one key it came with. What is out of scope does not exist for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Open,
    Key(String),
}

impl Scope {
    /// The owner recorded on what this scope creates.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Scope::Open => None,
            Scope::Key(k) => Some(k),
        }
    }

    /// Whether something owned by `owner` is visible in this scope.
    pub fn sees(&self, owner: Option<&str>) -> bool {
        match self {
            Scope::Open => true,
            Scope::Key(k) => owner == Some(k.as_str()),
        }
    }
}

/// A byte range `[start, end)` of a document's normalised text, on `char` boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of this span, or `None` when it is out of bounds or splits a character.
    pub fn slice<'a>(&self, text: &'a str) -> Option<&'a str> {
        text.get(self.start..self.end)
    }
}

/// One page of the normalised text: pages are numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSpan {
    pub number: u32,
    pub start: usize,
    pub end: usize,
}

/// The page containing byte `offset` (the last page that starts at or before it).
pub fn page_at(pages: &[PageSpan], offset: usize) -> u32 {
    let idx = pages.partition_point(|p| p.start <= offset);
    idx.checked_sub(1).and_then(|i| pages.get(i)).map_or(1, |p| p.number)
}

/// What a parser returns: the normalised text every offset refers to, with its page map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedText {
    pub text: String,
    pub pages: Vec<PageSpan>,
    pub warnings: Vec<String>,
}

/// A stored document's metadata. `tokens` is counted with the full-context model's tokenizer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Document {
    pub id: String,
    pub filename: String,
    pub media_type: String,
    pub pages: u32,
    pub chars: usize,
    pub words: usize,
    pub tokens: Option<usize>,
    pub sha256: String,
    pub created_at: String,
    pub warnings: Vec<String>,
}

/// A numbered unit of text (a sentence, or a line of a list or table) that a model can cite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub id: u32,
    pub span: Span,
    pub page: u32,
}

/// A piece of the text for retrieval: whole segments, bounded in tokens of the baseline model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Chunk {
    pub id: u32,
    #[serde(flatten)]
    pub span: Span,
    /// The page the chunk starts on.
    pub page: u32,
    /// The page it ends on (a chunk may run over a page break).
    pub last_page: u32,
    pub tokens: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Summary,
    Question,
}

/// Which model the chunked pipeline runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChunkedModel {
    /// The short-context baseline model.
    #[default]
    Baseline,
    /// The full-context model, so that only retrieval differs between the two pipelines.
    Same,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PipelineKind {
    Full,
    Chunked,
}

impl PipelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineKind::Full => "full",
            PipelineKind::Chunked => "chunked",
        }
    }
}

/// How the chunked pipeline chose what the model read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalMethod {
    /// The BM25 top-k chunks for the question, as many as fit the context budget.
    Bm25TopK,
    /// Every chunk: windows that fit the budget are summarised with citations, then the
    /// cited claims are summarised again (recursively) into the final answer.
    MapReduce,
}

impl RetrievalMethod {
    /// How the method is named to people.
    pub fn label(self) -> &'static str {
        match self {
            RetrievalMethod::Bm25TopK => "BM25 top-k retrieval",
            RetrievalMethod::MapReduce => "map-reduce over every chunk",
        }
    }
}

/// What the chunked pipeline read, stated with every chunked analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retrieval {
    pub method: RetrievalMethod,
    /// Ids of the chunks the model read, in document order.
    pub chunks: Vec<u32>,
    /// Chunks the document has in all.
    pub total_chunks: usize,
    /// Model calls made (1 for a question; windows plus reduce steps for a summary).
    pub calls: usize,
    /// Context budget per call, in tokens.
    pub budget_tokens: usize,
}

impl Retrieval {
    /// One line for people: the method, and how much of the document it read in how many calls.
    pub fn describe(&self) -> String {
        format!(
            "{}: read {} of {} chunks in {} call{} of at most {} tokens",
            self.method.label(),
            self.chunks.len(),
            self.total_chunks,
            self.calls,
            if self.calls == 1 { "" } else { "s" },
            self.budget_tokens
        )
    }
}

/// A sentence of the answer with the ids of the citations that support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerSentence {
    pub text: String,
    pub citations: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    pub text: String,
    pub sentences: Vec<AnswerSentence>,
}

/// A cited span, resolved against the source and checked. `valid` is true only
/// when every check passed; otherwise `reason` says which failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    pub id: u32,
    /// The segment the model cited.
    pub segment: u32,
    pub start: usize,
    pub end: usize,
    pub page: u32,
    pub quote: String,
    pub valid: bool,
    /// Share of the claim's content words found in the span (the support measure).
    pub support: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: usize,
    /// Of the prompt tokens, those read from the cache of an earlier request on the same
    /// document instead of computed again; absent when the engine does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<usize>,
    pub completion_tokens: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    pub prefill_ms: u64,
    pub decode_ms: u64,
    pub total_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub id: String,
    pub document_id: String,
    pub pipeline: PipelineKind,
    pub model: String,
    pub task: Task,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    pub answer: Answer,
    pub citations: Vec<Citation>,
    pub usage: Usage,
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Retrieval>,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_at_finds_the_page_that_holds_an_offset() {
        let pages = [PageSpan { number: 1, start: 0, end: 10 }, PageSpan { number: 2, start: 12, end: 20 }];
        assert_eq!(page_at(&pages, 0), 1);
        assert_eq!(page_at(&pages, 9), 1);
        assert_eq!(page_at(&pages, 12), 2);
        assert_eq!(page_at(&pages, 19), 2);
    }

    #[test]
    fn span_slice_refuses_to_split_a_character() {
        let text = "né";
        assert_eq!(Span { start: 0, end: 3 }.slice(text), Some("né"));
        assert_eq!(Span { start: 0, end: 2 }.slice(text), None);
        assert_eq!(Span { start: 0, end: 9 }.slice(text), None);
    }
}
