//! The path and query extractors every page uses: axum's own, but a value that cannot be
//! read (`?page=abc`, `/admins/x/unlock`) becomes the styled 400 page of [`WebError`],
//! logged once here, never the framework's text.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::FromRequestParts;

use super::WebError;
use crate::domain::{Extension, TenantCode};
use crate::store::UserId;

/// Like `axum::extract::Path`, rejected as [`WebError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(WebError))]
pub struct Path<T>(pub T);

/// Like `axum::extract::Query`, rejected as [`WebError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
pub struct Query<T>(pub T);

/// The extension a path names; anything that cannot be one names nobody (404).
pub fn path_extension(raw: &str) -> Result<Extension, WebError> {
    Extension::parse(raw).map_err(|_| WebError::NotFound)
}

/// The tenant code a path names; anything that cannot be one names no tenant (404).
pub fn path_tenant_code(raw: &str) -> Result<TenantCode, WebError> {
    TenantCode::parse(raw).map_err(|_| WebError::NotFound)
}

/// The tenant and admin an operator's caller page is about (`…/tenants/{code}/admins/{id}`);
/// a code that cannot be one names nobody (404).
pub fn path_caller((code, id): &(String, i64)) -> Result<(TenantCode, UserId), WebError> {
    Ok((path_tenant_code(code)?, UserId(*id)))
}

impl From<PathRejection> for WebError {
    fn from(rejection: PathRejection) -> Self {
        tracing::info!(reason = %rejection.body_text(), "unreadable path parameter");
        WebError::BadRequest
    }
}

impl From<QueryRejection> for WebError {
    fn from(rejection: QueryRejection) -> Self {
        tracing::info!(reason = %rejection.body_text(), "unreadable query string");
        WebError::BadRequest
    }
}
