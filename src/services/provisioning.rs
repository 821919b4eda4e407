//! Provisioning: creating tenants, users and operators, and the CLI's unlock and reset —
//! what the command line, the demo, the admin page and the operator console share. A SIP
//! domain derived when none is given; every user gets a SIP secret at creation.

use super::device_secrets::{generate_sip_secret, seal_sip_secret};
use super::passwords::{
    generate_temporary_password, set_temporary_password, TEMPORARY_PASSWORD_TTL,
};
use super::recovery::{send_link_for, NoLink};
use super::{service, store_error_is_unexpected, Unexpected};
use crate::audit::{operator_actor, Actor, Event, EventKind};
use crate::domain::{
    DisplayName, Email, Extension, NewPassword, OperatorName, Role, TenantCode, Username,
};
use crate::store::{
    ApiUserRow, NewTenant, NewUser, StoreError, TenantId, ThrottleKey, UserId, UserRecord,
};

/// A tenant not created (by the CLI, the demo, the operator console or the API), or not
/// moved to another SIP domain.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant {0} already exists")]
    TenantExists(TenantCode),
    #[error("invalid SIP domain: use a host name like sip.example.com")]
    BadSipDomain,
    #[error("the SIP domain {0} is already another tenant's")]
    SipDomainTaken(String),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("there is no tenant {0}")]
    NoSuchTenant(TenantCode),
    #[error("user {0} already exists")]
    UserExists(Username),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// What the CLI's other commands can be refused for; its message is the CLI's one line.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    User(#[from] CreateUserError),
    #[error("operator {0} already exists")]
    OperatorExists(OperatorName),
    #[error("there is no user {0}")]
    NoSuchUser(Username),
    #[error("{0} has no email on file; use a temporary password instead (without --link)")]
    NoEmail(Username),
    #[error("{0} was already sent 3 reset emails by administrators or support within 15 minutes, the most allowed; try again later, or use a temporary password (without --link)")]
    MailLimit(Username),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(TenantError);

/// `From<Unexpected>` and `From<StoreError>` for a service's error that wraps
/// [`TenantError`] as its `Refused` variant: a fault is the tenant error's own.
macro_rules! wraps_tenant_error {
    ($error:ident) => {
        impl From<crate::services::Unexpected> for $error {
            fn from(e: crate::services::Unexpected) -> Self {
                $error::Refused(crate::services::provisioning::TenantError::Unexpected(e))
            }
        }

        impl From<crate::store::StoreError> for $error {
            fn from(e: crate::store::StoreError) -> Self {
                crate::services::Unexpected::from(e).into()
            }
        }
    };
}
pub(crate) use wraps_tenant_error;

store_error_is_unexpected!(CreateUserError);

store_error_is_unexpected!(ProvisionError);

/// A SIP domain as given, trimmed and lowercased, if it is a host name
/// (`sip.example.com`): what every path that takes a SIP domain checks.
pub(crate) fn sip_domain(raw: &str) -> Option<String> {
    let d = raw.trim().to_ascii_lowercase();
    valid_sip_domain(&d).then_some(d)
}

pub(crate) fn valid_sip_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A new tenant with its first admin.
pub struct NewTenantWithAdmin {
    pub code: TenantCode,
    pub name: DisplayName,
    pub sip_domain: Option<String>,
    pub admin_extension: Extension,
    pub admin_name: DisplayName,
    pub admin_email: Option<Email>,
}

/// Who a new account is for.
struct NewAccount<'a> {
    username: &'a Username,
    name: &'a DisplayName,
    email: Option<&'a Email>,
    role: Role,
}

/// A new account's first password and its hash.
struct FirstPassword {
    hash: String,
    password: NewPassword,
    temporary: bool,
}

service!(
    /// Creating accounts.
    Provisioning
);

impl Provisioning {
    /// Creates a tenant; without a SIP domain one is derived from the code and the public
    /// URL's host (`wickedsprockets.sip.localhost`).
    pub async fn create_tenant(
        &self,
        code: &TenantCode,
        name: &DisplayName,
        sip_domain: Option<&str>,
        actor: &Actor,
    ) -> Result<TenantId, TenantError> {
        let ctx = &self.ctx;
        let given = match sip_domain {
            Some(d) => d.to_owned(),
            None => format!("{}.sip.{}", code.as_str(), ctx.public_host),
        };
        let sip_domain = self::sip_domain(&given).ok_or(TenantError::BadSipDomain)?;
        let id = match ctx
            .store
            .insert_tenant(
                &NewTenant {
                    code,
                    name: name.as_str(),
                    sip_domain: &sip_domain,
                },
                ctx.now(),
            )
            .await
        {
            Ok(id) => id,
            // Which unique index refused the tenant: its code, or its SIP domain (any case).
            Err(StoreError::Conflict) => {
                return Err(match ctx.store.tenant_by_code(code).await? {
                    Some(_) => TenantError::TenantExists(code.clone()),
                    None => TenantError::SipDomainTaken(sip_domain),
                })
            }
            Err(e) => return Err(e.into()),
        };
        ctx.audit(Event::on(
            EventKind::TenantCreated,
            id,
            actor,
            code.as_str(),
        ))
        .await?;
        Ok(id)
    }

    /// Creates a tenant and its first admin (the JSON API's and the operator console's
    /// "new tenant"). The admin gets a temporary password, returned once.
    pub async fn create_tenant_with_admin(
        &self,
        new: &NewTenantWithAdmin,
        actor: &Actor,
    ) -> Result<(UserId, Username, Option<NewPassword>), TenantError> {
        let username = Username::new(new.admin_extension.clone(), new.code.clone());
        // Hashed first, so a busy hashing queue leaves no tenant without its admin.
        let first = self.first_password(&username, None).await?;
        let tenant = self
            .create_tenant(&new.code, &new.name, new.sip_domain.as_deref(), actor)
            .await?;
        let admin = NewAccount {
            username: &username,
            name: &new.admin_name,
            email: new.admin_email.as_ref(),
            role: Role::Admin,
        };
        match self.insert_user(tenant, &admin, first, actor).await {
            Ok((row, temporary)) => Ok((row.user.id, username, temporary)),
            Err(CreateUserError::NoSuchTenant(_)) => {
                Err(Unexpected::invariant("the new tenant is gone").into())
            }
            Err(CreateUserError::UserExists(_)) => {
                Err(Unexpected::invariant("a new tenant already has users").into())
            }
            Err(CreateUserError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Whether a tenant with this code exists.
    pub async fn tenant_exists(&self, code: &TenantCode) -> Result<bool, Unexpected> {
        Ok(self.ctx.store.tenant_by_code(code).await?.is_some())
    }

    /// The user with this username, if there is one.
    pub async fn user(&self, username: &Username) -> Result<Option<UserRecord>, Unexpected> {
        Ok(self.ctx.store.user_by_username(username).await?)
    }

    /// Creates a user. With no password a temporary one is generated and returned — the
    /// only time it is ever visible.
    pub async fn create_user(
        &self,
        username: &Username,
        name: &DisplayName,
        email: Option<&Email>,
        role: Role,
        password: Option<NewPassword>,
        actor: &Actor,
    ) -> Result<(ApiUserRow, Option<NewPassword>), CreateUserError> {
        let tenant = self
            .ctx
            .store
            .tenant_by_code(username.tenant())
            .await?
            .ok_or_else(|| CreateUserError::NoSuchTenant(username.tenant().clone()))?;
        let first = self.first_password(username, password).await?;
        let new = NewAccount {
            username,
            name,
            email,
            role,
        };
        self.insert_user(tenant.id, &new, first, actor).await
    }

    /// A new account's first password (the one given, or a temporary one), hashed before
    /// anything is written: a hashing queue at its bound then changes nothing.
    async fn first_password(
        &self,
        username: &Username,
        given: Option<NewPassword>,
    ) -> Result<FirstPassword, Unexpected> {
        let (password, temporary) = match given {
            Some(p) => (p, false),
            None => (generate_temporary_password(username), true),
        };
        let hash = self.ctx.hasher.hash(password.expose()).await?;
        Ok(FirstPassword {
            hash,
            password,
            temporary,
        })
    }

    /// Writes a new user of `tenant` with their hashed first password, and audits it.
    async fn insert_user(
        &self,
        tenant: TenantId,
        new: &NewAccount<'_>,
        first: FirstPassword,
        actor: &Actor,
    ) -> Result<(ApiUserRow, Option<NewPassword>), CreateUserError> {
        let ctx = &self.ctx;
        let username = new.username;
        let now = ctx.now();
        let sip = seal_sip_secret(ctx, tenant, username.extension(), &generate_sip_secret());
        let temporary = first.temporary;
        let subject = username.to_string();
        let audit = Event {
            detail: Some(if temporary {
                "with a temporary password"
            } else {
                "with a chosen password"
            }),
            ..Event::on(EventKind::UserCreated, tenant, actor, &subject)
        };
        let row = match ctx
            .store
            .insert_user(
                &NewUser {
                    tenant_id: tenant,
                    extension: username.extension(),
                    name: new.name.as_str(),
                    email: new.email.map(Email::as_str),
                    role: new.role,
                    password_hash: &first.hash,
                    password_expires_at: temporary.then(|| now.plus(TEMPORARY_PASSWORD_TTL)),
                    sip_secret: Some(&sip),
                },
                &ThrottleKey::username(username),
                &audit.row(now),
                now,
            )
            .await
        {
            Ok(row) => row,
            Err(StoreError::Conflict) => return Err(CreateUserError::UserExists(username.clone())),
            Err(e) => return Err(e.into()),
        };
        Ok((row, temporary.then_some(first.password)))
    }

    async fn existing_user(&self, username: &Username) -> Result<UserRecord, ProvisionError> {
        self.ctx
            .store
            .user_by_username(username)
            .await?
            .ok_or_else(|| ProvisionError::NoSuchUser(username.clone()))
    }

    /// `dialtone user unlock`: clears the lockout of a username. Returns whether it was
    /// locked.
    pub async fn unlock(&self, username: &Username, actor: &Actor) -> Result<bool, ProvisionError> {
        let user = self.existing_user(username).await?;
        let key = ThrottleKey::username(username);
        let guard = self.ctx.guard();
        let was_locked = guard.locked_until(&key).await?.is_some();
        guard.unlock(&key).await?;
        let subject = username.to_string();
        self.ctx
            .audit(Event::on(
                EventKind::UserUnlocked,
                user.tenant_id,
                actor,
                &subject,
            ))
            .await?;
        Ok(was_locked)
    }

    /// `dialtone user reset-password`: a temporary password (returned) or, with `link`, a
    /// reset link to the email on file. Either way the user's sessions end.
    pub async fn reset_password(
        &self,
        username: &Username,
        link: bool,
        actor: &Actor,
    ) -> Result<Option<NewPassword>, ProvisionError> {
        let user = self.existing_user(username).await?;
        if link {
            match send_link_for(&self.ctx, user, actor).await? {
                Ok(()) => Ok(None),
                Err(NoLink::NoEmailOnFile) => Err(ProvisionError::NoEmail(username.clone())),
                Err(NoLink::MailLimit) => Err(ProvisionError::MailLimit(username.clone())),
            }
        } else {
            Ok(Some(set_temporary_password(&self.ctx, &user, actor).await?))
        }
    }

    pub async fn create_operator(
        &self,
        name: &OperatorName,
        password: &NewPassword,
        actor: &Actor,
    ) -> Result<(), ProvisionError> {
        let ctx = &self.ctx;
        let hash = ctx
            .hasher
            .hash(password.expose())
            .await
            .map_err(Unexpected::from)?;
        match ctx
            .store
            .insert_operator(name.as_str(), &hash, ctx.now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(ProvisionError::OperatorExists(name.clone())),
            Err(e) => return Err(e.into()),
        }
        let subject = operator_actor(name);
        ctx.audit(Event {
            subject: Some(&subject),
            ..Event::by(EventKind::OperatorCreated, actor.name(), actor.addr())
        })
        .await?;
        Ok(())
    }
}
