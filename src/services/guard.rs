//! The guard owns every limit: the lockout rule (5 failures in 15 minutes lock a name for
//! 15 minutes, counted atomically before any hash), the per-address slow-down against
//! password spraying, the operator lockout, caller-verification tries, the recovery mail
//! limits and wrong-email guesses on a reset link. Its keys are [`ThrottleKey`]s, written
//! once in the store's throttle module. Services ask the guard; none counts on its own.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::trusted_devices::TrustedDevice;
use super::{Client, Context, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::hashing::{dummy_hash, Admitted};
use crate::clock::Timestamp;
use crate::domain::{password, Username};
use crate::store::{AddressFailure, Burst, OperatorRecord, ThrottleKey, ThrottleState, UserRecord};

/// Reset links mailed per account per [`RECOVERY_WINDOW`].
pub const RESET_MAILS_PER_ACCOUNT: i64 = 3;
/// Usernames reminders mailed per address per [`RECOVERY_WINDOW`].
pub const USERNAMES_MAILS_PER_ADDRESS: i64 = 3;
/// Recovery requests per client address per [`RECOVERY_WINDOW`].
pub const RECOVERY_REQUESTS_PER_ADDRESS: i64 = 10;
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Guesses on a reset page (a wrong "your email address", or a new password that is the
/// current one) before the link is spent.
pub const WRONG_EMAILS_PER_LINK: i64 = 5;
/// Tries at a caller's answer per admin, across operators, before a pause of…
pub const CALLER_TRIES: i64 = 3;
/// …an hour without tries.
pub const CALLER_TRIES_WINDOW: Duration = Duration::from_secs(3600);

/// Why a password (at sign-in, or typed again inside a session) was not accepted: the
/// one refusal every service shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong password, unknown user or unknown tenant — deliberately indistinguishable.
    WrongPassword,
    /// Too many failures for this name.
    Locked { retry_after: Duration },
    /// Too many failures from this client address across names.
    Throttled { retry_after: Duration },
    /// The hashing pool is full; try again in a moment.
    Busy,
}

/// The end of a lock or a window, `until`, while it is still ahead of `now`: one that has
/// passed is none.
pub(crate) fn still_ahead(until: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
    until.filter(|until| *until > now)
}

/// The guard over one context; see the module doc.
pub(crate) struct Guard<'a> {
    ctx: &'a Context,
}

/// The window a count is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The tries of the last so long.
    Sliding(Duration),
    /// So long from the first try of the current window (which starts again after it),
    /// for the mail limits: requests trickled in from elsewhere cannot keep a user's limit
    /// spent for ever.
    Fixed(Duration),
}

/// What a counted try found: within the limit, or over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Within the limit; `attempts` counts this one.
    Within {
        attempts: i64,
    },
    Over,
}

impl Counted {
    /// Where a counter that has just counted a try stands against `limit`.
    fn against(state: ThrottleState, limit: i64) -> Counted {
        if state.attempts > limit {
            Counted::Over
        } else {
            Counted::Within {
                attempts: state.attempts,
            }
        }
    }
}

/// An account that signs in with a password: a customer's user or an operator.
pub(crate) trait PasswordHolder {
    /// The stored argon2id hash.
    fn password_hash(&self) -> &str;
}

impl PasswordHolder for UserRecord {
    fn password_hash(&self) -> &str {
        &self.password_hash
    }
}

impl PasswordHolder for OperatorRecord {
    fn password_hash(&self) -> &str {
        &self.password_hash
    }
}

/// Whether a counter's `state` refuses an attempt at `now`: `Err` with how long is left
/// of its lock, or a whole `lock` when the attempt is over `limit`.
fn refusal(
    state: &ThrottleState,
    now: Timestamp,
    limit: u32,
    lock: Duration,
) -> Result<(), Duration> {
    let locked_until = still_ahead(state.locked_until, now);
    if locked_until.is_some() || state.attempts > i64::from(limit) {
        return Err(locked_until.map(|until| now.until(until)).unwrap_or(lock));
    }
    Ok(())
}

impl<'a> Guard<'a> {
    pub(crate) fn new(ctx: &'a Context) -> Self {
        Guard { ctx }
    }

    fn address_failure<'k>(&self, key: &'k ThrottleKey, now: Timestamp) -> AddressFailure<'k> {
        let policy = &self.ctx.policy;
        AddressFailure {
            key,
            limit: policy.address_attempts,
            lock_until: now.plus(policy.address_lock),
        }
    }

    /// Locks the client's address once its counted attempts reach the limit (a refused
    /// attempt on a locked name, which never reached the hash, still counts).
    async fn address_failed(&self, address: &ThrottleKey) -> Result<(), Unexpected> {
        let f = self.address_failure(address, self.ctx.now());
        self.ctx
            .store
            .throttle_fail(f.key, f.limit, f.lock_until)
            .await?;
        Ok(())
    }

    /// The key a sign-in as `username` is counted under: its own when the browser is a
    /// trusted device for it (a valid device cookie), so failures from elsewhere cannot
    /// lock the user out of their own browser; the username's otherwise.
    pub(crate) fn sign_in_key(
        &self,
        username: &Username,
        device: Option<&TrustedDevice>,
    ) -> ThrottleKey {
        match device {
            Some(d) => ThrottleKey::device(username, d.id()),
            None => ThrottleKey::username(username),
        }
    }

    /// Counts one attempt under `key` before any password is checked: concurrent guesses
    /// each take a number, and only the first `lockout_attempts` get as far as the hash.
    /// `Err` with how long is left when the name is locked (or this attempt is over).
    async fn count_attempt(&self, key: &ThrottleKey) -> Result<Result<(), Duration>, Unexpected> {
        let now = self.ctx.now();
        let policy = &self.ctx.policy;
        let state = self
            .ctx
            .store
            .throttle_count(key, now, policy.lockout_window)
            .await?;
        Ok(self.name_refusal(&state, now))
    }

    /// Whether a name's counted `state` refuses the attempt: `Err` with how long is left
    /// of its lock, or of a whole lockout when this attempt is over the limit.
    fn name_refusal(&self, state: &ThrottleState, now: Timestamp) -> Result<(), Duration> {
        let policy = &self.ctx.policy;
        refusal(state, now, policy.lockout_attempts, policy.lockout_duration)
    }

    /// The same for a client address, slowed down for `address_lock`.
    fn address_refusal(&self, state: &ThrottleState, now: Timestamp) -> Result<(), Duration> {
        let policy = &self.ctx.policy;
        refusal(state, now, policy.address_attempts, policy.address_lock)
    }

    /// The guarded core of every password sign-in (tenant users and operators), run with
    /// a place on the hashing pool the caller took before any database work: the
    /// per-address slow-down, the attempt counted under `key` before any hash runs, and a
    /// dummy hash when there is no `account`, so an unknown name costs the same as a
    /// wrong password. `Ok` with the account only when its stored hash matches; the caller
    /// [`unlock`]s `key` once it accepts the sign-in.
    ///
    /// A trusted browser's attempt (a `key` of a valid device cookie for this account) is
    /// counted under that key alone and left out of the per-address slow-down: failures of
    /// others on its network cannot keep the user out of their own browser, and its
    /// attempts, which can only be for the one account its cookie names, are no password
    /// spraying.
    ///
    /// [`unlock`]: Guard::unlock
    pub(crate) async fn check_sign_in<'e, A: PasswordHolder>(
        &self,
        admitted: Admitted,
        key: &ThrottleKey,
        account: Option<A>,
        password: &SecretString,
        client: Client,
        event: &(dyn Fn(EventKind) -> Event<'e> + Sync),
    ) -> Result<Result<A, Refusal>, Unexpected> {
        let source = client.source();
        // A trusted browser is left out of the per-address slow-down (see above).
        let address = client
            .addr
            .filter(|_| !key.is_trusted_browser())
            .map(ThrottleKey::address);
        // The address's attempt and the name's, counted before any hash runs, atomically:
        // concurrent guesses each take a number, and only the first of each limit get as
        // far as the hash. A refused address leaves the name uncounted.
        let now = self.ctx.now();
        let window = self.ctx.policy.lockout_window;
        let counted = self
            .ctx
            .store
            .count_sign_in(
                address.as_ref().map(|k| (k, window)),
                (key, window),
                now,
                |a| self.address_refusal(a, now),
            )
            .await?;
        let name = match counted {
            Ok(name) => name,
            Err(retry_after) => {
                self.ctx.hasher.note(&source, false);
                self.audit_refusal(event(EventKind::SignInThrottled), Burst::PerAddress)
                    .await?;
                return Ok(Err(Refusal::Throttled { retry_after }));
            }
        };
        if let Err(retry_after) = self.name_refusal(&name, now) {
            self.ctx.hasher.note(&source, false);
            self.audit_refusal(event(EventKind::SignInLocked), Burst::PerName)
                .await?;
            // Hammering a locked name still counts against the address.
            if let Some(address) = &address {
                self.address_failed(address).await?;
            }
            return Ok(Err(Refusal::Locked { retry_after }));
        }
        let candidate = SecretString::from(password::normalize(
            secrecy::ExposeSecret::expose_secret(password),
        ));
        let stored = account.as_ref().map(PasswordHolder::password_hash);
        let matches = admitted
            .verify(stored.unwrap_or_else(|| dummy_hash()).to_owned(), candidate)
            .await?;
        // The queue serves sources whose checks keep failing after everyone else.
        self.ctx.hasher.note(&source, matches && stored.is_some());
        if let Some(account) = account.filter(|_| matches) {
            // Only failures slow an address down (an office behind one address signs in
            // all morning): a sign-in that succeeded gives its attempt back.
            if let Some(address) = &address {
                self.ctx.store.throttle_release(address).await?;
            }
            return Ok(Ok(account));
        }
        self.record_failure(key, address.as_ref(), |locked| Event {
            detail: locked.map(|_| "this failure locked the name"),
            ..event(EventKind::SignInFailed)
        })
        .await?;
        Ok(Err(Refusal::WrongPassword))
    }

    /// Audits a refused attempt (or an API read) as part of its burst: the events of one
    /// kind from one source (for one name, or for any name when the address itself is
    /// refused) within the lockout window are one event with a count and the time of the
    /// last, so a flood cannot write the audit log without limit.
    pub(crate) async fn audit_refusal(
        &self,
        event: Event<'_>,
        burst: Burst,
    ) -> Result<(), Unexpected> {
        let now = self.ctx.now();
        self.ctx
            .store
            .insert_audit_burst(
                &event.row(now),
                burst,
                now.minus(self.ctx.policy.lockout_window),
            )
            .await?;
        Ok(())
    }

    /// Checks a signed-in user's password again (to change it, to reveal a secret). It is
    /// counted as a sign-in from a trusted browser is, under the session's own key: 5
    /// wrong in 15 minutes lock the check in this session, so a borrowed session cannot be
    /// used to guess the password, while failures from elsewhere (a locked username)
    /// cannot stop the user changing their password in their own session. `why` goes to
    /// the audit log on a failure.
    pub(crate) async fn confirm_password(
        &self,
        su: &SessionUser,
        typed: &str,
        client: Client,
        why: &'static str,
    ) -> Result<Result<(), Refusal>, Unexpected> {
        let user = &su.user;
        let name = user.username();
        let actor = name.to_string();
        let addr = client.addr_string();
        self.confirm_in_session(
            &ThrottleKey::session(&name, su.session.id),
            &user.password_hash,
            typed,
            Event {
                detail: Some(why),
                ..Event::from_addr(
                    EventKind::SignInFailed,
                    user.tenant_id,
                    &actor,
                    addr.as_deref(),
                )
            },
        )
        .await
    }

    /// A password check inside a session, under `key`: counted before the hash (a locked
    /// key refuses at once), the right password clears the key, a wrong one is a failure
    /// audited as `failed`.
    async fn confirm_in_session(
        &self,
        key: &ThrottleKey,
        stored: &str,
        typed: &str,
        failed: Event<'_>,
    ) -> Result<Result<(), Refusal>, Unexpected> {
        if let Err(retry_after) = self.count_attempt(key).await? {
            return Ok(Err(Refusal::Locked { retry_after }));
        }
        let candidate = SecretString::from(password::normalize(typed));
        let verified = self
            .ctx
            .hasher
            .verify(stored.to_owned(), candidate.expose_secret());
        let Ok(ok) = verified.await else {
            self.ctx.store.throttle_release(key).await?;
            return Ok(Err(Refusal::Busy));
        };
        if ok {
            self.unlock(key).await?;
            return Ok(Ok(()));
        }
        self.record_failure(key, None, |_| failed).await?;
        Ok(Err(Refusal::WrongPassword))
    }

    /// The second step of a sign-in (a code from an authenticator app or a recovery
    /// code), under the same `key` as its password: counted before `check` runs, so a
    /// locked name refuses even the right code; a wrong code is a failure like a wrong
    /// password (the same lockout, audited by `event`); the right one clears the key, as
    /// an accepted sign-in does.
    pub(crate) async fn check_code<'e, F>(
        &self,
        key: &ThrottleKey,
        check: F,
        event: &(dyn Fn(EventKind) -> Event<'e> + Sync),
    ) -> Result<Result<(), Refusal>, Unexpected>
    where
        F: std::future::Future<Output = Result<bool, Unexpected>>,
    {
        if let Err(retry_after) = self.count_attempt(key).await? {
            self.audit_refusal(event(EventKind::SignInLocked), Burst::PerName)
                .await?;
            return Ok(Err(Refusal::Locked { retry_after }));
        }
        if check.await? {
            self.unlock(key).await?;
            return Ok(Ok(()));
        }
        self.record_failure(key, None, |locked| Event {
            detail: Some(match locked {
                Some(_) => "wrong code; this failure locked the name",
                None => "wrong code",
            }),
            ..event(EventKind::TwoStepFailed)
        })
        .await?;
        Ok(Err(Refusal::WrongPassword))
    }

    /// A right password whose sign-in now waits for its second step: its attempt is given
    /// back (the name is not cleared — only a completed sign-in clears it), so wrong codes
    /// count exactly as wrong passwords would and typing the password again never resets
    /// them.
    pub(crate) async fn password_ok_step_pending(
        &self,
        key: &ThrottleKey,
    ) -> Result<(), Unexpected> {
        Ok(self.ctx.store.throttle_release(key).await?)
    }

    /// Checks an operator's password inside their console session (to make new recovery
    /// codes), counted toward the operator's sign-in lockout like [`confirm_password`].
    ///
    /// [`confirm_password`]: Guard::confirm_password
    pub(crate) async fn confirm_operator_password(
        &self,
        operator: &crate::store::OperatorRecord,
        typed: &str,
        client: Client,
        why: &'static str,
    ) -> Result<Result<(), Refusal>, Unexpected> {
        let actor = crate::audit::operator_actor(&operator.name);
        let addr = client.addr_string();
        self.confirm_in_session(
            &ThrottleKey::operator(&operator.name),
            &operator.password_hash,
            typed,
            Event {
                detail: Some(why),
                ..Event::by(EventKind::SignInFailed, &actor, addr.as_deref())
            },
        )
        .await
    }

    /// The one place a failed password check is counted: under `key` (locking it once its
    /// window holds the limit), against the client's address when given, and audited —
    /// all in one transaction.
    async fn record_failure<'e>(
        &self,
        key: &ThrottleKey,
        address: Option<&ThrottleKey>,
        event: impl FnOnce(Option<Timestamp>) -> Event<'e>,
    ) -> Result<(), Unexpected> {
        let now = self.ctx.now();
        let policy = &self.ctx.policy;
        let locked = self
            .ctx
            .store
            .record_failed_check(
                key,
                policy.lockout_attempts,
                now.plus(policy.lockout_duration),
                address.map(|k| self.address_failure(k, now)).as_ref(),
                |locked| event(locked).row(now),
            )
            .await?;
        if locked.is_some() {
            crate::telemetry::lockout();
        }
        Ok(())
    }

    /// Until when `key` is locked, if it is now.
    pub(crate) async fn locked_until(
        &self,
        key: &ThrottleKey,
    ) -> Result<Option<Timestamp>, Unexpected> {
        let now = self.ctx.now();
        let until = self.ctx.store.throttle_locked_until(key).await?;
        Ok(still_ahead(until, now))
    }

    /// How many of the user's own browsers (those with a device cookie for `key`, a
    /// username's key) are locked now, by too many wrong passwords typed in them.
    pub(crate) async fn browsers_locked(&self, key: &ThrottleKey) -> Result<i64, Unexpected> {
        let now = self.ctx.now();
        Ok(self.ctx.store.throttle_browsers_locked(key, now).await?)
    }

    /// Clears every counted failure and lock of `key` (a sign-in accepted, an unlock).
    /// Returns whether there was anything to clear.
    pub(crate) async fn unlock(&self, key: &ThrottleKey) -> Result<bool, Unexpected> {
        Ok(self.ctx.store.throttle_clear(key).await?)
    }

    /// Counts one try under `key` against `limit` per `window`, atomically, so concurrent
    /// requests cannot slip past it.
    pub(crate) async fn count(
        &self,
        key: &ThrottleKey,
        limit: i64,
        window: Window,
    ) -> Result<Counted, Unexpected> {
        let (store, now) = (&self.ctx.store, self.ctx.now());
        let state = match window {
            Window::Sliding(d) => store.throttle_count(key, now, d).await?,
            Window::Fixed(d) => store.throttle_count_fixed(key, now, d).await?,
        };
        Ok(Counted::against(state, limit))
    }

    /// Gives back a try that was counted but never checked (the hashing pool was full).
    pub(crate) async fn give_back(&self, key: &ThrottleKey) -> Result<(), Unexpected> {
        Ok(self.ctx.store.throttle_release(key).await?)
    }

    /// How many tries `key` holds in the `window` up to now, without counting one.
    pub(crate) async fn tries_used(
        &self,
        key: &ThrottleKey,
        window: Duration,
    ) -> Result<i64, Unexpected> {
        let after = self.ctx.now().minus(window);
        Ok(self.ctx.store.throttle_attempts(key, after).await?)
    }

    /// Counts one JSON API request of a token against the per-minute limit; `Err` with how
    /// long until the next minute starts when it is over.
    pub(crate) async fn api_request(
        &self,
        token_id: i64,
    ) -> Result<Result<(), Duration>, Unexpected> {
        let now = self.ctx.now();
        let minute = now.0.div_euclid(60);
        let key = ThrottleKey::api_token(token_id, minute);
        let limit = i64::from(self.ctx.policy.api_requests_per_minute);
        match self
            .count(&key, limit, Window::Sliding(Duration::from_secs(60)))
            .await?
        {
            Counted::Within { .. } => Ok(Ok(())),
            Counted::Over => {
                let left = 60 - now.0.rem_euclid(60);
                Ok(Err(Duration::from_secs(left.unsigned_abs().max(1))))
            }
        }
    }

    /// Whether the client address has asked for too much recovery mail lately.
    pub(crate) async fn recovery_limited(&self, client: Client) -> Result<bool, Unexpected> {
        let Some(ip) = client.addr else {
            return Ok(false);
        };
        let key = ThrottleKey::recovery_address(ip);
        Ok(self
            .count(
                &key,
                RECOVERY_REQUESTS_PER_ADDRESS,
                Window::Sliding(RECOVERY_WINDOW),
            )
            .await?
            == Counted::Over)
    }
}
