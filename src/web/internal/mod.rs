//! The internal listener's routes, for the provider's own machines (the SIP server,
//! Prometheus): the PBX credential lookup and `/metrics`. Never merged into the public
//! router.
//!
//! Answers are JSON, errors included (`{"error": "…"}`), and never cached by anyone.

mod scrape;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRef, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::extract::bearer;
use super::respond::{machine_headers, with_retry_after, UNAVAILABLE_RETRY_AFTER};
use crate::domain::{Extension, SipDomain};
use crate::services::levels::LoadLevels;
use crate::services::pbx::{CredentialLookup, PbxLink};
use crate::services::{Transient, Unexpected};
use crate::telemetry;

/// The longest query string read; a real one is well under 300 bytes.
const MAX_QUERY: usize = 1024;

/// What the internal routes reach.
#[derive(Clone)]
struct InternalState {
    pbx: PbxLink,
    levels: LoadLevels,
}

impl FromRef<InternalState> for PbxLink {
    fn from_ref(s: &InternalState) -> PbxLink {
        s.pbx.clone()
    }
}

impl FromRef<InternalState> for LoadLevels {
    fn from_ref(s: &InternalState) -> LoadLevels {
        s.levels.clone()
    }
}

/// The router of the internal listener.
pub fn router(pbx: PbxLink, levels: LoadLevels) -> Router {
    let routes = Router::new()
        .route("/pbx/v1/sip-credentials", get(sip_credentials))
        .route("/metrics", get(scrape::metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(1024));
    machine_headers(routes)
        .layer(axum::middleware::from_fn(super::observe::internal))
        .with_state(InternalState { pbx, levels })
}

/// `GET /pbx/v1/sip-credentials?user=EXT&domain=SIPDOMAIN`, with `Authorization: Bearer`.
/// Counted and timed by outcome.
async fn sip_credentials(
    State(pbx): State<PbxLink>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = lookup(&pbx, &headers, query.as_deref().unwrap_or("")).await;
    telemetry::pbx_lookup(outcome, started.elapsed());
    response
}

async fn lookup(pbx: &PbxLink, headers: &HeaderMap, query: &str) -> (&'static str, Response) {
    let Some(token) = bearer(headers) else {
        return ("unauthorized", unauthorized());
    };
    match pbx.token_valid(token).await {
        Ok(true) => {}
        Ok(false) => return ("unauthorized", unauthorized()),
        Err(e) => return ("error", internal(&e)),
    }
    let (user, domain) = match lookup_query(query) {
        Ok(q) => q,
        Err(why) => return ("bad_request", error(StatusCode::BAD_REQUEST, why)),
    };
    match pbx.sip_credential(&user, &domain).await {
        Ok(CredentialLookup::Found(credential)) => match serde_json::to_string(&credential) {
            Ok(body) => (
                "found",
                ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            ),
            Err(e) => ("error", internal(&anyhow::Error::new(e).into())),
        },
        Ok(CredentialLookup::Missing) => (
            "not_found",
            error(
                StatusCode::NOT_FOUND,
                "no such extension at this SIP domain",
            ),
        ),
        Ok(CredentialLookup::Suspended) => (
            "suspended",
            error(
                StatusCode::FORBIDDEN,
                "this extension's tenant is suspended",
            ),
        ),
        Err(e) => ("error", internal(&e)),
    }
}

/// `user` (an extension) and `domain` (a host name), each exactly once.
fn lookup_query(query: &str) -> Result<(Extension, String), &'static str> {
    if query.len() > MAX_QUERY {
        return Err("the query is too long");
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|_| "the query is not form-encoded")?;
    let one = |name: &str| -> Result<&str, &'static str> {
        let mut found = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (found.next(), found.next()) {
            (Some(v), None) => Ok(v.as_str()),
            (None, _) => Err("user and domain are both required"),
            (Some(_), Some(_)) => Err("user and domain must each be given once"),
        }
    };
    let user = one("user")?;
    let domain = one("domain")?;
    let extension =
        Extension::canonical(user).ok_or("user must be an extension number (1 to 10 digits)")?;
    if !SipDomain::is_host_name(domain) {
        return Err("domain must be a host name like sip.example.com");
    }
    Ok((extension, domain.to_ascii_lowercase()))
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unauthorized() -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "a valid PBX token is required");
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// An unexpected failure: logged once here, opaque to the caller. The database being
/// unreachable just now is a 503 with `Retry-After` (the shipped Kamailio configuration
/// answers the phone 503 too, and a cached HA1 still serves).
fn internal(e: &Unexpected) -> Response {
    if let Some(Transient::DatabaseUnavailable) = e.transient() {
        tracing::warn!(
            error = format!("{e:#}"),
            "PBX credential lookup failed: the database is unavailable"
        );
        return with_retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unavailable; try again shortly",
            ),
            UNAVAILABLE_RETRY_AFTER,
        );
    }
    tracing::error!(error = format!("{e:#}"), "PBX credential lookup failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_query_needs_one_extension_and_one_host_name() {
        let (extension, domain) = lookup_query("user=201&domain=Acme.Example").unwrap();
        assert_eq!(
            (extension.as_str(), domain.as_str()),
            ("201", "acme.example")
        );
        for bad in [
            "",
            "user=201",
            "domain=acme.example",
            "user=alice&domain=acme.example",
            "user=201&user=202&domain=acme.example",
            "user=%20201&domain=acme.example",
            "user=201&domain=acme..example",
            "user=201&domain=acme.example%00",
            "user=201&domain=%ff%fe",
            "user=12345678901&domain=acme.example",
        ] {
            assert!(lookup_query(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(lookup_query(&format!("user=201&domain={}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn only_a_bearer_authorization_carries_a_token() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer "));
        assert_eq!(bearer(&h), None);
    }
}
