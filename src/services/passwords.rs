//! Passwords under the one policy: changing one from Settings with the current one,
//! choosing one in place of a temporary one, and setting a temporary one for someone (an
//! admin, an operator's CLI). Every other session of the user ends; the user stays signed
//! in on a fresh session.

use std::time::Duration;

use rand::rngs::OsRng;
use rand::Rng;

use super::guard::Refusal;
use super::{device_secrets, trusted_devices};
use super::{service, store_error_is_unexpected, Client, Context, SessionUser, Unexpected};
use crate::audit::{Actor, Event, EventKind};
use crate::auth::hashing::HashError;
use crate::auth::token;
use crate::domain::{password, NewPassword, PasswordContext, PasswordProblem, Username};
use crate::mail::{AccountNotice, PasswordWas};
use crate::store::{PasswordChange, ThrottleKey, UserRecord};

/// How long a temporary password works.
pub const TEMPORARY_PASSWORD_TTL: Duration = Duration::from_secs(72 * 3600);

/// What the user typed.
pub struct PasswordForm<'a> {
    pub current: Option<&'a str>,
    pub new: &'a str,
    pub confirm: &'a str,
}

/// A changed password: the cookie value of the replacement session, and this browser's
/// device cookie under the new password (its device id kept when it had a valid one), so
/// the browser the user changed it in stays trusted.
#[derive(Debug)]
pub struct PasswordChanged {
    pub token: String,
    pub device_cookie: String,
}

/// The form's own problems, all at once: policy failures and a confirmation mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRejected {
    pub problems: Vec<PasswordProblem>,
    pub mismatch: bool,
    /// The new password is the one the account has now (a temporary password kept for
    /// good would leave whoever set or read it out a working credential).
    pub same_as_current: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("invalid new password")]
    Rejected(PasswordRejected),
    /// The current password was wrong, the name is locked, or the pool is busy.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// A temporary password ran out (72 hours) while its session lasted: only an admin
    /// can set a new one.
    #[error("temporary password expired")]
    TemporaryExpired,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(ChangePasswordError);

impl From<HashError> for ChangePasswordError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy(_) => ChangePasswordError::Refused(Refusal::Busy),
            HashError::Argon2(_) | HashError::Task(_) | HashError::PoolGone => {
                ChangePasswordError::Unexpected(e.into())
            }
        }
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

/// The policy and the confirmation for `user`'s new password (not their username, PIN or
/// SIP secret), every problem at once.
pub(crate) async fn check_new_password(
    ctx: &Context,
    user: &UserRecord,
    new: &str,
    confirm: &str,
) -> Result<Result<NewPassword, PasswordRejected>, Unexpected> {
    let username = user.username();
    let secrets = device_secrets::open(ctx, user).await?;
    let context = PasswordContext {
        username: Some(&username),
        pin: secrets.pin.as_deref(),
        sip_secret: secrets.sip_secret.as_deref(),
        operator: None,
    };
    let parsed = NewPassword::parse(new, &context);
    let mismatch = password::normalize(new) != password::normalize(confirm);
    Ok(match parsed {
        Ok(p) if !mismatch => Ok(p),
        Ok(_) => Err(PasswordRejected {
            problems: Vec::new(),
            mismatch,
            same_as_current: false,
        }),
        Err(problems) => Err(PasswordRejected {
            problems,
            mismatch,
            same_as_current: false,
        }),
    })
}

/// Refuses a new password equal to the account's current one (`typed` when the caller
/// just proved it, otherwise checked against the stored hash). Run only after the caller
/// proved who they are, like the policy itself.
pub(crate) async fn refuse_current(
    ctx: &Context,
    user: &UserRecord,
    new: NewPassword,
    typed_current: Option<&str>,
) -> Result<Result<NewPassword, PasswordRejected>, HashError> {
    let same = match typed_current {
        Some(current) => password::normalize(current) == new.expose(),
        None => {
            ctx.hasher
                .verify(user.password_hash.clone(), new.expose())
                .await?
        }
    };
    Ok(if same {
        Err(PasswordRejected {
            problems: Vec::new(),
            mismatch: false,
            same_as_current: true,
        })
    } else {
        Ok(new)
    })
}

/// Sets a temporary password for `user` (72 hours, must be changed at the next sign-in),
/// by `actor`; the user's sessions and reset links end. Returned once.
pub(crate) async fn set_temporary_password(
    ctx: &Context,
    user: &UserRecord,
    actor: &Actor,
) -> Result<NewPassword, Unexpected> {
    let password = generate_temporary_password(&user.username());
    let hash = ctx.hasher.hash(password.expose()).await?;
    let now = ctx.now();
    ctx.store
        .replace_password(
            user.id,
            &PasswordChange {
                password_hash: &hash,
                expires_at: Some(now.plus(TEMPORARY_PASSWORD_TTL)),
                username_key: &ThrottleKey::username(&user.username()),
            },
            None,
            None,
            now,
        )
        .await?;
    ctx.audit_user(EventKind::TemporaryPasswordSet, actor, user)
        .await?;
    Ok(password)
}

service!(
    /// A signed-in user's own password.
    Passwords
);

impl Passwords {
    /// Changes the password (with the current one), or replaces a temporary one that
    /// still works (without). `device_cookie` is the browser's, if it has one.
    #[tracing::instrument(skip_all, fields(user = %su.user.username()))]
    pub async fn change_password(
        &self,
        su: &SessionUser,
        form: PasswordForm<'_>,
        device_cookie: Option<&str>,
        client: Client,
    ) -> Result<PasswordChanged, ChangePasswordError> {
        let ctx = &self.ctx;
        let temporary_expired = su
            .user
            .password_expires_at
            .is_some_and(|at| at <= ctx.now());
        if form.current.is_none() {
            // Skipping the current password is only for replacing a temporary one that
            // still works.
            if !su.user.password_temporary {
                return Err(ChangePasswordError::Refused(Refusal::WrongPassword));
            }
            if temporary_expired {
                return Err(ChangePasswordError::TemporaryExpired);
            }
        }
        let name = su.user.username().to_string();
        let addr = client.addr_string();

        // The current password first (counted toward the lockout, audited when wrong):
        // only a caller who proved it learns what the policy says of the new one, which
        // may name the voicemail PIN.
        if let Some(current) = form.current {
            ctx.guard()
                .confirm_password(su, current, client, "wrong current password on change")
                .await?
                .map_err(ChangePasswordError::Refused)?;
        }
        let new = check_new_password(ctx, &su.user, form.new, form.confirm)
            .await?
            .map_err(ChangePasswordError::Rejected)?;
        let new = refuse_current(ctx, &su.user, new, form.current)
            .await?
            .map_err(ChangePasswordError::Rejected)?;

        let hash = ctx.hasher.hash(new.expose()).await?;
        let token = token::random_token();
        let now = ctx.now();
        let notice = match &su.user.email {
            Some(email) => {
                let notice = AccountNotice::PasswordChanged {
                    how: PasswordWas::Changed,
                };
                let sealed = ctx.outbox.account_notice(&su.user, email, notice, now);
                Some(sealed.map_err(Unexpected::from)?)
            }
            None => None,
        };
        ctx.store
            .replace_password(
                su.user.id,
                &PasswordChange {
                    password_hash: &hash,
                    expires_at: None,
                    username_key: &ThrottleKey::username(&su.user.username()),
                },
                Some((&token::token_hash(&token), &client.session_origin())),
                notice.as_ref(),
                now,
            )
            .await?;
        if notice.is_some() {
            ctx.mail_wake.notify_one();
        }
        let kind = if form.current.is_some() {
            EventKind::PasswordChanged
        } else {
            EventKind::TemporaryPasswordChosen
        };
        ctx.audit(Event::from_addr(
            kind,
            su.user.tenant_id,
            &name,
            addr.as_deref(),
        ))
        .await?;
        let signing_key = ctx.keyring.signing_key();
        Ok(PasswordChanged {
            token,
            device_cookie: trusted_devices::reissue(&signing_key, device_cookie, &su.user, &hash),
        })
    }
}
