//! Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`,
//! and for 422 an `errors` list naming each field and its problem. Unexpected failures are
//! logged once, here, and answered with an opaque 500 (503 with `Retry-After` when the
//! database cannot be reached just now).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::services::{Transient, Unexpected};
use crate::web::respond::{BUSY_RETRY_AFTER, UNAVAILABLE_RETRY_AFTER};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One field's problem in a 422.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as a JSON pointer-like path (`admin.email`).
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: &str) -> Problem {
        Problem {
            kind: format!("/api/v1/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.to_owned(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"about:blank","title":"Internal error","status":500,"detail":"internal error"}"#.to_owned()
        })
    }

    pub fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "There is nothing here that this token can reach.",
        )
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "A valid API token is required: Authorization: Bearer TOKEN.",
        )
    }

    pub fn conflict(detail: &str) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// Whether this answer is a refusal made before anything was written (the hashing
    /// queue full).
    pub fn changed_nothing(&self) -> bool {
        self.kind.ends_with("/busy")
    }

    /// 409 with `Retry-After`: the first request under this `Idempotency-Key` is still
    /// running.
    pub fn in_progress() -> Problem {
        Problem {
            retry_after: Some(BUSY_RETRY_AFTER),
            ..Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-progress",
                "Request in progress",
                "The first request with this Idempotency-Key has not answered yet; retry after Retry-After seconds for its answer.",
            )
        }
    }

    /// 429 with `Retry-After`: too many requests of this token, or of this kind.
    pub fn rate_limited(seconds: u64, detail: &str) -> Problem {
        Problem {
            retry_after: Some(seconds),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                detail,
            )
        }
    }

    /// 422 naming each field and its problem.
    pub fn invalid(errors: Vec<FieldError>) -> Problem {
        Problem {
            errors,
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid values",
                "Some values are not acceptable; see errors.",
            )
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Problem {
        Problem::invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// An unexpected failure: logged here, opaque to the client. One that passes by
    /// itself (the database unreachable, the hashing queue full) is a 503 with
    /// `Retry-After`, not a fault.
    pub fn unexpected(e: &Unexpected) -> Problem {
        if let Some(transient) = e.transient() {
            let (slug, title, detail, retry_after) = match transient {
                Transient::DatabaseUnavailable => (
                    "unavailable",
                    "Temporarily unavailable",
                    "The request could not be served just now; nothing was changed. Try again after Retry-After seconds.",
                    UNAVAILABLE_RETRY_AFTER,
                ),
                Transient::Busy => (
                    "busy",
                    "Very busy",
                    "The portal is very busy just now; nothing was changed. Try again after Retry-After seconds.",
                    BUSY_RETRY_AFTER,
                ),
            };
            tracing::warn!(error = format!("{e:#}"), "API request failed: {title}");
            return Problem {
                retry_after: Some(retry_after),
                ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, slug, title, detail)
            };
        }
        tracing::error!(error = format!("{e:#}"), "API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "The request could not be finished. Nothing was lost; please try again in a moment.",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            self.body(),
        )
            .into_response();
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Collects field problems while parsing a request.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// `Some` value when it parsed, else records `message` under `field`.
    pub fn check<T, E>(
        &mut self,
        field: &str,
        parsed: Result<T, E>,
        message: impl FnOnce(E) -> String,
    ) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(FieldError {
                    field: field.to_owned(),
                    message: message(e),
                });
                None
            }
        }
    }

    /// The 422 when anything failed.
    pub fn finish(self) -> Result<(), Problem> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid(self.0))
        }
    }
}
