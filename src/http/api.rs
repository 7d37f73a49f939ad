//! JSON endpoints of API v1.

use actix_multipart::Multipart;
use actix_web::{delete, get, http::header, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::batches::sse;
use super::openapi::{
    AnalysisErrors, AnalysisNotFoundErrors, ComparisonNotFoundErrors, DeleteErrors, DocumentErrors, ReadErrors,
    SearchErrors, UploadErrors,
};
use super::{upload, Caller, State};
use crate::domain::{Analysis, Comparison, Document, PipelineKind, Task};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::llm::Progress;
use crate::pipeline::TaskSpec;
use crate::service::ChunkedModel;

/// The document routes of API v1, each with its OpenAPI operation.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // Malformed JSON gets the same error shape as every other error.
    let json = web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _| AppError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {err}")).into());
    cfg.app_data(json)
        .service(create_document)
        .service(list_documents)
        .service(get_document)
        .service(delete_document)
        .service(get_text)
        .service(create_analysis)
        .service(list_analyses)
        .service(search)
        .service(create_comparison)
        .service(get_analysis)
        .service(get_comparison);
}

/// An upload: one `file` part, and `password` for an encrypted PDF.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// A PDF, a UTF-8/UTF-16 text or a Markdown file, up to `--max-upload-mb`.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// The password that opens an encrypted PDF.
    password: Option<String>,
}

pub async fn healthz(state: State) -> HttpResponse {
    let docent = &state.docent;
    HttpResponse::Ok()
        .json(json!({"status": "ok", "model": docent.model_name(), "baseline_model": docent.baseline_model_name()}))
}

/// Prometheus' text format, for any caller the API would serve (keys as for the API).
pub async fn metrics(state: State, _caller: Caller) -> AppResult<HttpResponse> {
    let text = state.docent.metrics_text().await?;
    Ok(HttpResponse::Ok().content_type(crate::metrics::CONTENT_TYPE).body(text))
}

#[utoipa::path(tag = "documents", request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Parsed and stored", body = Document,
         headers(("Location" = String, description = "The document's URL"))),
        UploadErrors,
    ))]
#[post("/documents")]
/// Upload a document: it is parsed, its tokens counted, and stored.
async fn create_document(state: State, caller: Caller, body: Multipart) -> AppResult<HttpResponse> {
    let up = upload::read(body, state.max_upload_bytes).await?;
    let doc = state.docent.ingest(&caller.scope, &up.filename, up.bytes, up.password).await?;
    Ok(HttpResponse::Created().insert_header((header::LOCATION, format!("/api/v1/documents/{}", doc.id))).json(doc))
}

#[utoipa::path(tag = "documents", responses((status = 200, description = "The caller's documents, newest first", body = Vec<Document>), ReadErrors))]
#[get("/documents")]
/// List documents.
async fn list_documents(state: State, caller: Caller) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.list_documents(&caller.scope).await?))
}

#[utoipa::path(tag = "documents", params(("id" = String, Path, description = "The document's id")),
    responses((status = 200, description = "The document", body = Document), DocumentErrors))]
#[get("/documents/{id}")]
/// A document's metadata.
async fn get_document(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.document(&caller.scope, &id).await?))
}

#[utoipa::path(tag = "documents", params(("id" = String, Path, description = "The document's id")),
    responses((status = 204, description = "Deleted, with its analyses and index entries"), DeleteErrors))]
#[delete("/documents/{id}")]
/// Delete a document.
async fn delete_document(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.delete_document(&caller.scope, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "documents", params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The normalised text every offset refers to", body = String,
         content_type = "text/plain"),
        DocumentErrors,
    ))]
#[get("/documents/{id}/text")]
/// A document's normalised text.
async fn get_text(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let doc = state.docent.text(&caller.scope, &id).await?;
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(doc.text))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AnalysisRequest {
    #[serde(default = "default_pipeline")]
    pipeline: PipelineKind,
    task: Task,
    question: Option<String>,
    /// For `"pipeline": "chunked"`: the baseline model (default) or the full-context one.
    #[serde(default)]
    chunked_model: ChunkedModel,
}

fn default_pipeline() -> PipelineKind {
    PipelineKind::Full
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CompareRequest {
    task: Task,
    question: Option<String>,
    #[serde(default)]
    chunked_model: ChunkedModel,
}

/// What a search answers.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SearchResults {
    document_id: String,
    query: String,
    k: usize,
    results: Vec<crate::index::Hit>,
}

#[derive(Debug, Deserialize, IntoParams)]
struct SearchQuery {
    /// The query (BM25 over the document's chunks).
    q: Option<String>,
    /// How many chunks, 1 to 50 (default 8).
    k: Option<usize>,
}

#[utoipa::path(tag = "analyses", params(("id" = String, Path, description = "The document's id")),
    request_body = AnalysisRequest,
    responses(
        (status = 200, description = "The stored analysis; with `Accept: text/event-stream`, server-sent events \
                                      (`prefill`, `text`, then `analysis` or `error`, and a `: keep-alive` comment every 15 s)",
         headers(("Location" = String, description = "The analysis's URL (JSON only)")),
         content((Analysis = "application/json"), (String = "text/event-stream"))),
        AnalysisErrors,
    ))]
#[post("/documents/{id}/analyses")]
/// Run a pipeline on a document: a summary, or the answer to a question, with verified citations.
async fn create_analysis(
    state: State,
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<AnalysisRequest>,
) -> AppResult<HttpResponse> {
    let req = body.into_inner();
    let spec = TaskSpec { task: req.task, question: req.question };
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("text/event-stream") {
        return stream_analysis(&state, caller, id.into_inner(), req.pipeline, spec, req.chunked_model).await;
    }
    let analysis = state.docent.analyze(&caller.scope, &id, req.pipeline, spec, req.chunked_model).await?;
    Ok(HttpResponse::Ok().insert_header((header::LOCATION, format!("/api/v1/analyses/{}", analysis.id))).json(analysis))
}

/// One analysis as server-sent events: `prefill` (`{done, total, elapsed_ms}`: prompt tokens in the
/// model's cache so far) while the engine reads the document, `text` (`{text}`) as the answer is
/// written, then `analysis` (the stored Analysis, as the JSON endpoint returns it) or `error`
/// (`{code, message}`). An engine that cannot report progress sends only the last event. The
/// analysis is stored whether or not the client is still listening.
async fn stream_analysis(
    state: &State,
    caller: Caller,
    id: String,
    kind: PipelineKind,
    spec: TaskSpec,
    model: ChunkedModel,
) -> AppResult<HttpResponse> {
    // A missing document is a plain 404, before the stream starts.
    state.docent.document(&caller.scope, &id).await?;
    let (docent, keep_alive) = (state.docent.clone(), state.keep_alive);
    let (frames, outbox) = tokio::sync::mpsc::unbounded_channel::<String>();
    super::observe::spawn_in_request(&state.runtime, async move {
        let started = std::time::Instant::now();
        let frame = |p: Progress| {
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match p {
                Progress::Prefill { done, total } => {
                    sse("prefill", &json!({"done": done, "total": total, "elapsed_ms": elapsed_ms}))
                }
                Progress::Text { text } => sse("text", &json!({"text": text})),
            }
        };
        let (tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
        let scope = caller.scope;
        let work = crate::llm::PROGRESS.scope(tx, async move { docent.analyze(&scope, &id, kind, spec, model).await });
        tokio::pin!(work);
        // A long prefill on an engine that reports no progress would leave the stream silent.
        let mut idle = tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
        let result = loop {
            tokio::select! {
                Some(p) = progress.recv() => { let _ = frames.send(frame(p)); }
                _ = idle.tick() => { let _ = frames.send(super::batches::KEEP_ALIVE.to_owned()); }
                result = &mut work => break result,
            }
        };
        while let Ok(p) = progress.try_recv() {
            let _ = frames.send(frame(p));
        }
        let last = match result {
            Ok(analysis) => sse("analysis", &analysis),
            Err(e) => {
                super::log_error(&e);
                sse("error", &super::error_body(&e))
            }
        };
        let _ = frames.send(last);
    });
    let stream = futures_util::stream::unfold(outbox, |mut outbox| async move {
        outbox.recv().await.map(|f| (Ok::<_, actix_web::Error>(web::Bytes::from(f)), outbox))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

#[utoipa::path(tag = "analyses", params(("id" = String, Path, description = "The document's id")),
    responses((status = 200, description = "The document's analyses, newest first", body = Vec<Analysis>), DocumentErrors))]
#[get("/documents/{id}/analyses")]
/// List a document's analyses.
async fn list_analyses(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.document(&caller.scope, &id).await?;
    Ok(HttpResponse::Ok().json(state.docent.analyses_of(&caller.scope, &id).await?))
}

#[utoipa::path(tag = "analyses", params(("id" = String, Path, description = "The analysis's id")),
    responses((status = 200, description = "The analysis", body = Analysis), AnalysisNotFoundErrors))]
#[get("/analyses/{id}")]
/// An analysis.
async fn get_analysis(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.analysis(&caller.scope, &id).await?))
}

#[utoipa::path(tag = "documents", params(("id" = String, Path, description = "The document's id"), SearchQuery),
    responses((status = 200, description = "`{document_id, query, k, results: [Hit]}`, best first", body = SearchResults), SearchErrors))]
#[get("/documents/{id}/search")]
/// Search a document's chunks (BM25), with highlighted snippets.
async fn search(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<SearchQuery>,
) -> AppResult<HttpResponse> {
    let q = query.q.as_deref().unwrap_or_default();
    let k = query.k.unwrap_or(8);
    let hits = state.docent.search(&caller.scope, &id, q, k).await?;
    Ok(HttpResponse::Ok().json(json!({"document_id": id.as_str(), "query": q.trim(), "k": k, "results": hits})))
}

#[utoipa::path(tag = "analyses", params(("id" = String, Path, description = "The document's id")),
    request_body = CompareRequest,
    responses(
        (status = 200, description = "Both pipelines' answers and what their citations share", body = Comparison,
         headers(("Location" = String, description = "The comparison's URL"))),
        AnalysisErrors,
    ))]
#[post("/documents/{id}/compare")]
/// The same task through the full-context and the chunked pipeline.
async fn create_comparison(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<CompareRequest>,
) -> AppResult<HttpResponse> {
    let req = body.into_inner();
    let spec = TaskSpec { task: req.task, question: req.question };
    let comparison = state.docent.compare(&caller.scope, &id, spec, req.chunked_model).await?;
    let location = format!("/api/v1/comparisons/{}", comparison.id);
    Ok(HttpResponse::Ok().insert_header((header::LOCATION, location)).json(comparison))
}

#[utoipa::path(tag = "analyses", params(("id" = String, Path, description = "The comparison's id")),
    responses((status = 200, description = "The comparison", body = Comparison), ComparisonNotFoundErrors))]
#[get("/comparisons/{id}")]
/// A comparison.
async fn get_comparison(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.comparison(&caller.scope, &id).await?))
}
