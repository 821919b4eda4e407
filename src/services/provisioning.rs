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
use crate::clock::Timestamp;
use crate::domain::{
    DisplayName, Email, Extension, NewPassword, OperatorName, Role, SipDomain, TenantCode, Username,
};
use crate::store::{
    ApiUserRow, NewTenant, NewUser, NewUserRows, StoreError, TenantId, TenantRow, ThrottleKey,
    UserRecord,
};

/// A tenant not created (by the CLI, the demo, the operator console or the API), or not
/// moved to another SIP domain.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant {0} already exists")]
    TenantExists(TenantCode),
    /// No SIP domain was given, and the one made of the code and the public URL's host is
    /// not a host name.
    #[error("invalid SIP domain: use a host name like sip.example.com")]
    BadSipDomain,
    #[error("the SIP domain {0} is already another tenant's")]
    SipDomainTaken(SipDomain),
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

/// A new tenant with its first admin.
pub struct NewTenantWithAdmin {
    pub code: TenantCode,
    pub name: DisplayName,
    pub sip_domain: Option<SipDomain>,
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

impl NewAccount<'_> {
    /// The account's row, with `first` as its password and no SIP secret yet (it is
    /// sealed to the tenant's id).
    fn row<'a>(&'a self, first: &'a FirstPassword, now: Timestamp) -> NewUser<'a> {
        NewUser {
            extension: self.username.extension(),
            name: self.name.as_str(),
            email: self.email.map(Email::as_str),
            role: self.role,
            password_hash: &first.hash,
            password_expires_at: first.temporary.then(|| now.plus(TEMPORARY_PASSWORD_TTL)),
            sip_secret: None,
        }
    }
}

/// The audit event of a new tenant (its tenant is the new one's, given when it is written).
fn tenant_created<'a>(code: &'a TenantCode, actor: &'a Actor) -> Event<'a> {
    Event {
        subject: Some(code.as_str()),
        ..Event::by(EventKind::TenantCreated, actor.name(), actor.addr())
    }
}

/// The audit event of a new user, named `subject` (its tenant is the one the user is
/// written to).
fn user_created<'a>(first: &FirstPassword, actor: &'a Actor, subject: &'a str) -> Event<'a> {
    Event {
        subject: Some(subject),
        detail: Some(if first.temporary {
            "with a temporary password"
        } else {
            "with a chosen password"
        }),
        ..Event::by(EventKind::UserCreated, actor.name(), actor.addr())
    }
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
        sip_domain: Option<&SipDomain>,
        actor: &Actor,
    ) -> Result<TenantId, TenantError> {
        let ctx = &self.ctx;
        let sip_domain = self.sip_domain_for(code, sip_domain)?;
        let new = NewTenant {
            code,
            name: name.as_str(),
            sip_domain: sip_domain.as_str(),
        };
        let now = ctx.now();
        let audit = tenant_created(code, actor).row(now);
        let written = ctx.store.insert_tenant(&new, &audit, now).await;
        self.tenant_written(written, code, sip_domain).await
    }

    /// Creates a tenant and its first admin (the JSON API's and the operator console's
    /// "new tenant") in one transaction, and returns both as written. The admin gets a
    /// temporary password, returned once.
    pub async fn create_tenant_with_admin(
        &self,
        new: &NewTenantWithAdmin,
        actor: &Actor,
    ) -> Result<(TenantRow, ApiUserRow, Option<NewPassword>), TenantError> {
        let ctx = &self.ctx;
        let username = Username::new(new.admin_extension.clone(), new.code.clone());
        let sip_domain = self.sip_domain_for(&new.code, new.sip_domain.as_ref())?;
        // Hashed first, so a busy hashing queue changes nothing.
        let first = self.first_password(&username, None).await?;
        let admin = NewAccount {
            username: &username,
            name: &new.admin_name,
            email: new.admin_email.as_ref(),
            role: Role::Admin,
        };
        let tenant = NewTenant {
            code: &new.code,
            name: new.name.as_str(),
            sip_domain: sip_domain.as_str(),
        };
        let now = ctx.now();
        let subject = username.to_string();
        let secret = generate_sip_secret();
        let extension = username.extension();
        let rows = NewUserRows {
            user: admin.row(&first, now),
            username_key: &ThrottleKey::username(&username),
            audit: user_created(&first, actor, &subject).row(now),
        };
        let written = ctx
            .store
            .insert_tenant_with_user(
                &tenant,
                &tenant_created(&new.code, actor).row(now),
                &rows,
                |id| seal_sip_secret(ctx, id, extension, &secret),
                now,
            )
            .await;
        let (tenant, admin) = self.tenant_written(written, &new.code, sip_domain).await?;
        Ok((tenant, admin, first.temporary.then_some(first.password)))
    }

    /// The SIP domain a new tenant gets: the one given, or one derived from its code and
    /// the public URL's host.
    fn sip_domain_for(
        &self,
        code: &TenantCode,
        given: Option<&SipDomain>,
    ) -> Result<SipDomain, TenantError> {
        match given {
            Some(d) => Ok(d.clone()),
            None => SipDomain::parse(&format!("{}.sip.{}", code.as_str(), self.ctx.public_host))
                .map_err(|_| TenantError::BadSipDomain),
        }
    }

    /// What writing a new tenant came to: a refusal says which unique index refused it,
    /// its code or its SIP domain (any case); a new tenant has no users to collide with.
    async fn tenant_written<T>(
        &self,
        written: Result<T, StoreError>,
        code: &TenantCode,
        sip_domain: SipDomain,
    ) -> Result<T, TenantError> {
        match written {
            Ok(done) => Ok(done),
            Err(StoreError::Conflict) => Err(match self.ctx.store.tenant_by_code(code).await? {
                Some(_) => TenantError::TenantExists(code.clone()),
                None => TenantError::SipDomainTaken(sip_domain),
            }),
            Err(e) => Err(e.into()),
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
        let subject = username.to_string();
        let rows = NewUserRows {
            user: NewUser {
                sip_secret: Some(&sip),
                ..new.row(&first, now)
            },
            username_key: &ThrottleKey::username(username),
            audit: user_created(&first, actor, &subject).row(now),
        };
        let written = ctx.store.insert_user(tenant, &rows, now).await;
        match written {
            Ok(row) => Ok((row, first.temporary.then_some(first.password))),
            Err(StoreError::Conflict) => Err(CreateUserError::UserExists(username.clone())),
            Err(e) => Err(e.into()),
        }
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
