//! Rows as the store hands them out and takes them in. Values were parsed into domain
//! types before they were written, so they are trusted on the way back. Ids and times are
//! bound and read as they are: each is stored as its one number.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Decode, Encode, Type};

use super::throttle::ThrottleKey;
use crate::clock::Timestamp;
use crate::domain::{Extension, Role, TenantCode, Username};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct TenantId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct UserId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct SessionId(pub i64);

/// A time is stored as its seconds since the epoch.
impl Type<Any> for Timestamp {
    fn type_info() -> <Any as Database>::TypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &<Any as Database>::TypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Timestamp {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <i64 as Decode<'r, Any>>::decode(value).map(Timestamp)
    }
}

impl<'q> Encode<'q, Any> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Any>>::encode_by_ref(&self.0, buf)
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub code: TenantCode,
    pub name: String,
    pub sip_domain: String,
}

pub struct NewTenant<'a> {
    pub code: &'a TenantCode,
    pub name: &'a str,
    pub sip_domain: &'a str,
}

/// A change to a tenant, made in one transaction: a new name, and a move from one SIP
/// domain (`.0`, the one it leaves) to another (`.1`).
pub struct TenantUpdate<'a> {
    pub name: Option<&'a str>,
    pub sip_domain: Option<(&'a str, &'a str)>,
}

/// A user to add to a tenant (the tenant is given beside it).
#[derive(Clone, Copy)]
pub struct NewUser<'a> {
    pub extension: &'a Extension,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub role: Role,
    pub password_hash: &'a str,
    /// `Some` for a temporary password, which stops working then.
    pub password_expires_at: Option<Timestamp>,
    /// The sealed SIP secret every user gets at creation.
    pub sip_secret: Option<&'a [u8]>,
}

/// A user to add, with what is written beside it in its transaction (see
/// [`Store::insert_user`](super::Store::insert_user)).
pub struct NewUserRows<'a> {
    pub user: NewUser<'a>,
    /// The name's sign-in lock, cleared: a first password is a new password like any
    /// other.
    pub username_key: &'a ThrottleKey,
    /// The audit event of the user's creation; its tenant is the one the user is
    /// written to.
    pub audit: AuditRow<'a>,
}

/// A new password hash; `expires_at` is `Some` for a temporary password. Every new
/// password, however it was set, clears the sign-in lock of `username_key` (the user's
/// [`ThrottleKey::username`]) and of its trusted browsers.
pub struct PasswordChange<'a> {
    pub password_hash: &'a str,
    pub expires_at: Option<Timestamp>,
    pub username_key: &'a ThrottleKey,
}

#[derive(Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub tenant_code: TenantCode,
    pub tenant_name: String,
    pub extension: Extension,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub password_temporary: bool,
    pub password_expires_at: Option<Timestamp>,
    pub last_sign_in_at: Option<Timestamp>,
    /// The tenant's SIP domain, where this user's phones register.
    pub sip_domain: String,
    /// Whether a sealed SIP secret and a voicemail PIN are stored (never the values).
    pub has_sip_secret: bool,
    pub has_pin: bool,
    /// The tenant is suspended: no sign-in, no session, no SIP lookup.
    pub tenant_suspended: bool,
}

impl UserRecord {
    pub fn username(&self) -> Username {
        Username::new(self.extension.clone(), self.tenant_code.clone())
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// A user of tenant `acme` for unit tests: `id`, extension `201`, `password_hash`.
    #[cfg(test)]
    pub(crate) fn sample(id: i64, password_hash: &str) -> UserRecord {
        UserRecord {
            id: UserId(id),
            tenant_id: TenantId(1),
            tenant_code: TenantCode::parse("acme").unwrap(),
            tenant_name: "Acme".into(),
            extension: Extension::parse("201").unwrap(),
            name: "Ada".into(),
            email: None,
            role: Role::User,
            password_hash: password_hash.into(),
            password_temporary: false,
            password_expires_at: None,
            last_sign_in_at: None,
            sip_domain: "acme.example".into(),
            has_sip_secret: true,
            has_pin: false,
            tenant_suspended: false,
        }
    }
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub authenticated_at: Timestamp,
}

#[derive(Clone, Copy)]
pub struct AuditRow<'a> {
    pub at: Timestamp,
    pub tenant_id: Option<TenantId>,
    pub kind: &'a str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Timestamp,
    pub kind: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_addr: Option<String>,
    pub detail: Option<String>,
    /// How many refused attempts this one event stands for (1 for most events).
    pub repeats: i64,
    /// When the last of those repeats came, when there were several.
    pub last_at: Option<Timestamp>,
}
