//! The Evaluations page: past `docent eval` runs under the data dir, with their headline figures,
//! and each run's report and files.

use actix_web::{http::header, web, HttpResponse};
use serde::Serialize;

use super::pages::render;
use super::{Caller, State};
use crate::error::{AppError, AppResult};
use crate::eval::listing::{self, RunListing};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/evals", web::get().to(evals_page)).route("/evals/{run}/{file}", web::get().to(run_file));
}

#[derive(Serialize)]
struct EvalsView<'a> {
    runs: &'a [RunListing],
    dir: String,
}

async fn evals_page(state: State, caller: Caller) -> AppResult<HttpResponse> {
    let dir = state.evals_dir.clone();
    let runs = web::block(move || listing::list(&dir)).await.map_err(AppError::internal)??;
    render(
        &state,
        Some(&caller),
        "evals.html",
        &EvalsView { runs: &runs, dir: state.evals_dir.display().to_string() },
        200,
    )
}

/// A run's report or data. The report is docent's own file, every value in it escaped; the
/// policy still forbids scripts and remote loads in it.
async fn run_file(state: State, path: web::Path<(String, String)>) -> AppResult<HttpResponse> {
    let (run, file) = path.into_inner();
    let dir = state.evals_dir.clone();
    let (body, mime) = web::block(move || -> AppResult<_> {
        let (path, mime) = listing::file(&dir, &run, &file)?;
        Ok((fs_err::read(path).map_err(AppError::internal)?, mime))
    })
    .await
    .map_err(AppError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body))
}
