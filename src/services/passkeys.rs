//! Passkeys (WebAuthn, through webauthn-rs): a user adds, names, renames and removes
//! them in Settings, and a sign-in can prove one. The relying party is the public URL:
//! its host is the relying party id, its origin the only origin accepted. Each ceremony's
//! server half is kept in the database between its two requests, for
//! [`CEREMONY_LIFETIME`] on the injected clock, and used at most once.
//!
//! The browser's JSON goes in and out as text; the web layer never sees a WebAuthn type.

use std::time::Duration;

use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::guard::Refusal;
use super::sessions::{prove_recent_sign_in, Reconfirm};
use super::two_step::{has_second_factor, two_step_notice, RecoveryCodes, TwoStep};
use super::{service, store_error_is_unexpected, Client, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::clock::Timestamp;
use crate::domain::PasskeyName;
use crate::mail::compose::TwoStepNotice;
use crate::store::{
    CeremonyKind, FactorOwner, NewPasskey, PasskeyId, StoreError, UserId, UserRecord,
};

/// How long a challenge may be answered: the authenticator's own timeout (WebAuthn's
/// recommended 5 minutes), which is also how long a pending second step lasts.
pub const CEREMONY_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// A passkey as the Passkeys page lists it.
#[derive(Debug, Clone)]
pub struct PasskeySummary {
    pub id: PasskeyId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// Why adding a passkey could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The public URL has no domain name (an IP address), which WebAuthn cannot use as
    /// a relying party id.
    #[error("passkeys need a public URL with a host name")]
    Unavailable,
    /// Not signed in within the last 15 minutes, and the password was not (rightly) given.
    #[error("password needed: {0:?}")]
    Reconfirm(Reconfirm),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(StartError);

/// Why a sign-in with a passkey could not start.
#[derive(Debug, thiserror::Error)]
pub enum SignInStartError {
    /// See [`StartError::Unavailable`].
    #[error("passkeys need a public URL with a host name")]
    Unavailable,
    /// The user has no passkey.
    #[error("no passkey")]
    NoPasskey,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(SignInStartError);

/// Why a browser's answer to a challenge was not accepted (nothing was stored or used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRefusal {
    /// No challenge is pending for this user, or it ran out: start again.
    Expired,
    /// The answer is not WebAuthn JSON at all.
    Unreadable,
    /// The answer does not prove a passkey for this challenge, this site and this user
    /// (wrong signature, origin, counter, or a credential that is not theirs).
    Rejected,
    /// Registration only: this authenticator's credential is already stored.
    AlreadyRegistered,
    /// The public URL cannot be a relying party (see [`StartError::Unavailable`]).
    Unavailable,
}

/// Why adding a passkey failed.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("refused: {0:?}")]
    Refused(PasskeyRefusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(FinishError);

/// Why renaming a passkey failed.
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    /// Not one of this user's passkeys (another user's id looks the same as none).
    #[error("no such passkey")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(RenameError);

/// Why removing a passkey failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// Not one of this user's passkeys (another user's id looks the same as none).
    #[error("no such passkey")]
    NotFound,
    /// The password typed to confirm a removal was wrong or missing, the name is locked,
    /// or the hashing pool is busy.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(RemoveError);

/// A pending registration: the state webauthn-rs checks the answer against, and the
/// WebAuthn user handle it was started with.
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingRegistration {
    user_handle: Uuid,
    state: PasskeyRegistration,
}

service!(
    /// Users' passkeys.
    Passkeys
);

impl Passkeys {
    /// The relying party of this portal, or `None` when the public URL has no host name.
    fn relying_party(&self) -> Option<Webauthn> {
        let url = &self.ctx.public_url;
        let rp_id = url.domain()?;
        let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
        WebauthnBuilder::new(rp_id, &origin)
            .ok()?
            .timeout(CEREMONY_LIFETIME)
            .build()
            .ok()
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, su: &SessionUser) -> Result<Vec<PasskeySummary>, Unexpected> {
        Ok(self
            .ctx
            .store
            .passkeys_of(su.user.id)
            .await?
            .into_iter()
            .map(|p| PasskeySummary {
                id: p.id,
                name: p.name,
                created_at: p.created_at,
                last_used_at: p.last_used_at,
            })
            .collect())
    }

    /// Whether the user has at least one passkey (so a sign-in can ask for it).
    pub async fn has_passkey(&self, user: UserId) -> Result<bool, Unexpected> {
        Ok(self.ctx.store.has_passkey(user).await?)
    }

    /// Starts adding a passkey: the options for `navigator.credentials.create()` as JSON
    /// (`{"publicKey": …}`), excluding the authenticators the user already has. Only with
    /// a sign-in in the last 15 minutes, or the `password` given now: a borrowed session
    /// cannot add a way in of its own.
    pub async fn start_registration(
        &self,
        su: &SessionUser,
        password: Option<&str>,
        client: Client,
    ) -> Result<String, StartError> {
        let rp = self.relying_party().ok_or(StartError::Unavailable)?;
        let ctx = &self.ctx;
        let why = "wrong password when adding a passkey";
        if let Err(r) = prove_recent_sign_in(ctx, su, password, client, why).await? {
            return Err(StartError::Reconfirm(r));
        }
        let user = &su.user;
        let existing = ctx.store.passkeys_of(user.id).await?;
        let user_handle = existing
            .first()
            .and_then(|p| Uuid::parse_str(&p.user_handle).ok())
            .unwrap_or_else(Uuid::new_v4);
        let exclude = existing
            .iter()
            .map(|p| from_json::<Passkey>(&p.passkey, "passkey").map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let username = user.username().to_string();
        let (challenge, state) = rp
            .start_passkey_registration(user_handle, &username, &user.name, Some(exclude))
            .map_err(|e| Unexpected(anyhow::Error::new(e).context("passkey registration")))?;
        let pending = PendingRegistration { user_handle, state };
        let kind = CeremonyKind::Register;
        Ok(self.challenge(user.id, kind, &pending, &challenge).await?)
    }

    /// Finishes adding a passkey with the browser's answer (the JSON of the
    /// `PublicKeyCredential` that `create()` made): checked against the pending
    /// challenge, which is used up whatever the outcome, then stored under `name`; audited.
    /// When it is the user's first second factor, their first recovery codes too (to show
    /// once), as when an authenticator app is added first.
    pub async fn finish_registration(
        &self,
        su: &SessionUser,
        name: &PasskeyName,
        response: &str,
        client: Client,
    ) -> Result<(PasskeyId, Option<RecoveryCodes>), FinishError> {
        let refused = |r| Err(FinishError::Refused(r));
        let Some(rp) = self.relying_party() else {
            return refused(PasskeyRefusal::Unavailable);
        };
        let ctx = &self.ctx;
        let user = &su.user;
        let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(response) else {
            return refused(PasskeyRefusal::Unreadable);
        };
        let Some(pending) = ctx
            .store
            .take_ceremony(user.id, CeremonyKind::Register, ctx.now())
            .await?
        else {
            return refused(PasskeyRefusal::Expired);
        };
        let pending: PendingRegistration = from_json(&pending, "passkey registration")?;
        let Ok(passkey) = rp.finish_passkey_registration(&answer, &pending.state) else {
            return refused(PasskeyRefusal::Rejected);
        };
        let credential_id = base64_url(passkey.cred_id().as_ref());
        let first = !has_second_factor(ctx, FactorOwner::User(user.id)).await?;
        let notice = two_step_notice(
            ctx,
            user,
            TwoStepNotice::Added {
                factor: "A passkey",
            },
        )?;
        let stored = ctx
            .store
            .insert_passkey(
                &NewPasskey {
                    user_id: user.id,
                    credential_id: &credential_id,
                    user_handle: &pending.user_handle.to_string(),
                    name: name.as_str(),
                    passkey: &to_json(&passkey)?,
                },
                notice.as_ref(),
                ctx.now(),
            )
            .await;
        let id = match stored {
            Ok(id) => id,
            Err(StoreError::Conflict) => return refused(PasskeyRefusal::AlreadyRegistered),
            Err(e) => return Err(e.into()),
        };
        if notice.is_some() {
            ctx.mail_wake.notify_one();
        }
        self.audit(user, EventKind::PasskeyAdded, name.as_str(), client)
            .await?;
        let codes = if first {
            Some(
                TwoStep::new(ctx.clone())
                    .codes_for_first_passkey(user, client)
                    .await?,
            )
        } else {
            None
        };
        Ok((id, codes))
    }

    /// Renames one of the user's passkeys; audited.
    pub async fn rename(
        &self,
        su: &SessionUser,
        id: PasskeyId,
        name: &PasskeyName,
        client: Client,
    ) -> Result<(), RenameError> {
        let user = &su.user;
        let Some(old) = self.ctx.store.passkey_of(user.id, id).await? else {
            return Err(RenameError::NotFound);
        };
        if !self
            .ctx
            .store
            .rename_passkey(user.id, id, name.as_str())
            .await?
        {
            return Err(RenameError::NotFound);
        }
        let detail = format!("{} → {}", old.name, name);
        self.audit(user, EventKind::PasskeyRenamed, &detail, client)
            .await?;
        Ok(())
    }

    /// Removes one of the user's passkeys, with their portal password confirmed (counted
    /// toward the lockout like any other password check); audited.
    pub async fn remove(
        &self,
        su: &SessionUser,
        id: PasskeyId,
        current_password: &str,
        client: Client,
    ) -> Result<(), RemoveError> {
        let user = &su.user;
        let Some(passkey) = self.ctx.store.passkey_of(user.id, id).await? else {
            return Err(RemoveError::NotFound);
        };
        if current_password.is_empty() {
            return Err(RemoveError::Refused(Refusal::WrongPassword));
        }
        self.ctx
            .guard()
            .confirm_password(
                su,
                current_password,
                client,
                "wrong password when removing a passkey",
            )
            .await?
            .map_err(RemoveError::Refused)?;
        if !self.ctx.store.delete_passkey(user.id, id).await? {
            return Err(RemoveError::NotFound);
        }
        self.audit(user, EventKind::PasskeyRemoved, &passkey.name, client)
            .await?;
        Ok(())
    }

    /// Starts a sign-in with a passkey for a user whose password was right: the options
    /// for `navigator.credentials.get()` as JSON (`{"publicKey": …}`), allowing only their
    /// passkeys. A new start replaces the user's earlier challenge.
    pub async fn start_authentication(&self, user: UserId) -> Result<String, SignInStartError> {
        let rp = self.relying_party().ok_or(SignInStartError::Unavailable)?;
        let ctx = &self.ctx;
        let passkeys = ctx
            .store
            .passkeys_of(user)
            .await?
            .iter()
            .map(|p| from_json::<Passkey>(&p.passkey, "passkey"))
            .collect::<Result<Vec<_>, _>>()?;
        if passkeys.is_empty() {
            return Err(SignInStartError::NoPasskey);
        }
        let (challenge, state) = rp
            .start_passkey_authentication(&passkeys)
            .map_err(|e| Unexpected(anyhow::Error::new(e).context("passkey sign-in")))?;
        let kind = CeremonyKind::Authenticate;
        Ok(self.challenge(user, kind, &state, &challenge).await?)
    }

    /// Keeps the server half of a ceremony (`pending`, until [`CEREMONY_LIFETIME`] has
    /// passed) and answers the browser's half, `challenge`, as JSON.
    async fn challenge(
        &self,
        user: UserId,
        kind: CeremonyKind,
        pending: &impl serde::Serialize,
        challenge: &impl serde::Serialize,
    ) -> Result<String, Unexpected> {
        let now = self.ctx.now();
        self.ctx
            .store
            .put_ceremony(
                user,
                kind,
                &to_json(pending)?,
                now.plus(CEREMONY_LIFETIME),
                now,
            )
            .await?;
        to_json(challenge)
    }

    /// Checks the browser's answer to the user's pending sign-in challenge (the JSON of the
    /// `PublicKeyCredential` that `get()` made). The challenge is used up whatever the
    /// outcome. On success the passkey's signature counter and last use are kept; either
    /// way it is audited.
    pub async fn finish_authentication(
        &self,
        user: UserId,
        response: &str,
        client: Client,
    ) -> Result<Result<(), PasskeyRefusal>, Unexpected> {
        let ctx = &self.ctx;
        let Some(record) = ctx.store.user_by_id(user).await? else {
            return Ok(Err(PasskeyRefusal::Rejected));
        };
        let outcome = self.check_assertion(user, response).await?;
        match outcome {
            Ok(name) => {
                self.audit(&record, EventKind::PasskeyUsed, &name, client)
                    .await?;
                Ok(Ok(()))
            }
            Err(refusal) => {
                let detail = match refusal {
                    PasskeyRefusal::Expired => "no pending challenge, or it ran out",
                    PasskeyRefusal::Unreadable => "the answer was not WebAuthn JSON",
                    PasskeyRefusal::Rejected => "the answer did not prove a passkey",
                    PasskeyRefusal::AlreadyRegistered | PasskeyRefusal::Unavailable => {
                        "passkeys are not available"
                    }
                };
                self.audit(&record, EventKind::PasskeyRejected, detail, client)
                    .await?;
                Ok(Err(refusal))
            }
        }
    }

    /// The checks of [`Passkeys::finish_authentication`]; the name of the passkey used.
    async fn check_assertion(
        &self,
        user: UserId,
        response: &str,
    ) -> Result<Result<String, PasskeyRefusal>, Unexpected> {
        let ctx = &self.ctx;
        let Some(rp) = self.relying_party() else {
            return Ok(Err(PasskeyRefusal::Unavailable));
        };
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(response) else {
            return Ok(Err(PasskeyRefusal::Unreadable));
        };
        let Some(state) = ctx
            .store
            .take_ceremony(user, CeremonyKind::Authenticate, ctx.now())
            .await?
        else {
            return Ok(Err(PasskeyRefusal::Expired));
        };
        let state: PasskeyAuthentication = from_json(&state, "passkey sign-in")?;
        let Ok(result) = rp.finish_passkey_authentication(&answer, &state) else {
            return Ok(Err(PasskeyRefusal::Rejected));
        };
        // The state allowed only this user's passkeys; find which one answered.
        let used = base64_url(result.cred_id().as_ref());
        let Some(stored) = ctx
            .store
            .passkeys_of(user)
            .await?
            .into_iter()
            .find(|p| p.credential_id == used)
        else {
            // Removed between the challenge and the answer.
            return Ok(Err(PasskeyRefusal::Rejected));
        };
        let mut passkey: Passkey = from_json(&stored.passkey, "passkey")?;
        let updated = match passkey.update_credential(&result) {
            Some(true) => Some(to_json(&passkey)?),
            Some(false) | None => None,
        };
        ctx.store
            .passkey_used(stored.id, updated.as_deref(), ctx.now())
            .await?;
        Ok(Ok(stored.name))
    }

    async fn audit(
        &self,
        user: &UserRecord,
        kind: EventKind,
        detail: &str,
        client: Client,
    ) -> Result<(), Unexpected> {
        let actor = user.username().to_string();
        let addr = client.addr_string();
        self.ctx
            .audit(Event {
                detail: Some(detail),
                ..Event::from_addr(kind, user.tenant_id, &actor, addr.as_deref())
            })
            .await
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Unexpected> {
    serde_json::to_string(value)
        .map_err(|e| Unexpected(anyhow::Error::new(e).context("passkey state to JSON")))
}

/// A value this service stored as JSON; one that no longer reads is reported, not used.
fn from_json<T: serde::de::DeserializeOwned>(
    stored: &str,
    what: &'static str,
) -> Result<T, Unexpected> {
    serde_json::from_str(stored).map_err(|_| Unexpected::invariant(what))
}
