//! Batches as durable jobs: submission stores the uploads and one queued item per (document,
//! pipeline); workers take items one at a time, ingest the upload when needed, run the pipeline
//! and store the analysis together with the item's end. A restart retries what was running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{now, validate_task, Docent};
use crate::domain::{
    Analysis, Batch, BatchEvent, BatchItem, BatchOptions, BatchSummary, ItemState, Scope, SideError,
};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::parse;
use crate::pipeline::TaskSpec;
use crate::store::{ClaimedItem, NewBatchFile};

/// Most documents in one batch.
pub const MAX_BATCH_FILES: usize = 1000;

/// An uploaded file of a batch.
pub struct BatchFile {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// What a batch reads: new uploads, or documents already stored.
pub enum BatchSource {
    Uploads(Vec<BatchFile>),
    Documents(Vec<String>),
}

/// How often a running item reports that it is still running.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

impl Docent {
    /// Queue a batch. With an idempotency key already used, the earlier batch is returned
    /// instead (`false`: nothing new was created).
    pub async fn submit_batch(
        &self,
        scope: &Scope,
        source: BatchSource,
        options: BatchOptions,
        key: Option<String>,
    ) -> AppResult<(Batch, bool)> {
        let options = validate_options(options)?;
        // Idempotency keys are per API key: one key's cannot name (or reveal) another's batch.
        let key = key.map(|k| match scope.owner() {
            Some(owner) => format!("{owner}/{k}"),
            None => k,
        });
        if let Some(key) = &key {
            let k = key.clone();
            if let Some(id) = self.blocking(move |s| s.batch_by_key(&k)).await? {
                return Ok((self.batch(scope, &id).await?, false));
            }
        }
        let files = self.plan_files(scope, source).await?;
        let new_items = files.len() * options.pipelines.len();
        if new_items > self.max_batch_items {
            // Waiting would not help: say so instead of asking for a retry.
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                format!("{new_items} items are more than the queue holds ({})", self.max_batch_items),
            ));
        }
        let queued = self.blocking(|s| s.queued_items()).await?;
        if queued + new_items > self.max_batch_items {
            return Err(AppError::new(
                ErrorCode::EngineBusy,
                format!(
                    "the batch queue is full ({queued} items waiting, at most {}); retry later",
                    self.max_batch_items
                ),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (batch_id, opts) = (id.clone(), options.clone());
        let owner = scope.owner().map(str::to_owned);
        let stored = self
            .blocking(move |s| {
                let rows: Vec<NewBatchFile<'_>> = files
                    .iter()
                    .map(|f| NewBatchFile {
                        filename: &f.filename,
                        document_id: &f.document_id,
                        upload: f.upload.as_ref().map(|(b, ext)| (b.as_slice(), *ext)),
                    })
                    .collect();
                s.insert_batch(&batch_id, key.as_deref(), &now(), &opts, &rows, owner.as_deref())
            })
            .await?;
        self.work.notify_waiters();
        let created = stored == id;
        if created {
            tracing::info!(batch = %id, items = new_items, "batch queued");
        }
        Ok((self.batch(scope, &stored).await?, created))
    }

    async fn plan_files(&self, scope: &Scope, source: BatchSource) -> AppResult<Vec<PlannedFile>> {
        let bad = |m: String| AppError::new(ErrorCode::InvalidRequest, m);
        let files = match source {
            BatchSource::Uploads(uploads) => uploads
                .into_iter()
                .map(|u| {
                    let filename = super::display_name(&u.filename);
                    // Unsupported files still become items, which fail with the parser's code.
                    let ext = parse::sniff(&filename, &u.bytes).map_or("bin", |m| m.extension());
                    PlannedFile {
                        filename,
                        document_id: uuid::Uuid::new_v4().to_string(),
                        upload: Some((u.bytes, ext)),
                    }
                })
                .collect::<Vec<_>>(),
            BatchSource::Documents(ids) => {
                let mut files = Vec::with_capacity(ids.len());
                for id in ids {
                    let doc = self.document(scope, &id).await?;
                    files.push(PlannedFile { filename: doc.filename, document_id: doc.id, upload: None });
                }
                files
            }
        };
        if files.is_empty() {
            return Err(bad("a batch needs at least one file or document id".into()));
        }
        if files.len() > MAX_BATCH_FILES {
            return Err(bad(format!("a batch holds at most {MAX_BATCH_FILES} documents")));
        }
        Ok(files)
    }

    /// `batch_not_found` unless the batch exists in this scope.
    async fn check_batch(&self, scope: &Scope, id: &str) -> AppResult<()> {
        let owned = id.to_owned();
        match self.blocking(move |s| s.batch_owner(&owned)).await? {
            Some(owner) if scope.sees(owner.as_deref()) => Ok(()),
            _ => Err(batch_not_found()),
        }
    }

    pub async fn batch(&self, scope: &Scope, id: &str) -> AppResult<Batch> {
        self.check_batch(scope, id).await?;
        let id = id.to_owned();
        self.blocking(move |s| s.get_batch(&id)).await?.ok_or_else(batch_not_found)
    }

    pub async fn batches(&self, scope: &Scope) -> AppResult<Vec<BatchSummary>> {
        let owner = scope.owner().map(str::to_owned);
        self.blocking(move |s| s.list_batches(owner.as_deref())).await
    }

    /// Cancel what has not started; items already running finish and keep their results.
    pub async fn cancel_batch(&self, scope: &Scope, id: &str) -> AppResult<Batch> {
        self.check_batch(scope, id).await?;
        let owned = id.to_owned();
        let ended = self.blocking(move |s| s.cancel_batch(&owned, &now())).await?.ok_or_else(batch_not_found)?;
        let _ = self.events.send(BatchEvent::Cancelled { batch_id: id.to_owned(), items: ended });
        self.batch(scope, id).await
    }

    /// One line of a batch's results: the item, and its analysis when done or its error.
    pub async fn result_line(&self, item: &BatchItem) -> ResultLine {
        let mut line = ResultLine {
            item: item.index,
            filename: item.filename.clone(),
            document_id: item.document_id.clone(),
            pipeline: item.pipeline,
            state: item.state,
            error: item.error.clone(),
            analysis: None,
        };
        if let (ItemState::Done, Some(id)) = (item.state, &item.analysis_id) {
            // The batch was checked in the caller's scope; its items' analyses are its own.
            match self.analysis(&Scope::Open, id).await {
                Ok(a) => line.analysis = Some(a),
                Err(e) => line.error = Some(SideError { code: e.code.as_str().to_owned(), message: e.message }),
            }
        }
        line
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<BatchEvent> {
        self.events.subscribe()
    }

    /// Put items that were running when the server stopped back in the queue (or fail them
    /// after too many attempts). Call once, before workers start.
    pub async fn recover_batches(&self) -> AppResult<(usize, usize)> {
        self.blocking(|s| s.recover_items(&now())).await
    }

    /// Notified when items are queued.
    pub fn work_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.work)
    }

    /// Take the oldest queued item and run it to its end. `false` when none was queued.
    pub async fn run_next_item(&self) -> AppResult<bool> {
        // Counted before the claim: a shutdown that begins now either waits for this item or
        // leaves it queued.
        let Some(_working) = self.drain.start() else { return Ok(false) };
        let Some(item) = self.blocking(|s| s.claim_item(&now())).await? else { return Ok(false) };
        let (batch_id, index) = (item.batch_id.clone(), item.index);
        let _ = self.events.send(BatchEvent::ItemStarted { batch_id, item: index, attempt: item.attempt });
        // The engine's prefill reports (llm::PROGRESS) reach the ticker, which passes them on.
        let (progress, reports) = tokio::sync::mpsc::unbounded_channel();
        let ticker = self.progress_ticker(&item, reports);
        let result = crate::llm::PROGRESS.scope(progress, self.run_item(&item)).await;
        ticker.abort();
        let batch_id = item.batch_id.clone();
        match result {
            Ok(analysis) => {
                let (a, b) = (analysis.clone(), batch_id.clone());
                self.blocking(move |s| s.finish_item(&b, index, &a, &now())).await?;
                let _ = self.events.send(BatchEvent::ItemDone { batch_id, item: index, analysis_id: analysis.id });
            }
            Err(e) => {
                if e.code == ErrorCode::Internal {
                    tracing::error!(batch = %batch_id, index, "batch item failed: {e}");
                }
                let error = SideError { code: e.code.as_str().to_owned(), message: e.message };
                let (err, b) = (error.clone(), batch_id.clone());
                self.blocking(move |s| s.fail_item(&b, index, &err, &now())).await?;
                let _ = self.events.send(BatchEvent::ItemFailed { batch_id, item: index, error });
            }
        }
        Ok(true)
    }

    async fn run_item(&self, item: &ClaimedItem) -> AppResult<Analysis> {
        if let Some(path) = &item.upload {
            let id = item.document_id.clone();
            if self.blocking(move |s| s.get_document(&id)).await?.is_none() {
                let bytes = fs_err::read(path).map_err(AppError::internal)?;
                self.ingest_as(item.document_id.clone(), item.owner.clone(), &item.filename, bytes, None).await?;
            }
            let claimed = item.clone();
            self.blocking(move |s| s.upload_ingested(&claimed)).await?;
        }
        let spec = validate_task(TaskSpec { task: item.options.task, question: item.options.question.clone() })?;
        let doc = self.text(&Scope::Open, &item.document_id).await?;
        self.compute_analysis(&item.document_id, &doc, item.pipeline, &spec, item.options.chunked_model).await
    }

    /// Reports the running item's elapsed time every `PROGRESS_EVERY`, and each prefill report of
    /// its engine as it comes (prompt tokens read so far), until aborted.
    fn progress_ticker(
        &self,
        item: &ClaimedItem,
        mut reports: tokio::sync::mpsc::UnboundedReceiver<crate::llm::Progress>,
    ) -> tokio::task::JoinHandle<()> {
        let events = self.events.clone();
        let store = Arc::clone(&self.store);
        let (batch_id, index, document_id) = (item.batch_id.clone(), item.index, item.document_id.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            // Read once the document exists: an upload is still being ingested at first.
            let mut tokens = None;
            let mut prompt = None;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    report = reports.recv() => match report {
                        Some(crate::llm::Progress::Prefill { done, total }) => prompt = Some((done, total)),
                        // The answer's text is not an item event; a closed channel leaves the ticks.
                        Some(crate::llm::Progress::Text { .. }) => continue,
                        None => {
                            tick.tick().await;
                        }
                    },
                }
                if tokens.is_none() {
                    let (id, store) = (document_id.clone(), Arc::clone(&store));
                    tokens = tokio::task::spawn_blocking(move || store.get_document(&id))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .flatten()
                        .and_then(|d| d.tokens);
                }
                let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                let event = BatchEvent::ItemProgress {
                    batch_id: batch_id.clone(),
                    item: index,
                    elapsed_ms,
                    document_tokens: tokens,
                    prompt_done: prompt.map(|p| p.0),
                    prompt_total: prompt.map(|p| p.1),
                };
                let _ = events.send(event);
            }
        })
    }
}

/// One line of a batch's JSON Lines results.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ResultLine {
    pub item: usize,
    pub filename: String,
    pub document_id: String,
    pub pipeline: crate::domain::PipelineKind,
    pub state: ItemState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SideError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

struct PlannedFile {
    filename: String,
    document_id: String,
    upload: Option<(Vec<u8>, &'static str)>,
}

fn batch_not_found() -> AppError {
    AppError::new(ErrorCode::BatchNotFound, "no batch with this id")
}

fn validate_options(mut o: BatchOptions) -> AppResult<BatchOptions> {
    let bad = |m: &str| AppError::new(ErrorCode::InvalidRequest, m.to_owned());
    if o.pipelines.is_empty() {
        return Err(bad("\"pipelines\" needs at least one of \"full\", \"chunked\""));
    }
    let mut seen = Vec::new();
    o.pipelines.retain(|p| {
        let new = !seen.contains(p);
        seen.push(*p);
        new
    });
    let spec = validate_task(TaskSpec { task: o.task, question: o.question.take() })?;
    o.question = spec.question;
    Ok(o)
}
