//! The HTTP front end: JSON API under /api/v1, server-rendered pages, static
//! assets. Handlers extract, call one service operation, map the result.

mod api;
mod api_page;
pub mod auth;
mod batch_pages;
mod batches;
mod eval_pages;
pub mod observe;
pub mod openapi;
mod pages;
mod upload;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{AppError, ErrorCode};
pub use crate::service::Caller;
use crate::service::Docent;

/// Everything handlers share, passed down explicitly.
pub struct AppState {
    pub docent: Arc<Docent>,
    pub tera: tera::Tera,
    pub max_upload_bytes: usize,
    /// Where `docent eval` writes its runs by default (`<data dir>/evals`).
    pub evals_dir: std::path::PathBuf,
    /// How often idle event streams send `: keep-alive`.
    pub keep_alive: std::time::Duration,
    /// On shutdown, how long requests in progress may take.
    pub shutdown_grace: std::time::Duration,
    /// The runtime that outlives the HTTP workers, for work a request leaves running.
    pub runtime: tokio::runtime::Handle,
    /// The OpenAPI document of API v1, and its JSON as served.
    pub openapi: utoipa::openapi::OpenApi,
    pub openapi_json: String,
}

pub type State = web::Data<AppState>;

impl AppState {
    /// Call on the runtime that outlives the HTTP workers (`build_state` does).
    pub fn new(docent: Arc<Docent>, settings: &crate::config::Settings) -> anyhow::Result<Arc<Self>> {
        let openapi = openapi::document();
        Ok(Arc::new(Self {
            docent,
            tera: pages::templates()?,
            max_upload_bytes: settings.max_upload_bytes,
            evals_dir: settings.data_dir.join("evals"),
            keep_alive: settings.sse_keep_alive,
            shutdown_grace: settings.shutdown_grace,
            runtime: tokio::runtime::Handle::try_current()?,
            openapi_json: openapi.to_json()?,
            openapi,
        }))
    }
}

/// API v1: every route registers through utoipa-actix-web with its OpenAPI operation, so that
/// the document (`openapi::document`) is made from the same calls as the router.
pub fn api_v1(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/api/v1").configure(api::routes).configure(batches::routes).service(openapi::openapi_json),
    );
}

/// Routes for the API, the pages and the static assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    utoipa_actix_web::service_config::ServiceConfig::new(cfg).configure(api_v1);
    cfg.route("/healthz", web::get().to(api::healthz))
        .route("/metrics", web::get().to(api::metrics))
        .configure(auth::routes)
        .configure(pages::routes)
        .configure(api_page::routes)
        .configure(batch_pages::routes)
        .configure(eval_pages::routes);
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        log_error(self);
        let mut resp = HttpResponse::build(self.status_code());
        if self.code == ErrorCode::EngineBusy {
            resp.insert_header((header::RETRY_AFTER, "10"));
        }
        resp.json(json!({"error": error_body(self)}))
    }
}

/// The client's view of an error: its stable code, the message, and the id of the request, which
/// the server's log lines of that request carry too.
pub(super) fn error_body(e: &AppError) -> serde_json::Value {
    let mut body = json!({"code": e.code.as_str(), "message": e.message});
    if let (Some(id), Some(map)) = (observe::current_request_id(), body.as_object_mut()) {
        map.insert("request_id".to_owned(), id.into());
    }
    body
}

/// The log gets the cause chain; the client only the code and message.
pub(super) fn log_error(e: &AppError) {
    match (&e.cause, e.code.status() >= 500) {
        (Some(cause), true) => tracing::error!(code = e.code.as_str(), cause = %format!("{cause:#}"), "{}", e.message),
        (Some(cause), false) => tracing::info!(code = e.code.as_str(), cause = %format!("{cause:#}"), "{}", e.message),
        (None, _) => tracing::info!(code = e.code.as_str(), "{}", e.message),
    }
}
