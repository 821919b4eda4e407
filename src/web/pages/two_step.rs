//! Two-step sign-in pages: the second step of a sign-in (`/login/two-step`, and the
//! operator console's), setting up a second factor the rules demand before any session
//! (`…/two-step/setup`), the Settings page (`/settings/two-step`), a tenant admin's rule
//! and removal (`/admin/two-step`, `/admin/users/{extension}/two-step`), and an operator's
//! removal for a verified caller.

use std::future::Future;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::domain::{Extension, TwoStepRequirement};
use crate::services::operator_console::OperatorSession;
use crate::services::sessions::Reconfirm;
use crate::services::tenant_admin::Admin;
use crate::services::two_step::{
    AddAppError, Completed, ConfirmedChangeError, Console, EnrolError, OperatorRemoveError,
    PasskeyStepError, Proof, RecoveryCodes, SetupError, SetupView, Status, StepError,
};
use crate::services::{Client, Refusal, SessionUser};
use crate::web::extract::{
    next_to_follow, operator_cookie, pending_cookie, user_signed_in, Anyone, Page, ValidForm,
};
use crate::web::forms::{refused_current_password, NoFields, PasswordFields};
use crate::web::params::{Caller, Named, Path, Posted, Query};
use crate::web::render::{html, html_adjusted, Chrome, ErrorPage};
use crate::web::respond::{
    self, back_to_caller, json_document, json_error, maybe_retry_after, DoneQuery, Refused,
};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/login/two-step",
            get(portal_form::<Verify>).post(submit::<Portal, Verify>),
        )
        .route("/login/two-step/passkey/start", post(passkey_start))
        .route("/login/two-step/passkey/finish", post(passkey_finish))
        .route(
            "/login/two-step/setup",
            get(portal_form::<Enrol>).post(submit::<Portal, Enrol>),
        )
        .route(
            "/operator/login/two-step",
            get(operator_form::<Verify>).post(submit::<Operator, Verify>),
        )
        .route(
            "/operator/login/two-step/setup",
            get(operator_form::<Enrol>).post(submit::<Operator, Enrol>),
        )
        .route("/settings/two-step", get(settings_page))
        .route(
            "/settings/two-step/setup",
            get(setup_form).post(confirm_setup),
        )
        .route("/settings/two-step/recovery-codes", post(regenerate_codes))
        .route("/settings/two-step/remove", post(remove_own))
        .route("/admin/two-step", get(policy_page).post(set_policy))
        .route("/admin/users/{extension}/two-step", get(admin_user_page))
        .route(
            "/admin/users/{extension}/two-step/remove",
            post(admin_remove),
        )
        .route(
            "/operator/tenants/{code}/admins/{id}/two-step/remove",
            post(operator_remove),
        )
        .route("/operator/two-step", get(operator_settings))
        .route(
            "/operator/two-step/recovery-codes",
            post(operator_regenerate_codes),
        )
}

/// What the second step's page says for a wrong code.
const WRONG_CODE: &str =
    "That code is not right. Type the 6 digits your app shows now, or an unused recovery code.";
const ENTER_CODE: &str = "Enter the code from your authenticator app, or a recovery code.";
const SETUP_WRONG: &str =
    "That code does not match. Check the app shows this account, and type the 6 digits it shows now.";

/// The console a sign-in handler serves, as a type: one handler serves the customer
/// portal's route and the operator console's.
trait Side {
    const CONSOLE: Console;
}

struct Portal;
struct Operator;

impl Side for Portal {
    const CONSOLE: Console = Console::Portal;
}

impl Side for Operator {
    const CONSOLE: Console = Console::Operator;
}

/// The sign-in a request continues: its pending step's cookie (of the console the route
/// serves), the browser's device cookie, where to go afterwards, and the request's cookies,
/// which the answer changes.
struct Pending {
    console: Console,
    cookie: String,
    device: Option<String>,
    next: String,
    jar: CookieJar,
}

impl Pending {
    /// `None` when the request carries no pending step for `console`.
    fn of(jar: CookieJar, state: &AppState, console: Console, next: &str) -> Option<Pending> {
        let name = match console {
            Console::Portal => state.cookies.pending,
            Console::Operator => state.cookies.operator_pending,
        };
        Some(Pending {
            console,
            cookie: jar.get(name)?.value().to_owned(),
            device: jar.get(state.cookies.device).map(|c| c.value().to_owned()),
            next: next_to_follow(next),
            jar,
        })
    }

    /// Completes the second step with `proof`.
    async fn complete(
        &self,
        state: &AppState,
        proof: Proof,
        client: Client,
    ) -> Result<Completed, StepError> {
        let device = self.device.as_deref();
        let two_step = &state.services.two_step;
        two_step
            .complete_second_step(&self.cookie, self.console, device, proof, client)
            .await
    }
}

/// Where a sign-in whose step ran out goes: the sign-in page, saying so.
fn start_again(console: Console) -> Response {
    match console {
        Console::Portal => Redirect::to("/login?step=expired").into_response(),
        Console::Operator => Redirect::to("/operator/login").into_response(),
    }
}

/// A pending step that is over: its cookie removed, and back to the sign-in page.
fn step_over(state: &AppState, jar: CookieJar, console: Console) -> Response {
    let jar = jar.add(pending_cookie(state, console, None));
    (jar, start_again(console)).into_response()
}

fn chrome_for(console: Console, csrf: String) -> Chrome {
    match console {
        Console::Portal => Chrome::anonymous(csrf),
        Console::Operator => Chrome::operator_anonymous(csrf),
    }
}

/// A page of a pending sign-in, served on both consoles: the second step ([`Verify`]), or
/// setting up the factor the rules demand first ([`Enrol`]).
trait Stage {
    /// The page, for the sign-in `pending` continues.
    fn show(
        page: Page<Anyone>,
        pending: Pending,
    ) -> impl Future<Output = Result<Response, WebError>> + Send;

    /// Its form, sent with `code`.
    fn submit(
        page: Page<Anyone>,
        pending: Pending,
        code: &str,
    ) -> impl Future<Output = Result<Response, WebError>> + Send;
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NextQuery {
    next: String,
}

/// A pending sign-in's page on the customer portal, where `?next=` says where to go after.
async fn portal_form<St: Stage>(
    page: Page<Anyone>,
    Query(q): Query<NextQuery>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    show::<St>(page, jar, Console::Portal, &q.next).await
}

/// A pending sign-in's page on the operator console.
async fn operator_form<St: Stage>(
    page: Page<Anyone>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    show::<St>(page, jar, Console::Operator, "").await
}

async fn show<St: Stage>(
    page: Page<Anyone>,
    jar: CookieJar,
    console: Console,
    next: &str,
) -> Result<Response, WebError> {
    match Pending::of(jar, &page.state, console, next) {
        Some(pending) => St::show(page, pending).await,
        None => Ok(start_again(console)),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CodeFields {
    code: String,
    next: String,
}

/// A pending sign-in's form, sent on the console `S` serves.
async fn submit<S: Side, St: Stage>(
    page: Page<Anyone>,
    jar: CookieJar,
    ValidForm(form): ValidForm<CodeFields>,
) -> Result<Response, WebError> {
    let Some(pending) = Pending::of(jar, &page.state, S::CONSOLE, &form.next) else {
        return Ok(start_again(S::CONSOLE));
    };
    St::submit(page, pending, &form.code).await
}

// ---- the second step -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "two_step_verify.html")]
struct StepPage {
    chrome: Chrome,
    action: &'static str,
    next: String,
    error: Option<String>,
    /// A message about the whole form (locked).
    form_error: Option<String>,
    /// The code form is offered: the account has an app or unused recovery codes.
    code: bool,
    /// The "Use a passkey" button is offered (with JavaScript).
    passkey: bool,
}

/// The second step's page for the live pending step, or `None`.
async fn step_page(
    state: &AppState,
    pending: &Pending,
    csrf: String,
) -> Result<Option<StepPage>, WebError> {
    let console = pending.console;
    let two_step = &state.services.two_step;
    let factors = two_step
        .second_step_factors(&pending.cookie, console)
        .await?;
    Ok(factors.map(|f| StepPage {
        chrome: chrome_for(console, csrf),
        action: match console {
            Console::Portal => "/login/two-step",
            Console::Operator => "/operator/login/two-step",
        },
        next: pending.next.clone(),
        error: None,
        form_error: None,
        code: f.code,
        passkey: f.passkey,
    }))
}

/// The second step: a code from the app, or a recovery code.
struct Verify;

impl Stage for Verify {
    async fn show(page: Page<Anyone>, pending: Pending) -> Result<Response, WebError> {
        match step_page(&page.state, &pending, page.csrf).await? {
            Some(shown) => Ok(html(StatusCode::OK, &shown)),
            None => Ok(start_again(pending.console)),
        }
    }

    async fn submit(
        page: Page<Anyone>,
        pending: Pending,
        code: &str,
    ) -> Result<Response, WebError> {
        let (state, console) = (&page.state, pending.console);
        let Some(mut shown) = step_page(state, &pending, page.csrf).await? else {
            return Ok(step_over(state, pending.jar, console));
        };
        let Some(proof) = Proof::from_typed(code) else {
            shown.error = Some(ENTER_CODE.to_owned());
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &shown));
        };
        match pending.complete(state, proof, page.client).await {
            Ok(completed) => {
                let (jar, target) = signed_in_cookies(state, pending, completed);
                Ok((jar, Redirect::to(&target)).into_response())
            }
            Err(StepError::Expired) => Ok(step_over(state, pending.jar, console)),
            Err(StepError::Refused(Refusal::WrongPassword)) => {
                shown.error = Some(WRONG_CODE.to_owned());
                Ok(html(StatusCode::UNAUTHORIZED, &shown))
            }
            Err(StepError::Refused(r)) => {
                let what = match console {
                    Console::Portal => "username",
                    Console::Operator => "name",
                };
                Ok(respond::refused_sign_in(r, what).on_page(shown, |p| &mut p.form_error))
            }
            Err(StepError::Unexpected(e)) => Err(e.into()),
        }
    }
}

// ---- the second step with a passkey (two JSON requests around `credentials.get()`) ----

const STEP_RAN_OUT: &str = "Your sign-in ran out. Sign in again.";
const NO_PASSKEY: &str = "This account has no passkey. Type a code instead.";
const PASSKEY_UNAVAILABLE: &str =
    "Passkeys cannot be used at this portal's address. Type a code instead.";
const PASSKEY_REFUSED: &str =
    "The passkey could not be verified. Try again, or type a code instead.";

/// The passkey step's answer when the pending sign-in is gone: start again.
fn passkey_step_ran_out() -> Response {
    let body = serde_json::json!({ "error": STEP_RAN_OUT, "redirect": "/login?step=expired" });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

/// Starts the passkey of the pending second step: the options for
/// `navigator.credentials.get()`, allowing only the pending user's passkeys.
async fn passkey_start(
    page: Page<Anyone>,
    jar: CookieJar,
    ValidForm(_): ValidForm<NoFields>,
) -> Result<Response, WebError> {
    let Some(pending) = Pending::of(jar, &page.state, Console::Portal, "") else {
        return Ok(passkey_step_ran_out());
    };
    let two_step = &page.state.services.two_step;
    match two_step
        .start_passkey_step(&pending.cookie, pending.console)
        .await
    {
        Ok(options) => Ok(json_document(options)),
        Err(PasskeyStepError::Expired) => Ok(passkey_step_ran_out()),
        Err(PasskeyStepError::NoPasskey) => Ok(json_error(StatusCode::CONFLICT, NO_PASSKEY)),
        Err(PasskeyStepError::Unavailable) => {
            Ok(json_error(StatusCode::CONFLICT, PASSKEY_UNAVAILABLE))
        }
        Err(PasskeyStepError::Unexpected(e)) => Err(e.into()),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PasskeyFields {
    /// The JSON of the `PublicKeyCredential` the browser made.
    response: String,
    next: String,
}

/// Finishes the second step with a passkey: the session's cookies and
/// `{"redirect": …}`, as a right code would; a refused assertion counts toward the
/// lockout like a wrong code.
async fn passkey_finish(
    page: Page<Anyone>,
    jar: CookieJar,
    ValidForm(form): ValidForm<PasskeyFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    let Some(pending) = Pending::of(jar, state, Console::Portal, &form.next) else {
        return Ok(passkey_step_ran_out());
    };
    let proof = Proof::Passkey(form.response);
    match pending.complete(state, proof, page.client).await {
        Ok(completed) => {
            let (jar, target) = signed_in_cookies(state, pending, completed);
            Ok((jar, Json(serde_json::json!({ "redirect": target }))).into_response())
        }
        Err(StepError::Expired) => {
            let jar = pending
                .jar
                .add(pending_cookie(state, pending.console, None));
            Ok((jar, passkey_step_ran_out()).into_response())
        }
        Err(StepError::Refused(Refusal::WrongPassword)) => {
            Ok(json_error(StatusCode::UNAUTHORIZED, PASSKEY_REFUSED))
        }
        Err(StepError::Refused(r)) => {
            let shown = respond::refused_sign_in(r, "username");
            Ok(maybe_retry_after(
                json_error(shown.status, &shown.message),
                shown.retry_after,
            ))
        }
        Err(StepError::Unexpected(e)) => Err(e.into()),
    }
}

/// The cookies of a completed sign-in (the pending step's removed) and where it goes.
fn signed_in_cookies(
    state: &AppState,
    pending: Pending,
    completed: Completed,
) -> (CookieJar, String) {
    let jar = pending
        .jar
        .add(pending_cookie(state, pending.console, None));
    match completed {
        Completed::User(si) => user_signed_in(state, jar, si, &pending.next),
        Completed::Operator(token) => (
            jar.add(operator_cookie(state, Some(token))),
            "/operator/tenants".to_owned(),
        ),
    }
}

// ---- setting up an authenticator app ---------------------------------------------------

#[derive(Template)]
#[template(path = "two_step_setup.html")]
struct SetupPage {
    chrome: Chrome,
    action: &'static str,
    /// Set up because the rules demand it, during a sign-in.
    required: bool,
    next: String,
    setup: SetupView,
    error: Option<String>,
    /// Why the password (asked for when the sign-in is not recent) was refused.
    password_error: Option<String>,
}

impl SetupPage {
    /// Setting up during a sign-in whose rules demand a factor first.
    fn during_sign_in(pending: &Pending, csrf: String, setup: SetupView) -> Self {
        SetupPage {
            chrome: chrome_for(pending.console, csrf),
            action: match pending.console {
                Console::Portal => "/login/two-step/setup",
                Console::Operator => "/operator/login/two-step/setup",
            },
            required: true,
            next: pending.next.clone(),
            setup,
            error: None,
            password_error: None,
        }
    }

    /// Setting up from Settings.
    fn in_settings(page: &Page<SessionUser>, setup: SetupView) -> Self {
        SetupPage {
            chrome: Chrome::signed_in(page.csrf.clone(), &page.who, "settings"),
            action: "/settings/two-step/setup",
            required: false,
            next: String::new(),
            setup,
            error: None,
            password_error: None,
        }
    }

    /// The page: 200, or 422 with `error` (a code that did not match).
    fn shown(self, error: Option<&str>) -> Response {
        let status = match error {
            Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
            None => StatusCode::OK,
        };
        let page = SetupPage {
            error: error.map(str::to_owned),
            ..self
        };
        html(status, &page)
    }

    /// The page saying why the password was refused, with its status.
    fn password_refused(self, refused: Refused) -> Response {
        refused.on_page(self, |p| &mut p.password_error)
    }
}

#[derive(Template)]
#[template(path = "two_step_codes.html")]
struct CodesPage {
    chrome: Chrome,
    codes: Vec<String>,
    /// Where "Continue" goes.
    continue_to: String,
    /// The app was just set up (rather than new codes made).
    enabled: bool,
}

/// Setting up the factor the rules demand, during a sign-in.
struct Enrol;

impl Enrol {
    /// The setup page: fresh, or after a code that did not match (the same secret again,
    /// saying `error`).
    async fn setup_page(
        state: &AppState,
        pending: &Pending,
        csrf: String,
        error: Option<&str>,
    ) -> Result<Response, WebError> {
        let two_step = &state.services.two_step;
        let setup = match error {
            None => two_step.enrolment(&pending.cookie, pending.console).await,
            Some(_) => {
                two_step
                    .enrolment_again(&pending.cookie, pending.console)
                    .await
            }
        };
        match setup {
            Ok(setup) => Ok(SetupPage::during_sign_in(pending, csrf, setup).shown(error)),
            Err(StepError::Unexpected(e)) => Err(e.into()),
            Err(StepError::Expired | StepError::Refused(_)) => Ok(start_again(pending.console)),
        }
    }
}

impl Stage for Enrol {
    async fn show(page: Page<Anyone>, pending: Pending) -> Result<Response, WebError> {
        Enrol::setup_page(&page.state, &pending, page.csrf, None).await
    }

    async fn submit(
        page: Page<Anyone>,
        pending: Pending,
        code: &str,
    ) -> Result<Response, WebError> {
        let state = &page.state;
        let (cookie, console) = (&pending.cookie, pending.console);
        let device = pending.device.as_deref();
        let two_step = &state.services.two_step;
        match two_step
            .complete_enrolment(cookie, console, device, code, page.client)
            .await
        {
            Ok((completed, codes)) => {
                let (jar, target) = signed_in_cookies(state, pending, completed);
                let chrome = chrome_for(console, page.csrf);
                Ok((jar, codes_page(chrome, codes, target, true)).into_response())
            }
            Err(EnrolError::Setup(SetupError::WrongCode)) => {
                Enrol::setup_page(state, &pending, page.csrf, Some(SETUP_WRONG)).await
            }
            Err(EnrolError::Step(StepError::Unexpected(e)))
            | Err(EnrolError::Setup(SetupError::Unexpected(e))) => Err(e.into()),
            Err(EnrolError::Step(StepError::Expired | StepError::Refused(_)))
            | Err(EnrolError::Setup(SetupError::NotStarted | SetupError::AlreadySet)) => {
                Ok(step_over(state, pending.jar, console))
            }
        }
    }
}

fn codes_page(
    chrome: Chrome,
    codes: RecoveryCodes,
    continue_to: String,
    enabled: bool,
) -> Response {
    html(
        StatusCode::OK,
        &CodesPage {
            chrome,
            codes: codes.0,
            continue_to,
            enabled,
        },
    )
}

// ---- Settings --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "two_step_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    status: Status,
    notice: Option<&'static str>,
    /// Errors of the "new recovery codes" form and of the "remove" form.
    codes_error: Option<String>,
    remove_error: Option<String>,
}

async fn render_settings(
    page: &Page<SessionUser>,
    status_code: StatusCode,
    adjust: impl FnOnce(&mut SettingsPage),
) -> Result<Response, WebError> {
    let status = page.state.services.two_step.status(&page.who).await?;
    let shown = SettingsPage {
        chrome: Chrome::signed_in(page.csrf.clone(), &page.who, "settings"),
        status,
        notice: None,
        codes_error: None,
        remove_error: None,
    };
    Ok(html_adjusted(status_code, shown, adjust))
}

async fn settings_page(
    page: Page<SessionUser>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    render_settings(&page, StatusCode::OK, |p| {
        p.notice = match q.done.as_str() {
            "removed" => Some("Two-step sign-in is off. You sign in with your password alone."),
            _ => None,
        };
    })
    .await
}

/// The recovery codes, shown once from Settings: the app was just set up (`enabled`), or
/// new codes were made.
fn settings_codes(page: Page<SessionUser>, codes: RecoveryCodes, enabled: bool) -> Response {
    let chrome = Chrome::signed_in(page.csrf, &page.who, "settings");
    codes_page(chrome, codes, "/settings/two-step".to_owned(), enabled)
}

/// Back to the Settings page, where a setup that is not (or no longer) under way goes.
fn to_settings() -> Result<Response, WebError> {
    Ok(Redirect::to("/settings/two-step").into_response())
}

/// The setup page in Settings, saying `error` (a code that did not match); back to the
/// Settings page when no setup is (or is any longer) under way.
fn settings_setup(
    page: &Page<SessionUser>,
    setup: Result<SetupView, SetupError>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    match setup {
        Ok(setup) => Ok(SetupPage::in_settings(page, setup).shown(error)),
        Err(SetupError::AlreadySet | SetupError::NotStarted | SetupError::WrongCode) => {
            to_settings()
        }
        Err(SetupError::Unexpected(e)) => Err(e.into()),
    }
}

async fn setup_form(page: Page<SessionUser>) -> Result<Response, WebError> {
    let setup = page.state.services.two_step.begin_setup(&page.who).await;
    settings_setup(&page, setup, None)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SetupFields {
    code: String,
    /// Asked for when the sign-in is not recent.
    current_password: String,
}

/// What the setup page says when the sign-in is not recent and no password was typed.
const SETUP_PASSWORD: &str = "To add a second factor, confirm your portal password too.";

async fn confirm_setup(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<SetupFields>,
) -> Result<Response, WebError> {
    let two_step = &page.state.services.two_step;
    let password = Some(form.current_password.as_str());
    let refused = match two_step
        .confirm_setup(&page.who, &form.code, password, page.client)
        .await
    {
        Ok(codes) => return Ok(settings_codes(page, codes, true)),
        Err(AddAppError::Setup(SetupError::WrongCode)) => {
            let again = two_step.setup_again(&page.who).await;
            return settings_setup(&page, again, Some(SETUP_WRONG));
        }
        Err(AddAppError::Setup(e)) => return settings_setup(&page, Err(e), None),
        Err(AddAppError::Reconfirm(Reconfirm::PasswordNeeded)) => {
            Refused::new(StatusCode::UNAUTHORIZED, SETUP_PASSWORD)
        }
        Err(AddAppError::Reconfirm(Reconfirm::Refused(r))) => refused_current_password(r),
    };
    match two_step.setup_again(&page.who).await {
        Ok(setup) => Ok(SetupPage::in_settings(&page, setup).password_refused(refused)),
        Err(e) => settings_setup(&page, Err(e), None),
    }
}

/// A change of the Settings page confirmed with the password; a refusal is said at its form.
#[derive(Clone, Copy)]
enum Change {
    /// New recovery codes, shown once.
    Codes,
    /// Two-step sign-in removed.
    Remove,
}

impl Change {
    /// Makes the change, confirmed with `password`: the new codes shown once, or back to
    /// Settings saying it is removed; a refusal is said at the change's form.
    async fn make(self, page: Page<SessionUser>, password: &str) -> Result<Response, WebError> {
        let two_step = &page.state.services.two_step;
        let (who, client) = (&page.who, page.client);
        let refused = match self {
            Change::Codes => match two_step.regenerate_codes(who, password, client).await {
                Ok(codes) => return Ok(settings_codes(page, codes, false)),
                Err(e) => e,
            },
            Change::Remove => match two_step.remove_own(who, password, client).await {
                Ok(()) => return Ok(respond::back_to("/settings/two-step", "removed")),
                Err(e) => e,
            },
        };
        refused_change(&page, refused, self).await
    }
}

async fn refused_change(
    page: &Page<SessionUser>,
    e: ConfirmedChangeError,
    change: Change,
) -> Result<Response, WebError> {
    let refused = match e {
        ConfirmedChangeError::Refused(r) => refused_current_password(r),
        ConfirmedChangeError::NoFactor => {
            Refused::new(StatusCode::CONFLICT, "Two-step sign-in is not set up.")
        }
        ConfirmedChangeError::Required => Refused::new(
            StatusCode::CONFLICT,
            "Your company requires two-step sign-in for your account, so it cannot be turned off. Ask your administrator.",
        ),
        ConfirmedChangeError::NotFound => return Err(WebError::NotFound),
        ConfirmedChangeError::Unexpected(e) => return Err(e.into()),
    };
    let message = refused.message;
    let response = render_settings(page, refused.status, |p| match change {
        Change::Codes => p.codes_error = Some(message),
        Change::Remove => p.remove_error = Some(message),
    })
    .await?;
    Ok(maybe_retry_after(response, refused.retry_after))
}

async fn regenerate_codes(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<PasswordFields>,
) -> Result<Response, WebError> {
    Change::Codes.make(page, &form.current_password).await
}

async fn remove_own(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<PasswordFields>,
) -> Result<Response, WebError> {
    Change::Remove.make(page, &form.current_password).await
}

// ---- tenant admins ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "two_step_policy.html")]
struct PolicyPage {
    chrome: Chrome,
    current: &'static str,
    saved: bool,
    error: Option<&'static str>,
}

/// The rule's page: saying it was just saved, or with an error (422).
async fn render_policy(
    page: &Page<Admin>,
    saved: bool,
    error: Option<&'static str>,
) -> Result<Response, WebError> {
    let current = page.state.services.two_step.requirement(&page.who).await?;
    let status = match error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    Ok(html(
        status,
        &PolicyPage {
            chrome: Chrome::signed_in(page.csrf.clone(), page.who.session(), "admin"),
            current: current.as_str(),
            saved,
            error,
        },
    ))
}

async fn policy_page(page: Page<Admin>, Query(q): Query<DoneQuery>) -> Result<Response, WebError> {
    render_policy(&page, q.done == "saved", None).await
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PolicyFields {
    required: String,
}

async fn set_policy(
    page: Page<Admin>,
    ValidForm(form): ValidForm<PolicyFields>,
) -> Result<Response, WebError> {
    let Some(requirement) = TwoStepRequirement::parse(&form.required) else {
        let error = "Choose who must use two-step sign-in.";
        return render_policy(&page, false, Some(error)).await;
    };
    let two_step = &page.state.services.two_step;
    two_step
        .set_requirement(&page.who, requirement, page.client)
        .await?;
    Ok(respond::back_to("/admin/two-step", "saved"))
}

#[derive(Template)]
#[template(path = "two_step_admin_user.html")]
struct AdminUserPage {
    chrome: Chrome,
    username: String,
    extension: String,
    has_factor: bool,
    removed: bool,
    password_error: Option<String>,
    form_error: Option<String>,
}

async fn render_admin_user(
    page: &Page<Admin>,
    extension: &Extension,
    status: StatusCode,
    adjust: impl FnOnce(&mut AdminUserPage),
) -> Result<Response, WebError> {
    let two_step = &page.state.services.two_step;
    let Some((user, has_factor)) = two_step.user_status(&page.who, extension).await? else {
        return Err(WebError::NotFound);
    };
    let shown = AdminUserPage {
        chrome: Chrome::signed_in(page.csrf.clone(), page.who.session(), "admin"),
        username: user.username().to_string(),
        extension: user.extension.to_string(),
        has_factor,
        removed: false,
        password_error: None,
        form_error: None,
    };
    Ok(html_adjusted(status, shown, adjust))
}

async fn admin_user_page(
    page: Page<Admin>,
    Path(extension): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let extension = Extension::from_path(&extension)?;
    render_admin_user(&page, &extension, StatusCode::OK, |p| {
        p.removed = q.done == "removed";
    })
    .await
}

async fn admin_remove(
    page: Page<Admin>,
    Posted(extension, form): Posted<Extension, PasswordFields>,
) -> Result<Response, WebError> {
    let two_step = &page.state.services.two_step;
    let outcome = two_step
        .remove_for_user(&page.who, &extension, &form.current_password, page.client)
        .await;
    let (status, password_error, form_error, retry) = match outcome {
        Ok(()) => {
            return Ok(respond::back_to(
                &format!("/admin/users/{extension}/two-step"),
                "removed",
            ))
        }
        Err(ConfirmedChangeError::Refused(Refusal::WrongPassword)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(crate::web::forms::WRONG_CURRENT.to_owned()),
            None,
            None,
        ),
        Err(ConfirmedChangeError::Refused(r)) => {
            let shown = refused_current_password(r);
            (shown.status, None, Some(shown.message), shown.retry_after)
        }
        Err(ConfirmedChangeError::NoFactor | ConfirmedChangeError::Required) => (
            StatusCode::CONFLICT,
            None,
            Some("This user has no two-step sign-in to remove.".to_owned()),
            None,
        ),
        Err(ConfirmedChangeError::NotFound) => return Err(WebError::NotFound),
        Err(ConfirmedChangeError::Unexpected(e)) => return Err(e.into()),
    };
    let response = render_admin_user(&page, &extension, status, |p| {
        p.password_error = password_error;
        p.form_error = form_error;
    })
    .await?;
    Ok(maybe_retry_after(response, retry))
}

// ---- operators -------------------------------------------------------------------------

async fn operator_remove(
    page: Page<OperatorSession>,
    Posted(target, _): Posted<Caller, NoFields>,
) -> Result<Response, WebError> {
    let (code, id) = &target;
    match page
        .state
        .services
        .two_step
        .remove_for_admin(&page.who, code, *id, page.client)
        .await
    {
        Ok(()) => Ok(back_to_caller(&target, "two-step-removed")),
        Err(OperatorRemoveError::NotVerified) => Ok(ErrorPage::response(
            StatusCode::FORBIDDEN,
            "Verify the caller first",
            "An admin's two-step sign-in can be removed only within 15 minutes of a matching answer to their security question.",
        )),
        Err(OperatorRemoveError::NoFactor) => Ok(ErrorPage::response(
            StatusCode::CONFLICT,
            "Nothing to remove",
            "This admin has no two-step sign-in.",
        )),
        Err(OperatorRemoveError::NotFound) => Err(WebError::NotFound),
        Err(OperatorRemoveError::Unexpected(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "operator/two_step.html")]
struct OperatorSettingsPage {
    chrome: Chrome,
    codes_left: i64,
    password_error: Option<String>,
}

async fn render_operator_settings(
    page: &Page<OperatorSession>,
    status: StatusCode,
    password_error: Option<String>,
) -> Result<Response, WebError> {
    let two_step = &page.state.services.two_step;
    let codes_left = two_step.operator_codes_left(&page.who).await?;
    Ok(html(
        status,
        &OperatorSettingsPage {
            chrome: Chrome::operator(page.csrf.clone(), &page.who, ""),
            codes_left,
            password_error,
        },
    ))
}

async fn operator_settings(page: Page<OperatorSession>) -> Result<Response, WebError> {
    render_operator_settings(&page, StatusCode::OK, None).await
}

async fn operator_regenerate_codes(
    page: Page<OperatorSession>,
    ValidForm(form): ValidForm<PasswordFields>,
) -> Result<Response, WebError> {
    let two_step = &page.state.services.two_step;
    let outcome = two_step
        .regenerate_operator_codes(&page.who, &form.current_password, page.client)
        .await;
    let refused = match outcome {
        Ok(codes) => {
            return Ok(codes_page(
                Chrome::operator(page.csrf, &page.who, ""),
                codes,
                "/operator/two-step".to_owned(),
                false,
            ))
        }
        Err(ConfirmedChangeError::Refused(r)) => refused_current_password(r),
        Err(
            ConfirmedChangeError::NoFactor
            | ConfirmedChangeError::Required
            | ConfirmedChangeError::NotFound,
        ) => {
            return Err(crate::services::Unexpected::invariant(
                "a signed-in operator has an authenticator app",
            )
            .into())
        }
        Err(ConfirmedChangeError::Unexpected(e)) => return Err(e.into()),
    };
    let response = render_operator_settings(&page, refused.status, Some(refused.message)).await?;
    Ok(maybe_retry_after(response, refused.retry_after))
}
