//! What every request leaves behind for an operator: an `X-Request-Id` on its response (the
//! client's when it is sane, else a new one), a tracing span carrying that id around everything
//! the request logs, and one access-log line with its route, status and time.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-chosen request id kept; a longer one is replaced.
const MAX_CLIENT_ID: usize = 64;

tokio::task_local! {
    /// The id of the request whose handler runs on this task: error bodies carry it.
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Spawn work that outlives the handler (a streamed analysis) in the request's span and id, so
/// that its log lines and error events still name the request. It runs on `runtime` (the
/// server's main one), not on the HTTP worker's, which a shutdown ends with its last connection
/// even when a client that went away left the work running.
pub fn spawn_in_request<F>(runtime: &tokio::runtime::Handle, work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let span = tracing::Span::current();
    match current_request_id() {
        Some(id) => runtime.spawn(REQUEST_ID.scope(id, work).instrument(span)),
        None => runtime.spawn(work.instrument(span)),
    }
}

/// A client's id is kept when it could not break a log line or a header: 1 to 64 characters
/// of `[A-Za-z0-9._-]`.
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| sane(id))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// The outermost middleware: everything inside (authentication, handlers, error bodies) runs
/// in the request's span and sees its id.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id_of(&req);
    let span = tracing::info_span!("request", request_id = %id);
    let (method, path) = (req.method().clone(), req.path().to_owned());
    let started = Instant::now();
    let result = REQUEST_ID.scope(id.clone(), next.call(req).instrument(span.clone())).await;
    // Inner layers answer errors as responses (authentication, handlers, extractors), in scope.
    let mut res = result?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let status = res.status().as_u16();
    if let Some(state) = res.request().app_data::<super::State>() {
        // The route's pattern, not its path: ids would make a series per document.
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        state.docent.metrics().request(&route, method.as_str(), status);
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, ms = format!("{ms:.1}"), "{method} {path}"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_short_plain_client_ids_are_kept() {
        assert!(sane("abc-123_X.y"));
        assert!(sane(&"a".repeat(64)));
        assert!(!sane(&"a".repeat(65)));
        assert!(!sane(""));
        assert!(!sane("two words"));
        assert!(!sane("line\nbreak"));
        assert!(!sane("ünïcode"));
    }
}
