//! Responses every page shares: `Retry-After`, the "busy" and "too many wrong passwords"
//! messages, redirects back to a page with a notice, paging, and clipping what a form
//! echoes back; and the headers of the routers made for machines.

use std::time::Duration;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;

use super::params::Caller;
use super::render::html;
use crate::services::Refusal;

/// What a page says when the hashing pool is full.
pub const BUSY: &str = "The portal is very busy right now. Please try again in a moment.";
/// `Retry-After` of a "busy" answer, in seconds.
pub const BUSY_RETRY_AFTER: u64 = 2;

/// A reset link refused because the account was just mailed as many as the limit allows.
pub const MAIL_LIMIT_REACHED: &str = "This account was already sent 3 reset emails by its administrators or support within 15 minutes, the most we send, so that nobody can flood a mailbox. Ask them to use the newest one, or send another later.";

/// The headers every answer of the routers made for machines (the JSON API, the internal
/// listener) carries: never stored by a cache, never sniffed as another type.
pub fn machine_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// A JSON document a service wrote (the options for the browser's `navigator.credentials`
/// calls), never to be stored.
pub fn json_document(body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (headers, body).into_response()
}

/// A JSON answer to a page's script: `{"error": MESSAGE}` with its status.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Seconds a client is asked to wait while the database is unavailable.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// Adds `Retry-After: seconds` (at least 1).
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Adds `Retry-After` when there is one.
pub fn maybe_retry_after(response: Response, seconds: Option<u64>) -> Response {
    match seconds {
        Some(s) => with_retry_after(response, s),
        None => response,
    }
}

/// Whole minutes left, rounded up, at least 1.
pub fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

/// "1 minute", "5 minutes".
pub fn minutes_text(d: Duration) -> String {
    let m = minutes(d);
    format!("{m} minute{}", if m == 1 { "" } else { "s" })
}

/// How a page shows a refusal (a refused password, or a change that cannot be made):
/// status, message, and `Retry-After` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Refused {
    /// A refusal with no `Retry-After`: `status`, saying `message`.
    pub fn new(status: StatusCode, message: &str) -> Refused {
        Refused {
            status,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// `page`, once `message` (where it says something about the whole form) holds why,
    /// with this status and `Retry-After`.
    pub fn on_page<P: Template>(
        self,
        mut page: P,
        message: impl FnOnce(&mut P) -> &mut Option<String>,
    ) -> Response {
        *message(&mut page) = Some(self.message);
        maybe_retry_after(html(self.status, &page), self.retry_after)
    }
}

/// A password typed inside a session (to change it, reveal a secret, set a question) was
/// refused; `wrong` is what the page says for a wrong password, with its status.
pub fn refused_in_session(r: Refusal, wrong: (StatusCode, &str)) -> Refused {
    match r {
        Refusal::WrongPassword => Refused {
            status: wrong.0,
            message: wrong.1.to_owned(),
            retry_after: None,
        },
        Refusal::Locked { retry_after } | Refusal::Throttled { retry_after } => {
            try_again_later("Too many wrong passwords.", retry_after)
        }
        Refusal::Busy => busy(),
    }
}

/// A refused sign-in; `what` names the sign-in name ("username", or "name" on the
/// operator console).
pub fn refused_sign_in(r: Refusal, what: &str) -> Refused {
    match r {
        Refusal::WrongPassword => Refused {
            status: StatusCode::UNAUTHORIZED,
            message: format!("That {what} and password do not match. Check both and try again."),
            retry_after: None,
        },
        Refusal::Locked { retry_after } => try_again_later(
            &format!("Too many failed sign-in attempts for this {what}."),
            retry_after,
        ),
        Refusal::Throttled { retry_after } => {
            try_again_later("Too many failed sign-ins from your network.", retry_after)
        }
        Refusal::Busy => busy(),
    }
}

/// 429: `why`, then when to try again, with that `Retry-After`.
fn try_again_later(why: &str, retry_after: Duration) -> Refused {
    Refused {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!("{why} Try again in {}.", minutes_text(retry_after)),
        retry_after: Some(retry_after.as_secs()),
    }
}

/// The hashing pool is full: 503 with a short `Retry-After`.
pub fn busy() -> Refused {
    Refused {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: BUSY.to_owned(),
        retry_after: Some(BUSY_RETRY_AFTER),
    }
}

/// 303 back to `path` with `?done=WHAT`, for the page to show its notice.
pub fn back_to(path: &str, done: &str) -> Response {
    Redirect::to(&format!("{path}?done={done}")).into_response()
}

/// 303 back to an operator's caller page with `?done=WHAT`.
pub fn back_to_caller((code, id): &Caller, done: &str) -> Response {
    back_to(&format!("/operator/tenants/{code}/admins/{}", id.0), done)
}

/// `?done=…` on a page that shows a notice after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    pub done: String,
}

/// `?saved=…` on a settings page, naming what was just saved.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SavedQuery {
    pub saved: String,
}

/// `?q=…&page=…` on a searchable list (`deleted` names a user just deleted).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub q: String,
    pub page: Option<i64>,
    pub deleted: String,
}

/// The page a `?page=` asks for, from 1 (the first when none, or less than 1).
fn page_number(page: Option<i64>) -> i64 {
    page.unwrap_or(1).max(1)
}

/// How many pages `total` rows fill at `per_page` (at least one, even when empty).
fn page_count(total: i64, per_page: i64) -> i64 {
    ((total + per_page - 1) / per_page).max(1)
}

/// One page of a list as shown: its rows, how many rows in all, which page (from 1) and
/// of how many.
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

/// Reads page `asked` (from 1) of a list through `read` (given the zero-based page, it
/// answers that page's rows and the total), or the last page when `asked` is past the end,
/// so an old link or a list that shrank never shows "Page 9 of 2" and an empty table.
pub async fn read_page<T, E, Fut>(
    asked: Option<i64>,
    per_page: i64,
    read: impl Fn(i64) -> Fut,
) -> Result<Paged<T>, E>
where
    Fut: std::future::Future<Output = Result<(Vec<T>, i64), E>>,
{
    let mut page = page_number(asked);
    loop {
        let (rows, total) = read(page - 1).await?;
        let pages = page_count(total, per_page);
        if page <= pages {
            return Ok(Paged {
                rows,
                total,
                page,
                pages,
            });
        }
        // Past the end: its last page (an earlier one each time, so this ends).
        page = pages;
    }
}

/// What a form echoes back of a field: trimmed and at most `n` characters.
pub fn clip(s: &str, n: usize) -> String {
    s.trim().chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_up_and_pages_never_reach_zero() {
        for (seconds, text) in [(1, "1 minute"), (61, "2 minutes")] {
            assert_eq!(minutes_text(Duration::from_secs(seconds)), text);
        }
        for (rows, pages) in [(0, 1), (51, 2)] {
            assert_eq!(page_count(rows, 50), pages);
        }
    }
}
