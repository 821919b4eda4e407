//! Forgot password / forgot username, and the reset link's page. The answer to a request
//! is the same page whatever exists; the link's page never uses the link up.

use crate::web::params::Query;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::mail::compose::human;
use crate::services::recovery::{Identifier, ResetError};
use crate::web::extract::{Anyone, Page, ValidForm};
use crate::web::forms::PasswordErrors;
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

async fn forgot_form(page: Page<Anyone>) -> Response {
    html(
        StatusCode::OK,
        &ForgotPage {
            chrome: Chrome::anonymous(page.csrf),
            identifier: String::new(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct ForgotFields {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    action: String,
}

async fn forgot(
    page: Page<Anyone>,
    ValidForm(form): ValidForm<ForgotFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    let id = match Identifier::parse(&form.identifier) {
        Ok(id) => id,
        Err(_) => {
            let shown = ForgotPage {
                chrome: Chrome::anonymous(page.csrf),
                identifier: clip(&form.identifier, 254),
                error: Some(
                    "Enter your username (like 201-wickedsprockets) or the email address on file."
                        .to_owned(),
                ),
            };
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &shown));
        }
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

#[derive(Deserialize)]
struct ResetQuery {
    #[serde(default)]
    token: String,
}

async fn reset_form(page: Page<Anyone>, Query(q): Query<ResetQuery>) -> Result<Response, WebError> {
    let state = &page.state;
    let Some(link) = state.services.recovery.reset_link(&q.token).await? else {
        return Ok(invalid_link(page.csrf));
    };
    Ok(private(html(
        StatusCode::OK,
        &ResetPage {
            chrome: Chrome::anonymous(page.csrf),
            token: q.token,
            username: link.username,
            email: String::new(),
            email_error: None,
            errors: Default::default(),
        },
    )))
}

#[derive(Deserialize)]
struct ResetFields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

async fn reset(
    page: Page<Anyone>,
    ValidForm(form): ValidForm<ResetFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    let outcome = state
        .services
        .recovery
        .complete_reset(
            &form.token,
            &form.email,
            &form.new_password,
            &form.confirm_password,
            page.client,
        )
        .await;
    let (status, email_error, errors) = match outcome {
        Ok(()) => return Ok(private(Redirect::to("/login?reset=done").into_response())),
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
    let Some(link) = state.services.recovery.reset_link(&form.token).await? else {
        return Ok(invalid_link(page.csrf));
    };
    let retry_after = errors.retry_after;
    let response = private(html(
        status,
        &ResetPage {
            chrome: Chrome::anonymous(page.csrf),
            token: form.token,
            username: link.username,
            email: clip(&form.email, 254),
            email_error,
            errors,
        },
    ));
    Ok(maybe_retry_after(response, retry_after))
}
