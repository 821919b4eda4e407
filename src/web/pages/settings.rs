//! The Settings tab: Change Password (current, new, confirm), the voicemail PIN, an
//! admin's security question, and the list of "Your sessions" (ended in `pages::sessions`).

use crate::web::params::Query;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::clock::utc;
use crate::domain::{SecurityAnswer, SecurityQuestion, SUGGESTED_QUESTIONS};
use crate::services::passwords::ChangePasswordError;
use crate::services::phone::PinError;
use crate::services::security_questions::SecurityQuestionError;
use crate::services::sessions::OwnSession;
use crate::services::tenant_admin::Admin;
use crate::services::{Refusal, SessionUser};
use crate::web::extract::{Page, ValidForm};
use crate::web::forms::{
    device_cookie_of, field, field_errors, password_change_outcome, refused_current_password,
    NewPasswordFields, PasswordErrors, PinErrors, PinFields, WRONG_CURRENT,
};
use crate::web::render::{html_adjusted, Chrome};
use crate::web::respond::{maybe_retry_after, SavedQuery};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(settings_page))
        .route("/settings/password", post(change_password))
        .route("/settings/pin", post(change_pin))
        .route("/settings/security-question", post(set_security_question))
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
    /// "Your sessions": the user's live sessions, this one first.
    sessions: Vec<SessionView>,
    /// Which "Your sessions" action just finished: `session` or `sessions`.
    sessions_saved: &'static str,
}

/// One row of "Your sessions".
struct SessionView {
    id: i64,
    device: String,
    address: String,
    signed_in: String,
    last_seen: String,
    current: bool,
}

impl From<OwnSession> for SessionView {
    fn from(s: OwnSession) -> Self {
        SessionView {
            id: s.id.0,
            device: s.device,
            address: s.address.unwrap_or_else(|| "unknown".to_owned()),
            signed_in: utc(s.signed_in),
            last_seen: utc(s.last_seen),
            current: s.current,
        }
    }
}

impl SettingsPage {
    fn choice_is(&self, choice: &usize) -> bool {
        self.question_form.choice == choice.to_string()
    }
}

/// Renders the Settings tab; `adjust` fills in a form's outcome.
async fn render_settings(
    page: &Page<SessionUser>,
    status: StatusCode,
    adjust: impl FnOnce(&mut SettingsPage),
) -> Result<Response, WebError> {
    let (state, su) = (&page.state, &page.who);
    let is_admin = su.user.is_admin();
    let question = if is_admin {
        state.services.security_questions.question_of(su).await?
    } else {
        None
    };
    let sessions = state.services.sessions.own_sessions(su).await?;
    let shown = SettingsPage {
        chrome: Chrome::signed_in(page.csrf.clone(), su, "settings"),
        username: su.user.username().to_string(),
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
        sessions: sessions.into_iter().map(SessionView::from).collect(),
        sessions_saved: "",
    };
    Ok(html_adjusted(status, shown, adjust))
}

async fn settings_page(
    page: Page<SessionUser>,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    render_settings(&page, StatusCode::OK, |p| {
        p.saved = q.saved == "password";
        p.pin_saved = q.saved == "pin";
        p.question_saved = q.saved == "question";
        p.sessions_saved = match q.saved.as_str() {
            "session" => "session",
            "sessions" => "sessions",
            _ => "",
        };
    })
    .await
}

async fn change_password(
    page: Page<SessionUser>,
    jar: CookieJar,
    ValidForm(form): ValidForm<NewPasswordFields>,
) -> Result<Response, WebError> {
    let outcome = if form.current_password.is_empty() {
        Err(ChangePasswordError::Refused(Refusal::WrongPassword))
    } else {
        let passwords = &page.state.services.passwords;
        let device = device_cookie_of(&page.state, &jar);
        passwords
            .change_password(&page.who, form.typed(true), device, page.client)
            .await
    };
    let to = "/settings?saved=password";
    match password_change_outcome(outcome, &page.state, jar, to)? {
        Ok(changed) => Ok(changed),
        Err((status, errors)) => {
            let retry = errors.retry_after;
            let response = render_settings(&page, status, |p| p.errors = errors).await?;
            Ok(maybe_retry_after(response, retry))
        }
    }
}

async fn change_pin(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<PinFields>,
) -> Result<Response, WebError> {
    let phone = &page.state.services.phone;
    match phone
        .change_pin(&page.who, &form.new_pin, &form.confirm_pin, &page.client)
        .await
    {
        Ok(()) => Ok(Redirect::to("/settings?saved=pin").into_response()),
        Err(PinError::Rejected(r)) => {
            render_settings(&page, StatusCode::UNPROCESSABLE_ENTITY, |p| {
                p.pin_errors = PinErrors::rejected(r)
            })
            .await
        }
        Err(PinError::Unexpected(e)) => Err(e.into()),
    }
}

/// The security question form as typed (never the answer or the password).
#[derive(Default, Deserialize)]
#[serde(default)]
struct QuestionForm {
    /// The index of a suggested question, or "custom".
    choice: String,
    custom_question: String,
}

field_errors!(struct QuestionErrors { question, answer, password, form });

#[derive(Default, Deserialize)]
#[serde(default)]
struct QuestionFields {
    choice: String,
    custom_question: String,
    answer: String,
    current_password: String,
}

async fn set_security_question(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<QuestionFields>,
) -> Result<Response, WebError> {
    let Some(admin) = Admin::of(page.who.clone(), page.client.addr) else {
        return Err(WebError::NotAllowed);
    };
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
    let mut retry_after = None;
    let question = match question {
        None => {
            errors.question = Some("Choose a question, or write your own.".to_owned());
            None
        }
        Some(q) => field(SecurityQuestion::parse(q), &mut errors.question),
    };
    let answer = field(SecurityAnswer::parse(&form.answer), &mut errors.answer);
    if let (Some(question), Some(answer)) = (question, answer) {
        match page
            .state
            .services
            .security_questions
            .set(
                &admin,
                &question,
                &answer,
                &form.current_password,
                page.client,
            )
            .await
        {
            Ok(()) => return Ok(Redirect::to("/settings?saved=question").into_response()),
            Err(SecurityQuestionError::Refused(Refusal::WrongPassword)) => {
                errors.password = Some(WRONG_CURRENT.to_owned());
            }
            Err(SecurityQuestionError::Refused(r)) => {
                let shown = refused_current_password(r);
                errors.form = Some(shown.message);
                status = shown.status;
                retry_after = shown.retry_after;
            }
            Err(SecurityQuestionError::Unexpected(e)) => return Err(e.into()),
        }
    }
    let typed = QuestionForm {
        choice: form.choice.chars().take(8).collect(),
        custom_question: form.custom_question.chars().take(200).collect(),
    };
    let response = render_settings(&page, status, |p| {
        p.question_form = typed;
        p.question_errors = errors;
    })
    .await?;
    Ok(maybe_retry_after(response, retry_after))
}
