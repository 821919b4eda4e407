//! Sign-in: one generic failure for every wrong combination, an atomic lockout per
//! username (known or not), a slow-down per client address, and a dummy hash for unknown
//! users so timing tells nothing.

use std::time::Duration;

use secrecy::SecretString;

use super::{addr_key, user_key, Accounts, Client, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::hashing::{dummy_hash, Admitted, HashError};
use crate::auth::token;
use crate::clock::Timestamp;
use crate::domain::{password, Username};
use crate::store::AddressFailure;

/// A new session for the browser.
#[derive(Debug)]
pub struct SignedIn {
    /// The cookie value; only its hash is stored.
    pub token: String,
    /// The password was temporary: only "choose a new password" is open until it is done.
    pub must_change_password: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong password, unknown user or unknown tenant — deliberately indistinguishable.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failures for this username.
    #[error("locked")]
    Locked { retry_after: Duration },
    /// Too many failures from this client address across usernames.
    #[error("throttled")]
    Throttled { retry_after: Duration },
    /// The hashing pool is full; try again in a moment.
    #[error("busy")]
    Busy,
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

impl Accounts {
    /// One more failure of the client address `key`, across usernames, at `now`.
    fn address_failure<'k>(&self, key: &'k str, now: Timestamp) -> AddressFailure<'k> {
        AddressFailure {
            key,
            now,
            window: self.policy.lockout_window,
            limit: self.policy.address_attempts,
            lock_until: now.plus(self.policy.address_lock),
        }
    }

    /// One more failure from this client address, across usernames.
    async fn count_address_failure(&self, client: Client) -> Result<(), crate::store::StoreError> {
        if let Some(ip) = client.addr {
            let key = addr_key(ip);
            let f = self.address_failure(&key, self.now());
            self.store.throttle_count(f.key, f.now, f.window).await?;
            self.store
                .throttle_fail(f.key, f.limit, f.lock_until)
                .await?;
        }
        Ok(())
    }

    /// The guarded core of every password sign-in (tenant users and operators), run with
    /// a place on the hashing pool the caller took before any database work: the
    /// per-address slow-down, the attempt counted under `key` before any hash runs, the
    /// bounded hashing pool, and a dummy hash when there is no `stored` hash, so an unknown
    /// name costs the same as a wrong password. `Ok` only for a stored hash that matches;
    /// the caller clears `key` once it accepts the sign-in.
    pub(crate) async fn check_password_guarded<'e>(
        &self,
        admitted: Admitted,
        key: &str,
        stored: Option<&str>,
        password: &SecretString,
        client: Client,
        event: &(dyn Fn(EventKind) -> Event<'e> + Sync),
    ) -> Result<(), SignInError> {
        let now = self.now();
        if let Some(ip) = client.addr {
            if let Some(until) = self.store.throttle_locked_until(&addr_key(ip)).await? {
                if until > now {
                    self.audit(event(EventKind::SignInThrottled)).await?;
                    return Err(SignInError::Throttled {
                        retry_after: now.until(until),
                    });
                }
            }
        }

        // Count the attempt before any password is checked: concurrent guesses each take
        // a number, and only the first `lockout_attempts` get as far as the hash.
        let state = self
            .store
            .throttle_count(key, now, self.policy.lockout_window)
            .await?;
        let locked_until = state.locked_until.filter(|until| *until > now);
        if locked_until.is_some() || state.attempts > i64::from(self.policy.lockout_attempts) {
            let retry_after = locked_until
                .map(|until| now.until(until))
                .unwrap_or(self.policy.lockout_duration);
            self.audit(event(EventKind::SignInLocked)).await?;
            // Hammering a locked name still counts against the address.
            self.count_address_failure(client).await?;
            return Err(SignInError::Locked { retry_after });
        }

        let candidate = SecretString::from(password::normalize(
            secrecy::ExposeSecret::expose_secret(password),
        ));
        let matches = admitted
            .verify(stored.unwrap_or_else(|| dummy_hash()).to_owned(), candidate)
            .await
            .map_err(|e: HashError| SignInError::Unexpected(e.into()))?;
        if matches && stored.is_some() {
            return Ok(());
        }
        let now = self.now();
        let address = client.addr.map(addr_key);
        self.store
            .record_failed_check(
                key,
                self.policy.lockout_attempts,
                now.plus(self.policy.lockout_duration),
                address
                    .as_deref()
                    .map(|k| self.address_failure(k, now))
                    .as_ref(),
                |locked| {
                    Event {
                        detail: locked.map(|_| "this failure locked the name"),
                        ..event(EventKind::SignInFailed)
                    }
                    .row(now)
                },
            )
            .await?;
        Err(SignInError::InvalidCredentials)
    }

    #[tracing::instrument(skip(self, password), fields(username = %username))]
    pub async fn sign_in(
        &self,
        username: &Username,
        password: SecretString,
        client: Client,
    ) -> Result<SignedIn, SignInError> {
        // A place on the hashing pool first: when it is full the answer is "busy" at once,
        // before any database work, so a flood is shed for almost nothing.
        let admitted = self.hasher.admit().map_err(|_| SignInError::Busy)?;
        let name = username.to_string();
        let addr = client.addr_string();
        let user = self
            .store
            .user_by_username(username.tenant().as_str(), username.extension().as_str())
            .await?;
        let tenant = user.as_ref().map(|u| u.tenant_id);
        let event = |kind| Event {
            tenant,
            actor: Some(name.as_str()),
            client_addr: addr.as_deref(),
            ..Event::new(kind)
        };

        let key = user_key(&name);
        self.check_password_guarded(
            admitted,
            &key,
            user.as_ref().map(|u| u.password_hash.as_str()),
            &password,
            client,
            &event,
        )
        .await?;
        let Some(user) = user else {
            return Err(SignInError::InvalidCredentials);
        };

        let now = self.now();
        if user.password_temporary && user.password_expires_at.is_some_and(|at| at <= now) {
            // The attempt stays counted: an expired password is no proof of anything.
            self.audit(Event {
                detail: Some("temporary password expired"),
                ..event(EventKind::SignInFailed)
            })
            .await?;
            return Err(SignInError::TemporaryExpired);
        }
        self.store.throttle_clear(&key).await?;
        let token = token::random_token();
        self.store
            .insert_session(&token::token_hash(&token), user.id, now)
            .await?;
        self.store.record_sign_in(user.id, now).await?;
        self.audit(event(EventKind::SignInOk)).await?;
        Ok(SignedIn {
            token,
            must_change_password: user.password_temporary,
        })
    }
}
