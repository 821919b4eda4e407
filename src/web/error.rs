//! The one web error type. Each variant says which status it becomes; unexpected errors
//! are logged once, here, and never shown to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::render::ErrorPage;
use crate::services::operator_console::OperatorError;
use crate::services::tenant_admin::AdminError;
use crate::services::{Transient, Unexpected};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 404: no such page — also what is shown for things the user may not know exist.
    #[error("not found")]
    NotFound,
    /// 403: a form without a valid CSRF token.
    #[error("forbidden")]
    Forbidden,
    /// 403: signed in, but not allowed here (a user on an admin page).
    #[error("not allowed")]
    NotAllowed,
    /// 403: a customer portal session on the operator console, or the other way round.
    #[error("wrong console")]
    WrongConsole,
    /// 405: an address opened with a method it does not take (a form's address opened
    /// in the address bar). The router adds `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 400: a request that could not be read at all.
    #[error("bad request")]
    BadRequest,
    /// 413: a body over the form limit.
    #[error("payload too large")]
    TooLarge,
    /// 500: anything unexpected; the cause goes to the log only. 503 with `Retry-After`
    /// when the cause is the database being unreachable (a plain "try again" page).
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// The service errors that say no more than "no such thing" (404) or a fault.
macro_rules! not_found_or_unexpected {
    ($($error:ident),+) => {$(
        impl From<$error> for WebError {
            fn from(e: $error) -> Self {
                match e {
                    $error::NotFound => WebError::NotFound,
                    $error::Unexpected(u) => WebError::Unexpected(u),
                }
            }
        }
    )+};
}

not_found_or_unexpected!(AdminError, OperatorError);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address. Check the link, or go back to the sign-in page.",
            ),
            WebError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from this portal or has expired. Go back, reload the page and try again.",
            ),
            WebError::NotAllowed => (
                StatusCode::FORBIDDEN,
                "Not available to you",
                "This page is for your company's portal administrators. Ask one of them if you need a change made.",
            ),
            WebError::WrongConsole => (
                StatusCode::FORBIDDEN,
                "Not available to this account",
                "Customer portal accounts cannot use the provider's operator console, and operator accounts cannot use the customer portal. Sign in with the right account.",
            ),
            WebError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Not a page to open",
                "This address takes a form sent from one of the portal's pages. Go back to that page and use its button.",
            ),
            WebError::BadRequest => (
                StatusCode::BAD_REQUEST,
                "Request not understood",
                "The address or the form could not be read. Go back, reload the page and try again.",
            ),
            WebError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much data",
                "The form sent more data than any field allows. Shorten what you typed and try again.",
            ),
            WebError::Unexpected(e) => {
                if let Some(transient) = e.transient() {
                    let (title, message, retry_after) = match transient {
                        Transient::Busy => ("Very busy", super::respond::BUSY, super::respond::BUSY_RETRY_AFTER),
                        Transient::DatabaseUnavailable => (
                            "Temporarily unavailable",
                            "The portal cannot serve this page just now. Please try again in a minute.",
                            super::respond::UNAVAILABLE_RETRY_AFTER,
                        ),
                    };
                    tracing::warn!(error = format!("{e:#}"), "request failed: {title}");
                    return super::respond::with_retry_after(
                        ErrorPage::response(StatusCode::SERVICE_UNAVAILABLE, title, message),
                        retry_after,
                    );
                }
                tracing::error!(error = format!("{e:#}"), "request failed");
                const MESSAGE: &str = "The portal could not finish this request. Nothing was lost; please try again in a moment.";
                // The request id ties what the user reports to the log line above.
                let message = match super::observe::current_request_id() {
                    Some(id) => format!("{MESSAGE} If it keeps happening, tell support the reference {id}."),
                    None => MESSAGE.to_owned(),
                };
                return ErrorPage::response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    &message,
                );
            }
        };
        ErrorPage::response(status, title, message)
    }
}
