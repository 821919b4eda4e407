//! Everything a tenant admin may do, to the users of their own tenant and nobody else's:
//! list, create, edit, delete, reset a password (link or temporary), unlock, sign out
//! everywhere, a new SIP secret, a PIN, and the tenant's audit log. Every action takes an
//! [`Admin`] — the proof that the actor is one — and scopes each lookup to the admin's
//! tenant, so another tenant's user is indistinguishable from one that does not exist.
//! The tenant keeps at least one admin.

use super::passwords::set_temporary_password;
use super::pbx::aor;
use super::phone::{regenerate_for, set_pin_for, PinError, PinRejected};
use super::provisioning::{CreateUserError, Provisioning};
use super::recovery::{send_link_for, NoLink};
use super::{service, store_error_is_unexpected, SessionUser, Unexpected};
use std::net::IpAddr;

use crate::audit::{Actor, Event, EventKind};
use crate::domain::{DisplayName, Email, Extension, NewPassword, Role, TenantCode, Username};
use crate::mail::AccountNotice;
use crate::store::{
    ApiUserRow, AuditFilter, AuditRecord, EmailChanged, MailRecord, TenantId, TenantRow,
    ThrottleKey, UserListRow, UserRecord,
};

/// Users per page of the admin list, and events per page of the audit log.
pub const PAGE_SIZE: i64 = 50;

/// How many rows come before page `page` (from 0; a negative page is the first).
pub(crate) fn page_offset(page: i64) -> i64 {
    page.max(0).saturating_mul(PAGE_SIZE)
}

/// Proof that the acting user is an admin of their tenant, acting from one address: only
/// [`Admin::of`] makes one.
#[derive(Debug, Clone)]
pub struct Admin(SessionUser, Option<IpAddr>);

/// Who may act on one tenant's users: a tenant admin ([`Admin`]) or an API token that
/// reaches the tenant ([`ApiAdmin`]). Sealed: only this module's proofs implement it, so
/// the tenant a proof names is the only one its holder can reach.
pub trait TenantActor: sealed::Sealed {
    fn tenant_id(&self) -> TenantId;
    fn tenant_code(&self) -> &TenantCode;
    /// How the actor appears in the audit log, with the address it acts from.
    fn actor(&self) -> Actor;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Admin {}
    impl Sealed for super::ApiAdmin {}
}

impl TenantActor for Admin {
    fn tenant_id(&self) -> TenantId {
        self.0.user.tenant_id
    }
    fn tenant_code(&self) -> &TenantCode {
        &self.0.user.tenant_code
    }
    fn actor(&self) -> Actor {
        Actor::new(self.0.user.username().to_string(), self.1)
    }
}

/// Proof that an API token reaches this tenant: made only by the API token service
/// (`ApiTokens::tenant_scope`), after it checked the token's scope.
#[derive(Debug, Clone)]
pub struct ApiAdmin {
    pub(super) tenant_id: TenantId,
    pub(super) tenant_code: TenantCode,
    /// `api:NAME`, from the request's address.
    pub(super) actor: Actor,
}

impl TenantActor for ApiAdmin {
    fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    fn tenant_code(&self) -> &TenantCode {
        &self.tenant_code
    }
    fn actor(&self) -> Actor {
        self.actor.clone()
    }
}

impl Admin {
    /// The admin behind this session, acting from `addr`; `None` when its user is not one.
    pub fn of(su: SessionUser, addr: Option<IpAddr>) -> Option<Admin> {
        su.user.is_admin().then_some(Admin(su, addr))
    }

    pub fn session(&self) -> &SessionUser {
        &self.0
    }
}

/// No such user in the admin's tenant (whether or not it exists elsewhere), or a fault.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(AdminError);

/// The errors of actions on one user that can say more than [`AdminError`]: an unknown
/// user is still not found.
macro_rules! admin_error_is_not_found {
    ($($t:ident),+) => {
        $(impl From<AdminError> for $t {
            fn from(e: AdminError) -> Self {
                match e {
                    AdminError::NotFound => $t::NotFound,
                    AdminError::Unexpected(e) => $t::Unexpected(e),
                }
            }
        })+
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("extension {0} is already taken")]
    ExtensionTaken(Extension),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// An edit or a deletion refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("not found")]
    NotFound,
    /// The change would leave the tenant without an admin.
    #[error("last admin")]
    LastAdmin,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[derive(Debug, thiserror::Error)]
pub enum ResetLinkError {
    #[error("not found")]
    NotFound,
    /// No reset link was sent: no email on file, or the mail limit.
    #[error(transparent)]
    NoLink(#[from] NoLink),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminPinError {
    #[error("not found")]
    NotFound,
    #[error("invalid PIN")]
    Rejected(PinRejected),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

admin_error_is_not_found!(ChangeError, ResetLinkError, AdminPinError);

/// One user as the admin's detail page shows them.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub row: UserListRow,
    /// How many of the user's own browsers are locked (wrong passwords typed in them):
    /// a lock the username's own, in `row`, does not show.
    pub browsers_locked: i64,
    pub mail: Vec<MailRecord>,
}

/// What the admin wants a user to be.
pub struct UserFields {
    pub name: DisplayName,
    pub email: Option<Email>,
    pub role: Role,
}

/// What an admin changes of a user; `None` keeps what is stored (`Some(None)` for the
/// email removes it).
#[derive(Default)]
pub struct UserChange {
    pub name: Option<DisplayName>,
    pub email: Option<Option<Email>>,
    pub role: Option<Role>,
}

impl From<UserFields> for UserChange {
    /// Every field as the admin's form holds it.
    fn from(f: UserFields) -> UserChange {
        UserChange {
            name: Some(f.name),
            email: Some(f.email),
            role: Some(f.role),
        }
    }
}

service!(
    /// Tenant administration.
    TenantAdmin
);

impl TenantAdmin {
    /// The user `extension` of the admin's tenant.
    async fn target(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<UserRecord, AdminError> {
        self.ctx
            .store
            .user_in_tenant(admin.tenant_id(), extension.as_str())
            .await?
            .ok_or(AdminError::NotFound)
    }

    async fn audit(
        &self,
        admin: &impl TenantActor,
        kind: EventKind,
        target: &UserRecord,
        detail: Option<&str>,
    ) -> Result<(), Unexpected> {
        let actor = admin.actor();
        let subject = target.username().to_string();
        self.ctx
            .audit(Event {
                detail,
                ..Event::on(kind, admin.tenant_id(), &actor, &subject)
            })
            .await
    }

    /// One page of the tenant's users, searched by extension, name or email; and how many
    /// match in all.
    pub async fn list_users(
        &self,
        admin: &impl TenantActor,
        search: Option<&str>,
        page: i64,
    ) -> Result<(Vec<UserListRow>, i64), Unexpected> {
        let offset = page_offset(page);
        Ok(self
            .ctx
            .store
            .list_users(admin.tenant_id(), search, self.ctx.now(), PAGE_SIZE, offset)
            .await?)
    }

    pub async fn user_detail(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<UserDetail, AdminError> {
        let user = self.target(admin, extension).await?;
        let key = ThrottleKey::username(&user.username());
        let guard = self.ctx.guard();
        let locked_until = guard.locked_until(&key).await?;
        let browsers_locked = guard.browsers_locked(&key).await?;
        let mail = self
            .ctx
            .store
            .mail_records_of_user(user.tenant_id, user.id, user.email.as_deref(), 10)
            .await?;
        Ok(UserDetail {
            row: UserListRow { user, locked_until },
            browsers_locked,
            mail,
        })
    }

    /// Creates a user of the admin's tenant with a temporary password, returned once.
    pub async fn create_user(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
        fields: &UserFields,
    ) -> Result<(ApiUserRow, NewPassword), CreateError> {
        let username = Username::new(extension.clone(), admin.tenant_code().clone());
        let created = Provisioning::new(self.ctx.clone())
            .create_user(
                &username,
                &fields.name,
                fields.email.as_ref(),
                fields.role,
                None,
                &admin.actor(),
            )
            .await;
        match created {
            Ok((row, Some(password))) => Ok((row, password)),
            Ok((_, None)) => {
                Err(Unexpected::invariant("no temporary password was generated").into())
            }
            Err(CreateUserError::UserExists(_)) => {
                Err(CreateError::ExtensionTaken(extension.clone()))
            }
            Err(CreateUserError::NoSuchTenant(_)) => {
                Err(Unexpected::invariant("the admin's own tenant is gone").into())
            }
            Err(CreateUserError::Unexpected(e)) => Err(e.into()),
        }
    }

    pub async fn update_user(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
        change: &UserChange,
    ) -> Result<(), ChangeError> {
        let user = self.target(admin, extension).await?;
        let ctx = &self.ctx;
        let now = ctx.now();
        let name = change
            .name
            .as_ref()
            .map_or(user.name.as_str(), DisplayName::as_str);
        let new_email = match &change.email {
            Some(email) => email.as_ref().map(Email::as_str),
            None => user.email.as_deref(),
        };
        let role = change.role.unwrap_or(user.role);
        let email_changed = user.email.as_deref() != new_email;
        // A changed email is told to the old address (a silent change would let an admin,
        // or whoever holds one's session, take the account's recovery), and reset links
        // already sent there end.
        let notice = match (&user.email, email_changed) {
            (Some(old), true) => {
                let notice = AccountNotice::EmailChanged;
                let sealed = ctx.outbox.account_notice(&user, old, notice, now);
                Some(sealed.map_err(Unexpected::from)?)
            }
            _ => None,
        };
        let changed = ctx
            .store
            .update_user(
                admin.tenant_id(),
                user.id,
                name,
                new_email,
                role.as_str(),
                email_changed.then_some(EmailChanged {
                    now,
                    notice: notice.as_ref(),
                }),
            )
            .await
            .map_err(Unexpected::from)?;
        if !changed {
            return Err(ChangeError::LastAdmin);
        }
        if notice.is_some() {
            ctx.mail_wake.notify_one();
        }
        let detail = format!(
            "name, email and role saved (role {}{}{})",
            role.as_str(),
            if new_email.is_none() {
                ", no email"
            } else {
                ""
            },
            if email_changed {
                "; email changed, the old address told and its reset links ended"
            } else {
                ""
            }
        );
        self.audit(admin, EventKind::UserUpdated, &user, Some(&detail))
            .await?;
        Ok(())
    }

    pub async fn delete_user(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<(), ChangeError> {
        let user = self.target(admin, extension).await?;
        // The SIP server forgets the deleted user's secret and registrations (PBX link):
        // the notice is queued in the delete's own transaction.
        let aor = aor(&user.extension, &user.sip_domain);
        if !self
            .ctx
            .store
            .delete_user(admin.tenant_id(), user.id, &aor, self.ctx.now())
            .await
            .map_err(Unexpected::from)?
        {
            return Err(ChangeError::LastAdmin);
        }
        Ok(self.unlocked(admin, &user, EventKind::UserDeleted).await?)
    }

    /// Mails a reset link to the email on file and ends the user's sessions.
    pub async fn send_reset_link(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<(), ResetLinkError> {
        let user = self.target(admin, extension).await?;
        Ok(send_link_for(&self.ctx, user, &admin.actor()).await??)
    }

    /// Sets a temporary password (returned once, with whose it is); the user's sessions and
    /// links end.
    pub async fn set_temporary_password(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<(Username, NewPassword), AdminError> {
        let user = self.target(admin, extension).await?;
        let password = set_temporary_password(&self.ctx, &user, &admin.actor()).await?;
        Ok((user.username(), password))
    }

    pub async fn unlock(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<(), AdminError> {
        let user = self.target(admin, extension).await?;
        Ok(self.unlocked(admin, &user, EventKind::UserUnlocked).await?)
    }

    /// Clears the user's sign-in lockout, and audits `kind` (their deletion or unlocking).
    async fn unlocked(
        &self,
        admin: &impl TenantActor,
        user: &UserRecord,
        kind: EventKind,
    ) -> Result<(), Unexpected> {
        self.ctx
            .guard()
            .unlock(&ThrottleKey::username(&user.username()))
            .await?;
        self.audit(admin, kind, user, None).await
    }

    /// The actor's own tenant as the provider sees it (name, SIP domain, suspended): what a
    /// tenant's own tools need to set up its phones. Not found if it was deleted meanwhile.
    pub async fn tenant(&self, admin: &impl TenantActor) -> Result<TenantRow, AdminError> {
        self.ctx
            .store
            .tenant_row(admin.tenant_code())
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// Ends every session of the user; returns how many.
    pub async fn sign_out_everywhere(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<u64, AdminError> {
        let user = self.target(admin, extension).await?;
        let ended = self.ctx.store.delete_user_sessions(user.id).await?;
        let detail = format!("{ended} session(s) ended");
        self.audit(admin, EventKind::SignedOutEverywhere, &user, Some(&detail))
            .await?;
        Ok(ended)
    }

    /// A new SIP secret for the user; their phones must be reprogrammed.
    pub async fn regenerate_sip_secret(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<(), AdminError> {
        let user = self.target(admin, extension).await?;
        Ok(regenerate_for(&self.ctx, &user, &admin.actor()).await?)
    }

    pub async fn set_pin(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
        new: &str,
        confirm: &str,
    ) -> Result<(), AdminPinError> {
        let user = self.target(admin, extension).await?;
        match set_pin_for(&self.ctx, &user, new, confirm, &admin.actor()).await {
            Ok(()) => Ok(()),
            Err(PinError::Rejected(r)) => Err(AdminPinError::Rejected(r)),
            Err(PinError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// One page of the tenant's audit log, newest first, and how many events match.
    pub async fn audit_page(
        &self,
        admin: &impl TenantActor,
        filter: &AuditFilter<'_>,
        page: i64,
    ) -> Result<(Vec<AuditRecord>, i64), Unexpected> {
        let offset = page_offset(page);
        Ok(self
            .ctx
            .store
            .audit_page(admin.tenant_id(), filter, PAGE_SIZE, offset)
            .await?)
    }

    /// Up to `limit` users after extension `after`, in extension order (the API's pages).
    pub async fn users_after(
        &self,
        admin: &impl TenantActor,
        after: Option<&Extension>,
        limit: i64,
    ) -> Result<Vec<ApiUserRow>, Unexpected> {
        Ok(self
            .ctx
            .store
            .users_after(
                admin.tenant_id(),
                after.map(Extension::as_str),
                self.ctx.now(),
                limit,
            )
            .await?)
    }

    /// One user with whether they are locked now and when they were made.
    pub async fn user_row(
        &self,
        admin: &impl TenantActor,
        extension: &Extension,
    ) -> Result<ApiUserRow, AdminError> {
        self.ctx
            .store
            .api_user(admin.tenant_id(), extension.as_str(), self.ctx.now())
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// Up to `limit` audit events older than event `before`, newest first.
    pub async fn audit_before(
        &self,
        admin: &impl TenantActor,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, Unexpected> {
        Ok(self
            .ctx
            .store
            .audit_before(admin.tenant_id(), before, limit)
            .await?)
    }
}
