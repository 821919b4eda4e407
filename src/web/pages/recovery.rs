//! Forgot password / forgot username, and the reset link's page. The answer to a request
//! is the same page whatever exists; the link's page never uses the link up.

use crate::web::params::Query;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::clock::human;
use crate::services::recovery::{Identifier, ResetError};
use crate::web::extract::{device_cookie, Anyone, Page, ValidForm};
use crate::web::forms::{device_cookie_of, PasswordErrors};
use crate::web::render::{html, Chrome};
use crate::web::respond::{busy, clip, maybe_retry_after};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/password/forgot", get(forgot_form).post(forgot))
        .route("/password/reset", get(reset_form).post(reset))
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    identifier: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "forgot_sent.html")]
struct ForgotSentPage {
    chrome: Chrome,
    usernames: bool,
    ttl: String,
}

/// The "forgot" form: empty, or as typed with what is wrong with it.
fn forgot_page(
    status: StatusCode,
    csrf: String,
    identifier: String,
    error: Option<&str>,
) -> Response {
    html(
        status,
        &ForgotPage {
            chrome: Chrome::anonymous(csrf),
            identifier,
            error: error.map(str::to_owned),
        },
    )
}

async fn forgot_form(page: Page<Anyone>) -> Response {
    forgot_page(StatusCode::OK, page.csrf, String::new(), None)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ForgotFields {
    identifier: String,
    action: String,
}

async fn forgot(
    page: Page<Anyone>,
    ValidForm(form): ValidForm<ForgotFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    let Ok(id) = Identifier::parse(&form.identifier) else {
        let typed = clip(&form.identifier, 254);
        let error = "Enter your username (like 201-wickedsprockets) or the email address on file.";
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(forgot_page(status, page.csrf, typed, Some(error)));
    };
    let usernames = form.action == "usernames";
    // The lookup and the queueing happen after the answer is sent, so the answer takes the
    // same time whether or not an account matched.
    let (recovery, client) = (state.services.recovery.clone(), page.client);
    tokio::spawn(async move {
        let done = if usernames {
            recovery.request_usernames(&id, client).await
        } else {
            recovery.request_reset(&id, client).await
        };
        if let Err(e) = done {
            tracing::error!(error = format!("{e:#}"), "a recovery request failed");
        }
    });
    Ok(html(
        StatusCode::OK,
        &ForgotSentPage {
            chrome: Chrome::anonymous(page.csrf),
            usernames,
            ttl: human(state.settings.reset_ttl),
        },
    ))
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    username: String,
    email: String,
    email_error: Option<String>,
    errors: PasswordErrors,
}

#[derive(Template)]
#[template(path = "reset_invalid.html")]
struct ResetInvalidPage {
    chrome: Chrome,
}

/// The reset pages carry a token in their address: never send it on as a referrer.
fn private(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn invalid_link(csrf: String) -> Response {
    private(html(
        StatusCode::GONE,
        &ResetInvalidPage {
            chrome: Chrome::anonymous(csrf),
        },
    ))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ResetQuery {
    token: String,
}

/// The reset link's page for `token` with `status`, as `adjust` fills in the form (what was
/// typed and what is wrong with it); the "invalid link" page when the link is not (or no
/// longer) valid.
async fn reset_page(
    page: Page<Anyone>,
    token: String,
    status: StatusCode,
    adjust: impl FnOnce(&mut ResetPage),
) -> Result<Response, WebError> {
    let Some(link) = page.state.services.recovery.reset_link(&token).await? else {
        return Ok(invalid_link(page.csrf));
    };
    let mut shown = ResetPage {
        chrome: Chrome::anonymous(page.csrf),
        token,
        username: link.username,
        email: String::new(),
        email_error: None,
        errors: PasswordErrors::default(),
    };
    adjust(&mut shown);
    let retry_after = shown.errors.retry_after;
    let response = private(html(status, &shown));
    Ok(maybe_retry_after(response, retry_after))
}

async fn reset_form(page: Page<Anyone>, Query(q): Query<ResetQuery>) -> Result<Response, WebError> {
    reset_page(page, q.token, StatusCode::OK, |_| ()).await
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ResetFields {
    token: String,
    email: String,
    new_password: String,
    confirm_password: String,
}

async fn reset(
    page: Page<Anyone>,
    jar: CookieJar,
    ValidForm(form): ValidForm<ResetFields>,
) -> Result<Response, WebError> {
    let ResetFields {
        token,
        email,
        new_password,
        confirm_password,
    } = form;
    let recovery = &page.state.services.recovery;
    let outcome = recovery
        .complete_reset(
            &token,
            &email,
            &new_password,
            &confirm_password,
            device_cookie_of(&page.state, &jar),
            page.client,
        )
        .await;
    let (status, email_error, errors) = match outcome {
        Ok(device) => {
            // The browser that used the link (and knew the email on file) is trusted
            // under the new password, as one that signs in is.
            let jar = jar.add(device_cookie(&page.state, device));
            let done = (jar, Redirect::to("/login?reset=done")).into_response();
            return Ok(private(done));
        }
        Err(ResetError::LinkInvalid) => return Ok(invalid_link(page.csrf)),
        Err(ResetError::Busy) => {
            let shown = busy();
            let errors = PasswordErrors {
                form: Some(shown.message),
                retry_after: shown.retry_after,
                ..Default::default()
            };
            (shown.status, None, errors)
        }
        Err(ResetError::Form {
            email_wrong,
            rejected,
        }) => {
            let errors = rejected
                .as_ref()
                .map(PasswordErrors::rejected)
                .unwrap_or_default();
            let email_error = email_wrong
                .then(|| "This is not the email address on file for this account.".to_owned());
            (StatusCode::UNPROCESSABLE_ENTITY, email_error, errors)
        }
        Err(ResetError::Unexpected(e)) => return Err(e.into()),
    };
    let email = clip(&email, 254);
    reset_page(page, token, status, |p| {
        p.email = email;
        p.email_error = email_error;
        p.errors = errors;
    })
    .await
}
