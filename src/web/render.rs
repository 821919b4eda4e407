//! Rendering templates into responses, and the page chrome (top bar, tabs, CSRF token)
//! every page template carries.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::accounts::SessionUser;

/// What the shared layout needs (see `templates/layout.html`).
#[derive(Debug, Clone)]
pub struct Chrome {
    pub csrf_token: String,
    pub signed_in: bool,
    pub display_name: String,
    pub tab: &'static str,
    pub is_admin: bool,
    /// False on the forced "choose a new password" page: no tabs to escape to.
    pub nav: bool,
}

impl Chrome {
    pub fn anonymous(csrf_token: String) -> Chrome {
        Chrome {
            csrf_token,
            signed_in: false,
            display_name: String::new(),
            tab: "",
            is_admin: false,
            nav: false,
        }
    }

    pub fn signed_in(csrf_token: String, su: &SessionUser, tab: &'static str) -> Chrome {
        Chrome {
            csrf_token,
            signed_in: true,
            display_name: su.user.name.clone(),
            tab,
            is_admin: su.user.is_admin(),
            nav: !su.user.password_temporary,
        }
    }
}

/// Renders `page` with `status`; a template failure becomes the opaque 500 page.
pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Html(FALLBACK_500)).into_response()
        }
    }
}

const FALLBACK_500: &str = "<!doctype html><html lang=\"en\"><title>Something went wrong</title>\
    <h1>Something went wrong</h1><p>Please try again in a moment.</p></html>";

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub chrome: Chrome,
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

impl ErrorPage<'_> {
    /// Error pages carry no form, so they need no CSRF token.
    pub fn response(status: StatusCode, title: &str, message: &str) -> Response {
        html(
            status,
            &ErrorPage {
                chrome: Chrome::anonymous(String::new()),
                status: status.as_u16(),
                title,
                message,
            },
        )
    }
}
