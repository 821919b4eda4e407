//! The Admin tab: a tenant admin manages the users of their own tenant — list, create,
//! edit, delete, reset passwords, unlock, sign out everywhere, mail status — and reads the
//! tenant's audit log. Non-admins get 403; another tenant's users are 404s.

use crate::web::params::{Named, Path, Posted, Query};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::audit::EventKind;
use crate::clock::utc;
use crate::domain::{DisplayName, Email, Extension, Role};
use crate::services::recovery::NoLink;
use crate::services::tenant_admin::{
    Admin, AdminError, AdminPinError, ChangeError, CreateError, ResetLinkError, TenantAdmin,
    UserDetail, UserFields, PAGE_SIZE,
};
use crate::store::{AuditFilter, UserListRow};
use crate::web::extract::{Page, ValidForm};
use crate::web::forms::{
    field, field_errors, optional_field, NoFields, PinErrors, PinFields, SipSecretFields,
};
use crate::web::render::{html, Chrome, EventView};
use crate::web::respond::{self, clip, read_page, DoneQuery, ListQuery, MAIL_LIMIT_REACHED};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users_page).post(create_user))
        .route("/admin/users/{extension}", get(user_page).post(update_user))
        .route(
            "/admin/users/{extension}/reset-password",
            post(reset_password),
        )
        .route("/admin/users/{extension}/unlock", post(unlock))
        .route("/admin/users/{extension}/sign-out", post(sign_out))
        .route("/admin/users/{extension}/delete", post(delete_user))
        .route(
            "/admin/users/{extension}/sip-secret",
            post(regenerate_sip_secret),
        )
        .route("/admin/users/{extension}/pin", post(set_pin))
        .route("/admin/audit", get(audit_page))
}

/// A user as the pages show them.
struct UserView {
    extension: String,
    username: String,
    name: String,
    email: Option<String>,
    is_admin: bool,
    locked: Option<String>,
    temporary: bool,
    last_sign_in: String,
}

impl UserView {
    fn from_row(row: &UserListRow) -> UserView {
        let u = &row.user;
        UserView {
            extension: u.extension.to_string(),
            username: u.username().to_string(),
            name: u.name.clone(),
            email: u.email.clone(),
            is_admin: u.is_admin(),
            locked: row.locked_until.map(|t| format!("until {} UTC", utc(t))),
            temporary: u.password_temporary,
            last_sign_in: u
                .last_sign_in_at
                .map(utc)
                .unwrap_or_else(|| "never".to_owned()),
        }
    }
}

struct MailView {
    kind: String,
    recipient: String,
    status: String,
    queued: String,
    finished: String,
    attempts: i64,
    answer: String,
}

/// The form a user is created or edited with, as typed, and what is wrong with it.
#[derive(Default, Deserialize)]
#[serde(default)]
struct UserForm {
    extension: String,
    name: String,
    email: String,
    role: String,
}

field_errors!(struct FormErrors { extension, name, email, role, form });

/// Parses name, email (optional) and role, naming each problem.
fn parse_fields(form: &UserForm, errors: &mut FormErrors) -> Option<UserFields> {
    let name = field(DisplayName::parse(&form.name), &mut errors.name);
    let email = optional_field(&form.email, Email::parse, &mut errors.email);
    let role = field(Role::parse(&form.role), &mut errors.role);
    Some(UserFields {
        name: name?,
        email: email?,
        role: role?,
    })
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    tenant_name: String,
    users: Vec<UserView>,
    search: String,
    page: i64,
    pages: i64,
    total: i64,
    notice: Option<String>,
    form: UserForm,
    errors: FormErrors,
}

async fn render_users(
    page: &Page<Admin>,
    q: &ListQuery,
    status: StatusCode,
    form: UserForm,
    errors: FormErrors,
) -> Result<Response, WebError> {
    let su = page.who.session();
    let search = clip(&q.q, 100);
    let tenant_admin = &page.state.services.tenant_admin;
    let found = (!search.is_empty()).then_some(search.as_str());
    let list = read_page(q.page, PAGE_SIZE, |p| {
        tenant_admin.list_users(&page.who, found, p)
    })
    .await?;
    let notice = Extension::parse(&q.deleted)
        .ok()
        .map(|e| format!("User {e}-{} was deleted.", su.user.tenant_code));
    Ok(html(
        status,
        &UsersPage {
            chrome: Chrome::signed_in(page.csrf.clone(), su, "admin"),
            tenant_name: su.user.tenant_name.clone(),
            users: list.rows.iter().map(UserView::from_row).collect(),
            search,
            page: list.page,
            pages: list.pages,
            total: list.total,
            notice,
            form,
            errors,
        },
    ))
}

async fn users_page(page: Page<Admin>, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    let form = UserForm {
        role: "user".to_owned(),
        ..UserForm::default()
    };
    render_users(&page, &q, StatusCode::OK, form, FormErrors::default()).await
}

#[derive(Template)]
#[template(path = "admin/password_shown.html")]
struct PasswordShownPage {
    chrome: Chrome,
    username: String,
    password: String,
    created: bool,
}

/// The page that shows a new user's (or a reset's) temporary password, once.
fn password_shown(
    page: &Page<Admin>,
    username: &crate::domain::Username,
    password: &crate::domain::NewPassword,
    created: bool,
) -> Response {
    html(
        StatusCode::OK,
        &PasswordShownPage {
            chrome: Chrome::signed_in(page.csrf.clone(), page.who.session(), "admin"),
            username: username.to_string(),
            password: password.expose().to_owned(),
            created,
        },
    )
}

async fn create_user(
    page: Page<Admin>,
    ValidForm(form): ValidForm<UserForm>,
) -> Result<Response, WebError> {
    let mut errors = FormErrors::default();
    let extension = field(Extension::parse(&form.extension), &mut errors.extension);
    let fields = parse_fields(&form, &mut errors);
    let shown = UserForm {
        extension: clip(&form.extension, 20),
        name: clip(&form.name, 100),
        email: clip(&form.email, 254),
        role: clip(&form.role, 10),
    };
    let status = match (extension, fields) {
        (Some(extension), Some(fields)) => match page
            .state
            .services
            .tenant_admin
            .create_user(&page.who, &extension, &fields)
            .await
        {
            Ok((row, password)) => {
                let username = row.user.username();
                return Ok(password_shown(&page, &username, &password, true));
            }
            Err(CreateError::ExtensionTaken(ext)) => {
                errors.extension = Some(format!(
                    "Extension {ext} already has a user. Choose another extension."
                ));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(CreateError::Unexpected(e)) => return Err(e.into()),
        },
        (None, _) | (_, None) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    render_users(&page, &ListQuery::default(), status, shown, errors).await
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserView,
    /// How many of the user's own browsers are locked by wrong passwords typed in them.
    browsers_locked: i64,
    mail: Vec<MailView>,
    is_self: bool,
    notice: Option<&'static str>,
    form: UserForm,
    errors: FormErrors,
    phone: PhoneErrors,
    devices: crate::web::devices::DevicesView,
}

fn notice_for(done: &str) -> Option<&'static str> {
    Some(match done {
        "saved" => "Changes saved.",
        "link" => {
            "A reset link is on its way to the email on file. The user's sessions were ended."
        }
        "unlocked" => "The user is unlocked and can sign in again.",
        "signed-out" => "The user was signed out everywhere.",
        "sip" => "A new SIP secret was made. Every phone on this extension must be reprogrammed.",
        "pin" => "The voicemail PIN was set.",
        _ => return None,
    })
}

/// What the user page shows besides the user: a notice, the form as typed, its errors.
#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    form: Option<UserForm>,
    errors: FormErrors,
    phone: PhoneErrors,
}

/// Problems of the phone credentials forms, each shown at its field.
#[derive(Default)]
struct PhoneErrors {
    pin: Option<&'static str>,
    pin_confirm: Option<&'static str>,
    /// The box confirming a new SIP secret was not ticked.
    sip_confirm: Option<&'static str>,
}

impl PhoneErrors {
    fn pin_any(&self) -> bool {
        self.pin.is_some() || self.pin_confirm.is_some()
    }
}

/// The user's page again, 422, with `phone`'s problems at their fields.
async fn phone_refused(
    page: &Page<Admin>,
    extension: &Extension,
    phone: PhoneErrors,
) -> Result<Response, WebError> {
    let shown = Shown {
        phone,
        ..Shown::default()
    };
    render_user(page, extension, StatusCode::UNPROCESSABLE_ENTITY, shown).await
}

async fn render_user(
    page: &Page<Admin>,
    extension: &Extension,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, WebError> {
    let Shown {
        notice,
        form,
        errors,
        phone,
    } = shown;
    let su = page.who.session();
    let UserDetail {
        row,
        browsers_locked,
        mail,
    } = page
        .state
        .services
        .tenant_admin
        .user_detail(&page.who, extension)
        .await?;
    let user = UserView::from_row(&row);
    let form = form.unwrap_or_else(|| UserForm {
        extension: user.extension.clone(),
        name: user.name.clone(),
        email: user.email.clone().unwrap_or_default(),
        role: row.user.role.as_str().to_owned(),
    });
    let mail = mail
        .iter()
        .map(|m| MailView {
            kind: m.kind.replace('_', " "),
            recipient: m.recipient.clone(),
            status: m.status.clone(),
            queued: utc(m.queued_at),
            finished: m.sent_at.or(m.failed_at).map(utc).unwrap_or_default(),
            attempts: m.attempts,
            answer: m.last_error.clone().unwrap_or_default(),
        })
        .collect();
    Ok(html(
        status,
        &UserPage {
            chrome: Chrome::signed_in(page.csrf.clone(), su, "admin"),
            is_self: row.user.id == su.user.id,
            devices: crate::web::devices::registered(
                &page.state.pbx,
                &row.user.extension,
                &su.user.sip_domain,
            )
            .await,
            user,
            browsers_locked,
            mail,
            notice,
            form,
            errors,
            phone,
        },
    ))
}

/// The user page again with `status`, saying `message` about the whole form.
async fn refused(
    page: &Page<Admin>,
    extension: &Extension,
    status: StatusCode,
    message: impl Into<String>,
) -> Result<Response, WebError> {
    let errors = FormErrors {
        form: Some(message.into()),
        ..FormErrors::default()
    };
    let shown = Shown {
        errors,
        ..Shown::default()
    };
    render_user(page, extension, status, shown).await
}

async fn user_page(
    page: Page<Admin>,
    Path(extension): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let shown = Shown {
        notice: notice_for(&q.done),
        ..Shown::default()
    };
    render_user(
        &page,
        &Extension::from_path(&extension)?,
        StatusCode::OK,
        shown,
    )
    .await
}

fn back_to(extension: &Extension, done: &str) -> Response {
    respond::back_to(&format!("/admin/users/{extension}"), done)
}

/// Runs `action` on the user the path names, then back to their page saying `done`.
async fn act_on_user<T>(
    page: &Page<Admin>,
    extension: &Extension,
    done: &str,
    action: impl AsyncFnOnce(&TenantAdmin, &Admin, &Extension) -> Result<T, AdminError>,
) -> Result<Response, WebError> {
    action(&page.state.services.tenant_admin, &page.who, extension).await?;
    Ok(back_to(extension, done))
}

async fn update_user(
    page: Page<Admin>,
    Posted(extension, form): Posted<Extension, UserForm>,
) -> Result<Response, WebError> {
    let mut errors = FormErrors::default();
    let fields = parse_fields(&form, &mut errors);
    let shown = UserForm {
        extension: extension.to_string(),
        name: clip(&form.name, 100),
        email: clip(&form.email, 254),
        role: clip(&form.role, 10),
    };
    let status = match fields {
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(fields) => match page
            .state
            .services
            .tenant_admin
            .update_user(&page.who, &extension, &fields.into())
            .await
        {
            Ok(()) => return Ok(back_to(&extension, "saved")),
            Err(ChangeError::NotFound) => return Err(WebError::NotFound),
            Err(ChangeError::LastAdmin) => {
                errors.role = Some(
                    "This is the tenant's only admin. Make another user an admin first.".to_owned(),
                );
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(ChangeError::Unexpected(e)) => return Err(e.into()),
        },
    };
    let shown = Shown {
        form: Some(shown),
        errors,
        ..Shown::default()
    };
    render_user(&page, &extension, status, shown).await
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ResetFields {
    method: String,
}

async fn reset_password(
    page: Page<Admin>,
    Posted(extension, form): Posted<Extension, ResetFields>,
) -> Result<Response, WebError> {
    let tenant_admin = &page.state.services.tenant_admin;
    let (status, message) = match form.method.as_str() {
        "link" => match tenant_admin.send_reset_link(&page.who, &extension).await {
            Ok(()) => return Ok(back_to(&extension, "link")),
            Err(ResetLinkError::NotFound) => return Err(WebError::NotFound),
            Err(ResetLinkError::NoLink(NoLink::NoEmailOnFile)) => (StatusCode::CONFLICT, "This user has no email on file, so no link can be sent. Set a temporary password instead, or add an email first."),
            Err(ResetLinkError::NoLink(NoLink::MailLimit)) => (StatusCode::TOO_MANY_REQUESTS, MAIL_LIMIT_REACHED),
            Err(ResetLinkError::Unexpected(e)) => return Err(e.into()),
        },
        "temporary" => {
            let (username, password) = tenant_admin
                .set_temporary_password(&page.who, &extension)
                .await?;
            return Ok(password_shown(&page, &username, &password, false));
        }
        _ => {
            // Check the target exists first, so a bad method never reveals anything.
            tenant_admin.user_detail(&page.who, &extension).await?;
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose how to reset the password: a link by email, or a temporary password.",
            )
        }
    };
    refused(&page, &extension, status, message).await
}

async fn unlock(
    page: Page<Admin>,
    Posted(extension, _): Posted<Extension, NoFields>,
) -> Result<Response, WebError> {
    act_on_user(&page, &extension, "unlocked", TenantAdmin::unlock).await
}

async fn sign_out(
    page: Page<Admin>,
    Posted(extension, _): Posted<Extension, NoFields>,
) -> Result<Response, WebError> {
    let action = TenantAdmin::sign_out_everywhere;
    act_on_user(&page, &extension, "signed-out", action).await
}

async fn delete_user(
    page: Page<Admin>,
    Posted(extension, _): Posted<Extension, NoFields>,
) -> Result<Response, WebError> {
    let tenant_admin = &page.state.services.tenant_admin;
    match tenant_admin.delete_user(&page.who, &extension).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/users?deleted={extension}")).into_response()),
        Err(ChangeError::NotFound) => Err(WebError::NotFound),
        Err(ChangeError::LastAdmin) => {
            let message = "This is the tenant's only admin and cannot be deleted. Make another user an admin first.";
            refused(&page, &extension, StatusCode::CONFLICT, message).await
        }
        Err(ChangeError::Unexpected(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    events: Vec<EventView>,
    kinds: Vec<&'static str>,
    user: String,
    kind: String,
    page: i64,
    pages: i64,
    total: i64,
}

impl AuditPage {
    /// The query string of another page with the same filters.
    fn page_query(&self, page: &i64) -> String {
        serde_urlencoded::to_string([
            ("user", self.user.as_str()),
            ("kind", self.kind.as_str()),
            ("page", &page.to_string()),
        ])
        .unwrap_or_default()
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AuditQuery {
    user: String,
    kind: String,
    page: Option<i64>,
}

async fn audit_page(page: Page<Admin>, Query(q): Query<AuditQuery>) -> Result<Response, WebError> {
    let user = clip(&q.user, 64).to_lowercase();
    let kinds: Vec<&'static str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let kind = kinds.iter().find(|k| **k == q.kind).copied().unwrap_or("");
    let filter = AuditFilter {
        username: (!user.is_empty()).then_some(user.as_str()),
        kind: (!kind.is_empty()).then_some(kind),
    };
    let tenant_admin = &page.state.services.tenant_admin;
    let list = read_page(q.page, PAGE_SIZE, |p| {
        tenant_admin.audit_page(&page.who, &filter, p)
    })
    .await?;
    let events = list.rows.into_iter().map(EventView::from_record).collect();
    Ok(html(
        StatusCode::OK,
        &AuditPage {
            chrome: Chrome::signed_in(page.csrf, page.who.session(), "admin"),
            events,
            kinds,
            user,
            kind: kind.to_owned(),
            page: list.page,
            pages: list.pages,
            total: list.total,
        },
    ))
}

async fn regenerate_sip_secret(
    page: Page<Admin>,
    Posted(extension, form): Posted<Extension, SipSecretFields>,
) -> Result<Response, WebError> {
    if let Some(message) = form.unconfirmed() {
        let phone = PhoneErrors {
            sip_confirm: Some(message),
            ..PhoneErrors::default()
        };
        return phone_refused(&page, &extension, phone).await;
    }
    act_on_user(&page, &extension, "sip", TenantAdmin::regenerate_sip_secret).await
}

async fn set_pin(
    page: Page<Admin>,
    Posted(extension, form): Posted<Extension, PinFields>,
) -> Result<Response, WebError> {
    match page
        .state
        .services
        .tenant_admin
        .set_pin(&page.who, &extension, &form.new_pin, &form.confirm_pin)
        .await
    {
        Ok(()) => Ok(back_to(&extension, "pin")),
        Err(AdminPinError::NotFound) => Err(WebError::NotFound),
        Err(AdminPinError::Rejected(r)) => {
            let errors = PinErrors::rejected(r);
            let phone = PhoneErrors {
                pin: errors.new,
                pin_confirm: errors.confirm,
                ..PhoneErrors::default()
            };
            phone_refused(&page, &extension, phone).await
        }
        Err(AdminPinError::Unexpected(e)) => Err(e.into()),
    }
}
