//! The API's JSON shapes, with their OpenAPI schemas, and how records become them.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::Timestamp;
use crate::store::{ApiUserRow, AuditRecord, TenantRow};

/// RFC 3339, to the second, UTC.
pub fn time(t: Timestamp) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.0.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(at).to_string()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    /// The tenant code (Client ID).
    #[schema(example = "wickedsprockets")]
    pub code: String,
    pub name: String,
    /// The domain the tenant's phones register to.
    pub sip_domain: String,
    pub suspended: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&TenantRow> for Tenant {
    fn from(t: &TenantRow) -> Self {
        Tenant {
            code: t.tenant.code.to_string(),
            name: t.tenant.name.clone(),
            sip_domain: t.tenant.sip_domain.clone(),
            suspended: t.suspended_at.is_some(),
            created_at: time(t.created_at),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl From<Role> for crate::domain::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::User => crate::domain::Role::User,
            Role::Admin => crate::domain::Role::Admin,
        }
    }
}

impl From<crate::domain::Role> for Role {
    fn from(r: crate::domain::Role) -> Self {
        match r {
            crate::domain::Role::User => Role::User,
            crate::domain::Role::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    #[schema(example = "201")]
    pub extension: String,
    /// What the user signs in with: extension, hyphen, tenant code.
    #[schema(example = "201-wickedsprockets")]
    pub username: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    /// Locked out of signing in right now (too many failed attempts).
    pub locked: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&ApiUserRow> for User {
    fn from(u: &ApiUserRow) -> Self {
        User {
            extension: u.user.extension.to_string(),
            username: u.user.username().to_string(),
            name: u.user.name.clone(),
            email: u.user.email.clone(),
            role: u.user.role.into(),
            locked: u.locked_until.is_some(),
            created_at: time(u.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    #[schema(example = "user.created")]
    pub kind: String,
    /// A username, `operator:NAME`, `api:NAME` or `cli`.
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_addr: Option<String>,
    pub detail: Option<String>,
}

impl From<&AuditRecord> for AuditEvent {
    fn from(e: &AuditRecord) -> Self {
        AuditEvent {
            id: e.id,
            at: time(e.at),
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            subject: e.subject.clone(),
            client_addr: e.client_addr.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// One page of a list; pass `next_cursor` as `cursor` for the next one (null at the end).
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    pub items: Vec<Tenant>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// `limit` (1 to 200, default 50) and `cursor` (a previous page's `next_cursor`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `{code}` of a tenant's path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// Tenant code
    pub code: String,
}

/// `{code}` and `{extension}` of a user's path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// Tenant code
    pub code: String,
    /// Extension
    pub extension: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    #[schema(example = "200")]
    pub extension: String,
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    #[schema(example = "wickedsprockets")]
    pub code: String,
    pub name: String,
    /// Derived from the code and the portal's host when left out.
    pub sip_domain: Option<String>,
    /// The tenant's first admin, who gets a temporary password.
    pub admin: NewAdmin,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub admin: User,
    /// The admin's temporary password: shown once, valid 72 hours, changed at first sign-in.
    pub temporary_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantChanges {
    pub name: Option<String>,
    /// Moving the tenant's phones: every phone must be set to the new domain.
    pub sip_domain: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(example = "201")]
    pub extension: String,
    pub name: String,
    pub email: Option<String>,
    /// `user` when left out.
    pub role: Option<Role>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: User,
    /// Shown once, valid 72 hours, changed at first sign-in.
    pub temporary_password: String,
}

/// Present and null clears the field; absent leaves it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub name: Option<String>,
    /// A new email; null removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResetMethod {
    /// A reset link mailed to the email on file.
    Link,
    /// A temporary password, answered once.
    Temporary,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    pub method: ResetMethod,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    pub method: ResetMethod,
    /// Only for `temporary`: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    pub sessions_ended: u64,
}
