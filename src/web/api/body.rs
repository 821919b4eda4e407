//! The request body of a JSON operation: `Content-Type: application/json`, at most
//! [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES), valid JSON of the operation's shape with no
//! unknown field. Each way to fail is a clear 4xx problem.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::problem::Problem;
use super::AppState;

/// A parsed body and the bytes it was parsed from (for `Idempotency-Key`).
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .rsplit_once('+')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
            && essence.to_ascii_lowercase().starts_with("application/")
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON, with Content-Type: application/json.",
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Body too large",
                    "The body is larger than any request of this API needs (64 KiB).",
                )
            } else {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable-body",
                    "Body not readable",
                    "The request body could not be read.",
                )
            }
        })?;
        let value = parse(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

/// Parses a body: malformed JSON is 400; JSON of the wrong shape (a missing or unknown
/// field, a wrong type) is 422 naming what serde found.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(raw).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            let message = e.to_string();
            // serde's position suffix means nothing to a client of this API.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            Problem::field("body", message)
        }
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            "The body is not valid JSON.",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("text/x+json"));
    }

    #[test]
    fn malformed_json_is_400_and_a_wrong_shape_is_422() {
        assert_eq!(parse::<Shape>(b"{").unwrap_err().status(), 400);
        assert_eq!(parse::<Shape>(b"\xff").unwrap_err().status(), 400);
        assert_eq!(parse::<Shape>(br#"{"name": 5}"#).unwrap_err().status(), 422);
        assert_eq!(
            parse::<Shape>(br#"{"name": "a", "x": 1}"#)
                .unwrap_err()
                .status(),
            422
        );
        assert!(parse::<Shape>(br#"{"name": "a"}"#).is_ok());
    }
}
