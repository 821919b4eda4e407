//! Settings → Passkeys: the list (name, added, last used), adding one (two JSON requests
//! around the browser's `navigator.credentials.create()`, run by `static/passkeys.js`),
//! renaming and removing one (plain forms; removing asks for the password).
//!
//! The JSON requests are forms too: `static/passkeys.js` posts them url-encoded with the
//! page's `csrf_token`, so they pass the same CSRF check as every other POST.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::clock::utc;
use crate::domain::PasskeyName;
use crate::services::passkeys::{
    FinishError, PasskeyRefusal, RemoveError, RenameError, StartError,
};
use crate::services::sessions::Reconfirm;
use crate::services::{Refusal, SessionUser};
use crate::store::PasskeyId;
use crate::web::extract::{Page, ValidForm};
use crate::web::forms::{refused_current_password, NameFields, PasswordFields, WRONG_CURRENT};
use crate::web::params::{Posted, Query};
use crate::web::render::{html_adjusted, Chrome};
use crate::web::respond::{json_document, json_error, maybe_retry_after, SavedQuery};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/passkeys", get(passkeys_page))
        .route(
            "/settings/passkeys/register/start",
            post(start_registration),
        )
        .route(
            "/settings/passkeys/register/finish",
            post(finish_registration),
        )
        .route("/settings/passkeys/{id}/rename", post(rename_passkey))
        .route("/settings/passkeys/{id}/remove", post(remove_passkey))
}

/// One passkey as listed.
struct PasskeyRow {
    id: i64,
    name: String,
    created: String,
    last_used: Option<String>,
}

/// A failed rename or removal, shown at the passkey it was about.
#[derive(Default)]
struct RowErrors {
    id: i64,
    name: Option<String>,
    password: Option<String>,
    form: Option<String>,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    chrome: Chrome,
    passkeys: Vec<PasskeyRow>,
    notice: Option<&'static str>,
    errors: RowErrors,
    /// What was typed as a new name, kept after an error.
    typed_name: String,
    max_name: usize,
    /// Adding one asks for the password too (no sign-in in the last 15 minutes).
    password_needed: bool,
}

impl PasskeysPage {
    fn errors_for(&self, id: &i64) -> bool {
        self.errors.id == *id
    }
}

async fn render(
    page: &Page<SessionUser>,
    status: StatusCode,
    adjust: impl FnOnce(&mut PasskeysPage),
) -> Result<Response, WebError> {
    let passkeys = page
        .state
        .services
        .passkeys
        .list(&page.who)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id.0,
            name: p.name,
            created: utc(p.created_at),
            last_used: p.last_used_at.map(utc),
        })
        .collect();
    let shown = PasskeysPage {
        chrome: Chrome::signed_in(page.csrf.clone(), &page.who, "settings"),
        passkeys,
        notice: None,
        errors: RowErrors::default(),
        typed_name: String::new(),
        max_name: PasskeyName::MAX_CHARS,
        password_needed: page.state.services.sessions.password_needed(&page.who),
    };
    Ok(html_adjusted(status, shown, adjust))
}

async fn passkeys_page(
    page: Page<SessionUser>,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    let notice = match q.saved.as_str() {
        "added" => Some("Your passkey was added."),
        "renamed" => Some("Your passkey was renamed."),
        "removed" => Some("Your passkey was removed. It can no longer be used to sign in."),
        _ => None,
    };
    render(&page, StatusCode::OK, |p| p.notice = notice).await
}

const UNAVAILABLE: &str = "Passkeys cannot be used at this portal's address. Ask your provider to give the portal a host name (not an IP address).";

/// Starting to add a passkey: its name, and the password when the sign-in is not recent.
#[derive(Default, Deserialize)]
#[serde(default)]
struct StartFields {
    name: String,
    current_password: String,
}

/// What the page says when the sign-in is not recent and no password was typed.
const START_PASSWORD: &str = "To add a passkey, confirm your portal password too.";

/// Starts adding a passkey: the options for `navigator.credentials.create()`. The name
/// is checked first, so a bad one is said before the authenticator is asked.
async fn start_registration(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<StartFields>,
) -> Result<Response, WebError> {
    if let Err(e) = PasskeyName::parse(&form.name) {
        return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()));
    }
    match page
        .state
        .services
        .passkeys
        .start_registration(&page.who, Some(&form.current_password), page.client)
        .await
    {
        Ok(options) => Ok(json_document(options)),
        Err(StartError::Unavailable) => Ok(json_error(StatusCode::CONFLICT, UNAVAILABLE)),
        Err(StartError::Reconfirm(Reconfirm::PasswordNeeded)) => {
            Ok(json_error(StatusCode::UNAUTHORIZED, START_PASSWORD))
        }
        Err(StartError::Reconfirm(Reconfirm::Refused(r))) => {
            let refused = refused_current_password(r);
            let response = json_error(refused.status, &refused.message);
            Ok(maybe_retry_after(response, refused.retry_after))
        }
        Err(StartError::Unexpected(e)) => Err(e.into()),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct FinishFields {
    name: String,
    /// The JSON of the `PublicKeyCredential` the browser made.
    response: String,
}

/// Finishes adding a passkey: `{"redirect": "/settings/passkeys?saved=added", "codes":
/// [...]}` (the recovery codes when it is the user's first second factor, else none), or
/// an error that says what to do; nothing is stored on an error.
async fn finish_registration(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<FinishFields>,
) -> Result<Response, WebError> {
    let name = match PasskeyName::parse(&form.name) {
        Ok(n) => n,
        Err(e) => return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())),
    };
    let outcome = page
        .state
        .services
        .passkeys
        .finish_registration(&page.who, &name, &form.response, page.client)
        .await;
    let (status, message) = match outcome {
        Ok((_, codes)) => {
            // The first second factor: its recovery codes, shown once by the script.
            let codes = codes.map(|c| c.0).unwrap_or_default();
            return Ok(Json(serde_json::json!({
                "redirect": "/settings/passkeys?saved=added",
                "codes": codes,
            }))
            .into_response());
        }
        Err(FinishError::Refused(r)) => match r {
            PasskeyRefusal::Unreadable => (
                StatusCode::BAD_REQUEST,
                "The browser's answer could not be read. Reload the page and try again.",
            ),
            PasskeyRefusal::Expired => (
                StatusCode::CONFLICT,
                "The request to add a passkey ran out or was already used. Try again.",
            ),
            PasskeyRefusal::Rejected => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "The passkey could not be verified, so it was not added. Try again, or use another authenticator.",
            ),
            PasskeyRefusal::AlreadyRegistered => (
                StatusCode::CONFLICT,
                "This passkey is already registered.",
            ),
            PasskeyRefusal::Unavailable => (StatusCode::CONFLICT, UNAVAILABLE),
        },
        Err(FinishError::Unexpected(e)) => return Err(e.into()),
    };
    Ok(json_error(status, message))
}

async fn rename_passkey(
    page: Page<SessionUser>,
    Posted(id, form): Posted<PasskeyId, NameFields>,
) -> Result<Response, WebError> {
    let passkeys = &page.state.services.passkeys;
    let problem = match PasskeyName::parse(&form.name) {
        Err(e) => e.to_string(),
        Ok(name) => match passkeys.rename(&page.who, id, &name, page.client).await {
            Ok(()) => return Ok(Redirect::to("/settings/passkeys?saved=renamed").into_response()),
            Err(RenameError::NotFound) => return Err(WebError::NotFound),
            Err(RenameError::Unexpected(e)) => return Err(e.into()),
        },
    };
    let typed: String = form.name.chars().take(PasskeyName::MAX_CHARS * 2).collect();
    render(&page, StatusCode::UNPROCESSABLE_ENTITY, |p| {
        p.errors = RowErrors {
            id: id.0,
            name: Some(problem),
            ..RowErrors::default()
        };
        p.typed_name = typed;
    })
    .await
}

async fn remove_passkey(
    page: Page<SessionUser>,
    Posted(id, form): Posted<PasskeyId, PasswordFields>,
) -> Result<Response, WebError> {
    let mut errors = RowErrors {
        id: id.0,
        ..RowErrors::default()
    };
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    let mut retry_after = None;
    match page
        .state
        .services
        .passkeys
        .remove(&page.who, id, &form.current_password, page.client)
        .await
    {
        Ok(()) => return Ok(Redirect::to("/settings/passkeys?saved=removed").into_response()),
        Err(RemoveError::NotFound) => return Err(WebError::NotFound),
        Err(RemoveError::Refused(Refusal::WrongPassword)) => {
            errors.password = Some(WRONG_CURRENT.to_owned());
        }
        Err(RemoveError::Refused(r)) => {
            let shown = refused_current_password(r);
            errors.form = Some(shown.message);
            status = shown.status;
            retry_after = shown.retry_after;
        }
        Err(RemoveError::Unexpected(e)) => return Err(e.into()),
    }
    let response = render(&page, status, |p| p.errors = errors).await?;
    Ok(maybe_retry_after(response, retry_after))
}
