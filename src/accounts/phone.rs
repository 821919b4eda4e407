//! Phone credentials: the SIP secret phones register with and the voicemail PIN. The PBX
//! needs both in clear, so they are sealed under the data key (tenant and extension as
//! associated data: a value copied onto another user's row does not open), never hashed.
//! They are separate from the portal password: changing one never touches the other.

use std::time::Duration;

use rand::rngs::OsRng;
use rand::Rng;

use super::sessions::NotConfirmed;
use super::{Accounts, Client, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::keyring::key_id;
use crate::domain::{Extension, Pin, PinProblem};
use crate::store::{SealedSecrets, StoreError, TenantId, UserRecord};

/// Revealing the SIP secret needs the password proven this recently in the session.
pub const REVEAL_WINDOW: Duration = Duration::from_secs(15 * 60);
const SIP_PURPOSE: &str = "sip-secret";
const PIN_PURPOSE: &str = "voicemail-pin";

/// 24 characters of letters and digits (about 143 bits): typeable on a desk phone's
/// keypad menus and accepted by every SIP stack.
pub fn generate_sip_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..24)
        .map(|_| char::from(ALPHABET[OsRng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn aad(tenant: TenantId, extension: &str) -> Vec<u8> {
    format!("{}:{extension}", tenant.0).into_bytes()
}

/// Seals a SIP secret to its tenant and extension (for the PBX link's backfill).
pub(crate) fn seal_sip_secret_with(
    keyring: &crate::auth::keyring::Keyring,
    tenant: TenantId,
    extension: &str,
    secret: &str,
) -> Vec<u8> {
    keyring.seal(SIP_PURPOSE, &aad(tenant, extension), secret.as_bytes())
}

/// Opens a sealed SIP secret (for the PBX link's credential lookup); `None` when it does
/// not open with the data key and its row.
pub(crate) fn open_sip_secret_with(
    keyring: &crate::auth::keyring::Keyring,
    tenant: TenantId,
    extension: &str,
    sealed: &[u8],
) -> Option<String> {
    let clear = keyring
        .open(SIP_PURPOSE, &aad(tenant, extension), sealed)
        .ok()?;
    String::from_utf8(clear).ok()
}

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
pub enum PhoneError {
    /// Reveal asked without a recent sign-in; the page asks for the password.
    #[error("password needed")]
    PasswordNeeded,
    #[error("wrong password")]
    WrongPassword,
    #[error("locked")]
    Locked { retry_after: Duration },
    #[error("busy")]
    Busy,
    #[error("invalid PIN")]
    Pin {
        problem: Option<PinProblem>,
        mismatch: bool,
    },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<StoreError> for PhoneError {
    fn from(e: StoreError) -> Self {
        PhoneError::Unexpected(e.into())
    }
}

fn unsealable() -> Unexpected {
    Unexpected(anyhow::anyhow!(
        "a stored device secret does not open with the data key and its row (moved or tampered)"
    ))
}

impl Accounts {
    pub(crate) fn seal_sip_secret(
        &self,
        tenant: TenantId,
        extension: &str,
        secret: &str,
    ) -> Vec<u8> {
        self.keyring
            .seal(SIP_PURPOSE, &aad(tenant, extension), secret.as_bytes())
    }

    fn open_secret(
        &self,
        purpose: &str,
        user: &UserRecord,
        sealed: &[u8],
    ) -> Result<String, Unexpected> {
        let clear = self
            .keyring
            .open(purpose, &aad(user.tenant_id, &user.extension), sealed)
            .map_err(|_| unsealable())?;
        String::from_utf8(clear).map_err(|_| unsealable())
    }

    /// The user's SIP secret and PIN in clear, for checks such as "the portal password
    /// must not contain them". Never shown or logged.
    pub async fn device_secrets(
        &self,
        user: &UserRecord,
    ) -> Result<(Option<String>, Option<String>), Unexpected> {
        let (sip, pin) = self.store.device_secrets(user.id).await?;
        let sip = sip
            .map(|s| self.open_secret(SIP_PURPOSE, user, &s))
            .transpose()?;
        let pin = pin
            .map(|p| self.open_secret(PIN_PURPOSE, user, &p))
            .transpose()?;
        Ok((sip, pin))
    }

    /// The SIP secret, creating one for a user who has none yet.
    async fn sip_secret(&self, user: &UserRecord) -> Result<String, Unexpected> {
        if let (Some(secret), _) = self.device_secrets(user).await? {
            return Ok(secret);
        }
        let fresh = generate_sip_secret();
        self.store
            .set_sip_secret_if_missing(
                user.id,
                &self.seal_sip_secret(user.tenant_id, &user.extension, &fresh),
            )
            .await?;
        // Another request may have won the race; read back what is stored.
        self.device_secrets(user)
            .await?
            .0
            .ok_or_else(|| Unexpected(anyhow::anyhow!("SIP secret missing after creation")))
    }

    pub async fn phone_view(&self, su: &SessionUser) -> Result<PhoneView, Unexpected> {
        // The session lookup said whether secrets are stored; the page never opens them.
        // A user who has no SIP secret yet gets one now.
        if !su.user.has_sip_secret {
            self.sip_secret(&su.user).await?;
        }
        Ok(PhoneView {
            sip_username: su.user.extension.clone(),
            sip_domain: su.user.sip_domain.clone(),
            has_pin: su.user.has_pin,
            reveal_ready: su.session.authenticated_at.until(self.now()) < REVEAL_WINDOW,
        })
    }

    /// The SIP secret in clear — only with a password proven in the last 15 minutes
    /// (given now as `password`, or at sign-in). Audited.
    pub async fn reveal_sip_secret(
        &self,
        su: &SessionUser,
        password: Option<&str>,
        client: Client,
    ) -> Result<String, PhoneError> {
        let recent = su.session.authenticated_at.until(self.now()) < REVEAL_WINDOW;
        if !recent {
            match password {
                None | Some("") => return Err(PhoneError::PasswordNeeded),
                Some(p) => self.reauthenticate(su, p, client).await?,
            }
        }
        let secret = self.sip_secret(&su.user).await?;
        let name = su.user.username();
        let addr = client.addr_string();
        self.audit(Event {
            tenant: Some(su.user.tenant_id),
            actor: Some(&name),
            subject: Some(&name),
            client_addr: addr.as_deref(),
            ..Event::new(EventKind::SipSecretRevealed)
        })
        .await?;
        Ok(secret)
    }

    /// Proves the password again within a session and marks the session as recently
    /// authenticated.
    async fn reauthenticate(
        &self,
        su: &SessionUser,
        typed: &str,
        client: Client,
    ) -> Result<(), PhoneError> {
        match self
            .confirm_password(
                &su.user,
                typed,
                client,
                "wrong password when confirming identity",
            )
            .await?
        {
            Ok(()) => {}
            Err(NotConfirmed::Wrong) => return Err(PhoneError::WrongPassword),
            Err(NotConfirmed::Locked { retry_after }) => {
                return Err(PhoneError::Locked { retry_after })
            }
            Err(NotConfirmed::Busy) => return Err(PhoneError::Busy),
        }
        self.store
            .session_reauthenticated(su.session.id, self.now())
            .await?;
        Ok(())
    }

    /// A new random SIP secret; every phone must be reprogrammed. Portal sessions stay.
    async fn regenerate_for(&self, user: &UserRecord, actor: &str) -> Result<(), Unexpected> {
        let fresh = generate_sip_secret();
        // The SIP server is told to forget the old secret once this commits (PBX link).
        self.store
            .replace_sip_secret(
                user.id,
                &self.seal_sip_secret(user.tenant_id, &user.extension, &fresh),
                &crate::services::pbx::aor(&user.extension, &user.sip_domain),
                self.now(),
            )
            .await?;
        let subject = user.username();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(actor),
            subject: Some(&subject),
            ..Event::new(EventKind::SipSecretRegenerated)
        })
        .await
    }

    pub async fn regenerate_sip_secret(&self, su: &SessionUser) -> Result<(), Unexpected> {
        self.regenerate_for(&su.user, &su.user.username()).await
    }

    pub async fn admin_regenerate_sip_secret(
        &self,
        actor: &SessionUser,
        extension: &str,
    ) -> Result<(), super::AdminError> {
        let user = self.admin_target(actor, extension).await?;
        Ok(self.regenerate_for(&user, &actor.user.username()).await?)
    }

    async fn set_pin_for(
        &self,
        user: &UserRecord,
        new: &str,
        confirm: &str,
        actor: &str,
    ) -> Result<(), PhoneError> {
        let extension = Extension::parse(&user.extension)
            .map_err(|e| Unexpected(anyhow::anyhow!("stored extension: {e}")))?;
        let parsed = Pin::parse(new, &extension);
        let mismatch = new.trim() != confirm.trim();
        let pin = match parsed {
            Ok(p) if !mismatch => p,
            Ok(_) => {
                return Err(PhoneError::Pin {
                    problem: None,
                    mismatch,
                })
            }
            Err(problem) => {
                return Err(PhoneError::Pin {
                    problem: Some(problem),
                    mismatch,
                })
            }
        };
        let sealed = self.keyring.seal(
            PIN_PURPOSE,
            &aad(user.tenant_id, &user.extension),
            pin.expose().as_bytes(),
        );
        self.store.set_voicemail_pin(user.id, &sealed).await?;
        let subject = user.username();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(actor),
            subject: Some(&subject),
            ..Event::new(EventKind::PinChanged)
        })
        .await?;
        Ok(())
    }

    pub async fn change_pin(
        &self,
        su: &SessionUser,
        new: &str,
        confirm: &str,
    ) -> Result<(), PhoneError> {
        self.set_pin_for(&su.user, new, confirm, &su.user.username())
            .await
    }

    pub async fn admin_set_pin(
        &self,
        actor: &SessionUser,
        extension: &str,
        new: &str,
        confirm: &str,
    ) -> Result<(), PhoneError> {
        let user = self
            .admin_target(actor, extension)
            .await
            .map_err(|e| match e {
                super::AdminError::Unexpected(u) => PhoneError::Unexpected(u),
                other => PhoneError::Unexpected(Unexpected(anyhow::anyhow!("{other}"))),
            })?;
        self.set_pin_for(&user, new, confirm, &actor.user.username())
            .await
    }

    /// Re-encrypts every user's device secrets under the current data key. Returns how many
    /// users changed and the keys still holding values that could not be changed.
    pub async fn reseal_everything(&self) -> Result<(u64, Vec<u32>), Unexpected> {
        let current = self.keyring.current_id();
        let mut changed = 0;
        let mut in_use = Vec::new();
        let mut after = 0;
        loop {
            let batch = self.store.sealed_secrets_after(after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = last.user_id.0;
            for row in &batch {
                let stale =
                    |v: &Option<Vec<u8>>| v.as_ref().is_some_and(|v| key_id(v) != Some(current));
                if !stale(&row.sip_secret) && !stale(&row.voicemail_pin) {
                    continue;
                }
                match self.reseal_row(row) {
                    Ok((sip, pin)) => {
                        if self
                            .store
                            .reseal_secrets(row, sip.as_deref(), pin.as_deref())
                            .await?
                        {
                            changed += 1;
                        } else {
                            in_use.extend(row.sip_secret.as_deref().and_then(key_id));
                        }
                    }
                    Err(e) => {
                        tracing::error!(user = row.user_id.0, error = %e, "cannot re-encrypt a user's secrets");
                        in_use.extend(row.sip_secret.as_deref().and_then(key_id));
                        in_use.extend(row.voicemail_pin.as_deref().and_then(key_id));
                    }
                }
            }
        }
        Ok((changed, in_use))
    }

    #[allow(clippy::type_complexity)]
    fn reseal_row(
        &self,
        row: &SealedSecrets,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), Unexpected> {
        let aad = aad(TenantId(row.tenant_id), &row.extension);
        let reseal = |purpose: &str, v: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, Unexpected> {
            match v {
                None => Ok(None),
                Some(sealed) => {
                    let clear = self
                        .keyring
                        .open(purpose, &aad, sealed)
                        .map_err(|_| unsealable())?;
                    Ok(Some(self.keyring.seal(purpose, &aad, &clear)))
                }
            }
        };
        Ok((
            reseal(SIP_PURPOSE, &row.sip_secret)?,
            reseal(PIN_PURPOSE, &row.voicemail_pin)?,
        ))
    }
}
