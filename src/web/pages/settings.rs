//! The Settings tab: Change Password (current, new, confirm).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::auth::with_retry_after;
use crate::accounts::phone::PhoneError;
use crate::accounts::security::SecurityQuestionError;
use crate::accounts::{ChangePasswordError, PasswordForm, SessionUser};
use crate::domain::SUGGESTED_QUESTIONS;
use crate::web::extract::{session_cookie, ClientInfo, CsrfToken, CurrentUser, ValidForm};
use crate::web::render::{html, Chrome};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(settings_page))
        .route("/settings/password", post(change_password))
        .route("/settings/pin", post(change_pin))
        .route("/settings/security-question", post(set_security_question))
}

/// Problems with a password form, each tied to its field.
#[derive(Debug, Default)]
pub struct PasswordErrors {
    pub current: Option<String>,
    pub new: Vec<&'static str>,
    pub confirm: Option<String>,
    pub form: Option<String>,
    /// Seconds for a `Retry-After` header (locked or busy).
    pub retry_after: Option<u64>,
}

impl PasswordErrors {
    pub fn any(&self) -> bool {
        self.current.is_some()
            || !self.new.is_empty()
            || self.confirm.is_some()
            || self.form.is_some()
    }
}

/// Turns a password change outcome into the new session token, or the status and errors
/// to re-render the form with. Unexpected failures stay errors.
pub fn password_change_outcome(
    outcome: Result<String, ChangePasswordError>,
) -> Result<Result<String, (StatusCode, PasswordErrors)>, WebError> {
    let mut errors = PasswordErrors::default();
    let status = match outcome {
        Ok(token) => return Ok(Ok(token)),
        Err(ChangePasswordError::Invalid { problems, mismatch }) => {
            errors.new = problems.iter().map(|p| p.message()).collect();
            if mismatch {
                errors.confirm = Some("The two new passwords do not match.".to_owned());
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ChangePasswordError::WrongCurrent) => {
            errors.current = Some("Your current password is not right.".to_owned());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ChangePasswordError::Locked { retry_after }) => {
            let m = retry_after.as_secs().div_ceil(60).max(1);
            errors.form = Some(format!(
                "Too many wrong passwords. Try again in {m} minute{}.",
                if m == 1 { "" } else { "s" }
            ));
            errors.retry_after = Some(retry_after.as_secs());
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(ChangePasswordError::Busy) => {
            errors.form =
                Some("The portal is very busy right now. Please try again in a moment.".to_owned());
            errors.retry_after = Some(2);
            StatusCode::SERVICE_UNAVAILABLE
        }
        Err(ChangePasswordError::Unexpected(e)) => return Err(e.into()),
    };
    Ok(Err((status, errors)))
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    username: String,
    saved: bool,
    errors: PasswordErrors,
    pin_saved: bool,
    pin_errors: PinErrors,
    /// Admins only: the support security question section.
    is_admin: bool,
    question: Option<String>,
    suggested: &'static [&'static str],
    question_saved: bool,
    question_form: QuestionForm,
    question_errors: QuestionErrors,
}

impl SettingsPage {
    fn choice_is(&self, choice: &usize) -> bool {
        self.question_form.choice == choice.to_string()
    }
}

/// Renders the Settings tab; `adjust` fills in a form's outcome.
async fn render_settings(
    state: &AppState,
    su: &SessionUser,
    csrf: String,
    status: StatusCode,
    adjust: impl FnOnce(&mut SettingsPage),
) -> Result<Response, WebError> {
    let is_admin = su.user.is_admin();
    let question = if is_admin {
        state.accounts.security_question_of(su).await?
    } else {
        None
    };
    let mut page = SettingsPage {
        chrome: Chrome::signed_in(csrf, su, "settings"),
        username: su.user.username(),
        saved: false,
        errors: PasswordErrors::default(),
        pin_saved: false,
        pin_errors: PinErrors::default(),
        is_admin,
        question,
        suggested: SUGGESTED_QUESTIONS,
        question_saved: false,
        question_form: QuestionForm::default(),
        question_errors: QuestionErrors::default(),
    };
    adjust(&mut page);
    Ok(html(status, &page))
}

/// Problems with the PIN form, each tied to its field.
#[derive(Debug, Default)]
pub struct PinErrors {
    pub new: Option<&'static str>,
    pub confirm: Option<&'static str>,
}

impl PinErrors {
    /// The page's PIN errors for a rejected PIN.
    pub fn from_outcome(problem: Option<crate::domain::PinProblem>, mismatch: bool) -> PinErrors {
        PinErrors {
            new: problem.map(|p| p.message()),
            confirm: mismatch.then_some("The two PINs do not match."),
        }
    }
}

#[derive(Deserialize)]
struct SettingsQuery {
    #[serde(default)]
    saved: String,
}

async fn settings_page(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    CsrfToken(csrf): CsrfToken,
    Query(q): Query<SettingsQuery>,
) -> Result<Response, WebError> {
    render_settings(&state, &su, csrf, StatusCode::OK, |p| {
        p.saved = q.saved == "password";
        p.pin_saved = q.saved == "pin";
        p.question_saved = q.saved == "question";
    })
    .await
}

#[derive(Deserialize)]
struct ChangeFields {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    ClientInfo(client): ClientInfo,
    CsrfToken(csrf): CsrfToken,
    jar: CookieJar,
    ValidForm(form): ValidForm<ChangeFields>,
) -> Result<Response, WebError> {
    let outcome = if form.current_password.is_empty() {
        Err(ChangePasswordError::WrongCurrent)
    } else {
        state
            .accounts
            .change_password(
                &su,
                PasswordForm {
                    current: Some(&form.current_password),
                    new: &form.new_password,
                    confirm: &form.confirm_password,
                },
                client,
            )
            .await
    };
    match password_change_outcome(outcome)? {
        Ok(token) => {
            let jar = jar.add(session_cookie(&state, Some(token)));
            Ok((jar, Redirect::to("/settings?saved=password")).into_response())
        }
        Err((status, errors)) => {
            let retry = errors.retry_after;
            let response =
                render_settings(&state, &su, csrf, status, |p| p.errors = errors).await?;
            Ok(match retry {
                Some(s) => with_retry_after(response, s),
                None => response,
            })
        }
    }
}

#[derive(Deserialize)]
struct PinFields {
    #[serde(default)]
    new_pin: String,
    #[serde(default)]
    confirm_pin: String,
}

async fn change_pin(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    CsrfToken(csrf): CsrfToken,
    ValidForm(form): ValidForm<PinFields>,
) -> Result<Response, WebError> {
    match state
        .accounts
        .change_pin(&su, &form.new_pin, &form.confirm_pin)
        .await
    {
        Ok(()) => Ok(Redirect::to("/settings?saved=pin").into_response()),
        Err(PhoneError::Pin { problem, mismatch }) => {
            render_settings(&state, &su, csrf, StatusCode::UNPROCESSABLE_ENTITY, |p| {
                p.pin_errors = PinErrors::from_outcome(problem, mismatch)
            })
            .await
        }
        Err(PhoneError::Unexpected(e)) => Err(e.into()),
        Err(_) => Err(WebError::BadRequest),
    }
}

/// The security question form as typed (never the answer or the password).
#[derive(Default, Deserialize)]
struct QuestionForm {
    /// The index of a suggested question, or "custom".
    #[serde(default)]
    choice: String,
    #[serde(default)]
    custom_question: String,
}

#[derive(Default)]
struct QuestionErrors {
    question: Option<String>,
    answer: Option<String>,
    password: Option<String>,
    form: Option<String>,
}

impl QuestionErrors {
    fn any(&self) -> bool {
        self.question.is_some()
            || self.answer.is_some()
            || self.password.is_some()
            || self.form.is_some()
    }
}

#[derive(Deserialize)]
struct QuestionFields {
    #[serde(default)]
    choice: String,
    #[serde(default)]
    custom_question: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    current_password: String,
}

async fn set_security_question(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    ClientInfo(client): ClientInfo,
    CsrfToken(csrf): CsrfToken,
    ValidForm(form): ValidForm<QuestionFields>,
) -> Result<Response, WebError> {
    if !su.user.is_admin() {
        return Err(WebError::NotAllowed);
    }
    let question = match form.choice.as_str() {
        "custom" => Some(form.custom_question.as_str()),
        n => n
            .parse::<usize>()
            .ok()
            .and_then(|i| SUGGESTED_QUESTIONS.get(i))
            .copied(),
    };
    let mut errors = QuestionErrors::default();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    match question {
        None => errors.question = Some("Choose a question, or write your own.".to_owned()),
        Some(q) => match state
            .accounts
            .set_security_question(&su, q, &form.answer, &form.current_password, client)
            .await
        {
            Ok(()) => return Ok(Redirect::to("/settings?saved=question").into_response()),
            Err(SecurityQuestionError::Invalid { question, answer }) => {
                errors.question = question;
                errors.answer = answer;
            }
            Err(SecurityQuestionError::WrongPassword) => {
                errors.password = Some("Your current password is not right.".to_owned());
            }
            Err(SecurityQuestionError::Locked { retry_after }) => {
                let m = retry_after.as_secs().div_ceil(60).max(1);
                errors.form = Some(format!(
                    "Too many wrong passwords. Try again in {m} minute{}.",
                    if m == 1 { "" } else { "s" }
                ));
                status = StatusCode::TOO_MANY_REQUESTS;
            }
            Err(SecurityQuestionError::Busy) => {
                errors.form = Some(
                    "The portal is very busy right now. Please try again in a moment.".to_owned(),
                );
                status = StatusCode::SERVICE_UNAVAILABLE;
            }
            Err(SecurityQuestionError::NotAdmin) => return Err(WebError::NotAllowed),
            Err(SecurityQuestionError::Unexpected(e)) => return Err(e.into()),
        },
    }
    let typed = QuestionForm {
        choice: form.choice.chars().take(8).collect(),
        custom_question: form.custom_question.chars().take(200).collect(),
    };
    render_settings(&state, &su, csrf, status, |p| {
        p.question_form = typed;
        p.question_errors = errors;
    })
    .await
}
