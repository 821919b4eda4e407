//! The provider's operator console under `/operator`: sign-in apart from the customer
//! portal, tenants (list, search, create with a first admin), and caller verification for
//! a tenant admin who is locked out. Nothing here ever shows a password (but the one
//! temporary password of a new admin without email), a reset token or a security answer.

use crate::web::params::{Caller, Named, Path, Posted, Query};
use askama::Template;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::clock::utc;
use crate::domain::{DisplayName, Email, Extension, OperatorName, SipDomain, TenantCode};
use crate::services::operator_console::NewTenantError;
use crate::services::operator_console::{
    ActError, CallerCheck, CallerView, NewTenantWithAdmin, OperatorConsole, OperatorSession,
    OperatorSignIn, VerifyError,
};
use crate::services::provisioning::TenantError;
use crate::services::recovery::NoLink;
use crate::services::sign_in::SignInError;
use crate::services::tenant_admin::PAGE_SIZE;
use crate::services::two_step::Console;
use crate::services::{Client, Unexpected};
use crate::store::UserId;
use crate::web::extract::{
    operator_cookie, operator_session_of, to_pending_step, Anyone, Page, ValidForm,
};
use crate::web::forms::field_errors;
use crate::web::forms::{field, NoFields, SignInFields, SignInShown};
use crate::web::render::{html, html_adjusted, Chrome, EventView};
use crate::web::respond::{
    back_to_caller, clip, maybe_retry_after, read_page, refused_sign_in, DoneQuery, ListQuery,
    BUSY_RETRY_AFTER, MAIL_LIMIT_REACHED,
};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/operator",
            get(|| async { Redirect::to("/operator/tenants") }),
        )
        .route("/operator/login", get(login_form).post(login))
        .route("/operator/logout", post(logout))
        .route("/operator/tenants", get(tenants_page).post(create_tenant))
        .route("/operator/tenants/{code}", get(tenant_page))
        .route("/operator/tenants/{code}/admins/{id}", get(caller_page))
        .route("/operator/tenants/{code}/admins/{id}/verify", post(verify))
        .route("/operator/tenants/{code}/admins/{id}/reveal", post(reveal))
        .route(
            "/operator/tenants/{code}/admins/{id}/reset-link",
            post(send_reset_link),
        )
        .route("/operator/tenants/{code}/admins/{id}/unlock", post(unlock))
        .route("/operator/audit", get(audit_page))
}

// ---- sign-in -------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "operator/login.html")]
struct LoginPage {
    chrome: Chrome,
    form: SignInShown,
}

async fn login_form(page: Page<Anyone>, parts: Parts) -> Result<Response, WebError> {
    if operator_session_of(&parts, &page.state).await?.is_some() {
        return Ok(Redirect::to("/operator/tenants").into_response());
    }
    Ok(html(
        StatusCode::OK,
        &LoginPage {
            chrome: Chrome::operator_anonymous(page.csrf),
            form: SignInShown::default(),
        },
    ))
}

async fn login(
    page: Page<Anyone>,
    jar: CookieJar,
    ValidForm(form): ValidForm<SignInFields>,
) -> Result<Response, WebError> {
    let mut shown = LoginPage {
        chrome: Chrome::operator_anonymous(page.csrf),
        form: SignInShown::typed(&form.username),
    };
    let Some((name, password)) = form.check(OperatorName::parse, &mut shown.form) else {
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &shown));
    };
    let state = &page.state;
    let console = &state.services.operator_console;
    match console.sign_in(&name, password, page.client).await {
        Ok(OperatorSignIn::SecondStep(step)) => {
            let to = "/operator/login/two-step";
            Ok(to_pending_step(state, jar, Console::Operator, step, to))
        }
        Ok(OperatorSignIn::Enrol(step)) => {
            let to = "/operator/login/two-step/setup";
            Ok(to_pending_step(state, jar, Console::Operator, step, to))
        }
        Err(SignInError::Refused(r)) => {
            Ok(refused_sign_in(r, "name").on_page(shown, |p| &mut p.form.error))
        }
        Err(SignInError::TemporaryExpired) => {
            Err(Unexpected::invariant("operators have no temporary passwords").into())
        }
        Err(SignInError::Suspended) => {
            Err(Unexpected::invariant("operators belong to no tenant").into())
        }
        Err(SignInError::Unexpected(e)) => Err(e.into()),
    }
}

async fn logout(
    page: Page<Anyone>,
    jar: CookieJar,
    parts: Parts,
    ValidForm(_): ValidForm<NoFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    if let Some(os) = operator_session_of(&parts, state).await? {
        let console = &state.services.operator_console;
        console.sign_out(&os, page.client).await?;
    }
    let jar = jar.add(operator_cookie(state, None));
    Ok((jar, Redirect::to("/operator/login")).into_response())
}

// ---- tenants -------------------------------------------------------------------------

struct TenantRowView {
    code: String,
    name: String,
    sip_domain: String,
    users: i64,
}

/// The new-tenant form as typed, and what is wrong with it.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TenantForm {
    code: String,
    name: String,
    sip_domain: String,
    admin_extension: String,
    admin_name: String,
    admin_email: String,
}

field_errors!(
    struct TenantErrors { code, name, sip_domain, admin_extension, admin_name, admin_email }
);

#[derive(Template)]
#[template(path = "operator/tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    rows: Vec<TenantRowView>,
    q: String,
    page: i64,
    pages: i64,
    total: i64,
    form: TenantForm,
    errors: TenantErrors,
}

impl TenantsPage {
    fn page_query(&self, page: &i64) -> String {
        serde_urlencoded::to_string([("q", self.q.as_str()), ("page", &page.to_string())])
            .unwrap_or_default()
    }
}

async fn render_tenants(
    page: &Page<OperatorSession>,
    list: ListQuery,
    status: StatusCode,
    form: TenantForm,
    errors: TenantErrors,
) -> Result<Response, WebError> {
    let q = clip(&list.q, 64);
    let console = &page.state.services.operator_console;
    let found = (!q.is_empty()).then_some(q.as_str());
    let listed = read_page(list.page, PAGE_SIZE, |p| console.tenants(found, p)).await?;
    let rows = listed
        .rows
        .into_iter()
        .map(|r| TenantRowView {
            code: r.tenant.code.to_string(),
            name: r.tenant.name,
            sip_domain: r.tenant.sip_domain,
            users: r.users,
        })
        .collect();
    Ok(html(
        status,
        &TenantsPage {
            chrome: Chrome::operator(page.csrf.clone(), &page.who, "tenants"),
            rows,
            q,
            page: listed.page,
            pages: listed.pages,
            total: listed.total,
            form,
            errors,
        },
    ))
}

async fn tenants_page(
    page: Page<OperatorSession>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let (form, errors) = (TenantForm::default(), TenantErrors::default());
    render_tenants(&page, q, StatusCode::OK, form, errors).await
}

/// What the new-tenant form says without the first admin's email.
const ADMIN_EMAIL_NEEDED: &str = "Enter the first admin's email: they choose their password from a link mailed there, so nobody else ever sees it.";

/// What the new-tenant form says of a SIP domain that is not a host name.
const BAD_SIP_DOMAIN: &str = "Enter a host name like sip.example.com, or leave it empty.";

/// Parses the new-tenant form, recording each field's problem.
fn parse_tenant(form: &TenantForm, errors: &mut TenantErrors) -> Option<NewTenantWithAdmin> {
    let code = field(TenantCode::parse(&form.code), &mut errors.code);
    let name = field(DisplayName::parse(&form.name), &mut errors.name);
    let admin_extension = field(
        Extension::parse(&form.admin_extension),
        &mut errors.admin_extension,
    );
    let admin_name = field(DisplayName::parse(&form.admin_name), &mut errors.admin_name);
    // Required: the first admin chooses a password from a mailed link (operators never
    // see one).
    let admin_email = if form.admin_email.trim().is_empty() {
        errors.admin_email = Some(ADMIN_EMAIL_NEEDED.to_owned());
        None
    } else {
        field(Email::parse(&form.admin_email), &mut errors.admin_email)
    };
    // Optional: without one, the tenant's SIP domain is made from its code.
    let sip_domain = match form.sip_domain.trim() {
        "" => Some(None),
        given => SipDomain::parse(given).map(Some).ok(),
    };
    if sip_domain.is_none() {
        errors.sip_domain = Some(BAD_SIP_DOMAIN.to_owned());
    }
    Some(NewTenantWithAdmin {
        code: code?,
        name: name?,
        sip_domain: sip_domain?,
        admin_extension: admin_extension?,
        admin_name: admin_name?,
        admin_email: Some(admin_email?),
    })
}

#[derive(Template)]
#[template(path = "operator/created.html")]
struct CreatedPage {
    chrome: Chrome,
    tenant_code: String,
    tenant_name: String,
    admin_username: String,
    admin_email: String,
}

async fn create_tenant(
    page: Page<OperatorSession>,
    ValidForm(form): ValidForm<TenantForm>,
) -> Result<Response, WebError> {
    let mut errors = TenantErrors::default();
    let parsed = parse_tenant(&form, &mut errors);
    let console = &page.state.services.operator_console;
    let status = match parsed {
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(_) if errors.any() => StatusCode::UNPROCESSABLE_ENTITY,
        Some(req) => match console.create_tenant(&page.who, &req, &page.client).await {
            Ok(created) => {
                return Ok(html(
                    StatusCode::OK,
                    &CreatedPage {
                        chrome: Chrome::operator(page.csrf, &page.who, "tenants"),
                        tenant_code: req.code.to_string(),
                        tenant_name: req.name.as_str().to_owned(),
                        admin_username: created.admin_username.to_string(),
                        admin_email: req
                            .admin_email
                            .map(|e| e.as_str().to_owned())
                            .unwrap_or_default(),
                    },
                ))
            }
            Err(NewTenantError::Refused(TenantError::TenantExists(_))) => {
                errors.code = Some("A tenant with this Client ID already exists.".to_owned());
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(NewTenantError::Refused(TenantError::SipDomainTaken(_))) => {
                errors.sip_domain = Some(
                    "Another tenant already uses this SIP domain (letter case does not matter)."
                        .to_owned(),
                );
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(NewTenantError::Refused(TenantError::BadSipDomain)) => {
                errors.sip_domain = Some(BAD_SIP_DOMAIN.to_owned());
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(NewTenantError::AdminEmailNeeded) => {
                errors.admin_email = Some(ADMIN_EMAIL_NEEDED.to_owned());
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(NewTenantError::Refused(TenantError::Unexpected(e))) => return Err(e.into()),
        },
    };
    render_tenants(&page, ListQuery::default(), status, form, errors).await
}

struct AdminView {
    id: i64,
    name: String,
    has_email: bool,
    has_question: bool,
    locked: bool,
}

#[derive(Template)]
#[template(path = "operator/tenant.html")]
struct TenantPage {
    chrome: Chrome,
    code: String,
    name: String,
    sip_domain: String,
    admins: Vec<AdminView>,
}

async fn tenant_page(
    page: Page<OperatorSession>,
    Path(code): Path<String>,
) -> Result<Response, WebError> {
    let code = TenantCode::from_path(&code)?;
    let view = page.state.services.operator_console.tenant(&code).await?;
    let admins = view
        .admins
        .into_iter()
        .map(|a| AdminView {
            id: a.user.id.0,
            name: a.user.name,
            has_email: a.user.email.is_some(),
            has_question: a.question.is_some(),
            locked: a.locked_until.is_some(),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &TenantPage {
            chrome: Chrome::operator(page.csrf, &page.who, "tenants"),
            code: view.tenant.code.to_string(),
            name: view.tenant.name,
            sip_domain: view.tenant.sip_domain,
            admins,
        },
    ))
}

// ---- caller verification -------------------------------------------------------------

#[derive(Template)]
#[template(path = "operator/caller.html")]
struct CallerPage {
    chrome: Chrome,
    code: String,
    tenant_name: String,
    id: i64,
    admin_name: String,
    question: Option<String>,
    has_email: bool,
    email_hint: Option<String>,
    locked: bool,
    tries_left: i64,
    verified_until: Option<String>,
    /// The username and Client ID, only right after "reveal".
    revealed: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
    answer_error: Option<String>,
}

/// What of an email address an operator may read out: its domain only.
fn email_hint(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((_, domain)) => format!("an address at {domain}"),
        None => "an address".to_owned(),
    }
}

impl CallerPage {
    fn new(csrf: String, os: &OperatorSession, v: CallerView) -> CallerPage {
        CallerPage {
            chrome: Chrome::operator(csrf, os, "tenants"),
            code: v.tenant.code.to_string(),
            tenant_name: v.tenant.name,
            id: v.admin.user.id.0,
            admin_name: v.admin.user.name.clone(),
            question: v.admin.question,
            has_email: v.admin.user.email.is_some(),
            email_hint: v.admin.user.email.as_deref().map(email_hint),
            locked: v.admin.locked_until.is_some(),
            tries_left: v.tries_left,
            verified_until: v.verified_until.map(utc),
            revealed: None,
            notice: None,
            error: None,
            answer_error: None,
        }
    }
}

async fn caller_page_with(
    page: &Page<OperatorSession>,
    (code, id): &Caller,
    status: StatusCode,
    adjust: impl FnOnce(&mut CallerPage),
) -> Result<Response, WebError> {
    let console = &page.state.services.operator_console;
    let view = console.caller_view(&page.who, code, *id).await?;
    let shown = CallerPage::new(page.csrf.clone(), &page.who, view);
    Ok(html_adjusted(status, shown, adjust))
}

async fn caller_page(
    page: Page<OperatorSession>,
    Path(target): Path<(String, i64)>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let target = Caller::from_path(&target)?;
    let notice = match q.done.as_str() {
        "verified" => {
            Some("The caller's answer matched. For the next 15 minutes you may act for this admin.")
        }
        "link" => {
            Some("A reset link was sent to the email on file. The admin's sessions were ended.")
        }
        "unlocked" => Some("The admin's sign-in lock was cleared."),
        "two-step-removed" => Some(
            "The admin's two-step sign-in was removed and they were told by mail. They sign in with their password alone until they set it up again.",
        ),
        _ => None,
    };
    caller_page_with(&page, &target, StatusCode::OK, |p| {
        p.notice = notice.map(str::to_owned);
    })
    .await
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AnswerFields {
    answer: String,
}

async fn verify(
    page: Page<OperatorSession>,
    Posted(target, form): Posted<Caller, AnswerFields>,
) -> Result<Response, WebError> {
    if form.answer.trim().is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return caller_page_with(&page, &target, status, |p| {
            p.answer_error = Some("Type the answer the caller gave.".to_owned())
        })
        .await;
    }
    let (code, id) = &target;
    let outcome = page
        .state
        .services
        .operator_console
        .verify_caller(&page.who, code, *id, &form.answer, page.client)
        .await;
    let (status, message, retry): (StatusCode, String, Option<u64>) = match outcome {
        Ok(CallerCheck::Matched) => return Ok(back_to_caller(&target, "verified")),
        Ok(CallerCheck::Wrong { tries_left }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "The answer does not match. {tries_left} {} left.",
                if tries_left == 1 { "try" } else { "tries" }
            ),
            None,
        ),
        Err(VerifyError::TooManyTries { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            "No tries left for this admin. Ask the caller to call back later (in an hour); do not act on this call.".to_owned(),
            Some(retry_after.as_secs()),
        ),
        Err(VerifyError::NoQuestion) => (
            StatusCode::CONFLICT,
            "This admin has no security question on file, so the caller cannot be verified here.".to_owned(),
            None,
        ),
        Err(VerifyError::Busy) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The portal is very busy right now. Try again in a moment; this try was not counted.".to_owned(),
            Some(BUSY_RETRY_AFTER),
        ),
        Err(VerifyError::NotFound) => return Err(WebError::NotFound),
        Err(VerifyError::Unexpected(e)) => return Err(e.into()),
    };
    let response =
        caller_page_with(&page, &target, status, |p| p.answer_error = Some(message)).await?;
    Ok(maybe_retry_after(response, retry))
}

/// Runs `action` for the caller's admin the path names (the operator must have verified
/// the caller): back to the caller page saying `done`, or the page saying why not.
async fn act_for_caller(
    page: &Page<OperatorSession>,
    target: &Caller,
    done: &str,
    action: impl AsyncFnOnce(
        &OperatorConsole,
        &OperatorSession,
        &TenantCode,
        UserId,
        Client,
    ) -> Result<(), ActError>,
) -> Result<Response, WebError> {
    let console = &page.state.services.operator_console;
    match action(console, &page.who, &target.0, target.1, page.client).await {
        Ok(()) => Ok(back_to_caller(target, done)),
        Err(e) => refused(page, target, e).await,
    }
}

/// The caller page for an action refused: the caller is not (or no longer) verified, or
/// the admin has no email for a link.
async fn refused(
    page: &Page<OperatorSession>,
    target: &Caller,
    e: ActError,
) -> Result<Response, WebError> {
    let (status, message) = match e {
        ActError::NotVerified => (
            StatusCode::FORBIDDEN,
            "Verify the caller first: this is only possible within 15 minutes of a matching answer.",
        ),
        ActError::NoLink(NoLink::NoEmailOnFile) => (
            StatusCode::CONFLICT,
            "This admin has no email on file, so no reset link can be sent. Another admin of the tenant can set a temporary password.",
        ),
        ActError::NoLink(NoLink::MailLimit) => (StatusCode::TOO_MANY_REQUESTS, MAIL_LIMIT_REACHED),
        ActError::NotFound => return Err(WebError::NotFound),
        ActError::Unexpected(e) => return Err(e.into()),
    };
    caller_page_with(page, target, status, |p| p.error = Some(message.to_owned())).await
}

async fn reveal(
    page: Page<OperatorSession>,
    Posted(target, _): Posted<Caller, NoFields>,
) -> Result<Response, WebError> {
    let console = &page.state.services.operator_console;
    let (code, id) = &target;
    match console
        .reveal_admin_identity(&page.who, code, *id, page.client)
        .await
    {
        Ok((username, code_read_back)) => {
            let identity = (username.to_string(), code_read_back.to_string());
            caller_page_with(&page, &target, StatusCode::OK, |p| {
                p.revealed = Some(identity)
            })
            .await
        }
        Err(e) => refused(&page, &target, e).await,
    }
}

async fn send_reset_link(
    page: Page<OperatorSession>,
    Posted(target, _): Posted<Caller, NoFields>,
) -> Result<Response, WebError> {
    act_for_caller(
        &page,
        &target,
        "link",
        async |console, os, code, id, client| console.send_reset_link(os, code, id, &client).await,
    )
    .await
}

async fn unlock(
    page: Page<OperatorSession>,
    Posted(target, _): Posted<Caller, NoFields>,
) -> Result<Response, WebError> {
    act_for_caller(&page, &target, "unlocked", OperatorConsole::unlock).await
}

// ---- audit ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "operator/audit.html")]
struct AuditPage {
    chrome: Chrome,
    events: Vec<EventView>,
    page: i64,
    pages: i64,
    total: i64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    page: Option<i64>,
}

async fn audit_page(
    page: Page<OperatorSession>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let console = &page.state.services.operator_console;
    let list = read_page(q.page, PAGE_SIZE, |p| console.provider_audit(&page.who, p)).await?;
    Ok(html(
        StatusCode::OK,
        &AuditPage {
            chrome: Chrome::operator(page.csrf, &page.who, "audit"),
            events: list.rows.into_iter().map(EventView::from_record).collect(),
            page: list.page,
            pages: list.pages,
            total: list.total,
        },
    ))
}
