//! The Phone tab's softphone: short-lived SIP credentials in the form Kamailio's
//! `auth_ephemeral` module checks (RFC-draft "TURN REST API" style): the username is
//! `EXPIRY:EXT@DOMAIN`, the password `base64(HMAC-SHA1(secret, username))`. The
//! long-lived SIP secret never reaches the browser, and a credential never outlives the
//! session it was minted for. The first credential of a sign-in is audited; refreshes
//! are not.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha1::Sha1;

use super::pbx::aor;
use super::{service, Client, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::clock::Timestamp;

/// A credential lives at most this long; the softphone asks for a new one before then.
pub const CREDENTIAL_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// What the softphone registers with. The password is derived, short-lived, and good for
/// this one extension only.
#[derive(Clone, serde::Serialize)]
pub struct SoftphoneCredential {
    /// The SIP-over-WebSocket address.
    pub ws_url: String,
    /// `sip:EXT@DOMAIN`.
    pub uri: String,
    /// `EXPIRY:EXT@DOMAIN`.
    pub username: String,
    pub password: String,
    /// Unix seconds; Kamailio refuses the credential from then on.
    pub expires_at: i64,
    /// Seconds from now until `expires_at`.
    pub expires_in: u64,
}

impl std::fmt::Debug for SoftphoneCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftphoneCredential")
            .field("uri", &self.uri)
            .field("username", &self.username)
            .field("password", &"REDACTED")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The provider has not configured the softphone.
    #[error("the softphone is not configured")]
    NotConfigured,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

service!(
    /// The signed-in user's softphone.
    Softphone
);

impl Softphone {
    /// Whether the provider configured the softphone (its WebSocket URL, when it did).
    pub fn ws_url(&self) -> Option<&url::Url> {
        self.ctx.softphone.as_ref().map(|s| &s.ws_url)
    }

    /// A fresh credential for the session's own extension, expiring no later than the
    /// session could. The first one of a sign-in is audited.
    pub async fn credential(
        &self,
        su: &SessionUser,
        client: Client,
    ) -> Result<SoftphoneCredential, CredentialError> {
        let ctx = &self.ctx;
        let setting = ctx
            .softphone
            .as_ref()
            .ok_or(CredentialError::NotConfigured)?;
        let now = ctx.now();
        let expires_at = expiry(
            now,
            su.session.created_at,
            su.session.last_seen_at,
            &ctx.policy,
        );
        let aor = aor(&su.user.extension, &su.user.sip_domain);
        let username = ephemeral_username(expires_at, &aor);
        let password = ephemeral_password(setting.secret.expose_secret().as_bytes(), &username);

        let name = su.user.username().to_string();
        let addr = client.addr_string();
        let detail = format!("session {}", su.session.id.0);
        let event = Event {
            detail: Some(&detail),
            ..Event::from_addr(
                EventKind::SoftphoneCredential,
                su.user.tenant_id,
                &name,
                addr.as_deref(),
            )
        };
        ctx.store
            .insert_audit_once_since(&event.row(now), su.session.created_at)
            .await
            .map_err(Unexpected::from)?;

        Ok(SoftphoneCredential {
            ws_url: setting.ws_url.to_string(),
            uri: format!("sip:{aor}"),
            username,
            password,
            expires_at: expires_at.0,
            expires_in: now.until(expires_at).as_secs(),
        })
    }
}

/// The credential's end: its own lifetime, cut short by the session's idle end (as last
/// written) and its absolute cap.
fn expiry(
    now: Timestamp,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    policy: &super::Policy,
) -> Timestamp {
    now.plus(CREDENTIAL_LIFETIME)
        .min(last_seen_at.plus(policy.session_idle))
        .min(created_at.plus(policy.session_max))
}

/// `auth_ephemeral`'s `username_format` 1: `EXPIRY:USER`, with the domain in USER so the
/// credential is good for one tenant's extension only.
pub fn ephemeral_username(expires_at: Timestamp, aor: &str) -> String {
    format!("{}:{aor}", expires_at.0)
}

/// `auth_ephemeral`'s password (`sha_algorithm` 1): base64 of HMAC-SHA1 over the username.
pub fn ephemeral_password(secret: &[u8], username: &str) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::services::Policy;

    fn policy(idle: u64, max: u64) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::with_data_dir(dir.path()).unwrap();
        s.session_idle = Duration::from_secs(idle);
        s.session_max = Duration::from_secs(max);
        Policy::from_settings(&s)
    }

    /// Values computed the way Kamailio's auth_ephemeral does (`autheph_www`: HMAC-SHA1
    /// keyed with the `secret` modparam over the whole username, then base64), checked
    /// independently with `openssl`:
    /// `printf %s '1800003600:201@wickedsprockets.sip.localhost' |
    ///  openssl dgst -sha1 -hmac 'kamailio-shared-secret-0123456789' -binary | base64`.
    #[test]
    fn the_password_is_what_auth_ephemeral_computes() {
        let username = ephemeral_username(
            Timestamp(1_800_003_600),
            "201@wickedsprockets.sip.localhost",
        );
        assert_eq!(username, "1800003600:201@wickedsprockets.sip.localhost");
        assert_eq!(
            ephemeral_password(b"kamailio-shared-secret-0123456789", &username),
            "MOV0hKluIgxKYT+mD9Qc4oq9Xis="
        );
    }

    /// RFC 2202 test case 2 for HMAC-SHA1, in base64.
    #[test]
    fn the_hmac_is_sha1_per_rfc_2202() {
        assert_eq!(
            ephemeral_password(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn a_credential_lives_an_hour_unless_the_session_ends_sooner() {
        let now = Timestamp(1_800_000_000);
        let roomy = policy(4 * 3600, 12 * 3600);
        assert_eq!(
            expiry(now, now, now, &roomy),
            now.plus(CREDENTIAL_LIFETIME),
            "a fresh session: the credential's own hour"
        );
        let near_cap = now.minus(Duration::from_secs(12 * 3600 - 600));
        assert_eq!(
            expiry(now, near_cap, now, &roomy),
            now.plus(Duration::from_secs(600)),
            "ten minutes left of the session's cap"
        );
        let short_idle = policy(900, 12 * 3600);
        let seen = now.minus(Duration::from_secs(60));
        assert_eq!(
            expiry(now, seen, seen, &short_idle),
            seen.plus(Duration::from_secs(900)),
            "the idle end as last written"
        );
    }
}
