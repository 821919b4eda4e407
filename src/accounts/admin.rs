//! Tenant administration: an admin manages the users of their own tenant and nobody
//! else's. Every method takes the acting admin and scopes each lookup to their tenant,
//! so another tenant's user is indistinguishable from one that does not exist.

use secrecy::SecretString;

use super::provisioning::{generate_temporary_password, TEMPORARY_PASSWORD_TTL};
use super::{user_key, Accounts, ProvisionError, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::domain::{DisplayName, Email, Extension, NewPassword, Role, TenantCode, Username};
use crate::store::{
    AuditFilter, AuditRecord, MailRecord, PasswordChange, StoreError, UserListRow, UserRecord,
};

/// Users per page of the admin list, and events per page of the audit log.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not an admin: 403.
    #[error("forbidden")]
    Forbidden,
    /// No such user in the admin's tenant (whether or not it exists elsewhere): 404.
    #[error("not found")]
    NotFound,
    #[error("extension {0} is already taken")]
    ExtensionTaken(String),
    /// The change would leave the tenant without an admin.
    #[error("last admin")]
    LastAdmin,
    /// A reset link needs an email on file.
    #[error("no email on file")]
    NoEmail,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Unexpected(e.into())
    }
}

/// One user as the admin's detail page shows them.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub row: UserListRow,
    pub mail: Vec<MailRecord>,
}

/// What the admin wants a user to be.
pub struct UserFields {
    pub name: DisplayName,
    pub email: Option<Email>,
    pub role: Role,
}

impl Accounts {
    fn require_admin(actor: &SessionUser) -> Result<(), AdminError> {
        if actor.user.is_admin() {
            Ok(())
        } else {
            Err(AdminError::Forbidden)
        }
    }

    pub(crate) async fn admin_target(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<UserRecord, AdminError> {
        Self::require_admin(actor)?;
        let extension = Extension::parse(extension).map_err(|_| AdminError::NotFound)?;
        self.store
            .user_in_tenant(actor.user.tenant_id, extension.as_str())
            .await?
            .ok_or(AdminError::NotFound)
    }

    async fn admin_audit(
        &self,
        actor: &SessionUser,
        kind: EventKind,
        target: &str,
        detail: Option<&str>,
    ) -> Result<(), Unexpected> {
        let name = actor.user.username();
        self.audit(Event {
            tenant: Some(actor.user.tenant_id),
            actor: Some(&name),
            subject: Some(target),
            detail,
            ..Event::new(kind)
        })
        .await
    }

    pub async fn list_users(
        &self,
        actor: &SessionUser,
        search: Option<&str>,
        page: i64,
    ) -> Result<(Vec<UserListRow>, i64), AdminError> {
        Self::require_admin(actor)?;
        let offset = page.max(0).saturating_mul(PAGE_SIZE);
        Ok(self
            .store
            .list_users(actor.user.tenant_id, search, self.now(), PAGE_SIZE, offset)
            .await?)
    }

    pub async fn user_detail(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<UserDetail, AdminError> {
        let user = self.admin_target(actor, extension).await?;
        let locked_until = self
            .store
            .throttle_locked_until(&user_key(&user.username()))
            .await?
            .filter(|until| *until > self.now());
        let mail = self.store.mail_records(Some(user.id), 10).await?;
        Ok(UserDetail {
            row: UserListRow { user, locked_until },
            mail,
        })
    }

    /// Creates a user of the admin's tenant with a temporary password, returned once.
    pub async fn admin_create_user(
        &self,
        actor: &SessionUser,
        extension: &Extension,
        fields: &UserFields,
    ) -> Result<(String, NewPassword), AdminError> {
        Self::require_admin(actor)?;
        let tenant = TenantCode::parse(&actor.user.tenant_code)
            .map_err(|e| Unexpected(anyhow::anyhow!("stored tenant code: {e}")))?;
        let username = Username::new(extension.clone(), tenant);
        let actor_name = actor.user.username();
        match self
            .create_user(
                &username,
                &fields.name,
                fields.email.as_ref(),
                fields.role,
                None,
                &actor_name,
            )
            .await
        {
            Ok((_, Some(password))) => Ok((username.to_string(), password)),
            Ok((_, None)) => {
                Err(Unexpected(anyhow::anyhow!("no temporary password was generated")).into())
            }
            Err(ProvisionError::UserExists(_)) => {
                Err(AdminError::ExtensionTaken(extension.to_string()))
            }
            Err(ProvisionError::Unexpected(e)) => Err(e.into()),
            Err(other) => Err(Unexpected(anyhow::anyhow!("{other}")).into()),
        }
    }

    pub async fn admin_update_user(
        &self,
        actor: &SessionUser,
        extension: &str,
        fields: &UserFields,
    ) -> Result<(), AdminError> {
        let user = self.admin_target(actor, extension).await?;
        let changed = self
            .store
            .update_user(
                actor.user.tenant_id,
                user.id,
                fields.name.as_str(),
                fields.email.as_ref().map(Email::as_str),
                fields.role.as_str(),
            )
            .await?;
        if !changed {
            return Err(AdminError::LastAdmin);
        }
        let detail = format!(
            "name, email and role saved (role {}{})",
            fields.role.as_str(),
            if fields.email.is_none() {
                ", no email"
            } else {
                ""
            }
        );
        self.admin_audit(
            actor,
            EventKind::UserUpdated,
            &user.username(),
            Some(&detail),
        )
        .await?;
        Ok(())
    }

    pub async fn admin_delete_user(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<(), AdminError> {
        let user = self.admin_target(actor, extension).await?;
        if !self
            .store
            .delete_user(actor.user.tenant_id, user.id)
            .await?
        {
            return Err(AdminError::LastAdmin);
        }
        // The SIP server forgets the deleted user's secret and registrations (PBX link).
        let aor = crate::services::pbx::aor(&user.extension, &user.sip_domain);
        self.store.queue_pbx_notices(&[aor], self.now()).await?;
        self.store
            .throttle_clear(&user_key(&user.username()))
            .await?;
        self.admin_audit(actor, EventKind::UserDeleted, &user.username(), None)
            .await?;
        Ok(())
    }

    /// Mails a reset link to the email on file and ends the user's sessions.
    pub async fn admin_send_reset_link(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<(), AdminError> {
        let user = self.admin_target(actor, extension).await?;
        self.send_reset_link(user, &actor.user.username()).await
    }

    /// Sets a temporary password (returned once); the user's sessions and links end.
    pub async fn admin_set_temporary_password(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<NewPassword, AdminError> {
        let user = self.admin_target(actor, extension).await?;
        self.set_temporary_password(&user, &actor.user.username())
            .await
    }

    /// The shared core of every "reset by someone else" with a link: admin, CLI, operator.
    pub(crate) async fn send_reset_link(
        &self,
        user: UserRecord,
        actor: &str,
    ) -> Result<(), AdminError> {
        let Some(email) = user.email.clone() else {
            return Err(AdminError::NoEmail);
        };
        self.store.delete_user_sessions(user.id).await?;
        self.queue_reset_mail(&email, vec![user], Some(actor), None, false)
            .await?;
        Ok(())
    }

    /// The shared core of setting a temporary password (72 hours, must be changed at the
    /// next sign-in); the user's sessions and reset links end.
    pub(crate) async fn set_temporary_password(
        &self,
        user: &UserRecord,
        actor: &str,
    ) -> Result<NewPassword, AdminError> {
        let username = Username::parse(&user.username())
            .map_err(|e| Unexpected(anyhow::anyhow!("stored username: {e}")))?;
        let password = generate_temporary_password(&username);
        let hash = self
            .hasher
            .hash(SecretString::from(password.expose().to_owned()))
            .await
            .map_err(Unexpected::from)?;
        let now = self.now();
        self.store
            .replace_password(
                user.id,
                &PasswordChange {
                    password_hash: &hash,
                    expires_at: Some(now.plus(TEMPORARY_PASSWORD_TTL)),
                },
                None,
                None,
                now,
            )
            .await?;
        let name = user.username();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(actor),
            subject: Some(&name),
            ..Event::new(EventKind::TemporaryPasswordSet)
        })
        .await?;
        Ok(password)
    }

    pub async fn admin_unlock(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<(), AdminError> {
        let user = self.admin_target(actor, extension).await?;
        self.store
            .throttle_clear(&user_key(&user.username()))
            .await?;
        self.admin_audit(actor, EventKind::UserUnlocked, &user.username(), None)
            .await?;
        Ok(())
    }

    pub async fn admin_sign_out(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<u64, AdminError> {
        let user = self.admin_target(actor, extension).await?;
        let ended = self.store.delete_user_sessions(user.id).await?;
        let detail = format!("{ended} session(s) ended");
        self.admin_audit(
            actor,
            EventKind::SignedOutEverywhere,
            &user.username(),
            Some(&detail),
        )
        .await?;
        Ok(ended)
    }

    pub async fn admin_audit_page(
        &self,
        actor: &SessionUser,
        filter: &AuditFilter<'_>,
        page: i64,
    ) -> Result<(Vec<AuditRecord>, i64), AdminError> {
        Self::require_admin(actor)?;
        let offset = page.max(0).saturating_mul(PAGE_SIZE);
        Ok(self
            .store
            .audit_page(actor.user.tenant_id, filter, PAGE_SIZE, offset)
            .await?)
    }
}
