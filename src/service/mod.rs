//! The operations of docent, free of any transport: the HTTP API, the web
//! pages and the CLI all call these.

mod auth;
mod batch;
mod drain;

pub use auth::{Caller, SESSION_LIFETIME_S};
pub use batch::{BatchFile, BatchSource, ResultLine, MAX_BATCH_FILES};

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::domain::{
    overlap, Analysis, BatchEvent, Comparison, Document, PageSpan, PipelineKind, Scope, Side, SideError, Task,
};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::index::{ChunkIndex, Hit};
use crate::parse;
use crate::pipeline::chunk::{chunk_document, ChunkConfig};
use crate::pipeline::{DocInput, Pipeline, TaskSpec};
use crate::store::{NewDocument, Store};
use crate::Engines;

pub use crate::domain::ChunkedModel;

pub struct Pipelines {
    pub full: Arc<dyn Pipeline>,
    pub chunked: Arc<dyn Pipeline>,
    pub chunked_same: Arc<dyn Pipeline>,
}

/// Most chunks a search returns.
pub const MAX_SEARCH_K: usize = 50;

pub struct Docent {
    store: Arc<Store>,
    index: Arc<ChunkIndex>,
    engines: Engines,
    pipelines: Pipelines,
    chunking: ChunkConfig,
    /// Analyses admitted at once (running or waiting for the engine); beyond it, `engine_busy`.
    admitted: Arc<Semaphore>,
    /// Progress of batch items, for event streams.
    events: tokio::sync::broadcast::Sender<BatchEvent>,
    /// Wakes the batch workers when items are queued.
    work: Arc<tokio::sync::Notify>,
    /// Most queued batch items; beyond it, new batches get `engine_busy`.
    max_batch_items: usize,
    /// Uploads are parsed in a worker process with time and memory limits.
    parser: Arc<parse::Isolation>,
    max_queued: usize,
    metrics: crate::metrics::Metrics,
    /// Analyses and batch items running, and whether the server is shutting down.
    drain: drain::Drain,
}

/// A document's text with its page map, as views and pipelines need it.
pub struct DocText {
    pub text: String,
    pub pages: Vec<PageSpan>,
}

impl Docent {
    pub fn new(
        store: Store,
        index: Arc<ChunkIndex>,
        engines: Engines,
        pipelines: Pipelines,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let info = |slot, e: &Arc<dyn crate::llm::Engine>| crate::metrics::EngineInfo {
            slot,
            model: e.model_name().to_owned(),
            context: e.context_limit(),
        };
        let max_queued = settings.max_queued.max(1);
        let metrics =
            crate::metrics::Metrics::new(&[info("full", &engines.full), info("baseline", &engines.baseline)], max_queued)?;
        Ok(Self {
            store: Arc::new(store),
            index,
            engines,
            pipelines,
            chunking: settings.chunking,
            admitted: Arc::new(Semaphore::new(max_queued)),
            events: tokio::sync::broadcast::channel(1024).0,
            work: Arc::new(tokio::sync::Notify::new()),
            max_batch_items: settings.max_batch_items,
            parser: Arc::new(settings.parser.clone()),
            max_queued,
            metrics,
            drain: drain::Drain::default(),
        })
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The metrics in Prometheus' text format, with the queue and batch gauges as they are now.
    pub async fn metrics_text(&self) -> AppResult<String> {
        let batch_items = self.blocking(Store::item_counts).await?;
        let admitted = self.max_queued.saturating_sub(self.admitted.available_permits());
        let now = crate::metrics::Snapshot { batch_items, admitted };
        self.metrics.render(&now).map_err(AppError::internal)
    }

    pub fn model_name(&self) -> &str {
        self.engines.full.model_name()
    }

    pub fn baseline_model_name(&self) -> &str {
        self.engines.baseline.model_name()
    }

    async fn blocking<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(AppError::internal)?.map_err(AppError::internal)
    }

    /// Parse, count tokens and store an uploaded file, as the scope's.
    pub async fn ingest(
        &self,
        scope: &Scope,
        filename: &str,
        bytes: Vec<u8>,
        password: Option<String>,
    ) -> AppResult<Document> {
        let owner = scope.owner().map(str::to_owned);
        self.ingest_as(uuid::Uuid::new_v4().to_string(), owner, filename, bytes, password).await
    }

    /// Ingest under an id chosen beforehand (a batch plans its documents' ids, so that an
    /// ingestion retried after a crash finds the document instead of storing it twice).
    async fn ingest_as(
        &self,
        id: String,
        owner: Option<String>,
        filename: &str,
        bytes: Vec<u8>,
        password: Option<String>,
    ) -> AppResult<Document> {
        let filename = display_name(filename);
        let bytes = Arc::new(bytes);
        let parsed = self.parse(&filename, Arc::clone(&bytes), password).await;
        self.metrics.parse(parsed.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"));
        let (media, parsed) = parsed?;
        let tokens = self.engines.full.count_tokens(&parsed.text).await.map_err(|e| {
            AppError::new(ErrorCode::EngineFailed, "the model's tokenizer failed on this text").with_cause(e)
        })?;
        let doc = Document {
            id,
            filename,
            media_type: media.as_mime().to_owned(),
            pages: u32::try_from(parsed.pages.len()).unwrap_or(u32::MAX),
            chars: parsed.text.chars().count(),
            words: parse::count_words(&parsed.text),
            tokens: Some(tokens),
            sha256: hex::encode(Sha256::digest(bytes.as_slice())),
            created_at: now(),
            warnings: parsed.warnings.clone(),
        };
        let stored = doc.clone();
        let parsed = Arc::new(parsed);
        let shared = Arc::clone(&parsed);
        self.blocking(move |s| {
            s.insert_document(&NewDocument {
                meta: &stored,
                owner: owner.as_deref(),
                original: &bytes,
                extension: media.extension(),
                text: &shared.text,
                pages: &shared.pages,
            })
        })
        .await?;
        let chunks = match self.index_document(&doc.id, &parsed.text, &parsed.pages).await {
            Ok(n) => n,
            Err(e) => {
                // Stored and answerable go together: an upload that cannot be indexed (a full
                // disk) is not kept half-way.
                let id = doc.id.clone();
                if let Err(undo) = self.blocking(move |s| s.delete_document(&id)).await {
                    tracing::error!(id = %doc.id, error = %undo, "could not remove a document whose indexing failed");
                }
                return Err(e);
            }
        };
        tracing::info!(id = %doc.id, pages = doc.pages, tokens, chunks, "document ingested");
        Ok(doc)
    }

    /// Recognise and parse an upload in the isolated parser.
    async fn parse(
        &self,
        filename: &str,
        bytes: Arc<Vec<u8>>,
        password: Option<String>,
    ) -> AppResult<(parse::MediaType, crate::domain::ParsedText)> {
        let media = parse::sniff(filename, &bytes)?;
        let parser = Arc::clone(&self.parser);
        let parsed = tokio::task::spawn_blocking(move || parser.parse(media, &bytes, password.as_deref()))
            .await
            .map_err(AppError::internal)??;
        Ok((media, parsed))
    }

    /// Chunk a document with the baseline model's tokenizer and (re)index its chunks.
    async fn index_document(&self, id: &str, text: &str, pages: &[PageSpan]) -> AppResult<usize> {
        let segments = crate::cite::segment(text, pages);
        let chunks =
            chunk_document(text, &segments, self.engines.baseline.as_ref(), self.chunking).await.map_err(|e| {
                AppError::new(ErrorCode::EngineFailed, "the baseline tokenizer failed on this text").with_cause(e)
            })?;
        let n = chunks.len();
        let entries = chunks.into_iter().map(|c| (c, c.span.slice(text).unwrap_or_default().to_owned())).collect();
        self.index.replace(id, entries).await.map_err(AppError::internal)?;
        Ok(n)
    }

    /// Index every stored document that has no chunks yet (`all`: every document). Returns how
    /// many were indexed.
    pub async fn reindex(&self, all: bool) -> AppResult<usize> {
        if all {
            self.index.clear().await.map_err(AppError::internal)?;
        }
        let mut done = 0;
        for doc in self.list_documents(&Scope::Open).await? {
            if !all && self.index.count(&doc.id).map_err(AppError::internal)? > 0 {
                continue;
            }
            let t = self.text(&Scope::Open, &doc.id).await?;
            self.index_document(&doc.id, &t.text, &t.pages).await?;
            done += 1;
        }
        Ok(done)
    }

    /// BM25 search over one document's chunks.
    pub async fn search(&self, scope: &Scope, document_id: &str, query: &str, k: usize) -> AppResult<Vec<Hit>> {
        let query = query.trim().to_owned();
        if query.is_empty() {
            return Err(AppError::new(ErrorCode::InvalidRequest, "the query \"q\" is empty"));
        }
        if k == 0 || k > MAX_SEARCH_K {
            return Err(AppError::new(ErrorCode::InvalidRequest, format!("k must be between 1 and {MAX_SEARCH_K}")));
        }
        self.check_document(scope, document_id).await?;
        let index = Arc::clone(&self.index);
        let id = document_id.to_owned();
        tokio::task::spawn_blocking(move || index.search(&id, &query, k))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)
    }

    pub async fn list_documents(&self, scope: &Scope) -> AppResult<Vec<Document>> {
        let owner = scope.owner().map(str::to_owned);
        self.blocking(move |s| s.list_documents(owner.as_deref())).await
    }

    /// `document_not_found` unless the document exists in this scope. Every operation on a
    /// document by its id passes here first.
    async fn check_document(&self, scope: &Scope, id: &str) -> AppResult<()> {
        let owned = id.to_owned();
        match self.blocking(move |s| s.document_owner(&owned)).await? {
            Some(owner) if scope.sees(owner.as_deref()) => Ok(()),
            _ => Err(document_not_found()),
        }
    }

    pub async fn document(&self, scope: &Scope, id: &str) -> AppResult<Document> {
        self.check_document(scope, id).await?;
        let id = id.to_owned();
        self.blocking(move |s| s.get_document(&id)).await?.ok_or_else(document_not_found)
    }

    /// A stored document's original file, with its metadata.
    pub async fn original(&self, scope: &Scope, id: &str) -> AppResult<(Document, Vec<u8>)> {
        let doc = self.document(scope, id).await?;
        let extension = crate::parse::MediaType::from_mime(&doc.media_type)
            .map_or("bin", crate::parse::MediaType::extension)
            .to_owned();
        let owned = id.to_owned();
        let bytes = self.blocking(move |s| s.get_original(&owned, &extension)).await?;
        Ok((doc, bytes))
    }

    pub async fn text(&self, scope: &Scope, id: &str) -> AppResult<DocText> {
        self.check_document(scope, id).await?;
        let id = id.to_owned();
        self.blocking(move |s| match s.get_pages(&id)? {
            Some(pages) => Ok(Some(DocText { text: s.get_text(&id)?, pages })),
            None => Ok(None),
        })
        .await?
        .ok_or_else(document_not_found)
    }

    pub async fn delete_document(&self, scope: &Scope, id: &str) -> AppResult<()> {
        self.check_document(scope, id).await?;
        let owned = id.to_owned();
        if !self.blocking(move |s| s.delete_document(&owned)).await? {
            return Err(document_not_found());
        }
        self.index.delete(id).await.map_err(AppError::internal)
    }

    /// A place in the bounded queue of analyses, counted as work a shutdown waits for.
    fn admit(&self) -> AppResult<(tokio::sync::OwnedSemaphorePermit, drain::Working)> {
        let working = self.drain.start().ok_or_else(|| {
            AppError::new(ErrorCode::EngineBusy, "the server is shutting down; retry on another instance or shortly")
        })?;
        let permit = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| AppError::new(ErrorCode::EngineBusy, "the model is busy with other analyses; retry shortly"))?;
        Ok((permit, working))
    }

    /// Run a pipeline on a stored document and store the analysis.
    pub async fn analyze(
        &self,
        scope: &Scope,
        document_id: &str,
        kind: PipelineKind,
        spec: TaskSpec,
        model: ChunkedModel,
    ) -> AppResult<Analysis> {
        let spec = validate_task(spec)?;
        let _admitted = self.admit()?;
        let doc = self.text(scope, document_id).await?;
        self.run_pipeline(document_id, &doc, kind, &spec, model).await
    }

    async fn run_pipeline(
        &self,
        document_id: &str,
        doc: &DocText,
        kind: PipelineKind,
        spec: &TaskSpec,
        model: ChunkedModel,
    ) -> AppResult<Analysis> {
        let analysis = self.compute_analysis(document_id, doc, kind, spec, model).await?;
        let stored = analysis.clone();
        self.blocking(move |s| s.insert_analysis(&stored)).await?;
        Ok(analysis)
    }

    /// Run a pipeline; the caller stores the analysis.
    async fn compute_analysis(
        &self,
        document_id: &str,
        doc: &DocText,
        kind: PipelineKind,
        spec: &TaskSpec,
        model: ChunkedModel,
    ) -> AppResult<Analysis> {
        let pipeline = match (kind, model) {
            (PipelineKind::Full, _) => &self.pipelines.full,
            (PipelineKind::Chunked, ChunkedModel::Baseline) => &self.pipelines.chunked,
            (PipelineKind::Chunked, ChunkedModel::Same) => &self.pipelines.chunked_same,
        };
        let input = DocInput { id: document_id, text: &doc.text, pages: &doc.pages };
        let running = self.metrics.running();
        let out = pipeline.run(input, spec).await;
        drop(running);
        let kind = pipeline.kind();
        match &out {
            Ok(o) => self.metrics.analysis(kind.as_str(), Ok((&o.usage, &o.timings))),
            Err(e) => self.metrics.analysis(kind.as_str(), Err(e.code.as_str())),
        }
        let out = out?;
        let analysis = Analysis {
            id: uuid::Uuid::new_v4().to_string(),
            document_id: document_id.to_owned(),
            pipeline: kind,
            model: out.model,
            task: spec.task,
            question: spec.question.clone(),
            answer: out.answer,
            citations: out.citations,
            usage: out.usage,
            timings: out.timings,
            retrieval: out.retrieval,
            created_at: now(),
        };
        Ok(analysis)
    }

    /// The same task through both pipelines, one after the other (they may share a GPU), and
    /// what their citations have in common. A side that fails (a document too long for the
    /// full-context model) is reported with its error; the other still answers.
    pub async fn compare(
        &self,
        scope: &Scope,
        document_id: &str,
        spec: TaskSpec,
        model: ChunkedModel,
    ) -> AppResult<Comparison> {
        let spec = validate_task(spec)?;
        let _admitted = self.admit()?;
        let doc = self.text(scope, document_id).await?;
        let side = |r: AppResult<Analysis>| match r {
            Ok(a) => Ok(Side::Done(Box::new(a))),
            // Infrastructure failures fail the comparison; a side's own limits are part of it.
            Err(e) if matches!(e.code, ErrorCode::Internal) => Err(e),
            Err(e) => Ok(Side::Failed { error: SideError { code: e.code.as_str().to_owned(), message: e.message } }),
        };
        let full = side(self.run_pipeline(document_id, &doc, PipelineKind::Full, &spec, model).await)?;
        let chunked = side(self.run_pipeline(document_id, &doc, PipelineKind::Chunked, &spec, model).await)?;
        let comparison = Comparison {
            id: uuid::Uuid::new_v4().to_string(),
            document_id: document_id.to_owned(),
            overlap: overlap(doc.text.len(), full.analysis(), chunked.analysis()),
            full,
            chunked,
            created_at: now(),
        };
        let stored = comparison.clone();
        self.blocking(move |s| s.insert_comparison(&stored)).await?;
        Ok(comparison)
    }

    /// A comparison, when its document is in the scope.
    pub async fn comparison(&self, scope: &Scope, id: &str) -> AppResult<Comparison> {
        let owned = id.to_owned();
        let not_found = || AppError::new(ErrorCode::ComparisonNotFound, "no comparison with this id");
        let c = self.blocking(move |s| s.get_comparison(&owned)).await?.ok_or_else(not_found)?;
        self.check_document(scope, &c.document_id).await.map_err(|_| not_found())?;
        Ok(c)
    }

    /// An analysis, when its document is in the scope.
    pub async fn analysis(&self, scope: &Scope, id: &str) -> AppResult<Analysis> {
        let owned = id.to_owned();
        let not_found = || AppError::new(ErrorCode::AnalysisNotFound, "no analysis with this id");
        let a = self.blocking(move |s| s.get_analysis(&owned)).await?.ok_or_else(not_found)?;
        self.check_document(scope, &a.document_id).await.map_err(|_| not_found())?;
        Ok(a)
    }

    pub async fn analyses_of(&self, scope: &Scope, document_id: &str) -> AppResult<Vec<Analysis>> {
        self.check_document(scope, document_id).await?;
        let id = document_id.to_owned();
        self.blocking(move |s| s.list_analyses(&id)).await
    }
}

fn document_not_found() -> AppError {
    AppError::new(ErrorCode::DocumentNotFound, "no document with this id")
}

fn validate_task(spec: TaskSpec) -> AppResult<TaskSpec> {
    let question = spec.question.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    match (spec.task, &question) {
        (Task::Question, None) => {
            Err(AppError::new(ErrorCode::InvalidRequest, "task \"question\" needs a non-empty \"question\""))
        }
        (Task::Question, Some(q)) if q.chars().count() > 2000 => {
            Err(AppError::new(ErrorCode::InvalidRequest, "the question is longer than 2000 characters"))
        }
        (Task::Summary, _) => Ok(TaskSpec { task: Task::Summary, question: None }),
        (Task::Question, _) => Ok(TaskSpec { task: Task::Question, question }),
    }
}

/// The file name a user gave, for display only: its last path component,
/// without control characters, at most 200 characters.
fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload".to_owned()
    } else {
        clean.trim().to_owned()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_never_carry_paths_or_controls() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\x\\a\u{0007}b.pdf"), "ab.pdf");
        assert_eq!(display_name(""), "upload");
    }

    #[test]
    fn question_task_requires_a_question() {
        let err = validate_task(TaskSpec { task: Task::Question, question: Some("  ".into()) }).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }
}
