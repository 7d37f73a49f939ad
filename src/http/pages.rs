//! Server-rendered pages (tera). Templates get small view structs built here,
//! never domain types; tera escapes every value, so document text stays inert.

use actix_multipart::Multipart;
use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::SessionView;
use super::{upload, Caller, State};
use crate::domain::{Analysis, Comparison, Document, PipelineKind, Retrieval, Side, Task};
use crate::error::{AppError, AppResult};
use crate::pipeline::TaskSpec;
use crate::service::{ChunkedModel, DocText};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("_answer.html", include_str!("../../templates/_answer.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("document.html", include_str!("../../templates/document.html")),
    ("analysis.html", include_str!("../../templates/analysis.html")),
    ("compare.html", include_str!("../../templates/compare.html")),
    ("batches.html", include_str!("../../templates/batches.html")),
    ("batch.html", include_str!("../../templates/batch.html")),
    ("evals.html", include_str!("../../templates/evals.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("api_reference.html", include_str!("../../templates/api_reference.html")),
];
const STYLE_CSS: &str = include_str!("../../static/style.css");
const APP_JS: &str = include_str!("../../static/app.js");
const VIEWER_JS: &str = include_str!("../../static/viewer.mjs");
/// PDF.js, when scripts/fetch-pdfjs.sh vendored it before the build (see build.rs).
#[cfg(docent_pdfjs)]
const PDFJS: Option<(&str, &str)> = Some((
    include_str!("../../static/vendor/pdfjs/pdf.min.mjs"),
    include_str!("../../static/vendor/pdfjs/pdf.worker.min.mjs"),
));
#[cfg(not(docent_pdfjs))]
const PDFJS: Option<(&str, &str)> = None;

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
        .route("/documents/{id}/compare", web::post().to(compare_form))
        .route("/analyses/{id}", web::get().to(analysis_page))
        .route("/comparisons/{id}", web::get().to(comparison_page))
        .route("/static/style.css", web::get().to(|| async { asset("text/css", STYLE_CSS) }))
        .route("/static/app.js", web::get().to(|| async { asset("text/javascript", APP_JS) }))
        .route("/static/viewer.mjs", web::get().to(|| async { asset("text/javascript", VIEWER_JS) }))
        .route("/documents/{id}/original", web::get().to(original));
    if let Some((library, worker)) = PDFJS {
        cfg.route(
            "/static/vendor/pdfjs/pdf.min.mjs",
            web::get().to(move || async move { asset("text/javascript", library) }),
        )
        .route(
            "/static/vendor/pdfjs/pdf.worker.min.mjs",
            web::get().to(move || async move { asset("text/javascript", worker) }),
        );
    }
}

/// The uploaded file as it came, for the original-page view and for download. Never rendered
/// as a page of this site: a sandbox policy and no type sniffing.
async fn original(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (doc, bytes) = state.docent.original(&caller.scope, &id).await?;
    let name: String =
        doc.filename.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    Ok(HttpResponse::Ok()
        .content_type(doc.media_type.as_str())
        .insert_header((header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .body(bytes))
}

fn asset(mime: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(format!("{mime}; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

/// Render a page; every page also gets `session` (the CSRF token for its forms, who is signed in).
pub(super) fn render(
    state: &State,
    caller: Option<&Caller>,
    name: &str,
    view: &impl Serialize,
    status: u16,
) -> AppResult<HttpResponse> {
    let mut ctx = tera::Context::from_serialize(view).map_err(AppError::internal)?;
    ctx.insert("session", &SessionView::of(caller));
    let html = state.tera.render(name, &ctx).map_err(AppError::internal)?;
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html))
}

pub(super) fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

#[derive(Serialize)]
pub struct ErrorView<'a> {
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

async fn index(state: State, caller: Caller) -> AppResult<HttpResponse> {
    index_with(&state, &caller, None).await
}

async fn index_with(state: &State, caller: &Caller, error: Option<&AppError>) -> AppResult<HttpResponse> {
    let docs = state.docent.list_documents(&caller.scope).await?;
    let view = IndexView {
        model: state.docent.model_name(),
        documents: docs.iter().map(DocRow::from).collect(),
        error: error.map(ErrorView::from),
    };
    render(state, Some(caller), "index.html", &view, error.map_or(200, |e| e.code.status()))
}

async fn upload_form(state: State, caller: Caller, body: Multipart) -> AppResult<HttpResponse> {
    let result = match upload::read(body, state.max_upload_bytes).await {
        Ok(up) => state.docent.ingest(&caller.scope, &up.filename, up.bytes, up.password).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(doc) => Ok(see_other(format!("/documents/{}", doc.id))),
        Err(e) => index_with(&state, &caller, Some(&e)).await,
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
    pipeline: &'a str,
    model: &'a str,
    task: &'a str,
    question: Option<&'a str>,
    created_at: &'a str,
    valid: usize,
    total: usize,
    /// The answer's sentences, for the history of questions on the document page.
    sentences: Vec<&'a str>,
}

#[derive(Serialize)]
struct DocumentView<'a> {
    doc: DocRow<'a>,
    model: &'a str,
    baseline_model: &'a str,
    pages: Vec<PageView<'a>>,
    analyses: Vec<AnalysisRow<'a>>,
    error: Option<ErrorView<'a>>,
}

pub(super) fn task_name(t: Task) -> &'static str {
    match t {
        Task::Summary => "summary",
        Task::Question => "question",
    }
}

async fn document_page(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    document_with(&state, &caller, &id, None).await
}

async fn document_with(state: &State, caller: &Caller, id: &str, error: Option<&AppError>) -> AppResult<HttpResponse> {
    let doc = state.docent.document(&caller.scope, id).await?;
    let text = state.docent.text(&caller.scope, id).await?;
    let analyses = state.docent.analyses_of(&caller.scope, id).await?;
    let view = DocumentView {
        doc: DocRow::from(&doc),
        model: state.docent.model_name(),
        baseline_model: state.docent.baseline_model_name(),
        pages: page_views(&text, &[]),
        analyses: analyses
            .iter()
            .map(|a| AnalysisRow {
                id: &a.id,
                pipeline: a.pipeline.as_str(),
                model: &a.model,
                task: task_name(a.task),
                question: a.question.as_deref(),
                created_at: a.created_at.get(..19).unwrap_or(&a.created_at),
                valid: a.citations.iter().filter(|c| c.valid).count(),
                total: a.citations.len(),
                sentences: a.answer.sentences.iter().map(|s| s.text.as_str()).collect(),
            })
            .collect(),
        error: error.map(ErrorView::from),
    };
    render(state, Some(caller), "document.html", &view, error.map_or(200, |e| e.code.status()))
}

#[derive(Deserialize)]
struct AnalyzeForm {
    task: Task,
    question: Option<String>,
    /// `full` (default), `chunked` (baseline model) or `chunked_same` (full-context model).
    pipeline: Option<String>,
}

fn pipeline_choice(name: Option<&str>) -> (PipelineKind, ChunkedModel) {
    match name {
        Some("chunked") => (PipelineKind::Chunked, ChunkedModel::Baseline),
        Some("chunked_same") => (PipelineKind::Chunked, ChunkedModel::Same),
        _ => (PipelineKind::Full, ChunkedModel::Baseline),
    }
}

async fn analyze_form(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<AnalyzeForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let (kind, model) = pipeline_choice(form.pipeline.as_deref());
    let spec = TaskSpec { task: form.task, question: form.question };
    match state.docent.analyze(&caller.scope, &id, kind, spec, model).await {
        Ok(a) => Ok(see_other(format!("/analyses/{}", a.id))),
        Err(e) => document_with(&state, &caller, &id, Some(&e)).await,
    }
}

async fn delete_form(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    state.docent.delete_document(&caller.scope, &id).await?;
    Ok(see_other("/".to_owned()))
}

#[derive(Serialize)]
struct CiteLink {
    label: String,
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

/// One answer with its citations and costs, as the analysis and compare pages show it.
#[derive(Serialize)]
struct AnswerView<'a> {
    id: &'a str,
    pipeline: &'a str,
    model: &'a str,
    sentences: Vec<SentenceView<'a>>,
    valid: usize,
    total: usize,
    prompt_tokens: usize,
    cached_tokens: Option<usize>,
    completion_tokens: usize,
    prefill: String,
    decode: String,
    elapsed: String,
    retrieval: Option<String>,
}

#[derive(Serialize)]
struct AnalysisView<'a> {
    doc: DocRow<'a>,
    /// Draw the original PDF page beside the text (a PDF, and PDF.js in this build).
    original_viewer: bool,
    task: &'a str,
    question: Option<&'a str>,
    answer: AnswerView<'a>,
    pages: Vec<PageView<'a>>,
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Citation labels carry `prefix` ("F", "C") where two answers share one source view.
fn answer_view<'a>(a: &'a Analysis, prefix: &str) -> AnswerView<'a> {
    let link = |cid: &u32| {
        a.citations.iter().find(|c| c.id == *cid).map(|c| CiteLink {
            label: format!("{prefix}{}", c.id),
            anchor: format!("span-{}-{}", c.start, c.end),
            page: c.page,
            valid: c.valid,
            reason: c.reason.clone(),
            quote: c.quote.clone(),
        })
    };
    let retrieval = a.retrieval.as_ref().map(Retrieval::describe);
    AnswerView {
        id: &a.id,
        pipeline: a.pipeline.as_str(),
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
        cached_tokens: a.usage.cached_tokens.filter(|&n| n > 0),
        completion_tokens: a.usage.completion_tokens,
        prefill: seconds(a.timings.prefill_ms),
        decode: seconds(a.timings.decode_ms),
        elapsed: seconds(a.timings.total_ms),
        retrieval,
    }
}

/// Marks for the cited spans of `a`: (start, end, labels, all valid). Spans are whole segments,
/// so two citations of one segment share a mark.
fn add_marks(marks: &mut Vec<(usize, usize, String, bool)>, a: &Analysis, prefix: &str) {
    for c in a.citations.iter().filter(|c| c.end > c.start) {
        match marks.iter_mut().find(|m| m.0 == c.start && m.1 == c.end) {
            Some(m) => {
                m.2.push_str(&format!(" {prefix}{}", c.id));
                m.3 &= c.valid;
            }
            None => marks.push((c.start, c.end, format!("{prefix}{}", c.id), c.valid)),
        }
    }
    marks.sort_by_key(|m| m.0);
}

async fn analysis_page(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let a: Analysis = state.docent.analysis(&caller.scope, &id).await?;
    let doc = state.docent.document(&caller.scope, &a.document_id).await?;
    let text = state.docent.text(&caller.scope, &a.document_id).await?;
    let mut marks = Vec::new();
    add_marks(&mut marks, &a, "");
    let view = AnalysisView {
        original_viewer: PDFJS.is_some() && doc.media_type == crate::parse::MediaType::Pdf.as_mime(),
        doc: DocRow::from(&doc),
        task: task_name(a.task),
        question: a.question.as_deref(),
        answer: answer_view(&a, ""),
        pages: page_views(&text, &marks),
    };
    render(&state, Some(&caller), "analysis.html", &view, 200)
}

#[derive(Serialize)]
struct SideView<'a> {
    key: &'static str,
    heading: &'static str,
    answer: Option<AnswerView<'a>>,
    error: Option<ErrorView<'a>>,
    coverage: Option<String>,
}

#[derive(Serialize)]
struct CompareView<'a> {
    doc: DocRow<'a>,
    task: &'a str,
    question: Option<&'a str>,
    sides: [SideView<'a>; 2],
    common_segments: usize,
    common_coverage: String,
    pages: Vec<PageView<'a>>,
}

fn percent(x: f32) -> String {
    format!("{:.1}%", x * 100.0)
}

fn side_view<'a>(
    (key, heading): (&'static str, &'static str),
    side: &'a Side,
    prefix: &str,
    stats: Option<&crate::domain::SideStats>,
) -> SideView<'a> {
    match side {
        Side::Done(a) => SideView {
            key,
            heading,
            answer: Some(answer_view(a, prefix)),
            error: None,
            coverage: stats.map(|s| percent(s.coverage)),
        },
        Side::Failed { error } => SideView {
            key,
            heading,
            answer: None,
            error: Some(ErrorView { code: &error.code, message: &error.message }),
            coverage: None,
        },
    }
}

/// The compare form: a question when one is typed, else a summary.
#[derive(Deserialize)]
struct CompareForm {
    question: Option<String>,
    chunked_model: Option<ChunkedModel>,
}

async fn compare_form(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<CompareForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let question = form.question.filter(|q| !q.trim().is_empty());
    let task = if question.is_some() { Task::Question } else { Task::Summary };
    let spec = TaskSpec { task, question };
    match state.docent.compare(&caller.scope, &id, spec, form.chunked_model.unwrap_or_default()).await {
        Ok(c) => Ok(see_other(format!("/comparisons/{}", c.id))),
        Err(e) => document_with(&state, &caller, &id, Some(&e)).await,
    }
}

async fn comparison_page(state: State, caller: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let c: Comparison = state.docent.comparison(&caller.scope, &id).await?;
    let doc = state.docent.document(&caller.scope, &c.document_id).await?;
    let text = state.docent.text(&caller.scope, &c.document_id).await?;
    let mut marks = Vec::new();
    let any = c.full.analysis().or(c.chunked.analysis());
    for (side, prefix) in [(&c.full, "F"), (&c.chunked, "C")] {
        if let Some(a) = side.analysis() {
            add_marks(&mut marks, a, prefix);
        }
    }
    let view = CompareView {
        doc: DocRow::from(&doc),
        task: any.map_or("summary", |a| task_name(a.task)),
        question: any.and_then(|a| a.question.as_deref()),
        sides: [
            side_view(("full", "Full context (whole document)"), &c.full, "F", c.overlap.full.as_ref()),
            side_view(("chunked", "Chunked retrieval"), &c.chunked, "C", c.overlap.chunked.as_ref()),
        ],
        common_segments: c.overlap.common_segments.len(),
        common_coverage: percent(c.overlap.common_coverage),
        pages: page_views(&text, &marks),
    };
    render(&state, Some(&caller), "compare.html", &view, 200)
}
