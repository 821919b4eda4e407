//! `/api/v1/tenants…`: the provider's billing system creates, renames, moves, suspends,
//! resumes and deletes tenants. Provider tokens only; a tenant token finds nothing here.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::problem::{Fields, Problem};
use super::types::{CreatedTenant, NewTenant, PageQuery, Tenant, TenantChanges, TenantPage};
use super::{once, provider, tenant_code, ApiAuth, IdempotencyKey, Json};
use crate::domain::{DisplayName, Email, Extension, TenantCode};
use crate::services::provisioning::CreateTenantError;
use crate::services::tenants::{NewTenantWithAdmin, ProviderActor, TenantError};
use crate::web::AppState;

/// `limit` and `cursor` of a list, parsed; bad values are 422.
pub(super) fn page_query<C>(
    raw: Option<&str>,
    cursor: impl FnOnce(&str) -> Option<C>,
) -> Result<(i64, Option<C>), Problem> {
    let q: PageQuery = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| Problem::field("query", "The query string could not be read."))?;
    let mut fields = Fields::default();
    let limit = match q.limit.as_deref() {
        None => Some(super::DEFAULT_LIMIT),
        Some(l) => fields.check(
            "limit",
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=super::MAX_LIMIT).contains(n))
                .ok_or(()),
            |()| {
                format!(
                    "limit must be a whole number from 1 to {}.",
                    super::MAX_LIMIT
                )
            },
        ),
    };
    let cursor = match q.cursor.as_deref() {
        None => None,
        Some(c) => fields.check("cursor", cursor(c).ok_or(()), |()| {
            "cursor must be the next_cursor of a previous page.".to_owned()
        }),
    };
    fields.finish()?;
    Ok((i64::from(limit.unwrap_or(super::DEFAULT_LIMIT)), cursor))
}

fn tenant_error(e: TenantError) -> Problem {
    match e {
        TenantError::NotFound => Problem::not_found(),
        TenantError::BadSipDomain => Problem::field("sip_domain", e.to_string()),
        TenantError::SipDomainTaken(_) => Problem::conflict(&e.to_string()),
        TenantError::Unexpected(e) => Problem::unexpected(&e),
    }
}

async fn tenant_json(
    state: &AppState,
    by: &ProviderActor,
    code: &TenantCode,
) -> Result<Json, Problem> {
    let row = state
        .services
        .tenants
        .get(by, code)
        .await
        .map_err(tenant_error)?;
    Json::ok(&Tenant::from(&row))
}

/// List tenants.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, description = "One page of tenants, in code order", body = TenantPage)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    RawQuery(query): RawQuery,
) -> Result<Json, Problem> {
    let by = provider(&actor)?;
    let (limit, after) = page_query(query.as_deref(), |c| TenantCode::parse(c).ok())?;
    let rows = state
        .services
        .tenants
        .list(&by, after.as_ref(), limit + 1)
        .await
        .map_err(|e| Problem::unexpected(&e))?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Tenant> = rows.iter().take(limit as usize).map(Tenant::from).collect();
    let next_cursor = more.then(|| items.last().map(|t| t.code.clone())).flatten();
    Json::ok(&TenantPage { items, next_cursor })
}

/// Create a tenant with its first admin.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer again (24 h)")),
    responses((status = 201, description = "Created; the admin's temporary password is shown once", body = CreatedTenant),
              (status = 409, description = "The code or SIP domain is taken", body = Problem, content_type = "application/problem+json")))]
pub async fn create_tenant(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    key: IdempotencyKey,
    uri: OriginalUri,
    body: JsonBody<NewTenant>,
) -> Result<Json, Problem> {
    let by = provider(&actor)?;
    let req = &body.value;
    let run = async {
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
        if let Some(d) = &req.sip_domain {
            if !crate::services::provisioning::valid_sip_domain(&d.trim().to_ascii_lowercase()) {
                f.push("sip_domain", CreateTenantError::BadSipDomain.to_string());
            }
        }
        f.finish()?;
        let (Some(code), Some(name), Some(admin_extension), Some(admin_name), Some(admin_email)) =
            (code, name, ext, admin_name, email)
        else {
            return Err(Problem::field("body", "Some values are not acceptable."));
        };
        let new = NewTenantWithAdmin {
            code,
            name,
            sip_domain: req.sip_domain.clone(),
            admin_extension,
            admin_name,
            admin_email,
        };
        match state.services.tenants.create(&by, &new).await {
            Ok(made) => Json::new(
                StatusCode::CREATED,
                &CreatedTenant {
                    tenant: Tenant::from(&made.tenant),
                    admin: (&made.admin).into(),
                    temporary_password: made.temporary_password.expose().to_owned(),
                },
            ),
            Err(
                e @ (CreateTenantError::TenantExists(_) | CreateTenantError::SipDomainTaken(_)),
            ) => Err(Problem::conflict(&e.to_string())),
            Err(e @ CreateTenantError::BadSipDomain) => {
                Err(Problem::field("sip_domain", e.to_string()))
            }
            Err(CreateTenantError::Unexpected(e)) => Err(Problem::unexpected(&e)),
        }
    };
    once(&state, &actor, key, &uri, &body.raw, run).await
}

/// Get a tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{code}", tag = "tenants",
    params(("code" = String, Path, description = "Tenant code")),
    responses((status = 200, description = "The tenant", body = Tenant)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
) -> Result<Json, Problem> {
    let by = provider(&actor)?;
    tenant_json(&state, &by, &tenant_code(&code)?).await
}

/// Rename a tenant or move it to another SIP domain.
#[utoipa::path(patch, path = "/api/v1/tenants/{code}", tag = "tenants", request_body = TenantChanges,
    params(("code" = String, Path, description = "Tenant code")),
    responses((status = 200, description = "The tenant as changed", body = Tenant),
              (status = 409, description = "The SIP domain is another tenant's", body = Problem, content_type = "application/problem+json")))]
pub async fn update_tenant(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
    body: JsonBody<TenantChanges>,
) -> Result<Json, Problem> {
    let by = provider(&actor)?;
    let code = tenant_code(&code)?;
    let mut f = Fields::default();
    let name = match &body.value.name {
        Some(n) => f.check("name", DisplayName::parse(n), |e| e.to_string()),
        None => None,
    };
    if let Some(d) = &body.value.sip_domain {
        if !crate::services::provisioning::valid_sip_domain(&d.trim().to_ascii_lowercase()) {
            f.push("sip_domain", TenantError::BadSipDomain.to_string());
        }
    }
    f.finish()?;
    let tenants = &state.services.tenants;
    // Found first, so a missing tenant is 404 whatever the body holds.
    tenants.get(&by, &code).await.map_err(tenant_error)?;
    if let Some(name) = name {
        tenants
            .rename(&by, &code, &name)
            .await
            .map_err(tenant_error)?;
    }
    if let Some(domain) = &body.value.sip_domain {
        tenants
            .set_sip_domain(&by, &code, domain)
            .await
            .map_err(tenant_error)?;
    }
    tenant_json(&state, &by, &code).await
}

/// Delete a tenant with its users (the audit log keeps its history).
#[utoipa::path(delete, path = "/api/v1/tenants/{code}", tag = "tenants",
    params(("code" = String, Path, description = "Tenant code")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
) -> Result<Response, Problem> {
    let by = provider(&actor)?;
    let code = tenant_code(&code)?;
    state
        .services
        .tenants
        .delete(&by, &code)
        .await
        .map_err(tenant_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Suspend a tenant: no sign-in, sessions ended, phones stop registering; nothing deleted.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/suspend", tag = "tenants",
    params(("code" = String, Path, description = "Tenant code")),
    responses((status = 200, description = "The tenant, suspended", body = Tenant)))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
) -> Result<Json, Problem> {
    let by = provider(&actor)?;
    let code = tenant_code(&code)?;
    state
        .services
        .tenants
        .suspend(&by, &code)
        .await
        .map_err(tenant_error)?;
    tenant_json(&state, &by, &code).await
}

/// Resume a suspended tenant.
#[utoipa::path(post, path = "/api/v1/tenants/{code}/resume", tag = "tenants",
    params(("code" = String, Path, description = "Tenant code")),
    responses((status = 200, description = "The tenant, in service", body = Tenant)))]
pub async fn resume_tenant(
    State(state): State<AppState>,
    ApiAuth(actor): ApiAuth,
    Path(code): Path<String>,
) -> Result<Json, Problem> {
    let by = provider(&actor)?;
    let code = tenant_code(&code)?;
    state
        .services
        .tenants
        .resume(&by, &code)
        .await
        .map_err(tenant_error)?;
    tenant_json(&state, &by, &code).await
}
