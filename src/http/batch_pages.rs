//! The batch pages: submit files or a folder, watch items end live (server-sent events when
//! JavaScript runs, a refresh when it does not), download the results.

use actix_multipart::Multipart;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::pages::{render, see_other, task_name, ErrorView};
use super::{batches, upload, Caller, State};
use crate::domain::{BatchItem, BatchOptions, ChunkedModel, PipelineKind, Task};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::BatchSource;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/batches", web::get().to(batches_page))
        .route("/batches", web::post().to(submit_form))
        .route("/batches/{id}", web::get().to(batch_page))
        .route("/batches/{id}/cancel", web::post().to(cancel_form));
}

#[derive(Serialize)]
struct BatchRow<'a> {
    id: &'a str,
    status: &'a str,
    total: usize,
    done: usize,
    failed: usize,
    created_at: &'a str,
}

#[derive(Serialize)]
struct BatchesView<'a> {
    batches: Vec<BatchRow<'a>>,
    max_upload_mb: usize,
    error: Option<ErrorView<'a>>,
}

async fn batches_page(state: State, caller: Caller) -> AppResult<HttpResponse> {
    batches_with(&state, &caller, None).await
}

async fn batches_with(state: &State, caller: &Caller, error: Option<&AppError>) -> AppResult<HttpResponse> {
    let batches = state.docent.batches(&caller.scope).await?;
    let view = BatchesView {
        batches: batches
            .iter()
            .map(|b| BatchRow {
                id: &b.id,
                status: b.status.as_str(),
                total: b.total,
                done: b.done,
                failed: b.failed,
                created_at: b.created_at.get(..16).unwrap_or(&b.created_at),
            })
            .collect(),
        max_upload_mb: state.max_upload_bytes / (1024 * 1024),
        error: error.map(ErrorView::from),
    };
    render(state, Some(caller), "batches.html", &view, error.map_or(200, |e| e.code.status()))
}

/// The form's fields as batch options: checked pipelines, task, question, chunked model.
fn form_options(form: &[(String, String)]) -> AppResult<BatchOptions> {
    let bad = |m: String| AppError::new(ErrorCode::InvalidRequest, m);
    let parse = |v: &str| serde_json::Value::String(v.trim().to_owned());
    let mut options = BatchOptions {
        pipelines: Vec::new(),
        task: Task::Summary,
        question: None,
        chunked_model: ChunkedModel::Baseline,
    };
    for (name, value) in form {
        match name.as_str() {
            "pipeline" => options.pipelines.push(
                serde_json::from_value::<PipelineKind>(parse(value))
                    .map_err(|_| bad(format!("unknown pipeline {value:?}")))?,
            ),
            "task" => {
                options.task =
                    serde_json::from_value(parse(value)).map_err(|_| bad(format!("unknown task {value:?}")))?
            }
            "question" => options.question = Some(value.clone()),
            "chunked_model" => {
                options.chunked_model =
                    serde_json::from_value(parse(value)).map_err(|_| bad(format!("unknown model {value:?}")))?
            }
            _ => {}
        }
    }
    if options.task == Task::Summary {
        options.question = None;
    }
    Ok(options)
}

async fn submit_form(state: State, caller: Caller, body: Multipart) -> AppResult<HttpResponse> {
    let max = state.max_upload_bytes;
    let submitted = async {
        let up = upload::read_batch(body, max, max * batches::TOTAL_UPLOAD_FACTOR).await?;
        let options = match &up.options {
            Some(json) => batches::parse_options(Some(json))?,
            None => form_options(&up.form)?,
        };
        state.docent.submit_batch(&caller.scope, BatchSource::Uploads(up.files), options, None).await
    }
    .await;
    match submitted {
        Ok((batch, _)) => Ok(see_other(format!("/batches/{}", batch.id))),
        Err(e) => batches_with(&state, &caller, Some(&e)).await,
    }
}

#[derive(Serialize)]
struct ItemRow<'a> {
    index: usize,
    filename: &'a str,
    document_id: &'a str,
    pipeline: &'a str,
    state: &'a str,
    attempts: u32,
    analysis_id: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}

impl<'a> From<&'a BatchItem> for ItemRow<'a> {
    fn from(i: &'a BatchItem) -> Self {
        Self {
            index: i.index,
            filename: &i.filename,
            document_id: &i.document_id,
            pipeline: i.pipeline.as_str(),
            state: i.state.as_str(),
            attempts: i.attempts,
            analysis_id: i.analysis_id.as_deref(),
            error_code: i.error.as_ref().map(|e| e.code.as_str()),
            error_message: i.error.as_ref().map(|e| e.message.as_str()),
        }
    }
}

#[derive(Serialize)]
struct BatchView<'a> {
    id: &'a str,
    status: &'a str,
    finished: bool,
    total: usize,
    queued: usize,
    running: usize,
    done: usize,
    failed: usize,
    cancelled: usize,
    task: &'a str,
    question: Option<&'a str>,
    items: Vec<ItemRow<'a>>,
    error: Option<ErrorView<'a>>,
}

async fn batch_page(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = state.docent.batch(&caller.scope, &id).await?;
    let view = BatchView {
        id: &b.id,
        status: b.status.as_str(),
        finished: b.is_finished(),
        total: b.total,
        queued: b.queued,
        running: b.running,
        done: b.done,
        failed: b.failed,
        cancelled: b.cancelled,
        task: task_name(b.options.task),
        question: b.options.question.as_deref(),
        items: b.items.iter().map(ItemRow::from).collect(),
        error: None,
    };
    render(&state, Some(&caller), "batch.html", &view, 200)
}

async fn cancel_form(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.cancel_batch(&caller.scope, &id).await?;
    Ok(see_other(format!("/batches/{id}")))
}
