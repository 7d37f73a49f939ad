//! The operations of docent, free of any transport: the HTTP API, the web
//! pages and the CLI all call these.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::domain::{Analysis, Document, PageSpan, PipelineKind, Task};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::llm::Engine;
use crate::parse;
use crate::pipeline::{DocInput, Pipeline, TaskSpec};
use crate::store::{NewDocument, Store};

/// Parsing a hostile PDF must not hold a request forever.
const PARSE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Docent {
    store: Arc<Store>,
    engine: Arc<dyn Engine>,
    full: Arc<dyn Pipeline>,
    /// Analyses admitted at once (running or waiting for the engine); beyond it, `engine_busy`.
    admitted: Arc<Semaphore>,
}

/// A document's text with its page map, as views and pipelines need it.
pub struct DocText {
    pub text: String,
    pub pages: Vec<PageSpan>,
}

impl Docent {
    pub fn new(store: Store, engine: Arc<dyn Engine>, full: Arc<dyn Pipeline>, max_admitted: usize) -> Self {
        Self { store: Arc::new(store), engine, full, admitted: Arc::new(Semaphore::new(max_admitted.max(1))) }
    }

    pub fn model_name(&self) -> &str {
        self.engine.model_name()
    }

    async fn blocking<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(AppError::internal)?.map_err(AppError::internal)
    }

    /// Parse, count tokens and store an uploaded file.
    pub async fn ingest(&self, filename: &str, bytes: Vec<u8>, password: Option<String>) -> AppResult<Document> {
        let filename = display_name(filename);
        let media = parse::sniff(&filename, &bytes)?;
        let bytes = Arc::new(bytes);
        let input = Arc::clone(&bytes);
        let job = tokio::task::spawn_blocking(move || parse::parse(media, &input, password.as_deref()));
        let parsed = tokio::time::timeout(PARSE_TIMEOUT, job)
            .await
            .map_err(|_| AppError::new(ErrorCode::PdfCorrupt, "parsing took too long; the file may be malformed"))?
            .map_err(AppError::internal)??;
        let tokens = self.engine.count_tokens(&parsed.text).await.map_err(|e| {
            AppError::new(ErrorCode::EngineFailed, "the model's tokenizer failed on this text").with_cause(e)
        })?;
        let doc = Document {
            id: uuid::Uuid::new_v4().to_string(),
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
        self.blocking(move |s| {
            s.insert_document(&NewDocument {
                meta: &stored,
                original: &bytes,
                extension: media.extension(),
                text: &parsed.text,
                pages: &parsed.pages,
            })
        })
        .await?;
        tracing::info!(id = %doc.id, pages = doc.pages, tokens, "document ingested");
        Ok(doc)
    }

    pub async fn list_documents(&self) -> AppResult<Vec<Document>> {
        self.blocking(|s| s.list_documents()).await
    }

    pub async fn document(&self, id: &str) -> AppResult<Document> {
        let id = id.to_owned();
        self.blocking(move |s| s.get_document(&id)).await?.ok_or_else(document_not_found)
    }

    pub async fn text(&self, id: &str) -> AppResult<DocText> {
        let id = id.to_owned();
        self.blocking(move |s| match s.get_pages(&id)? {
            Some(pages) => Ok(Some(DocText { text: s.get_text(&id)?, pages })),
            None => Ok(None),
        })
        .await?
        .ok_or_else(document_not_found)
    }

    pub async fn delete_document(&self, id: &str) -> AppResult<()> {
        let id = id.to_owned();
        if self.blocking(move |s| s.delete_document(&id)).await? {
            Ok(())
        } else {
            Err(document_not_found())
        }
    }

    /// Run a pipeline on a stored document and store the analysis.
    pub async fn analyze(&self, document_id: &str, kind: PipelineKind, spec: TaskSpec) -> AppResult<Analysis> {
        let spec = validate_task(spec)?;
        let _permit = Arc::clone(&self.admitted).try_acquire_owned().map_err(|_| {
            AppError::new(ErrorCode::EngineBusy, "the model is busy with other analyses; retry shortly")
        })?;
        let doc = self.text(document_id).await?;
        let pipeline = match kind {
            PipelineKind::Full => &self.full,
        };
        let out = pipeline.run(DocInput { text: &doc.text, pages: &doc.pages }, &spec).await?;
        let analysis = Analysis {
            id: uuid::Uuid::new_v4().to_string(),
            document_id: document_id.to_owned(),
            pipeline: pipeline.kind(),
            model: out.model,
            task: spec.task,
            question: spec.question,
            answer: out.answer,
            citations: out.citations,
            usage: out.usage,
            timings: out.timings,
            created_at: now(),
        };
        let stored = analysis.clone();
        self.blocking(move |s| s.insert_analysis(&stored)).await?;
        Ok(analysis)
    }

    pub async fn analysis(&self, id: &str) -> AppResult<Analysis> {
        let id = id.to_owned();
        self.blocking(move |s| s.get_analysis(&id))
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::AnalysisNotFound, "no analysis with this id"))
    }

    pub async fn analyses_of(&self, document_id: &str) -> AppResult<Vec<Analysis>> {
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
