//! `/api/v1/tenants/{code}/users…` and `/audit`: a tenant's users and audit log, for a
//! provider token (any tenant) or the tenant's own token. The same rules as the admin
//! pages, through the same service (`TenantAdmin`).

use axum::extract::{OriginalUri, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::{JsonBody, Path};
use super::problem::{Fields, Problem};
use super::types::{
    AuditEvent, AuditPage, CreatedUser, NewUser, PageQuery, PasswordReset, ResetMethod,
    ResetPassword, SignedOut, TenantPath, User, UserChanges, UserPage, UserPath,
};
use super::{admin_error, once, page, page_query, tenant_scope, ApiAuth, IdempotencyKey, Json};
use crate::domain::{DisplayName, Email, Extension, Role};
use crate::services::guard::RECOVERY_WINDOW;
use crate::services::recovery::NoLink;
use crate::services::tenant_admin::{
    ApiAdmin, ChangeError, CreateError, ResetLinkError, TenantAdmin, UserChange, UserFields,
};

/// An extension from the path; one that cannot be an extension names nobody.
fn extension(raw: &str) -> Result<Extension, Problem> {
    Extension::canonical(raw).ok_or_else(Problem::not_found)
}

fn change_error(e: ChangeError) -> Problem {
    match e {
        ChangeError::NotFound => Problem::not_found(),
        ChangeError::LastAdmin => {
            Problem::conflict("This is the tenant's last admin: make another user an admin first.")
        }
        ChangeError::Unexpected(e) => Problem::unexpected(&e),
    }
}

/// The user the path names, in the actor's reach of their tenant.
struct Target {
    scope: ApiAdmin,
    ext: Extension,
}

impl Target {
    /// Tenant first (404 when out of reach), then the extension.
    async fn of(api: &ApiAuth, path: &UserPath) -> Result<Target, Problem> {
        let scope = tenant_scope(api, &path.code).await?;
        Ok(Target {
            scope,
            ext: extension(&path.extension)?,
        })
    }

    /// Runs `action` on the user; `error` says what its refusal is.
    async fn act<T, E>(
        &self,
        api: &ApiAuth,
        action: impl AsyncFnOnce(&TenantAdmin, &ApiAdmin, &Extension) -> Result<T, E>,
        error: impl FnOnce(E) -> Problem,
    ) -> Result<T, Problem> {
        let admin = &api.state.services.tenant_admin;
        action(admin, &self.scope, &self.ext).await.map_err(error)
    }

    /// The user as they are now.
    async fn user(&self, api: &ApiAuth) -> Result<User, Problem> {
        let row = self.act(api, TenantAdmin::user_row, admin_error).await?;
        Ok(User::from(&row))
    }
}

/// List a tenant's users.
#[utoipa::path(get, path = "/api/v1/tenants/{code}/users", tag = "users",
    params(TenantPath, PageQuery),
    responses((status = 200, description = "One page of users, in extension order", body = UserPage)))]
pub async fn list_users(
    api: ApiAuth,
    Path(path): Path<TenantPath>,
    RawQuery(query): RawQuery,
) -> Result<Json, Problem> {
    let scope = tenant_scope(&api, &path.code).await?;
    let (limit, after) = page_query(query.as_deref(), Extension::canonical)?;
    let admin = &api.state.services.tenant_admin;
    let rows = admin.users_after(&scope, after.as_ref(), limit + 1).await;
    let rows = rows.map_err(|e| Problem::unexpected(&e))?;
    let (items, next_cursor) = page(&rows, limit, |u: &User| u.extension.clone());
    Json::ok(&UserPage { items, next_cursor })
}

/// Create a user; they get a temporary password, shown once.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users", tag = "users", request_body = NewUser,
    params(TenantPath,
           ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer again (24 h)")),
    responses((status = 201, description = "Created", body = CreatedUser),
              (status = 409, description = "The extension is taken", body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    api: ApiAuth,
    Path(path): Path<TenantPath>,
    key: IdempotencyKey,
    uri: OriginalUri,
    body: JsonBody<NewUser>,
) -> Result<Json, Problem> {
    let scope = tenant_scope(&api, &path.code).await?;
    let JsonBody { value: req, raw } = body;
    let creator = api.clone();
    let run = async move {
        let api = creator;
        let mut f = Fields::default();
        let ext = f.check("extension", Extension::parse(&req.extension), |e| {
            e.to_string()
        });
        let name = f.check("name", DisplayName::parse(&req.name), |e| e.to_string());
        let email = f.check(
            "email",
            req.email.as_deref().map(Email::parse).transpose(),
            |e| e.to_string(),
        );
        f.finish()?;
        let (Some(ext), Some(name), Some(email)) = (ext, name, email) else {
            return Err(Problem::field("body", "Some values are not acceptable."));
        };
        let fields = UserFields {
            name,
            email,
            role: req.role.map_or(Role::User, Role::from),
        };
        let admin = &api.state.services.tenant_admin;
        match admin.create_user(&scope, &ext, &fields).await {
            Ok((row, password)) => Json::new(
                StatusCode::CREATED,
                &CreatedUser {
                    user: User::from(&row),
                    temporary_password: password.expose().to_owned(),
                },
            ),
            Err(e @ CreateError::ExtensionTaken(_)) => Err(Problem::conflict(&e.to_string())),
            Err(CreateError::Unexpected(e)) => Err(Problem::unexpected(&e)),
        }
    };
    once(&api, key, &uri, &raw, run).await
}

/// Get a user.
#[utoipa::path(get, path = "/api/v1/tenants/{code}/users/{extension}", tag = "users",
    params(UserPath),
    responses((status = 200, description = "The user", body = User)))]
pub async fn get_user(api: ApiAuth, Path(path): Path<UserPath>) -> Result<Json, Problem> {
    let target = Target::of(&api, &path).await?;
    Json::ok(&target.user(&api).await?)
}

/// Change a user's name, email or role.
#[utoipa::path(patch, path = "/api/v1/tenants/{code}/users/{extension}", tag = "users", request_body = UserChanges,
    params(UserPath),
    responses((status = 200, description = "The user as changed", body = User),
              (status = 409, description = "It would leave the tenant without an admin", body = Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    api: ApiAuth,
    Path(path): Path<UserPath>,
    body: JsonBody<UserChanges>,
) -> Result<Json, Problem> {
    let target = Target::of(&api, &path).await?;
    let req = &body.value;
    let mut f = Fields::default();
    let name = match &req.name {
        Some(n) => f.check("name", DisplayName::parse(n), |e| e.to_string()),
        None => None,
    };
    let email = match &req.email {
        Some(Some(e)) => f.check("email", Email::parse(e).map(Some), |e| e.to_string()),
        Some(None) => Some(None),
        None => None,
    };
    f.finish()?;
    let change = UserChange {
        name,
        email,
        role: req.role.map(Role::from),
    };
    let update = async |admin: &TenantAdmin, scope: &ApiAdmin, ext: &Extension| {
        admin.update_user(scope, ext, &change).await
    };
    target.act(&api, update, change_error).await?;
    Json::ok(&target.user(&api).await?)
}

/// Delete a user (never the tenant's last admin).
#[utoipa::path(delete, path = "/api/v1/tenants/{code}/users/{extension}", tag = "users",
    params(UserPath),
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "The tenant's last admin", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_user(api: ApiAuth, Path(path): Path<UserPath>) -> Result<Response, Problem> {
    let target = Target::of(&api, &path).await?;
    target
        .act(&api, TenantAdmin::delete_user, change_error)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reset a user's password: a link to the email on file, or a temporary password
/// answered once. Either way the user's sessions end.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users/{extension}/reset-password", tag = "users", request_body = ResetPassword,
    params(UserPath),
    responses((status = 200, description = "Done", body = PasswordReset),
              (status = 409, description = "A link was asked for but there is no email on file", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Too many requests for this token, or the user was already sent 3 reset links by administrators, support or the API within 15 minutes; see Retry-After", body = Problem, content_type = "application/problem+json")))]
pub async fn reset_password(
    api: ApiAuth,
    Path(path): Path<UserPath>,
    body: JsonBody<ResetPassword>,
) -> Result<Json, Problem> {
    let target = Target::of(&api, &path).await?;
    let method = body.value.method;
    let temporary_password = match method {
        ResetMethod::Link => {
            let link = TenantAdmin::send_reset_link;
            target.act(&api, link, reset_link_error).await?;
            None
        }
        ResetMethod::Temporary => {
            let set = TenantAdmin::set_temporary_password;
            let (_, password) = target.act(&api, set, admin_error).await?;
            Some(password.expose().to_owned())
        }
    };
    Json::ok(&PasswordReset {
        method,
        temporary_password,
    })
}

fn reset_link_error(e: ResetLinkError) -> Problem {
    match e {
        ResetLinkError::NotFound => Problem::not_found(),
        ResetLinkError::NoLink(NoLink::NoEmailOnFile) => {
            Problem::conflict("This user has no email on file; use the temporary method instead.")
        }
        ResetLinkError::NoLink(NoLink::MailLimit) => Problem::rate_limited(
            RECOVERY_WINDOW.as_secs(),
            "This user was already sent 3 reset emails by administrators, support or the API within 15 minutes, the most allowed; retry after Retry-After (at the latest), or use the temporary method.",
        ),
        ResetLinkError::Unexpected(e) => Problem::unexpected(&e),
    }
}

/// Clear a user's sign-in lockout.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users/{extension}/unlock", tag = "users",
    params(UserPath),
    responses((status = 200, description = "The user, unlocked", body = User)))]
pub async fn unlock_user(api: ApiAuth, Path(path): Path<UserPath>) -> Result<Json, Problem> {
    let target = Target::of(&api, &path).await?;
    target.act(&api, TenantAdmin::unlock, admin_error).await?;
    Json::ok(&target.user(&api).await?)
}

/// End every session of a user.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users/{extension}/sign-out", tag = "users",
    params(UserPath),
    responses((status = 200, description = "How many sessions ended", body = SignedOut)))]
pub async fn sign_out_user(api: ApiAuth, Path(path): Path<UserPath>) -> Result<Json, Problem> {
    let target = Target::of(&api, &path).await?;
    let sign_out = TenantAdmin::sign_out_everywhere;
    let sessions_ended = target.act(&api, sign_out, admin_error).await?;
    Json::ok(&SignedOut { sessions_ended })
}

/// A tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{code}/audit", tag = "audit",
    params(TenantPath, PageQuery),
    responses((status = 200, description = "One page of events, newest first", body = AuditPage)))]
pub async fn audit_log(
    api: ApiAuth,
    Path(path): Path<TenantPath>,
    RawQuery(query): RawQuery,
) -> Result<Json, Problem> {
    let scope = tenant_scope(&api, &path.code).await?;
    let (limit, before) = page_query(query.as_deref(), |c| {
        c.parse::<i64>().ok().filter(|n| *n > 0)
    })?;
    let admin = &api.state.services.tenant_admin;
    let events = admin.audit_before(&scope, before, limit + 1).await;
    let events = events.map_err(|e| Problem::unexpected(&e))?;
    let (items, next_cursor) = page(&events, limit, |e: &AuditEvent| e.id.to_string());
    Json::ok(&AuditPage { items, next_cursor })
}
