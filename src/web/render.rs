//! Rendering templates into responses, and the page chrome (top bar, tabs, CSRF token)
//! every page template carries.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::clock::utc;
use crate::services::operator_console::OperatorSession;
use crate::services::SessionUser;
use crate::store::AuditRecord;

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
    /// The provider's operator console rather than the customer portal.
    pub console: bool,
}

/// A tab of the top bar: where it goes, its label, and the `Chrome::tab` that marks it current.
pub struct Tab {
    pub href: &'static str,
    pub label: &'static str,
    pub key: &'static str,
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
            console: false,
        }
    }

    /// The operator console's chrome for a signed-in operator.
    pub fn operator(csrf_token: String, os: &OperatorSession, tab: &'static str) -> Chrome {
        Chrome {
            csrf_token,
            signed_in: true,
            display_name: os.operator.name.to_string(),
            tab,
            is_admin: false,
            nav: true,
            console: true,
        }
    }

    /// The operator console's chrome before sign-in.
    pub fn operator_anonymous(csrf_token: String) -> Chrome {
        Chrome {
            console: true,
            ..Chrome::anonymous(csrf_token)
        }
    }

    /// Where the brand links to.
    pub fn home(&self) -> &'static str {
        match (self.console, self.signed_in) {
            (true, true) => "/operator/tenants",
            (true, false) => "/operator/login",
            (false, true) => "/phone",
            (false, false) => "/login",
        }
    }

    /// Where the sign-out forms post.
    pub fn sign_out_action(&self) -> &'static str {
        if self.console {
            "/operator/logout"
        } else {
            "/logout"
        }
    }

    /// The tabs of the top bar and the menu.
    pub fn tabs(&self) -> Vec<Tab> {
        let tab = |href, label, key| Tab { href, label, key };
        if self.console {
            return vec![
                tab("/operator/tenants", "Tenants", "tenants"),
                tab("/operator/audit", "Audit log", "audit"),
            ];
        }
        let mut tabs = vec![
            tab("/phone", "Phone", "phone"),
            tab("/settings", "Settings", "settings"),
        ];
        if self.is_admin {
            tabs.push(tab("/admin/users", "Admin", "admin"));
        }
        tabs
    }

    pub fn signed_in(csrf_token: String, su: &SessionUser, tab: &'static str) -> Chrome {
        Chrome {
            csrf_token,
            signed_in: true,
            display_name: su.user.name.clone(),
            tab,
            is_admin: su.user.is_admin(),
            nav: !su.user.password_temporary,
            console: false,
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

/// `page` once `adjust` filled in what this answer shows (a notice, a form's errors),
/// rendered with `status`.
pub fn html_adjusted<T: Template>(
    status: StatusCode,
    mut page: T,
    adjust: impl FnOnce(&mut T),
) -> Response {
    adjust(&mut page);
    html(status, &page)
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

/// An audit event as the audit tables show it (see `templates/audit_table.html`).
pub struct EventView {
    pub at: String,
    pub kind: String,
    pub actor: String,
    pub subject: String,
    pub client_addr: String,
    pub detail: String,
}

impl EventView {
    pub fn from_record(e: AuditRecord) -> EventView {
        EventView {
            at: utc(e.at),
            kind: e.kind,
            actor: e.actor.unwrap_or_default(),
            subject: e.subject.unwrap_or_default(),
            client_addr: e.client_addr.unwrap_or_default(),
            detail: match (e.repeats, e.last_at) {
                (n, Some(last)) if n > 1 => {
                    let detail = e.detail.unwrap_or_default();
                    let sep = if detail.is_empty() { "" } else { "; " };
                    format!("{detail}{sep}{n} times, the last at {}", utc(last))
                }
                _ => e.detail.unwrap_or_default(),
            },
        }
    }
}
