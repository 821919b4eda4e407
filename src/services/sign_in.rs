//! Signing in to the customer portal: one generic failure for every wrong combination, the
//! guard's lockout per username (known or not) and slow-down per address, a dummy hash
//! for unknown users so timing tells nothing, and a temporary password past its 72 hours
//! refused.

use secrecy::SecretString;

use super::guard::Refusal;
use super::trusted_devices::TrustedDevice;
use super::two_step::{self, Account, AfterPassword, PendingStep};
use super::{service, store_error_is_unexpected, trusted_devices, Client, Context, Unexpected};
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

/// Where a right password leads.
#[derive(Debug)]
pub enum SignInStep {
    /// Signed in: a new session.
    SignedIn(SignedIn),
    /// No session yet: the account has a second factor, and the second step is next
    /// (`GET /login/two-step`).
    SecondStep(PendingStep),
    /// No session yet: the rules demand a second factor this account does not have, and
    /// setting one up is next (`GET /login/two-step/setup`).
    Enrol(PendingStep),
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

store_error_is_unexpected!(SignInError);

service!(
    /// Signing in to the customer portal.
    SignIn
);

impl SignIn {
    /// Signs in, counting the outcome for the metrics.
    #[tracing::instrument(skip(self, password, device_cookie), fields(username = %username))]
    pub async fn sign_in(
        &self,
        username: &Username,
        password: SecretString,
        client: Client,
        device_cookie: Option<&str>,
    ) -> Result<SignInStep, SignInError> {
        let result = async {
            let ctx = &self.ctx;
            // A browser that signed in to this account before carries a device cookie: its
            // attempts are counted for it alone, and it waits before strangers for hashing.
            let signing_key = ctx.keyring.signing_key();
            let claim = trusted_devices::claimed(&signing_key, device_cookie, username);
            // A place on the hashing pool first, before any database work: beyond the queue's
            // bound the answer is "busy" at once, so a flood is shed for almost nothing.
            let admitted = ctx
                .hasher
                .admit(client.source(), claim.is_some())
                .await
                .map_err(|_| SignInError::Refused(Refusal::Busy))?;
            let name = username.to_string();
            let addr = client.addr_string();
            let user = ctx.store.user_by_username(username).await?;
            // Counted apart only when the cookie was issued to this account under its
            // current password.
            let device = claim.zip(user.as_ref()).and_then(|(c, u)| c.trusted_for(u));
            let tenant = user.as_ref().map(|u| u.tenant_id);
            let event = |kind| Event {
                tenant,
                actor: Some(name.as_str()),
                client_addr: addr.as_deref(),
                ..Event::new(kind)
            };

            let guard = ctx.guard();
            let key = guard.sign_in_key(username, device.as_ref());
            let user = guard
                .check_sign_in(admitted, &key, user, &password, client, &event)
                .await?
                .map_err(SignInError::Refused)?;

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
            // A second factor, had or demanded, comes before any session: the password's
            // attempt is given back, but the name stays counted until the second step is done.
            let account = Account::User(user);
            match two_step::after_password(ctx, &account).await? {
                AfterPassword::SignIn => {}
                AfterPassword::SecondStep => {
                    guard.password_ok_step_pending(&key).await?;
                    let step = two_step::begin_pending(ctx, &account, false).await?;
                    return Ok(SignInStep::SecondStep(step));
                }
                AfterPassword::Enrol => {
                    guard.password_ok_step_pending(&key).await?;
                    let step = two_step::begin_pending(ctx, &account, true).await?;
                    return Ok(SignInStep::Enrol(step));
                }
            }
            let Account::User(user) = account else {
                return Err(
                    Unexpected::invariant("a tenant sign-in became another account").into(),
                );
            };
            guard.unlock(&key).await?;
            let signed_in = open_session(ctx, &user, device.as_ref(), client, None).await?;
            Ok(SignInStep::SignedIn(signed_in))
        }
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
}

/// Opens a session for `user`, whose sign-in is complete (password, and the second step
/// where there is one): a fresh token, the last sign-in time, the audit event (with
/// `detail` saying how the second step was done) and the device cookie.
pub(crate) async fn open_session(
    ctx: &Context,
    user: &crate::store::UserRecord,
    device: Option<&TrustedDevice>,
    client: Client,
    detail: Option<&str>,
) -> Result<SignedIn, Unexpected> {
    let now = ctx.now();
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
    let name = user.username().to_string();
    let addr = client.addr_string();
    ctx.audit(Event {
        detail,
        ..Event::from_addr(
            EventKind::SignInOk,
            user.tenant_id,
            name.as_str(),
            addr.as_deref(),
        )
    })
    .await?;
    let signing_key = ctx.keyring.signing_key();
    Ok(SignedIn {
        token,
        must_change_password: user.password_temporary,
        device_cookie: trusted_devices::issue(&signing_key, user, device),
    })
}
