//! What a JSON operation reads from the request: its path parameters, and its body
//! (`Content-Type: application/json`, at most [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES),
//! valid JSON of the operation's shape with no unknown field). Each way to fail is a clear
//! 4xx problem, never the framework's text.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::problem::Problem;
use super::AppState;
use crate::web::extract::media_type;

/// Like `axum::extract::Path`, rejected as a problem document.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Problem {
        tracing::info!(reason = %rejection.body_text(), "unreadable API path parameter");
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-path",
            "Unreadable address",
            "A part of the address is not valid text (percent-encoded UTF-8).",
        )
    }
}

/// A parsed body and the bytes it was parsed from (for `Idempotency-Key`).
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

fn is_json(content_type: &str) -> bool {
    let essence = media_type(content_type);
    essence == "application/json"
        || essence.starts_with("application/") && essence.ends_with("+json")
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
/// field, a wrong type) is 422 naming the field, in this API's words (see [`shape_error`]).
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    let mut json = serde_json::Deserializer::from_slice(raw);
    let value =
        serde_path_to_error::deserialize(&mut json).map_err(|e| match e.inner().classify() {
            serde_json::error::Category::Data => {
                let (field, message) = shape_error(e.path(), &e.inner().to_string());
                Problem::field(&field, message)
            }
            _ => malformed(),
        })?;
    // Anything after the value (`{} {}`) is malformed too.
    json.end().map_err(|_| malformed())?;
    Ok(value)
}

fn malformed() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "malformed-json",
        "Malformed JSON",
        "The body is not valid JSON.",
    )
}

/// The field a shape error is about (`admin.email`, or `body` for the whole body) and
/// what is wrong with it. serde's own text names Rust types (`expected struct NewTenant`),
/// so it is read here, never passed on: only the names of fields and the accepted values
/// of an enumeration, which are this API's own words, are taken from it.
fn shape_error(path: &serde_path_to_error::Path, serde: &str) -> (String, String) {
    // serde_json ends its text with the position (" at line 1 column 9").
    let serde = serde
        .rsplit_once(" at line ")
        .map_or(serde, |(text, _)| text);
    let at: Vec<String> = path.iter().map(ToString::to_string).collect();
    let within = |name: &str| {
        let mut field = at.clone();
        if at.last().map(String::as_str) != Some(name) {
            field.push(name.to_owned());
        }
        field.join(".").replace(".[", "[")
    };
    let here = if at.is_empty() {
        "body".to_owned()
    } else {
        at.join(".").replace(".[", "[")
    };
    let quoted = |prefix: &str| {
        serde
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(name) = quoted("missing field `") {
        return (within(&name), "is required".to_owned());
    }
    if let Some(name) = quoted("unknown field `") {
        return (within(&name), "is not a field of this request".to_owned());
    }
    if let Some(name) = quoted("duplicate field `") {
        return (within(&name), "is given more than once".to_owned());
    }
    if serde.starts_with("unknown variant `") {
        let accepted = serde
            .split_once(", expected ")
            .map(|(_, expected)| expected.replace('`', ""))
            .unwrap_or_else(|| "one of the values this API lists".to_owned());
        return (here, format!("must be {accepted}"));
    }
    let expected = serde.rsplit_once(", expected ").map(|(_, e)| e);
    let message = match expected {
        Some(e) if e.starts_with("struct ") || e.starts_with("a map") => "must be a JSON object",
        Some("a string") => "must be a string",
        Some("a boolean") => "must be true or false",
        Some("a sequence") => "must be a list",
        Some(e) if e.starts_with('u') || e.starts_with('i') => "must be a whole number",
        Some(e) if e.starts_with('f') => "must be a number",
        _ if serde.starts_with("invalid value") => "has a value that is not accepted",
        _ => "has the wrong type",
    };
    (here, message.to_owned())
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
        assert_eq!(
            parse::<Shape>(br#"{"name": "a"} {}"#).unwrap_err().status(),
            400
        );
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        code: String,
        count: Option<u32>,
        admin: Shape,
        method: Option<Method>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Method {
        Link,
        Temporary,
    }

    /// The single field error of a 422 problem, as the client reads it.
    fn field_error(body: &str) -> (String, String) {
        let problem = parse::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(problem.status(), 422, "{body}");
        let json = serde_json::to_value(&problem).unwrap();
        let errors = json["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{json}");
        let text = |k: &str| errors[0][k].as_str().unwrap().to_owned();
        (text("field"), text("message"))
    }

    #[test]
    fn a_wrong_shape_names_the_field_in_this_apis_words() {
        let ok = r#"{"code": "acme", "admin": {"name": "A"}}"#;
        assert!(parse::<Outer>(ok.as_bytes()).is_ok());
        let cases = [
            ("[]", ("body", "must be a JSON object")),
            ("null", ("body", "must be a JSON object")),
            ("5", ("body", "must be a JSON object")),
            (r#"{"admin": {"name": "A"}}"#, ("code", "is required")),
            (
                r#"{"code": 5, "admin": {"name": "A"}}"#,
                ("code", "must be a string"),
            ),
            (
                r#"{"code": "a", "count": "x", "admin": {"name": "A"}}"#,
                ("count", "must be a whole number"),
            ),
            (
                r#"{"code": "a", "admin": {}}"#,
                ("admin.name", "is required"),
            ),
            (
                r#"{"code": "a", "admin": []}"#,
                ("admin", "must be a JSON object"),
            ),
            (
                r#"{"code": "a", "admin": {"name": "A", "x": 1}}"#,
                ("admin.x", "is not a field of this request"),
            ),
            (
                r#"{"code": "a", "extra": 1, "admin": {"name": "A"}}"#,
                ("extra", "is not a field of this request"),
            ),
            (
                r#"{"code": "a", "code": "b", "admin": {"name": "A"}}"#,
                ("code", "is given more than once"),
            ),
            (
                r#"{"code": "a", "method": "sms", "admin": {"name": "A"}}"#,
                ("method", "must be link or temporary"),
            ),
        ];
        for (body, (field, message)) in cases {
            assert_eq!(
                field_error(body),
                (field.to_owned(), message.to_owned()),
                "{body}"
            );
        }
    }
}
