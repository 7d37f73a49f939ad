//! The API reference page: every operation of the OpenAPI document, rendered on the server from
//! the same document `/api/v1/openapi.json` serves (no script, nothing from a CDN).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{RefOr, Required};

use super::pages::render;
use super::{Caller, State};
use crate::error::AppResult;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api", web::get().to(reference_page));
}

#[derive(Serialize)]
struct ParamView<'a> {
    name: &'a str,
    place: &'static str,
    required: bool,
    description: &'a str,
}

#[derive(Serialize)]
struct ResponseView<'a> {
    status: &'a str,
    description: &'a str,
    media_types: Vec<&'a str>,
}

#[derive(Serialize)]
struct OperationView<'a> {
    method: &'static str,
    path: &'a str,
    anchor: String,
    tag: &'a str,
    summary: &'a str,
    description: &'a str,
    params: Vec<ParamView<'a>>,
    request_types: Vec<&'a str>,
    responses: Vec<ResponseView<'a>>,
}

#[derive(Serialize)]
struct ReferenceView<'a> {
    title: &'a str,
    version: &'a str,
    operations: Vec<OperationView<'a>>,
}

async fn reference_page(state: State, caller: Caller) -> AppResult<HttpResponse> {
    let doc = &state.openapi;
    let mut operations = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in methods {
            if let Some(op) = op {
                operations.push(operation(method, path, op));
            }
        }
    }
    let view = ReferenceView { title: &doc.info.title, version: &doc.info.version, operations };
    render(&state, Some(&caller), "api_reference.html", &view, 200)
}

fn operation<'a>(method: &'static str, path: &'a str, op: &'a Operation) -> OperationView<'a> {
    let params = op
        .parameters
        .iter()
        .flatten()
        .map(|p| ParamView {
            name: &p.name,
            place: match p.parameter_in {
                ParameterIn::Path => "path",
                ParameterIn::Query => "query",
                ParameterIn::Header => "header",
                ParameterIn::Cookie => "cookie",
            },
            required: matches!(p.required, Required::True),
            description: p.description.as_deref().unwrap_or_default(),
        })
        .collect();
    let responses = op
        .responses
        .responses
        .iter()
        .map(|(status, r)| match r {
            RefOr::T(r) => ResponseView {
                status,
                description: &r.description,
                media_types: r.content.keys().map(String::as_str).collect(),
            },
            RefOr::Ref(_) => ResponseView { status, description: "", media_types: Vec::new() },
        })
        .collect();
    OperationView {
        method,
        path,
        anchor: format!("{}{}", method.to_lowercase(), path.replace(['/', '{', '}', '.'], "-")),
        tag: op.tags.iter().flatten().next().map_or("", String::as_str),
        summary: op.summary.as_deref().unwrap_or_default(),
        description: op.description.as_deref().unwrap_or_default(),
        params,
        request_types: op.request_body.iter().flat_map(|b| b.content.keys().map(String::as_str)).collect(),
        responses,
    }
}
