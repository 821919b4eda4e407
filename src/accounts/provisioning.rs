//! Creating tenants, users and operators, and unlocking a username — what the CLI (and
//! later the admin and operator consoles) do to accounts.

use std::time::Duration;

use rand::rngs::OsRng;
use rand::Rng;
use secrecy::SecretString;

use super::{user_key, Accounts, Unexpected};
use crate::audit::{Event, EventKind};
use crate::domain::{
    DisplayName, Email, NewPassword, OperatorName, PasswordContext, Role, TenantCode, Username,
};
use crate::store::{NewTenant, NewUser, StoreError, TenantId, UserId};

/// How long a temporary password works.
pub const TEMPORARY_PASSWORD_TTL: Duration = Duration::from_secs(72 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("tenant {0} already exists")]
    TenantExists(String),
    #[error("there is no tenant {0}")]
    NoSuchTenant(String),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("operator {0} already exists")]
    OperatorExists(String),
    #[error("there is no user {0}")]
    NoSuchUser(String),
    #[error("{0} has no email on file; use a temporary password instead (without --link)")]
    NoEmail(String),
    #[error("invalid SIP domain: use a host name like sip.example.com")]
    BadSipDomain,
    #[error("the SIP domain {0} is already another tenant's")]
    SipDomainTaken(String),
    #[error("the password is not allowed: {0}")]
    Password(String),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<StoreError> for ProvisionError {
    fn from(e: StoreError) -> Self {
        ProvisionError::Unexpected(e.into())
    }
}

/// 20 random characters from letters and digits (no look-alikes), with at least one
/// lowercase, one uppercase and one digit, and accepted by the password policy.
pub fn generate_temporary_password(username: &Username) -> NewPassword {
    generate_password(Some(username))
}

/// A generated password for an operator (no username to compare with).
pub fn generate_operator_password() -> NewPassword {
    generate_password(None)
}

fn generate_password(username: Option<&Username>) -> NewPassword {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    loop {
        let candidate: String = (0..20)
            .map(|_| char::from(ALPHABET[OsRng.gen_range(0..ALPHABET.len())]))
            .collect();
        let varied = candidate.chars().any(|c| c.is_ascii_lowercase())
            && candidate.chars().any(|c| c.is_ascii_uppercase())
            && candidate.chars().any(|c| c.is_ascii_digit());
        let context = PasswordContext {
            username,
            ..PasswordContext::default()
        };
        if let (true, Ok(p)) = (varied, NewPassword::parse(&candidate, &context)) {
            return p;
        }
    }
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

impl Accounts {
    /// Creates a tenant; without a SIP domain one is derived from the code and the public
    /// URL's host (`wickedsprockets.sip.localhost`).
    pub async fn create_tenant(
        &self,
        code: &TenantCode,
        name: &DisplayName,
        sip_domain: Option<&str>,
        actor: &str,
    ) -> Result<TenantId, ProvisionError> {
        let sip_domain = match sip_domain {
            Some(d) => d.trim().to_ascii_lowercase(),
            None => format!("{}.sip.{}", code.as_str(), self.public_host),
        };
        if !valid_sip_domain(&sip_domain) {
            return Err(ProvisionError::BadSipDomain);
        }
        // Which unique index refused the tenant: its code, or its SIP domain (any case).
        let taken = || async {
            match self.store.tenant_by_code(code.as_str()).await {
                Ok(Some(_)) => ProvisionError::TenantExists(code.to_string()),
                Ok(None) => ProvisionError::SipDomainTaken(sip_domain.clone()),
                Err(e) => e.into(),
            }
        };
        let id = match self
            .store
            .insert_tenant(
                &NewTenant {
                    code: code.as_str(),
                    name: name.as_str(),
                    sip_domain: &sip_domain,
                },
                self.now(),
            )
            .await
        {
            Ok(id) => id,
            Err(StoreError::Conflict) => return Err(taken().await),
            Err(e) => return Err(e.into()),
        };
        self.audit(Event {
            tenant: Some(id),
            actor: Some(actor),
            subject: Some(code.as_str()),
            ..Event::new(EventKind::TenantCreated)
        })
        .await?;
        Ok(id)
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
        actor: &str,
    ) -> Result<(UserId, Option<NewPassword>), ProvisionError> {
        let tenant = self
            .store
            .tenant_by_code(username.tenant().as_str())
            .await?
            .ok_or_else(|| ProvisionError::NoSuchTenant(username.tenant().to_string()))?;
        let (password, temporary) = match password {
            Some(p) => (p, false),
            None => (generate_temporary_password(username), true),
        };
        let hash = self
            .hasher
            .hash(SecretString::from(password.expose().to_owned()))
            .await
            .map_err(Unexpected::from)?;
        let now = self.now();
        let sip = self.seal_sip_secret(
            tenant.id,
            username.extension().as_str(),
            &super::phone::generate_sip_secret(),
        );
        let id = match self
            .store
            .insert_user(
                &NewUser {
                    tenant_id: tenant.id,
                    extension: username.extension().as_str(),
                    name: name.as_str(),
                    email: email.map(Email::as_str),
                    role: role.as_str(),
                    password_hash: &hash,
                    password_expires_at: temporary.then(|| now.plus(TEMPORARY_PASSWORD_TTL)),
                    sip_secret: Some(&sip),
                },
                now,
            )
            .await
        {
            Ok(id) => id,
            Err(StoreError::Conflict) => {
                return Err(ProvisionError::UserExists(username.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        let subject = username.to_string();
        self.audit(Event {
            tenant: Some(tenant.id),
            actor: Some(actor),
            subject: Some(&subject),
            detail: Some(if temporary {
                "with a temporary password"
            } else {
                "with a chosen password"
            }),
            ..Event::new(EventKind::UserCreated)
        })
        .await?;
        Ok((id, temporary.then_some(password)))
    }

    /// Clears the lockout of a username. Returns whether it was locked.
    pub async fn unlock(&self, username: &Username, actor: &str) -> Result<bool, ProvisionError> {
        let user = self
            .store
            .user_by_username(username.tenant().as_str(), username.extension().as_str())
            .await?
            .ok_or_else(|| ProvisionError::NoSuchUser(username.to_string()))?;
        let key = user_key(&username.to_string());
        let was_locked = self
            .store
            .throttle_locked_until(&key)
            .await?
            .is_some_and(|until| until > self.now());
        self.store.throttle_clear(&key).await?;
        let subject = username.to_string();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(actor),
            subject: Some(&subject),
            ..Event::new(EventKind::UserUnlocked)
        })
        .await?;
        Ok(was_locked)
    }

    /// `dialtone user reset-password`: a temporary password (returned) or, with `link`, a
    /// reset link to the email on file. Either way the user's sessions end.
    pub async fn reset_password_by_name(
        &self,
        username: &Username,
        link: bool,
        actor: &str,
    ) -> Result<Option<NewPassword>, ProvisionError> {
        let user = self
            .store
            .user_by_username(username.tenant().as_str(), username.extension().as_str())
            .await?
            .ok_or_else(|| ProvisionError::NoSuchUser(username.to_string()))?;
        let outcome = if link {
            self.send_reset_link(user, actor).await.map(|()| None)
        } else {
            self.set_temporary_password(&user, actor).await.map(Some)
        };
        outcome.map_err(|e| match e {
            super::AdminError::NoEmail => ProvisionError::NoEmail(username.to_string()),
            super::AdminError::Unexpected(u) => ProvisionError::Unexpected(u),
            other => ProvisionError::Unexpected(Unexpected(anyhow::anyhow!("{other}"))),
        })
    }

    pub async fn create_operator(
        &self,
        name: &OperatorName,
        password: &NewPassword,
        actor: &str,
    ) -> Result<(), ProvisionError> {
        let hash = self
            .hasher
            .hash(SecretString::from(password.expose().to_owned()))
            .await
            .map_err(Unexpected::from)?;
        match self
            .store
            .insert_operator(name.as_str(), &hash, self.now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(ProvisionError::OperatorExists(name.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        let subject = format!("operator:{name}");
        self.audit(Event {
            actor: Some(actor),
            subject: Some(&subject),
            ..Event::new(EventKind::OperatorCreated)
        })
        .await
        .map_err(ProvisionError::from)
    }
}
