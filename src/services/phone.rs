//! The Phone tab: the extension's SIP credentials (the secret revealed only with a
//! password proven in the last 15 minutes, audited), a new SIP secret on request, and the
//! voicemail PIN. They are separate from the portal password: changing one never touches
//! the other. An admin's actions on someone else's phone are in `tenant_admin`, through
//! the same functions.

use super::device_secrets::{self, generate_sip_secret, seal_sip_secret};
use super::guard::Refusal;
use super::pbx::aor;
use super::sessions::{prove_recent_sign_in, Reconfirm};
use super::{service, store_error_is_unexpected, Client, Context, SessionUser, Unexpected};
use crate::audit::{Actor, EventKind};
use crate::domain::{Pin, PinProblem};
use crate::store::UserRecord;

/// What the Phone tab shows (never the secret itself).
#[derive(Debug, Clone)]
pub struct PhoneView {
    pub sip_username: String,
    pub sip_domain: String,
    pub has_pin: bool,
    /// The password was proven recently enough to reveal the SIP secret without asking.
    pub reveal_ready: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    /// Reveal asked without a recent sign-in; the page asks for the password.
    #[error("password needed")]
    PasswordNeeded,
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(RevealError);

/// A PIN the policy or the confirmation refused, every problem at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinRejected {
    pub problem: Option<PinProblem>,
    pub mismatch: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("invalid PIN")]
    Rejected(PinRejected),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

service!(
    /// The signed-in user's own phone credentials.
    Phone
);

impl Phone {
    pub async fn view(&self, su: &SessionUser) -> Result<PhoneView, Unexpected> {
        if !su.user.has_sip_secret {
            device_secrets::sip_secret(&self.ctx, &su.user).await?;
        }
        Ok(PhoneView {
            sip_username: su.user.extension.to_string(),
            sip_domain: su.user.sip_domain.clone(),
            has_pin: su.user.has_pin,
            reveal_ready: su.signed_in_recently(self.ctx.now()),
        })
    }

    /// The SIP secret in clear — only with a password proven in the last 15 minutes
    /// (given now as `password`, or at sign-in). Audited.
    pub async fn reveal_sip_secret(
        &self,
        su: &SessionUser,
        password: Option<&str>,
        client: Client,
    ) -> Result<String, RevealError> {
        let ctx = &self.ctx;
        let why = "wrong password when confirming identity";
        match prove_recent_sign_in(ctx, su, password, client, why).await? {
            Ok(()) => {}
            Err(Reconfirm::PasswordNeeded) => return Err(RevealError::PasswordNeeded),
            Err(Reconfirm::Refused(r)) => return Err(RevealError::Refused(r)),
        }
        let secret = device_secrets::sip_secret(ctx, &su.user).await?;
        ctx.audit_user(EventKind::SipSecretRevealed, &su.actor(&client), &su.user)
            .await?;
        Ok(secret)
    }

    /// A new random SIP secret; every phone must be reprogrammed. Portal sessions stay.
    pub async fn regenerate_sip_secret(
        &self,
        su: &SessionUser,
        client: &Client,
    ) -> Result<(), Unexpected> {
        regenerate_for(&self.ctx, &su.user, &su.actor(client)).await
    }

    pub async fn change_pin(
        &self,
        su: &SessionUser,
        new: &str,
        confirm: &str,
        client: &Client,
    ) -> Result<(), PinError> {
        set_pin_for(&self.ctx, &su.user, new, confirm, &su.actor(client)).await
    }
}

/// A new SIP secret for `user`, by `actor`; audited.
pub(crate) async fn regenerate_for(
    ctx: &Context,
    user: &UserRecord,
    actor: &Actor,
) -> Result<(), Unexpected> {
    let fresh = generate_sip_secret();
    // The SIP server is told to forget the old secret once this commits (PBX link).
    ctx.store
        .replace_sip_secret(
            user.id,
            &seal_sip_secret(ctx, user.tenant_id, &user.extension, &fresh),
            &aor(&user.extension, &user.sip_domain),
            ctx.now(),
        )
        .await?;
    ctx.audit_user(EventKind::SipSecretRegenerated, actor, user)
        .await
}

/// Sets `user`'s voicemail PIN under the PIN policy, by `actor`; audited.
pub(crate) async fn set_pin_for(
    ctx: &Context,
    user: &UserRecord,
    new: &str,
    confirm: &str,
    actor: &Actor,
) -> Result<(), PinError> {
    let parsed = Pin::parse(new, &user.extension);
    let mismatch = new.trim() != confirm.trim();
    let pin = match parsed {
        Ok(p) if !mismatch => p,
        Ok(_) => {
            return Err(PinError::Rejected(PinRejected {
                problem: None,
                mismatch,
            }))
        }
        Err(problem) => {
            return Err(PinError::Rejected(PinRejected {
                problem: Some(problem),
                mismatch,
            }))
        }
    };
    let sealed = device_secrets::seal_pin(ctx, user, pin.expose());
    ctx.store
        .set_voicemail_pin(user.id, &sealed)
        .await
        .map_err(Unexpected::from)?;
    ctx.audit_user(EventKind::PinChanged, actor, user).await?;
    Ok(())
}
