//! `/api/v1/tenants…`: the provider's billing system creates, renames, moves, suspends,
//! resumes and deletes tenants. Provider tokens only; a tenant token finds nothing here.

use axum::extract::{OriginalUri, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::{JsonBody, Path};
use super::problem::{Fields, Problem};
use super::types::{
    CreatedTenant, NewTenant, PageQuery, Tenant, TenantChanges, TenantPage, TenantPath,
};
use super::{
    admin_error, once, page, page_query, provider, tenant_code, tenant_scope, ApiAuth,
    IdempotencyKey, Json, ProviderApi,
};
use crate::domain::{DisplayName, Email, Extension, SipDomain, TenantCode};
use crate::services::tenants::{
    ActionError, NewTenantWithAdmin, ProviderActor, TenantEdit, TenantError,
};

fn tenant_error(e: TenantError) -> Problem {
    match e {
        TenantError::BadSipDomain => Problem::field("sip_domain", e.to_string()),
        TenantError::TenantExists(_) | TenantError::SipDomainTaken(_) => {
            Problem::conflict(&e.to_string())
        }
        TenantError::Unexpected(e) => Problem::unexpected(&e),
    }
}

fn action_error(e: ActionError) -> Problem {
    match e {
        ActionError::NotFound => Problem::not_found(),
        ActionError::Refused(e) => tenant_error(e),
    }
}

/// The provider's powers of the actor, and the tenant the path names.
fn provider_tenant(
    api: &ApiAuth,
    path: &TenantPath,
) -> Result<(ProviderActor, TenantCode), Problem> {
    Ok((provider(&api.actor)?, tenant_code(&path.code)?))
}

async fn tenant_json(
    api: &ApiAuth,
    by: &ProviderActor,
    code: &TenantCode,
) -> Result<Json, Problem> {
    let row = api.state.services.tenants.get(by, code).await;
    Json::ok(&Tenant::from(&row.map_err(action_error)?))
}

/// List tenants.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, description = "One page of tenants, in code order", body = TenantPage)))]
pub async fn list_tenants(api: ApiAuth, RawQuery(query): RawQuery) -> Result<Json, Problem> {
    let by = provider(&api.actor)?;
    let (limit, after) = page_query(query.as_deref(), |c| TenantCode::parse(c).ok())?;
    let rows = api
        .state
        .services
        .tenants
        .list(&by, after.as_ref(), limit + 1)
        .await;
    let rows = rows.map_err(|e| Problem::unexpected(&e))?;
    let (items, next_cursor) = page(&rows, limit, |t: &Tenant| t.code.clone());
    Json::ok(&TenantPage { items, next_cursor })
}

/// Create a tenant with its first admin.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer again (24 h)")),
    responses((status = 201, description = "Created; the admin's temporary password is shown once", body = CreatedTenant),
              (status = 409, description = "The code or SIP domain is taken", body = Problem, content_type = "application/problem+json")))]
pub async fn create_tenant(
    ProviderApi { api, by }: ProviderApi,
    key: IdempotencyKey,
    uri: OriginalUri,
    body: JsonBody<NewTenant>,
) -> Result<Json, Problem> {
    let JsonBody { value: req, raw } = body;
    let services = api.state.services.clone();
    let run = async move {
        let mut f = Fields::default();
        let code = f.check("code", TenantCode::parse(&req.code), |e| e.to_string());
        let name = f.check("name", DisplayName::parse(&req.name), |e| e.to_string());
        let ext = f.check(
            "admin.extension",
            Extension::parse(&req.admin.extension),
            |e| e.to_string(),
        );
        let admin_name = f.check("admin.name", DisplayName::parse(&req.admin.name), |e| {
            e.to_string()
        });
        let email = f.check(
            "admin.email",
            req.admin.email.as_deref().map(Email::parse).transpose(),
            |e| e.to_string(),
        );
        let sip_domain = f.check(
            "sip_domain",
            req.sip_domain.as_deref().map(SipDomain::parse).transpose(),
            |e| e.to_string(),
        );
        f.finish()?;
        let (
            Some(code),
            Some(name),
            Some(sip_domain),
            Some(admin_extension),
            Some(admin_name),
            Some(admin_email),
        ) = (code, name, sip_domain, ext, admin_name, email)
        else {
            return Err(Problem::field("body", "Some values are not acceptable."));
        };
        let new = NewTenantWithAdmin {
            code,
            name,
            sip_domain,
            admin_extension,
            admin_name,
            admin_email,
        };
        let made = services.tenants.create(&by, &new).await;
        let made = made.map_err(tenant_error)?;
        Json::new(
            StatusCode::CREATED,
            &CreatedTenant {
                tenant: Tenant::from(&made.tenant),
                admin: (&made.admin).into(),
                temporary_password: made.temporary_password.expose().to_owned(),
            },
        )
    };
    once(&api, key, &uri, &raw, run).await
}

/// Get a tenant (a tenant token gets its own).
#[utoipa::path(get, path = "/api/v1/tenants/{code}", tag = "tenants",
    params(TenantPath),
    responses((status = 200, description = "The tenant", body = Tenant)))]
pub async fn get_tenant(api: ApiAuth, Path(path): Path<TenantPath>) -> Result<Json, Problem> {
    if let Some(by) = api.actor.provider() {
        return tenant_json(&api, &by, &tenant_code(&path.code)?).await;
    }
    let scope = tenant_scope(&api, &path.code).await?;
    let own = api.state.services.tenant_admin.tenant(&scope).await;
    Json::ok(&Tenant::from(&own.map_err(admin_error)?))
}

/// Rename a tenant or move it to another SIP domain.
#[utoipa::path(patch, path = "/api/v1/tenants/{code}", tag = "tenants", request_body = TenantChanges,
    params(TenantPath),
    responses((status = 200, description = "The tenant as changed", body = Tenant),
              (status = 409, description = "The SIP domain is another tenant's", body = Problem, content_type = "application/problem+json")))]
pub async fn update_tenant(
    ProviderApi { api, by }: ProviderApi,
    Path(path): Path<TenantPath>,
    body: JsonBody<TenantChanges>,
) -> Result<Json, Problem> {
    let code = tenant_code(&path.code)?;
    let mut f = Fields::default();
    let name = match &body.value.name {
        Some(n) => f.check("name", DisplayName::parse(n), |e| e.to_string()),
        None => None,
    };
    let sip_domain = match &body.value.sip_domain {
        Some(d) => f.check("sip_domain", SipDomain::parse(d), |e| e.to_string()),
        None => None,
    };
    f.finish()?;
    let changes = TenantEdit {
        name: name.as_ref(),
        sip_domain: sip_domain.as_ref(),
    };
    let tenants = &api.state.services.tenants;
    tenants
        .update(&by, &code, &changes)
        .await
        .map_err(action_error)?;
    tenant_json(&api, &by, &code).await
}

/// Delete a tenant with its users (the audit log keeps its history).
#[utoipa::path(delete, path = "/api/v1/tenants/{code}", tag = "tenants",
    params(TenantPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_tenant(
    api: ApiAuth,
    Path(path): Path<TenantPath>,
) -> Result<Response, Problem> {
    let (by, code) = provider_tenant(&api, &path)?;
    let deleted = api.state.services.tenants.delete(&by, &code).await;
    deleted.map_err(action_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Suspend a tenant: no sign-in, sessions ended, phones stop registering; nothing deleted.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/suspend", tag = "tenants",
    params(TenantPath),
    responses((status = 200, description = "The tenant, suspended", body = Tenant)))]
pub async fn suspend_tenant(api: ApiAuth, Path(path): Path<TenantPath>) -> Result<Json, Problem> {
    set_in_service(&api, &path, false).await
}

/// Resume a suspended tenant.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/resume", tag = "tenants",
    params(TenantPath),
    responses((status = 200, description = "The tenant, in service", body = Tenant)))]
pub async fn resume_tenant(api: ApiAuth, Path(path): Path<TenantPath>) -> Result<Json, Problem> {
    set_in_service(&api, &path, true).await
}

/// Suspends the tenant (`in_service` false) or resumes it, and answers it as it is now.
async fn set_in_service(
    api: &ApiAuth,
    path: &TenantPath,
    in_service: bool,
) -> Result<Json, Problem> {
    let (by, code) = provider_tenant(api, path)?;
    let tenants = &api.state.services.tenants;
    let done = if in_service {
        tenants.resume(&by, &code).await
    } else {
        tenants.suspend(&by, &code).await
    };
    done.map_err(action_error)?;
    tenant_json(api, &by, &code).await
}
