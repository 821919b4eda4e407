//! The OpenAPI 3 description, generated from the handlers' annotations and the types'
//! schemas, served at `GET /api/v1/openapi.json`. Every operation also lists the problems
//! any request may meet (bad body, no token, not found, rate limit…).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::problem::{FieldError, Problem};
use super::types::*;
use super::{tenants, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dialtone API",
        description = "Provision tenants and users of the Dialtone portal. Bearer tokens: provider tokens (`dialtone api-token add NAME`) reach every tenant; tenant tokens (Admin → API tokens) only their own tenant: reading it, its users and its audit log. Errors are application/problem+json (RFC 9457)."
    ),
    paths(
        tenants::list_tenants, tenants::create_tenant, tenants::get_tenant,
        tenants::update_tenant, tenants::delete_tenant, tenants::suspend_tenant,
        tenants::resume_tenant,
        users::list_users, users::create_user, users::get_user, users::update_user,
        users::delete_user, users::reset_password, users::unlock_user, users::sign_out_user,
        users::audit_log,
    ),
    components(schemas(Problem, FieldError, Tenant, User, Role, AuditEvent, TenantPage, UserPage,
        AuditPage, NewTenant, NewAdmin, CreatedTenant, TenantChanges, NewUser, CreatedUser,
        UserChanges, ResetMethod, ResetPassword, PasswordReset, SignedOut)),
    modifiers(&Common),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The bearer scheme, and the problems every operation may answer.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        let problem = |description: &str| -> RefOr<utoipa::openapi::Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    super::problem::CONTENT_TYPE,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
                .into()
        };
        let common = [
            (
                "400",
                "The request could not be read (malformed JSON, a bad header)",
            ),
            ("401", "No valid API token"),
            ("403", "The token's tenant is suspended"),
            ("404", "Nothing this token can reach is here"),
            ("405", "The resource does not answer this method"),
            ("413", "The body is too large"),
            ("415", "The body is not JSON"),
            ("422", "Invalid values; `errors` names each field"),
            ("429", "Too many requests for this token; see Retry-After"),
        ];
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in common {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json` (no token needed: it describes, it reveals nothing).
pub async fn document() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => super::Problem::unexpected(&anyhow::Error::new(e).into()).into_response(),
    }
}
