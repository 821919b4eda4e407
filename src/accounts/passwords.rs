//! Changing a password — from Settings with the current one, or replacing a temporary
//! one — under the one password policy. Every other session of the user ends; the user
//! stays signed in on a fresh session.

use secrecy::SecretString;

use super::sessions::NotConfirmed;
use super::{Accounts, Client, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::hashing::HashError;
use crate::auth::token;
use crate::domain::{password, NewPassword, PasswordContext, PasswordProblem, Username};
use crate::store::PasswordChange;

/// What the user typed.
pub struct PasswordForm<'a> {
    pub current: Option<&'a str>,
    pub new: &'a str,
    pub confirm: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    /// The form's own problems, all at once: policy failures and a confirmation mismatch.
    #[error("invalid new password")]
    Invalid {
        problems: Vec<PasswordProblem>,
        mismatch: bool,
    },
    #[error("current password is wrong")]
    WrongCurrent,
    #[error("locked")]
    Locked { retry_after: std::time::Duration },
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<crate::store::StoreError> for ChangePasswordError {
    fn from(e: crate::store::StoreError) -> Self {
        ChangePasswordError::Unexpected(e.into())
    }
}

impl From<HashError> for ChangePasswordError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy(_) => ChangePasswordError::Busy,
            other => ChangePasswordError::Unexpected(other.into()),
        }
    }
}

impl Accounts {
    /// Returns the cookie value of the replacement session.
    #[tracing::instrument(skip_all, fields(user = %su.user.username()))]
    pub async fn change_password(
        &self,
        su: &SessionUser,
        form: PasswordForm<'_>,
        client: Client,
    ) -> Result<String, ChangePasswordError> {
        let username = Username::parse(&su.user.username())
            .map_err(|e| Unexpected(anyhow::anyhow!("stored username: {e}")))?;
        let (sip_secret, pin) = self.device_secrets(&su.user).await?;
        let context = PasswordContext {
            username: Some(&username),
            pin: pin.as_deref(),
            sip_secret: sip_secret.as_deref(),
        };
        let temporary_expired = su
            .user
            .password_expires_at
            .is_some_and(|at| at <= self.now());
        if form.current.is_none() && (!su.user.password_temporary || temporary_expired) {
            // Skipping the current password is only for replacing a temporary one that
            // still works.
            return Err(ChangePasswordError::WrongCurrent);
        }
        let new = check_form(form.new, form.confirm, &context)?;
        let name = su.user.username();
        let addr = client.addr_string();

        if let Some(current) = form.current {
            match self
                .confirm_password(
                    &su.user,
                    current,
                    client,
                    "wrong current password on change",
                )
                .await?
            {
                Ok(()) => {}
                Err(NotConfirmed::Wrong) => return Err(ChangePasswordError::WrongCurrent),
                Err(NotConfirmed::Locked { retry_after }) => {
                    return Err(ChangePasswordError::Locked { retry_after })
                }
                Err(NotConfirmed::Busy) => return Err(ChangePasswordError::Busy),
            }
        }

        let hash = self
            .hasher
            .hash(SecretString::from(new.expose().to_owned()))
            .await?;
        let token = token::random_token();
        let now = self.now();
        let notice = match &su.user.email {
            Some(email) => {
                let message = self
                    .outbox
                    .password_changed_message(&su.user.name, &name, "changed", now)
                    .map_err(|e| Unexpected(anyhow::anyhow!("mail template: {e}")))?;
                Some(
                    self.outbox
                        .seal(message, email, Some(su.user.id), Some(su.user.tenant_id)),
                )
            }
            None => None,
        };
        self.store
            .replace_password(
                su.user.id,
                &PasswordChange {
                    password_hash: &hash,
                    expires_at: None,
                },
                Some(&token::token_hash(&token)),
                notice.as_ref(),
                now,
            )
            .await?;
        if notice.is_some() {
            self.mail_wake.notify_one();
        }
        let kind = if form.current.is_some() {
            EventKind::PasswordChanged
        } else {
            EventKind::TemporaryPasswordChosen
        };
        self.audit(Event {
            tenant: Some(su.user.tenant_id),
            actor: Some(&name),
            client_addr: addr.as_deref(),
            ..Event::new(kind)
        })
        .await?;
        Ok(token)
    }
}

/// The policy and the confirmation, every problem at once.
pub(crate) fn check_form(
    new: &str,
    confirm: &str,
    context: &PasswordContext<'_>,
) -> Result<NewPassword, ChangePasswordError> {
    let parsed = NewPassword::parse(new, context);
    let mismatch = password::normalize(new) != password::normalize(confirm);
    match parsed {
        Ok(p) if !mismatch => Ok(p),
        Ok(_) => Err(ChangePasswordError::Invalid {
            problems: Vec::new(),
            mismatch,
        }),
        Err(problems) => Err(ChangePasswordError::Invalid { problems, mismatch }),
    }
}
