//! Authentication before any handler runs (so an upload's body is never read for a caller
//! without a key), CSRF checks on state-changing requests, and the sign-in page.
//!
//! - API clients send `Authorization: Bearer <key>`; the web UI signs in with a key and then
//!   carries an HttpOnly, SameSite=Strict session cookie.
//! - A request that changes state with the session cookie must carry the session's CSRF token
//!   (`X-CSRF-Token` header, or `csrf` in the query string of a form's action).
//! - Any state-changing request whose `Origin` is another site is refused, keys or not.
//! - A server without keys is open (single user); once a key exists, every request needs one.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

use super::pages::{render, see_other};
use super::State;
use crate::error::{AppError, AppResult, ErrorCode};
pub use crate::service::Caller;

const SESSION_COOKIE: &str = "docent_session";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout));
}

/// Paths served to everyone: health, assets and the sign-in page itself.
fn is_public(path: &str) -> bool {
    path == "/healthz" || path == "/login" || path.starts_with("/static/")
}

/// Paths read by programs, which get a 401 rather than the sign-in page.
fn is_for_machines(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: find the caller, check CSRF, or answer 401/403 before the handler (and the
/// body) is touched.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match caller_of(&req).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Ok(None) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(e) => {
            let wants_page = !is_for_machines(req.path()) && req.method() == Method::GET;
            let response = if e.code == ErrorCode::Unauthorized && wants_page {
                see_other(format!("/login?next={}", urlencode(req.path())))
            } else {
                let mut r = e.error_response();
                if e.code == ErrorCode::Unauthorized {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                }
                r
            };
            Ok(req.into_response(response))
        }
    }
}

/// The caller, `None` for a public path on a server with keys, or the error to answer.
async fn caller_of(req: &ServiceRequest) -> AppResult<Option<Caller>> {
    let unsafe_method = changes_state(req.method());
    if unsafe_method && is_cross_site(req.request()) {
        return Err(AppError::new(ErrorCode::CsrfFailed, "cross-site requests may not change anything here"));
    }
    let state = req.app_data::<State>().ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
    let docent = &state.docent;
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let key = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
        return docent.caller_for_key(key).await.map(Some);
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        if let Some(caller) = docent.caller_for_session(cookie.value()).await? {
            if unsafe_method && !csrf_matches(req.request(), caller.csrf.as_deref()) {
                return Err(AppError::new(
                    ErrorCode::CsrfFailed,
                    "the form is missing its security token or is from an old page; reload the page and try again",
                ));
            }
            return Ok(Some(caller));
        }
    }
    if !docent.auth_required().await? {
        return Ok(Some(Caller::open()));
    }
    if is_public(req.path()) {
        return Ok(None);
    }
    Err(AppError::new(ErrorCode::Unauthorized, "sign in, or send an API key as \"Authorization: Bearer <key>\""))
}

/// A state-changing request from a page of another site: its `Origin` names another host.
/// Clients that are not browsers send no `Origin` and are judged by their key alone.
fn is_cross_site(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return false };
    let host = req.connection_info().host().to_owned();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin == "null" || origin_host != host
}

fn csrf_matches(req: &HttpRequest, expected: Option<&str>) -> bool {
    let Some(expected) = expected else { return false };
    let header = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    let query = web::Query::<CsrfQuery>::from_query(req.query_string()).ok().and_then(|q| q.into_inner().csrf);
    let given = header.map(str::to_owned).or(query).unwrap_or_default();
    // Constant time: the comparison must not tell how much of a guess was right.
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[derive(Deserialize)]
struct CsrfQuery {
    csrf: Option<String>,
}

fn urlencode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Handlers take the caller as an argument; the middleware put it there.
impl FromRequest for Caller {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| AppError::new(ErrorCode::Unauthorized, "sign in, or send an API key")),
        )
    }
}

/// What every page gets about its caller: the CSRF token for its forms and who is signed in.
#[derive(Serialize, Default)]
pub(super) struct SessionView {
    /// `?csrf=…` to append to a form's action, or empty.
    pub csrf_query: String,
    pub csrf: String,
    pub signed_in_as: Option<String>,
}

impl SessionView {
    pub fn of(caller: Option<&Caller>) -> Self {
        let Some(c) = caller else { return Self::default() };
        let csrf = c.csrf.clone().unwrap_or_default();
        Self {
            csrf_query: if csrf.is_empty() { String::new() } else { format!("?csrf={csrf}") },
            csrf,
            signed_in_as: c.name.clone(),
        }
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Serialize)]
struct LoginView<'a> {
    next: &'a str,
    error: Option<super::pages::ErrorView<'a>>,
}

/// Only a path of this site: never `//host` or `https://…` (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

async fn login_page(state: State, query: web::Query<NextQuery>) -> AppResult<HttpResponse> {
    let view = LoginView { next: safe_next(query.next.as_deref()), error: None };
    render(&state, None, "login.html", &view, 200)
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
    next: Option<String>,
}

async fn login(state: State, form: web::Form<LoginForm>) -> AppResult<HttpResponse> {
    let next = safe_next(form.next.as_deref());
    match state.docent.sign_in(form.key.trim()).await {
        Ok(token) => {
            let cookie = Cookie::build(SESSION_COOKIE, token)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .max_age(actix_web::cookie::time::Duration::seconds(crate::service::SESSION_LIFETIME_S))
                .finish();
            let mut response = see_other(next.to_owned());
            response.add_cookie(&cookie).map_err(AppError::internal)?;
            Ok(response)
        }
        Err(e) if e.code == ErrorCode::Unauthorized => {
            let view = LoginView { next, error: Some((&e).into()) };
            render(&state, None, "login.html", &view, 401)
        }
        Err(e) => Err(e),
    }
}

async fn logout(state: State, req: HttpRequest) -> AppResult<HttpResponse> {
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        state.docent.sign_out(cookie.value()).await?;
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    let mut response = see_other("/login".to_owned());
    response.add_cookie(&gone).map_err(AppError::internal)?;
    Ok(response)
}
