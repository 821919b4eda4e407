//! The path and query extractors every page uses: axum's own, but a value that cannot be
//! read (`?page=abc`, `/admins/x/unlock`) becomes the styled 400 page of [`WebError`],
//! logged once here, never the framework's text. And what a path names (an extension, a
//! tenant, a caller's admin, a passkey, a session), parsed where each page's rules say.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;

use super::extract::ValidForm;
use super::{AppState, WebError};
use crate::domain::{Extension, TenantCode};
use crate::store::{PasskeyId, SessionId, UserId};

/// Like `axum::extract::Path`, rejected as [`WebError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(WebError))]
pub struct Path<T>(pub T);

/// Like `axum::extract::Query`, rejected as [`WebError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
pub struct Query<T>(pub T);

/// What a path can name, from the path's raw parameters; anything that cannot be one names
/// nothing (404).
pub trait Named: Sized {
    /// The parameters as the route gives them (400 when even these cannot be read).
    type Raw: DeserializeOwned + Send;

    fn from_path(raw: &Self::Raw) -> Result<Self, WebError>;
}

/// `/admin/users/{extension}…`.
impl Named for Extension {
    type Raw = String;

    fn from_path(raw: &String) -> Result<Self, WebError> {
        Extension::parse(raw).map_err(|_| WebError::NotFound)
    }
}

/// `/operator/tenants/{code}`.
impl Named for TenantCode {
    type Raw = String;

    fn from_path(raw: &String) -> Result<Self, WebError> {
        TenantCode::parse(raw).map_err(|_| WebError::NotFound)
    }
}

/// The tenant and admin an operator's caller page is about: `…/tenants/{code}/admins/{id}`.
pub type Caller = (TenantCode, UserId);

impl Named for Caller {
    type Raw = (String, i64);

    fn from_path((code, id): &(String, i64)) -> Result<Self, WebError> {
        Ok((TenantCode::from_path(code)?, UserId(*id)))
    }
}

/// `/settings/passkeys/{id}…`.
impl Named for PasskeyId {
    type Raw = String;

    fn from_path(raw: &String) -> Result<Self, WebError> {
        row_id(raw).map(PasskeyId)
    }
}

/// `/settings/sessions/{id}…`.
impl Named for SessionId {
    type Raw = String;

    fn from_path(raw: &String) -> Result<Self, WebError> {
        row_id(raw).map(SessionId)
    }
}

fn row_id(raw: &str) -> Result<i64, WebError> {
    raw.parse().map_err(|_| WebError::NotFound)
}

/// A form posted to what the path names (`/admin/users/{extension}/unlock`): the path's
/// parameters must be readable (400), then the form passes its checks ([`ValidForm`]: a
/// bad CSRF token is 403), and only then is an unknown name a 404.
pub struct Posted<N, T>(pub N, pub T);

impl<N, T> FromRequest<AppState> for Posted<N, T>
where
    N: Named + Send,
    T: DeserializeOwned + Send,
{
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let Path(raw) = Path::<N::Raw>::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let ValidForm(form) = ValidForm::<T>::from_request(request, state).await?;
        Ok(Posted(N::from_path(&raw)?, form))
    }
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
