//! The stylesheet, the theme script, the softphone's bundle and the icon, compiled into
//! the binary so one file is the whole portal.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::web::AppState;

const CACHE: &str = "public, max-age=3600";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/theme.js", get(theme_script))
        .route("/static/favicon.svg", get(icon))
        .route("/static/softphone.js", get(softphone_script))
        .route("/static/passkeys.js", get(passkeys_script))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../../static/app.css"),
    )
}

async fn theme_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../../static/theme.js"),
    )
}

/// The Phone tab's softphone, bundled from `web/softphone/` (see README.md).
async fn softphone_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../../static/softphone.js"),
    )
}

/// The passkeys page's WebAuthn glue (plain JavaScript, no build step).
async fn passkeys_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../../static/passkeys.js"),
    )
}

async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../../static/favicon.svg"),
    )
}
