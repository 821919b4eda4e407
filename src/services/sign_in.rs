//! Signing in to the customer portal: one generic failure for every wrong combination, the
//! guard's lockout per username (known or not) and slow-down per address, a dummy hash
//! for unknown users so timing tells nothing, and a temporary password past its 72 hours
//! refused.

use secrecy::SecretString;

use super::guard::Refusal;
use super::{service, trusted_devices, Client, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::token;
use crate::domain::Username;
use crate::telemetry::{self, SignInOutcome};

/// A new session for the browser.
#[derive(Debug)]
pub struct SignedIn {
    /// The cookie value; only its hash is stored.
    pub token: String,
    /// The password was temporary: only "choose a new password" is open until it is done.
    pub must_change_password: bool,
    /// The device cookie value that makes this browser trusted for the account.
    pub device_cookie: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong password, locked, slowed down or busy.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// The right password, but the user's tenant is suspended by the provider.
    #[error("tenant suspended")]
    Suspended,
    /// The right temporary password, but past its 72 hours.
    #[error("temporary password expired")]
    TemporaryExpired,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<crate::store::StoreError> for SignInError {
    fn from(e: crate::store::StoreError) -> Self {
        SignInError::Unexpected(e.into())
    }
}

service!(
    /// Signing in to the customer portal.
    SignIn
);

impl SignIn {
    /// Signs in, counting the outcome for the metrics.
    pub async fn sign_in(
        &self,
        username: &Username,
        password: SecretString,
        client: Client,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        let result = self
            .attempt(username, password, client, device_cookie)
            .await;
        telemetry::sign_in(match &result {
            Ok(_) => SignInOutcome::Ok,
            Err(SignInError::Refused(Refusal::WrongPassword)) => SignInOutcome::WrongPassword,
            Err(SignInError::Refused(Refusal::Locked { .. })) => SignInOutcome::Locked,
            Err(SignInError::Refused(Refusal::Throttled { .. })) => SignInOutcome::SlowedDown,
            Err(SignInError::Refused(Refusal::Busy)) => SignInOutcome::Busy,
            Err(SignInError::TemporaryExpired) => SignInOutcome::TemporaryExpired,
            Err(SignInError::Suspended) => SignInOutcome::Suspended,
            Err(SignInError::Unexpected(_)) => SignInOutcome::Error,
        });
        result
    }

    #[tracing::instrument(skip(self, password, device_cookie), fields(username = %username))]
    async fn attempt(
        &self,
        username: &Username,
        password: SecretString,
        client: Client,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        let ctx = &self.ctx;
        // A browser that signed in to this account before carries a device cookie: its
        // attempts are counted for it alone, and it waits before strangers for hashing.
        let signing_key = ctx.keyring.signing_key();
        let device = trusted_devices::recognise(&signing_key, device_cookie, username);
        // A place on the hashing pool first, before any database work: beyond the queue's
        // bound the answer is "busy" at once, so a flood is shed for almost nothing.
        let admitted = ctx
            .hasher
            .admit(client.source(), device.is_some())
            .await
            .map_err(|_| SignInError::Refused(Refusal::Busy))?;
        let name = username.to_string();
        let addr = client.addr_string();
        let user = ctx.store.user_by_username(username).await?;
        let tenant = user.as_ref().map(|u| u.tenant_id);
        let event = |kind| Event {
            tenant,
            actor: Some(name.as_str()),
            client_addr: addr.as_deref(),
            ..Event::new(kind)
        };

        let guard = ctx.guard();
        let key = guard.sign_in_key(username, device.as_ref());
        guard
            .check_sign_in(
                admitted,
                &key,
                user.as_ref().map(|u| u.password_hash.as_str()),
                &password,
                client,
                &event,
            )
            .await?
            .map_err(SignInError::Refused)?;
        let Some(user) = user else {
            return Err(SignInError::Refused(Refusal::WrongPassword));
        };

        if user.tenant_suspended {
            // Told only to someone who knows the password.
            ctx.audit(Event {
                detail: Some("the tenant is suspended"),
                ..event(EventKind::SignInFailed)
            })
            .await?;
            return Err(SignInError::Suspended);
        }
        let now = ctx.now();
        if user.password_temporary && user.password_expires_at.is_some_and(|at| at <= now) {
            // The attempt stays counted: an expired password is no proof of anything.
            ctx.audit(Event {
                detail: Some("temporary password expired"),
                ..event(EventKind::SignInFailed)
            })
            .await?;
            return Err(SignInError::TemporaryExpired);
        }
        guard.unlock(&key).await?;
        let token = token::random_token();
        ctx.store
            .insert_session_from(
                &token::token_hash(&token),
                user.id,
                &client.session_origin(),
                now,
            )
            .await?;
        ctx.store.record_sign_in(user.id, now).await?;
        ctx.audit(event(EventKind::SignInOk)).await?;
        Ok(SignedIn {
            token,
            must_change_password: user.password_temporary,
            device_cookie: trusted_devices::issue(&signing_key, username, device.as_ref()),
        })
    }
}
