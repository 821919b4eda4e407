//! `/api/v1/tenants/{code}/users…` and `/audit`: a tenant's users and audit log, for a
//! provider token (any tenant) or the tenant's own token. The same rules as the admin
//! pages, through the same service (`TenantAdmin`).

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::problem::{Fields, Problem};
use super::types::{
    AuditEvent, AuditPage, CreatedUser, NewUser, PageQuery, PasswordReset, ResetMethod,
    ResetPassword, SignedOut, User, UserChanges, UserPage,
};
use super::{once, page, page_query, tenant_scope, ApiAuth, IdempotencyKey, Json};
use crate::domain::{DisplayName, Email, Extension, Role};
use crate::services::api_tokens::ApiActor;
use crate::services::tenant_admin::{
    AdminError, ApiAdmin, ChangeError, CreateError, ResetLinkError, UserFields,
};
use crate::services::Unexpected;
use crate::web::AppState;

/// An extension from the path; one that cannot be an extension names nobody.
fn extension(raw: &str) -> Result<Extension, Problem> {
    Extension::canonical(raw).ok_or_else(Problem::not_found)
}

fn admin_error(e: AdminError) -> Problem {
    match e {
        AdminError::NotFound => Problem::not_found(),
        AdminError::Unexpected(e) => Problem::unexpected(&e),
    }
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

/// The tenant scope of `actor` in tenant `code`, and the extension the path names.
async fn user_scope(
    state: &AppState,
    actor: &ApiActor,
    code: &str,
    ext: &str,
) -> Result<(ApiAdmin, Extension), Problem> {
    let scope = tenant_scope(state, actor, code).await?;
    Ok((scope, extension(ext)?))
}

async fn user_json(state: &AppState, scope: &ApiAdmin, ext: &Extension) -> Result<User, Problem> {
    let row = state
        .services
        .tenant_admin
        .user_row(scope, ext)
        .await
        .map_err(admin_error)?;
    Ok(User::from(&row))
}

/// List a tenant's users.
#[utoipa::path(get, path = "/api/v1/tenants/{code}/users", tag = "users",
    params(("code" = String, Path, description = "Tenant code"), PageQuery),
    responses((status = 200, description = "One page of users, in extension order", body = UserPage)))]
pub async fn list_users(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json, Problem> {
    let scope = tenant_scope(&state, &actor, &code).await?;
    let (limit, after) = page_query(query.as_deref(), Extension::canonical)?;
    let rows = state
        .services
        .tenant_admin
        .users_after(&scope, after.as_ref(), limit + 1)
        .await
        .map_err(|e| Problem::unexpected(&e))?;
    let (items, next_cursor) = page(&rows, limit, |u: &User| u.extension.clone());
    Json::ok(&UserPage { items, next_cursor })
}

/// Create a user; they get a temporary password, shown once.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users", tag = "users", request_body = NewUser,
    params(("code" = String, Path, description = "Tenant code"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer again (24 h)")),
    responses((status = 201, description = "Created", body = CreatedUser),
              (status = 409, description = "The extension is taken", body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
    key: IdempotencyKey,
    uri: OriginalUri,
    body: JsonBody<NewUser>,
) -> Result<Json, Problem> {
    let scope = tenant_scope(&state, &actor, &code).await?;
    let req = &body.value;
    let run = async {
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
        let admin = &state.services.tenant_admin;
        match admin.create_user(&scope, &ext, &fields).await {
            Ok((_, password)) => {
                let user = user_json(&state, &scope, &ext).await?;
                Json::new(
                    StatusCode::CREATED,
                    &CreatedUser {
                        user,
                        temporary_password: password.expose().to_owned(),
                    },
                )
            }
            Err(e @ CreateError::ExtensionTaken(_)) => Err(Problem::conflict(&e.to_string())),
            Err(CreateError::Unexpected(e)) => Err(Problem::unexpected(&e)),
        }
    };
    once(&state, &actor, key, &uri, &body.raw, run).await
}

/// Get a user.
#[utoipa::path(get, path = "/api/v1/tenants/{code}/users/{extension}", tag = "users",
    params(("code" = String, Path, description = "Tenant code"), ("extension" = String, Path, description = "Extension")),
    responses((status = 200, description = "The user", body = User)))]
pub async fn get_user(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path((code, ext)): Path<(String, String)>,
) -> Result<Json, Problem> {
    let (scope, ext) = user_scope(&state, &actor, &code, &ext).await?;
    Json::ok(&user_json(&state, &scope, &ext).await?)
}

/// Change a user's name, email or role.
#[utoipa::path(patch, path = "/api/v1/tenants/{code}/users/{extension}", tag = "users", request_body = UserChanges,
    params(("code" = String, Path, description = "Tenant code"), ("extension" = String, Path, description = "Extension")),
    responses((status = 200, description = "The user as changed", body = User),
              (status = 409, description = "It would leave the tenant without an admin", body = Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path((code, ext)): Path<(String, String)>,
    body: JsonBody<UserChanges>,
) -> Result<Json, Problem> {
    let (scope, ext) = user_scope(&state, &actor, &code, &ext).await?;
    let current = state
        .services
        .tenant_admin
        .user_row(&scope, &ext)
        .await
        .map_err(admin_error)?
        .user;
    let req = &body.value;
    let mut f = Fields::default();
    let name = match &req.name {
        Some(n) => f.check("name", DisplayName::parse(n), |e| e.to_string()),
        None => DisplayName::parse(&current.name).ok(),
    };
    let email = match &req.email {
        Some(Some(e)) => f.check("email", Email::parse(e).map(Some), |e| e.to_string()),
        Some(None) => Some(None),
        None => Some(current.email.as_deref().and_then(|e| Email::parse(e).ok())),
    };
    f.finish()?;
    let (Some(name), Some(email)) = (name, email) else {
        return Err(Problem::unexpected(&Unexpected::invariant(
            "a stored name or email no longer parses",
        )));
    };
    let fields = UserFields {
        name,
        email,
        role: req.role.map_or(current.role, Role::from),
    };
    state
        .services
        .tenant_admin
        .update_user(&scope, &ext, &fields)
        .await
        .map_err(change_error)?;
    Json::ok(&user_json(&state, &scope, &ext).await?)
}

/// Delete a user (never the tenant's last admin).
#[utoipa::path(delete, path = "/api/v1/tenants/{code}/users/{extension}", tag = "users",
    params(("code" = String, Path, description = "Tenant code"), ("extension" = String, Path, description = "Extension")),
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "The tenant's last admin", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_user(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path((code, ext)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (scope, ext) = user_scope(&state, &actor, &code, &ext).await?;
    state
        .services
        .tenant_admin
        .delete_user(&scope, &ext)
        .await
        .map_err(change_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reset a user's password: a link to the email on file, or a temporary password
/// answered once. Either way the user's sessions end.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users/{extension}/reset-password", tag = "users", request_body = ResetPassword,
    params(("code" = String, Path, description = "Tenant code"), ("extension" = String, Path, description = "Extension")),
    responses((status = 200, description = "Done", body = PasswordReset),
              (status = 409, description = "A link was asked for but there is no email on file", body = Problem, content_type = "application/problem+json")))]
pub async fn reset_password(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path((code, ext)): Path<(String, String)>,
    body: JsonBody<ResetPassword>,
) -> Result<Json, Problem> {
    let (scope, ext) = user_scope(&state, &actor, &code, &ext).await?;
    let admin = &state.services.tenant_admin;
    match body.value.method {
        ResetMethod::Link => match admin.send_reset_link(&scope, &ext).await {
            Ok(()) => Json::ok(&PasswordReset {
                method: ResetMethod::Link,
                temporary_password: None,
            }),
            Err(ResetLinkError::NotFound) => Err(Problem::not_found()),
            Err(ResetLinkError::NoEmail) => Err(Problem::conflict(
                "This user has no email on file; use the temporary method instead.",
            )),
            Err(ResetLinkError::Unexpected(e)) => Err(Problem::unexpected(&e)),
        },
        ResetMethod::Temporary => {
            let (_, password) = admin
                .set_temporary_password(&scope, &ext)
                .await
                .map_err(admin_error)?;
            Json::ok(&PasswordReset {
                method: ResetMethod::Temporary,
                temporary_password: Some(password.expose().to_owned()),
            })
        }
    }
}

/// Clear a user's sign-in lockout.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users/{extension}/unlock", tag = "users",
    params(("code" = String, Path, description = "Tenant code"), ("extension" = String, Path, description = "Extension")),
    responses((status = 200, description = "The user, unlocked", body = User)))]
pub async fn unlock_user(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path((code, ext)): Path<(String, String)>,
) -> Result<Json, Problem> {
    let (scope, ext) = user_scope(&state, &actor, &code, &ext).await?;
    state
        .services
        .tenant_admin
        .unlock(&scope, &ext)
        .await
        .map_err(admin_error)?;
    Json::ok(&user_json(&state, &scope, &ext).await?)
}

/// End every session of a user.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/users/{extension}/sign-out", tag = "users",
    params(("code" = String, Path, description = "Tenant code"), ("extension" = String, Path, description = "Extension")),
    responses((status = 200, description = "How many sessions ended", body = SignedOut)))]
pub async fn sign_out_user(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path((code, ext)): Path<(String, String)>,
) -> Result<Json, Problem> {
    let (scope, ext) = user_scope(&state, &actor, &code, &ext).await?;
    let sessions_ended = state
        .services
        .tenant_admin
        .sign_out_everywhere(&scope, &ext)
        .await
        .map_err(admin_error)?;
    Json::ok(&SignedOut { sessions_ended })
}

/// A tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{code}/audit", tag = "audit",
    params(("code" = String, Path, description = "Tenant code"), PageQuery),
    responses((status = 200, description = "One page of events, newest first", body = AuditPage)))]
pub async fn audit_log(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json, Problem> {
    let scope = tenant_scope(&state, &actor, &code).await?;
    let (limit, before) = page_query(query.as_deref(), |c| {
        c.parse::<i64>().ok().filter(|n| *n > 0)
    })?;
    let events = state
        .services
        .tenant_admin
        .audit_before(&scope, before, limit + 1)
        .await
        .map_err(|e| Problem::unexpected(&e))?;
    let (items, next_cursor) = page(&events, limit, |e: &AuditEvent| e.id.to_string());
    Json::ok(&AuditPage { items, next_cursor })
}
