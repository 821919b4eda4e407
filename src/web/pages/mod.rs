//! The pages, one module per area, each exposing its own `router()`.

pub mod admin;
pub mod api_tokens;
pub mod assets;
pub mod auth;
pub mod health;
pub mod operator;
pub mod passkeys;
pub mod phone;
pub mod recovery;
pub mod sessions;
pub mod settings;
pub mod two_step;

use super::WebError;

/// Unknown routes.
pub async fn not_found() -> WebError {
    WebError::NotFound
}

/// Known routes asked with a method they do not take.
pub async fn method_not_allowed() -> WebError {
    WebError::MethodNotAllowed
}
