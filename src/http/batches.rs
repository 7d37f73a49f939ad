//! Batch endpoints of API v1: submit (multipart uploads or stored document ids), status, an
//! SSE stream of progress, JSON Lines results, cancel.

use actix_multipart::Multipart;
use actix_web::{get, http::header, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;

use super::openapi::{BatchCancelErrors, BatchErrors, BatchSubmitErrors, ReadErrors};
use super::{upload, Caller, State};
use crate::domain::{Batch, BatchEvent, BatchOptions, BatchSummary, PipelineKind, Scope, Task};
use crate::service::ResultLine;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{BatchSource, ChunkedModel};

/// The batch routes of API v1, each with its OpenAPI operation.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_batch)
        .service(list_batches)
        .service(get_batch)
        .service(batch_events)
        .service(batch_results)
        .service(cancel_batch);
}

/// The multipart form of a batch: files, and the options as JSON.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BatchForm {
    /// One part per file (up to 1,000), each up to `--max-upload-mb`.
    #[schema(value_type = Vec<String>, content_media_type = "application/octet-stream")]
    file: Vec<Vec<u8>>,
    /// `OptionsBody` as JSON text.
    options: Option<String>,
}

/// The options of a batch as clients send them; every field has a default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsBody {
    #[serde(default = "default_pipelines")]
    pipelines: Vec<PipelineKind>,
    #[serde(default = "default_task")]
    task: Task,
    question: Option<String>,
    #[serde(default)]
    chunked_model: ChunkedModel,
}

fn default_pipelines() -> Vec<PipelineKind> {
    vec![PipelineKind::Full]
}

fn default_task() -> Task {
    Task::Summary
}

impl From<OptionsBody> for BatchOptions {
    fn from(o: OptionsBody) -> Self {
        Self { pipelines: o.pipelines, task: o.task, question: o.question, chunked_model: o.chunked_model }
    }
}

/// The JSON form: stored documents, and the same options object as the multipart form, nested
/// under `options` or given beside `document_ids`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct JsonBatch {
    document_ids: Vec<String>,
    options: Option<OptionsBody>,
    pipelines: Option<Vec<PipelineKind>>,
    task: Option<Task>,
    question: Option<String>,
    chunked_model: Option<ChunkedModel>,
}

impl JsonBatch {
    fn options(self) -> AppResult<BatchOptions> {
        let flat = self.pipelines.is_some() || self.task.is_some() || self.question.is_some();
        match (self.options, flat || self.chunked_model.is_some()) {
            (Some(_), true) => Err(AppError::new(
                ErrorCode::InvalidRequest,
                "give the options either in \"options\" or beside \"document_ids\", not both",
            )),
            (Some(nested), false) => Ok(nested.into()),
            (None, _) => Ok(BatchOptions {
                pipelines: self.pipelines.unwrap_or_else(default_pipelines),
                task: self.task.unwrap_or_else(default_task),
                question: self.question,
                chunked_model: self.chunked_model.unwrap_or_default(),
            }),
        }
    }
}

impl Default for OptionsBody {
    fn default() -> Self {
        Self {
            pipelines: default_pipelines(),
            task: default_task(),
            question: None,
            chunked_model: ChunkedModel::Baseline,
        }
    }
}

pub fn parse_options(json: Option<&str>) -> AppResult<BatchOptions> {
    let body: OptionsBody = match json.map(str::trim).filter(|j| !j.is_empty()) {
        Some(j) => serde_json::from_str(j)
            .map_err(|e| AppError::new(ErrorCode::InvalidRequest, format!("invalid \"options\": {e}")))?,
        None => OptionsBody::default(),
    };
    Ok(body.into())
}

/// Uploads and their total are bounded: each file by the upload limit, all of them by 8 times it.
pub const TOTAL_UPLOAD_FACTOR: usize = 8;

#[utoipa::path(tag = "batches",
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1 to 200 characters: a retry with the same key returns the batch first created with it")),
    request_body(content((BatchForm = "multipart/form-data"), (JsonBatch = "application/json"))),
    responses(
        (status = 202, description = "Queued; `Idempotent-Replayed: true` when an earlier request created it", body = Batch,
         headers(("Location" = String, description = "The batch's URL"))),
        BatchSubmitErrors,
    ))]
#[post("/batches")]
/// Queue a batch: uploads (multipart) or stored documents (JSON), one item per document and pipeline.
async fn create_batch(
    state: State,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let key = idempotency_key(&req)?;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (source, options) = if is_multipart {
        let max = state.max_upload_bytes;
        let up = upload::read_batch(Multipart::new(req.headers(), payload), max, max * TOTAL_UPLOAD_FACTOR).await?;
        (BatchSource::Uploads(up.files), parse_options(up.options.as_deref())?)
    } else {
        let body = read_json_body(payload).await?;
        let parsed: JsonBatch = serde_json::from_slice(&body)
            .map_err(|e| AppError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}")))?;
        let ids = parsed.document_ids.clone();
        (BatchSource::Documents(ids), parsed.options()?)
    };
    let (batch, created) = state.docent.submit_batch(&caller.scope, source, options, key).await?;
    let mut resp = HttpResponse::Accepted();
    resp.insert_header((header::LOCATION, format!("/api/v1/batches/{}", batch.id)));
    if !created {
        resp.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(resp.json(batch))
}

fn idempotency_key(req: &HttpRequest) -> AppResult<Option<String>> {
    let Some(value) = req.headers().get("Idempotency-Key") else { return Ok(None) };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 200 {
        return Err(AppError::new(ErrorCode::InvalidRequest, "Idempotency-Key must be 1 to 200 visible characters"));
    }
    Ok(Some(key.to_owned()))
}

async fn read_json_body(mut payload: web::Payload) -> AppResult<Vec<u8>> {
    const LIMIT: usize = 1024 * 1024;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::new(ErrorCode::InvalidRequest, format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > LIMIT {
            return Err(AppError::new(ErrorCode::PayloadTooLarge, "the JSON body is larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[utoipa::path(tag = "batches",
    responses((status = 200, description = "The newest 200 batches, with counts but not items", body = Vec<BatchSummary>), ReadErrors))]
#[get("/batches")]
/// List batches.
async fn list_batches(state: State, caller: Caller) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.batches(&caller.scope).await?))
}

#[utoipa::path(tag = "batches", params(("id" = String, Path, description = "The batch's id")),
    responses((status = 200, description = "The batch with its items", body = Batch), BatchErrors))]
#[get("/batches/{id}")]
/// A batch with its items.
async fn get_batch(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.batch(&caller.scope, &id).await?))
}

#[utoipa::path(tag = "batches", params(("id" = String, Path, description = "The batch's id")),
    responses((status = 200, description = "The batch after cancelling what had not started", body = Batch), BatchCancelErrors))]
#[post("/batches/{id}/cancel")]
/// Cancel the items that have not started; running ones finish and keep their results.
async fn cancel_batch(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.cancel_batch(&caller.scope, &id).await?))
}

/// Server-sent events: the batch as it is now (`batch`), then `item_started`, `item_progress`,
/// `item_done`, `item_failed` and `cancelled` as they happen, and the final `batch` when every
/// item has ended.
#[utoipa::path(tag = "batches", params(("id" = String, Path, description = "The batch's id")),
    responses((status = 200, description = "Server-sent events: `batch`, `item_started`, `item_progress`, `item_done`, \
                                          `item_failed`, `cancelled`, a final `batch`; a `: keep-alive` comment every 15 s",
               body = String, content_type = "text/event-stream"), BatchErrors))]
#[get("/batches/{id}/events")]
async fn batch_events(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    // Subscribe before reading the snapshot, so that nothing between the two is missed.
    let rx = state.docent.subscribe();
    let batch = state.docent.batch(&caller.scope, &id).await?;
    let finished = batch.is_finished();
    let (docent, keep_alive) = (state.docent.clone(), state.keep_alive);
    let first = sse("batch", &batch);
    let stream = futures_util::stream::unfold(
        (Some(first), finished, rx, docent, id.into_inner()),
        move |(pending, finished, mut rx, docent, id)| async move {
            if let Some(frame) = pending {
                return Some((Ok::<_, actix_web::Error>(web::Bytes::from(frame)), (None, finished, rx, docent, id)));
            }
            if finished {
                return None;
            }
            // Events of other batches do not count: this stream must still show a sign of life.
            let deadline = tokio::time::Instant::now() + keep_alive;
            loop {
                let next = tokio::time::timeout_at(deadline, rx.recv()).await;
                let event = match next {
                    Err(_) => {
                        return Some((Ok(web::Bytes::from_static(KEEP_ALIVE.as_bytes())), (None, false, rx, docent, id)))
                    }
                    Ok(Ok(event)) if event.batch_id() == id => Some(event),
                    Ok(Ok(_)) => continue,
                    // Missed events (a slow client): the snapshot says where things stand.
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => None,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                };
                let ends_item =
                    !matches!(event, Some(BatchEvent::ItemStarted { .. } | BatchEvent::ItemProgress { .. }));
                let mut frame = event.as_ref().map(|e| sse(e.name(), e)).unwrap_or_default();
                let mut done = false;
                if ends_item {
                    // Checked in the caller's scope before the stream started.
                    if let Ok(batch) = docent.batch(&Scope::Open, &id).await {
                        done = batch.is_finished();
                        if done || event.is_none() {
                            frame.push_str(&sse("batch", &batch));
                        }
                    }
                }
                return Some((Ok(web::Bytes::from(frame)), (None, done, rx, docent, id)));
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// An SSE comment: a proxy that cuts idle connections sees traffic, an `EventSource` nothing.
pub(super) const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// One server-sent event.
pub(super) fn sse(name: &str, data: &impl serde::Serialize) -> String {
    format!("event: {name}\ndata: {}\n\n", serde_json::to_string(data).unwrap_or_default())
}

/// JSON Lines, one line per item in item order: the analysis of a done item, the error of a
/// failed one, the state of the others.
#[utoipa::path(tag = "batches", params(("id" = String, Path, description = "The batch's id")),
    responses((status = 200, description = "JSON Lines: one `ResultLine` per item, in item order", body = ResultLine,
               content_type = "application/x-ndjson"), BatchErrors))]
#[get("/batches/{id}/results")]
async fn batch_results(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let batch: Batch = state.docent.batch(&caller.scope, &id).await?;
    let docent = state.docent.clone();
    let stream = futures_util::stream::iter(batch.items).then(move |item| {
        let docent = docent.clone();
        async move {
            let line = docent.result_line(&item).await;
            let mut text = serde_json::to_string(&line).unwrap_or_default();
            text.push('\n');
            Ok::<_, actix_web::Error>(web::Bytes::from(text))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"batch-{id}.jsonl\"")))
        .streaming(stream))
}
