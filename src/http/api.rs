//! JSON endpoints of API v1.

use actix_multipart::Multipart;
use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{upload, State};
use crate::domain::{PipelineKind, Task};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::pipeline::TaskSpec;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Malformed JSON gets the same error shape as every other error.
    let json = web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _| AppError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {err}")).into());
    cfg.app_data(json)
        .route("/documents", web::post().to(create_document))
        .route("/documents", web::get().to(list_documents))
        .route("/documents/{id}", web::get().to(get_document))
        .route("/documents/{id}", web::delete().to(delete_document))
        .route("/documents/{id}/text", web::get().to(get_text))
        .route("/documents/{id}/analyses", web::post().to(create_analysis))
        .route("/documents/{id}/analyses", web::get().to(list_analyses))
        .route("/analyses/{id}", web::get().to(get_analysis));
}

pub async fn healthz(state: State) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "model": state.docent.model_name()}))
}

async fn create_document(state: State, body: Multipart) -> AppResult<HttpResponse> {
    let up = upload::read(body, state.max_upload_bytes).await?;
    let doc = state.docent.ingest(&up.filename, up.bytes, up.password).await?;
    Ok(HttpResponse::Created().insert_header((header::LOCATION, format!("/api/v1/documents/{}", doc.id))).json(doc))
}

async fn list_documents(state: State) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.list_documents().await?))
}

async fn get_document(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.document(&id).await?))
}

async fn delete_document(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.delete_document(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn get_text(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    let doc = state.docent.text(&id).await?;
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(doc.text))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisRequest {
    #[serde(default = "default_pipeline")]
    pipeline: PipelineKind,
    task: Task,
    question: Option<String>,
}

fn default_pipeline() -> PipelineKind {
    PipelineKind::Full
}

async fn create_analysis(
    state: State,
    id: web::Path<String>,
    body: web::Json<AnalysisRequest>,
) -> AppResult<HttpResponse> {
    let req = body.into_inner();
    let spec = TaskSpec { task: req.task, question: req.question };
    let analysis = state.docent.analyze(&id, req.pipeline, spec).await?;
    Ok(HttpResponse::Ok().insert_header((header::LOCATION, format!("/api/v1/analyses/{}", analysis.id))).json(analysis))
}

async fn list_analyses(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.document(&id).await?;
    Ok(HttpResponse::Ok().json(state.docent.analyses_of(&id).await?))
}

async fn get_analysis(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.docent.analysis(&id).await?))
}
