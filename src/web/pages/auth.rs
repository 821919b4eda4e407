//! Signing in and out, and the forced "choose a new password" page after a temporary one.

use crate::web::params::Query;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::domain::Username;
use crate::services::sign_in::{SignInError, SignInStep};
use crate::services::two_step::Console;
use crate::web::extract::{
    next_to_follow, session_cookie, session_of, to_pending_step, user_signed_in, AnySession,
    Anyone, Page, ValidForm,
};
use crate::web::forms::{
    device_cookie_of, password_change_outcome, NewPasswordFields, NoFields, PasswordErrors,
    SignInFields, SignInShown, TEMPORARY_EXPIRED,
};
use crate::web::render::{html, Chrome};
use crate::web::respond::refused_sign_in;
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/phone") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route(
            "/password/choose",
            get(choose_password_form).post(choose_password),
        )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    form: SignInShown,
    next: String,
    /// A note shown above the form (after a password reset).
    notice: Option<&'static str>,
}

impl LoginPage {
    fn new(csrf: String, form: SignInShown, next: String) -> Self {
        LoginPage {
            chrome: Chrome::anonymous(csrf),
            form,
            next,
            notice: None,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct LoginQuery {
    next: String,
    reset: String,
    /// `expired` after a second step that took too long (or was already used).
    step: String,
}

async fn login_form(
    Query(q): Query<LoginQuery>,
    page: Page<Anyone>,
    parts: axum::http::request::Parts,
) -> Result<Response, WebError> {
    let next = next_to_follow(&q.next);
    if session_of(&parts, &page.state).await?.is_some() {
        return Ok(Redirect::to(if next.is_empty() { "/phone" } else { &next }).into_response());
    }
    let mut shown = LoginPage::new(page.csrf, SignInShown::default(), next);
    if q.reset == "done" {
        shown.notice = Some("Your password was changed. Sign in with your new password.");
    }
    if q.step == "expired" {
        shown.notice = Some(STEP_EXPIRED);
    }
    Ok(html(StatusCode::OK, &shown))
}

async fn login(
    page: Page<Anyone>,
    jar: CookieJar,
    ValidForm(form): ValidForm<SignInFields>,
) -> Result<Response, WebError> {
    let next = next_to_follow(&form.next);
    let typed = SignInShown::typed(&form.username);
    let mut shown = LoginPage::new(page.csrf, typed, next.clone());
    let Some((username, password)) = form.check(Username::parse, &mut shown.form) else {
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &shown));
    };
    shown.form.username = username.to_string();

    let state = &page.state;
    let device = jar.get(state.cookies.device).map(|c| c.value());
    let sign_in = &state.services.sign_in;
    match sign_in
        .sign_in(&username, password, page.client, device)
        .await
    {
        Ok(SignInStep::SecondStep(step)) => {
            let to = with_next("/login/two-step", &next);
            Ok(to_pending_step(state, jar, Console::Portal, step, &to))
        }
        Ok(SignInStep::Enrol(step)) => {
            let to = with_next("/login/two-step/setup", &next);
            Ok(to_pending_step(state, jar, Console::Portal, step, &to))
        }
        Ok(SignInStep::SignedIn(signed_in)) => {
            let (jar, target) = user_signed_in(state, jar, signed_in, &next);
            Ok((jar, Redirect::to(&target)).into_response())
        }
        Err(SignInError::Refused(r)) => {
            Ok(refused_sign_in(r, "username").on_page(shown, |p| &mut p.form.error))
        }
        Err(SignInError::TemporaryExpired) => {
            shown.form.error = Some(TEMPORARY_EXPIRED.to_owned());
            Ok(html(StatusCode::UNAUTHORIZED, &shown))
        }
        Err(SignInError::Suspended) => {
            shown.form.error = Some(SUSPENDED.to_owned());
            Ok(html(StatusCode::FORBIDDEN, &shown))
        }
        Err(SignInError::Unexpected(e)) => Err(e.into()),
    }
}

/// `path`, with `?next=` when there is somewhere to go afterwards.
fn with_next(path: &str, next: &str) -> String {
    if next.is_empty() {
        path.to_owned()
    } else {
        let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
        format!("{path}?{query}")
    }
}

/// After a second step (or a required setup) that ran out of time or was already done.
pub const STEP_EXPIRED: &str =
    "Your sign-in was not finished in time. Sign in again with your password.";

const SUSPENDED: &str = "This account is suspended. Please contact your provider.";

async fn logout(
    page: Page<Anyone>,
    jar: CookieJar,
    parts: axum::http::request::Parts,
    ValidForm(_): ValidForm<NoFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    if let Some(su) = session_of(&parts, state).await? {
        state.services.sessions.sign_out(&su, page.client).await?;
    }
    let jar = jar.add(session_cookie(state, None));
    Ok((jar, Redirect::to("/login")).into_response())
}

#[derive(Template)]
#[template(path = "choose_password.html")]
struct ChoosePasswordPage {
    chrome: Chrome,
    username: String,
    errors: PasswordErrors,
}

/// The page to choose a new password, with `status` and `errors`; anyone whose password
/// is not temporary goes to Settings instead.
fn choose_password_page(
    page: Page<AnySession>,
    status: StatusCode,
    errors: PasswordErrors,
) -> Response {
    let su = &page.who.0;
    if !su.user.password_temporary {
        return Redirect::to("/settings").into_response();
    }
    html(
        status,
        &ChoosePasswordPage {
            chrome: Chrome::signed_in(page.csrf, su, ""),
            username: su.user.username().to_string(),
            errors,
        },
    )
}

async fn choose_password_form(page: Page<AnySession>) -> Response {
    choose_password_page(page, StatusCode::OK, PasswordErrors::default())
}

async fn choose_password(
    page: Page<AnySession>,
    jar: CookieJar,
    ValidForm(form): ValidForm<NewPasswordFields>,
) -> Result<Response, WebError> {
    let su = &page.who.0;
    if !su.user.password_temporary {
        return Ok(Redirect::to("/settings").into_response());
    }
    let passwords = &page.state.services.passwords;
    let device = device_cookie_of(&page.state, &jar);
    let outcome = passwords
        .change_password(su, form.typed(false), device, page.client)
        .await;
    match password_change_outcome(outcome, &page.state, jar, "/phone")? {
        Ok(changed) => Ok(changed),
        Err((status, errors)) => Ok(choose_password_page(page, status, errors)),
    }
}
