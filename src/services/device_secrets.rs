//! Device secrets at rest: the SIP secret phones register with and the voicemail PIN. The
//! PBX needs both in clear, so they are sealed under the data key (tenant and extension
//! as associated data: a value copied onto another user's row does not open), never
//! hashed. Key rotation re-seals them all; it is the one public action here.

use rand::rngs::OsRng;
use rand::Rng;

use super::{service, Context, Unexpected};
use crate::auth::keyring::key_id;
use crate::domain::Extension;
use crate::store::{SealedSecrets, TenantId, UserRecord};

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

fn unsealable() -> Unexpected {
    Unexpected::invariant(
        "a stored device secret does not open with the data key and its row (moved or tampered)",
    )
}

/// A user's SIP secret and PIN in clear, for checks such as "the portal password must not
/// contain them" and for revealing. Never shown or logged by anything but the Phone tab.
pub(crate) struct Opened {
    pub sip_secret: Option<String>,
    pub pin: Option<String>,
}

pub(crate) fn seal_sip_secret(
    ctx: &Context,
    tenant: TenantId,
    extension: &Extension,
    secret: &str,
) -> Vec<u8> {
    seal_sip_secret_with(&ctx.keyring, tenant, extension.as_str(), secret)
}

/// Seals a SIP secret to its tenant and extension with `keyring` (for the PBX link,
/// which holds the keyring but not the whole context).
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

pub(crate) fn seal_pin(ctx: &Context, user: &UserRecord, pin: &str) -> Vec<u8> {
    ctx.keyring.seal(
        PIN_PURPOSE,
        &aad(user.tenant_id, user.extension.as_str()),
        pin.as_bytes(),
    )
}

fn open_one(
    ctx: &Context,
    purpose: &str,
    user: &UserRecord,
    sealed: &[u8],
) -> Result<String, Unexpected> {
    let clear = ctx
        .keyring
        .open(
            purpose,
            &aad(user.tenant_id, user.extension.as_str()),
            sealed,
        )
        .map_err(|_| unsealable())?;
    String::from_utf8(clear).map_err(|_| unsealable())
}

pub(crate) async fn open(ctx: &Context, user: &UserRecord) -> Result<Opened, Unexpected> {
    let (sip, pin) = ctx.store.device_secrets(user.id).await?;
    Ok(Opened {
        sip_secret: sip
            .map(|s| open_one(ctx, SIP_PURPOSE, user, &s))
            .transpose()?,
        pin: pin
            .map(|p| open_one(ctx, PIN_PURPOSE, user, &p))
            .transpose()?,
    })
}

/// The SIP secret, creating one for a user who has none yet.
pub(crate) async fn sip_secret(ctx: &Context, user: &UserRecord) -> Result<String, Unexpected> {
    if let Some(secret) = open(ctx, user).await?.sip_secret {
        return Ok(secret);
    }
    let fresh = generate_sip_secret();
    ctx.store
        .set_sip_secret_if_missing(
            user.id,
            &seal_sip_secret(ctx, user.tenant_id, &user.extension, &fresh),
        )
        .await?;
    open(ctx, user)
        .await?
        .sip_secret
        .ok_or_else(|| Unexpected::invariant("SIP secret missing after creation"))
}

service!(
    /// Key rotation over every sealed device secret.
    DeviceSecrets
);

impl DeviceSecrets {
    /// A user's SIP secret and voicemail PIN in clear (for the PBX link and for checks
    /// of what is stored). Never shown or logged.
    pub async fn open(
        &self,
        user: &UserRecord,
    ) -> Result<(Option<String>, Option<String>), Unexpected> {
        let opened = open(&self.ctx, user).await?;
        Ok((opened.sip_secret, opened.pin))
    }

    /// Re-encrypts every user's device secrets under the current data key. Returns how many
    /// users changed and the keys still holding values that could not be changed.
    pub async fn reseal_everything(&self) -> Result<(u64, Vec<u32>), Unexpected> {
        let ctx = &self.ctx;
        let current = ctx.keyring.current_id();
        let mut changed = 0;
        let mut in_use = Vec::new();
        let mut after = 0;
        loop {
            let batch = ctx.store.walk_users::<SealedSecrets>(after, 500).await?;
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
                        if ctx
                            .store
                            .reseal_secrets(row, sip.as_deref(), pin.as_deref())
                            .await?
                        {
                            changed += 1;
                        } else {
                            // Changed meanwhile (a regenerate); it was sealed under the
                            // current key then, or will be on the next run.
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
        let keyring = &self.ctx.keyring;
        let aad = aad(TenantId(row.tenant_id), &row.extension);
        let reseal = |purpose: &str, v: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, Unexpected> {
            match v {
                None => Ok(None),
                Some(sealed) => {
                    let clear = keyring
                        .open(purpose, &aad, sealed)
                        .map_err(|_| unsealable())?;
                    Ok(Some(keyring.seal(purpose, &aad, &clear)))
                }
            }
        };
        Ok((
            reseal(SIP_PURPOSE, &row.sip_secret)?,
            reseal(PIN_PURPOSE, &row.voicemail_pin)?,
        ))
    }
}
