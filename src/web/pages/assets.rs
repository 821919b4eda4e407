//! The stylesheet, the theme script, the softphone's bundle and the icon, compiled into
//! the binary so one file is the whole portal.

use axum::http::header;
use axum::routing::{get, MethodRouter};
use axum::Router;

use crate::web::AppState;

const CACHE: &str = "public, max-age=3600";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The files: where each is served, its type and its contents.
const FILES: [(&str, &str, &str); 5] = [
    (
        "/static/app.css",
        CSS,
        include_str!("../../../static/app.css"),
    ),
    (
        "/static/theme.js",
        JAVASCRIPT,
        include_str!("../../../static/theme.js"),
    ),
    (
        "/static/favicon.svg",
        SVG,
        include_str!("../../../static/favicon.svg"),
    ),
    // The Phone tab's softphone, bundled from `web/softphone/` (see README.md).
    (
        "/static/softphone.js",
        JAVASCRIPT,
        include_str!("../../../static/softphone.js"),
    ),
    // The passkeys page's WebAuthn glue (plain JavaScript, no build step).
    (
        "/static/passkeys.js",
        JAVASCRIPT,
        include_str!("../../../static/passkeys.js"),
    ),
];

pub fn router() -> Router<AppState> {
    FILES
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            router.route(path, asset(content_type, body))
        })
}

/// A file compiled in: `body` as `content_type`, which a shared cache may keep an hour.
fn asset(content_type: &'static str, body: &'static str) -> MethodRouter<AppState> {
    get(move || async move {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, CACHE),
            ],
            body,
        )
    })
}
