//! The Phone tab, where sign-in lands: who and which extension this is.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::web::extract::{CsrfToken, CurrentUser};
use crate::web::render::{html, Chrome};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/phone", get(phone_page))
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage {
    chrome: Chrome,
    name: String,
    username: String,
    extension: String,
    tenant_name: String,
    tenant_code: String,
    role: String,
}

async fn phone_page(CurrentUser(su): CurrentUser, CsrfToken(csrf): CsrfToken) -> Response {
    let page = PhonePage {
        chrome: Chrome::signed_in(csrf, &su, "phone"),
        name: su.user.name.clone(),
        username: su.user.username(),
        extension: su.user.extension.clone(),
        tenant_name: su.user.tenant_name.clone(),
        tenant_code: su.user.tenant_code.clone(),
        role: if su.user.is_admin() {
            "Administrator"
        } else {
            "User"
        }
        .to_owned(),
    };
    html(StatusCode::OK, &page)
}
