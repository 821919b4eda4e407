//! What every request leaves behind: a request id (echoed in `X-Request-Id`, shown on the
//! 500 page, attached to every log line of the request), one access log line with status
//! and latency, and the HTTP metrics by route pattern and status.
//!
//! The id is always made here, never taken from the client, so nobody can write into the
//! log through it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered, when called while answering one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// For the public listener's router.
pub async fn public(request: Request, next: Next) -> Response {
    observe("public", request, next).await
}

/// For the internal listener's router.
pub async fn internal(request: Request, next: Next) -> Response {
    observe("internal", request, next).await
}

async fn observe(listener: &'static str, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = new_request_id();
    // The matched pattern (`/admin/users/{id}`), never the raw path a client sent.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
    );
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    crate::telemetry::http_request(listener, &route, status, took);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = took.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// 16 hex digits: enough to find one request among years of logs, short enough to read
/// out over the phone.
fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
