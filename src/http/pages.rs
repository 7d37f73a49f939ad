//! Server-rendered pages (tera). Templates get small view structs built here,
//! never domain types; tera escapes every value, so document text stays inert.

use actix_multipart::Multipart;
use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{upload, State};
use crate::domain::{Analysis, Document, PipelineKind, Task};
use crate::error::{AppError, AppResult};
use crate::pipeline::TaskSpec;
use crate::service::DocText;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("document.html", include_str!("../../templates/document.html")),
    ("analysis.html", include_str!("../../templates/analysis.html")),
];
const STYLE_CSS: &str = include_str!("../../static/style.css");
const APP_JS: &str = include_str!("../../static/app.js");

pub fn templates() -> anyhow::Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    tera.add_raw_templates(TEMPLATES.iter().copied())?;
    tera.autoescape_on(vec![".html"]);
    Ok(tera)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/upload", web::post().to(upload_form))
        .route("/documents/{id}", web::get().to(document_page))
        .route("/documents/{id}/analyze", web::post().to(analyze_form))
        .route("/documents/{id}/delete", web::post().to(delete_form))
        .route("/analyses/{id}", web::get().to(analysis_page))
        .route("/static/style.css", web::get().to(|| async { asset("text/css", STYLE_CSS) }))
        .route("/static/app.js", web::get().to(|| async { asset("text/javascript", APP_JS) }));
}

fn asset(mime: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(format!("{mime}; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

fn render(state: &State, name: &str, view: &impl Serialize, status: u16) -> AppResult<HttpResponse> {
    let ctx = tera::Context::from_serialize(view).map_err(AppError::internal)?;
    let html = state.tera.render(name, &ctx).map_err(AppError::internal)?;
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html))
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

#[derive(Serialize)]
struct ErrorView<'a> {
    code: &'a str,
    message: &'a str,
}

impl<'a> From<&'a AppError> for ErrorView<'a> {
    fn from(e: &'a AppError) -> Self {
        Self { code: e.code.as_str(), message: &e.message }
    }
}

#[derive(Serialize)]
struct DocRow<'a> {
    id: &'a str,
    filename: &'a str,
    media_type: &'a str,
    pages: u32,
    words: usize,
    tokens: Option<usize>,
    created_at: &'a str,
    warnings: &'a [String],
}

impl<'a> From<&'a Document> for DocRow<'a> {
    fn from(d: &'a Document) -> Self {
        Self {
            id: &d.id,
            filename: &d.filename,
            media_type: &d.media_type,
            pages: d.pages,
            words: d.words,
            tokens: d.tokens,
            created_at: d.created_at.get(..16).unwrap_or(&d.created_at),
            warnings: &d.warnings,
        }
    }
}

#[derive(Serialize)]
struct IndexView<'a> {
    model: &'a str,
    documents: Vec<DocRow<'a>>,
    error: Option<ErrorView<'a>>,
}

async fn index(state: State) -> AppResult<HttpResponse> {
    index_with(&state, None).await
}

async fn index_with(state: &State, error: Option<&AppError>) -> AppResult<HttpResponse> {
    let docs = state.docent.list_documents().await?;
    let view = IndexView {
        model: state.docent.model_name(),
        documents: docs.iter().map(DocRow::from).collect(),
        error: error.map(ErrorView::from),
    };
    render(state, "index.html", &view, error.map_or(200, |e| e.code.status()))
}

async fn upload_form(state: State, body: Multipart) -> AppResult<HttpResponse> {
    let result = match upload::read(body, state.max_upload_bytes).await {
        Ok(up) => state.docent.ingest(&up.filename, up.bytes, up.password).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(doc) => Ok(see_other(format!("/documents/{}", doc.id))),
        Err(e) => index_with(&state, Some(&e)).await,
    }
}

/// One page of the document, cut into plain runs and marked (cited) runs.
#[derive(Serialize)]
struct PageView<'a> {
    number: u32,
    pieces: Vec<Piece<'a>>,
}

#[derive(Serialize)]
struct Piece<'a> {
    text: &'a str,
    /// Anchor id of a cited span, its citation ids, and whether all are valid.
    anchor: Option<String>,
    cites: String,
    valid: bool,
}

/// Cut each page at the cited spans. Spans are whole segments, which never
/// overlap, so sorting by start is enough.
fn page_views<'a>(doc: &'a DocText, marks: &[(usize, usize, String, bool)]) -> Vec<PageView<'a>> {
    doc.pages
        .iter()
        .map(|p| {
            let mut pieces = Vec::new();
            let mut at = p.start;
            for (start, end, cites, valid) in marks.iter().filter(|m| m.0 >= p.start && m.1 <= p.end) {
                if *start < at {
                    continue;
                }
                if let Some(t) = doc.text.get(at..*start) {
                    pieces.push(Piece { text: t, anchor: None, cites: String::new(), valid: true });
                }
                if let Some(t) = doc.text.get(*start..*end) {
                    let anchor = Some(format!("span-{start}-{end}"));
                    pieces.push(Piece { text: t, anchor, cites: cites.clone(), valid: *valid });
                    at = *end;
                }
            }
            if let Some(t) = doc.text.get(at..p.end) {
                pieces.push(Piece { text: t, anchor: None, cites: String::new(), valid: true });
            }
            PageView { number: p.number, pieces }
        })
        .collect()
}

#[derive(Serialize)]
struct AnalysisRow<'a> {
    id: &'a str,
    task: &'a str,
    question: Option<&'a str>,
    created_at: &'a str,
    valid: usize,
    total: usize,
}

#[derive(Serialize)]
struct DocumentView<'a> {
    doc: DocRow<'a>,
    pages: Vec<PageView<'a>>,
    analyses: Vec<AnalysisRow<'a>>,
    error: Option<ErrorView<'a>>,
}

fn task_name(t: Task) -> &'static str {
    match t {
        Task::Summary => "summary",
        Task::Question => "question",
    }
}

async fn document_page(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    document_with(&state, &id, None).await
}

async fn document_with(state: &State, id: &str, error: Option<&AppError>) -> AppResult<HttpResponse> {
    let doc = state.docent.document(id).await?;
    let text = state.docent.text(id).await?;
    let analyses = state.docent.analyses_of(id).await?;
    let view = DocumentView {
        doc: DocRow::from(&doc),
        pages: page_views(&text, &[]),
        analyses: analyses
            .iter()
            .map(|a| AnalysisRow {
                id: &a.id,
                task: task_name(a.task),
                question: a.question.as_deref(),
                created_at: a.created_at.get(..19).unwrap_or(&a.created_at),
                valid: a.citations.iter().filter(|c| c.valid).count(),
                total: a.citations.len(),
            })
            .collect(),
        error: error.map(ErrorView::from),
    };
    render(state, "document.html", &view, error.map_or(200, |e| e.code.status()))
}

#[derive(Deserialize)]
struct AnalyzeForm {
    task: Task,
    question: Option<String>,
}

async fn analyze_form(state: State, id: web::Path<String>, form: web::Form<AnalyzeForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let spec = TaskSpec { task: form.task, question: form.question };
    match state.docent.analyze(&id, PipelineKind::Full, spec).await {
        Ok(a) => Ok(see_other(format!("/analyses/{}", a.id))),
        Err(e) => document_with(&state, &id, Some(&e)).await,
    }
}

async fn delete_form(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.delete_document(&id).await?;
    Ok(see_other("/".to_owned()))
}

#[derive(Serialize)]
struct CiteLink {
    id: u32,
    anchor: String,
    page: u32,
    valid: bool,
    reason: Option<String>,
    quote: String,
}

#[derive(Serialize)]
struct SentenceView<'a> {
    text: &'a str,
    cites: Vec<CiteLink>,
}

#[derive(Serialize)]
struct AnalysisView<'a> {
    id: &'a str,
    doc: DocRow<'a>,
    task: &'a str,
    question: Option<&'a str>,
    model: &'a str,
    sentences: Vec<SentenceView<'a>>,
    valid: usize,
    total: usize,
    prompt_tokens: usize,
    completion_tokens: usize,
    prefill: String,
    decode: String,
    elapsed: String,
    pages: Vec<PageView<'a>>,
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

async fn analysis_page(state: State, id: web::Path<String>) -> AppResult<HttpResponse> {
    let a: Analysis = state.docent.analysis(&id).await?;
    let doc = state.docent.document(&a.document_id).await?;
    let text = state.docent.text(&a.document_id).await?;
    let link = |cid: &u32| {
        a.citations.iter().find(|c| c.id == *cid).map(|c| CiteLink {
            id: c.id,
            anchor: format!("span-{}-{}", c.start, c.end),
            page: c.page,
            valid: c.valid,
            reason: c.reason.clone(),
            quote: c.quote.clone(),
        })
    };
    let mut marks: Vec<(usize, usize, String, bool)> = Vec::new();
    for c in a.citations.iter().filter(|c| c.end > c.start) {
        match marks.iter_mut().find(|m| m.0 == c.start && m.1 == c.end) {
            Some(m) => {
                m.2.push_str(&format!(" {}", c.id));
                m.3 &= c.valid;
            }
            None => marks.push((c.start, c.end, c.id.to_string(), c.valid)),
        }
    }
    marks.sort_by_key(|m| m.0);
    let view = AnalysisView {
        id: &a.id,
        doc: DocRow::from(&doc),
        task: task_name(a.task),
        question: a.question.as_deref(),
        model: &a.model,
        sentences: a
            .answer
            .sentences
            .iter()
            .map(|s| SentenceView { text: &s.text, cites: s.citations.iter().filter_map(link).collect() })
            .collect(),
        valid: a.citations.iter().filter(|c| c.valid).count(),
        total: a.citations.len(),
        prompt_tokens: a.usage.prompt_tokens,
        completion_tokens: a.usage.completion_tokens,
        prefill: seconds(a.timings.prefill_ms),
        decode: seconds(a.timings.decode_ms),
        elapsed: seconds(a.timings.total_ms),
        pages: page_views(&text, &marks),
    };
    render(&state, "analysis.html", &view, 200)
}
