//! Sessions: a 4-hour sliding idle timer (written at most once a minute), an absolute
//! cap, and sign-out that ends the session on the server.

use std::time::Duration;

use secrecy::SecretString;

use super::{user_key, Accounts, Client, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::token;
use crate::clock::Timestamp;
use crate::domain::password;
use crate::store::{SessionRecord, UserRecord};

/// Why a password typed inside a session (to change it, to reveal a secret) was not
/// accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotConfirmed {
    Wrong,
    Locked { retry_after: Duration },
    Busy,
}

/// What [`Accounts::liveness`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Ended,
    Live { slide: bool },
}

/// A live session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session: SessionRecord,
    pub user: UserRecord,
}

impl Accounts {
    /// The session behind a cookie value, if it is live; slides its idle timer.
    pub async fn authenticate(&self, cookie: &str) -> Result<Option<SessionUser>, Unexpected> {
        if !token::looks_like_token(cookie) {
            return Ok(None);
        }
        let now = self.now();
        let Some((session, user)) = self
            .store
            .session_with_user(&token::token_hash(cookie), now)
            .await?
        else {
            return Ok(None);
        };
        match self.liveness(session.created_at, session.last_seen_at, now) {
            Liveness::Ended => {
                self.store.delete_session(session.id).await?;
                return Ok(None);
            }
            Liveness::Live { slide: true } => {
                if !self.store.touch_session(session.id, now).await? {
                    return Ok(None);
                }
            }
            Liveness::Live { slide: false } => {}
        }
        Ok(Some(SessionUser { session, user }))
    }

    /// Whether a session (tenant or operator) created and last seen at these times is
    /// still live at `now` — inside both the idle time and the cap — and whether its idle
    /// timer is due to be written again.
    pub(crate) fn liveness(
        &self,
        created_at: Timestamp,
        last_seen_at: Timestamp,
        now: Timestamp,
    ) -> Liveness {
        let idle_end = last_seen_at.plus(self.policy.session_idle);
        let hard_end = created_at.plus(self.policy.session_max);
        if now >= idle_end || now >= hard_end {
            Liveness::Ended
        } else {
            Liveness::Live {
                slide: last_seen_at.until(now) >= self.policy.session_touch_every,
            }
        }
    }

    /// Ends this session on the server.
    pub async fn sign_out(&self, su: &SessionUser, client: Client) -> Result<(), Unexpected> {
        self.store.delete_session(su.session.id).await?;
        let name = su.user.username();
        let addr = client.addr_string();
        self.audit(Event {
            tenant: Some(su.user.tenant_id),
            actor: Some(&name),
            client_addr: addr.as_deref(),
            ..Event::new(EventKind::SignOut)
        })
        .await
    }
}

impl Accounts {
    /// Checks the user's password inside a session. It counts toward the same lockout as
    /// a sign-in, so a borrowed session cannot be used to guess the password; `why` goes to
    /// the audit log on a failure.
    pub(crate) async fn confirm_password(
        &self,
        user: &UserRecord,
        typed: &str,
        client: Client,
        why: &'static str,
    ) -> Result<Result<(), NotConfirmed>, Unexpected> {
        let now = self.now();
        let name = user.username();
        let key = user_key(&name);
        let state = self
            .store
            .throttle_count(&key, now, self.policy.lockout_window)
            .await?;
        let locked_until = state.locked_until.filter(|u| *u > now);
        if locked_until.is_some() || state.attempts > i64::from(self.policy.lockout_attempts) {
            return Ok(Err(NotConfirmed::Locked {
                retry_after: locked_until
                    .map(|u| now.until(u))
                    .unwrap_or(self.policy.lockout_duration),
            }));
        }
        let candidate = SecretString::from(password::normalize(typed));
        let Ok(ok) = self
            .hasher
            .verify(user.password_hash.clone(), candidate)
            .await
        else {
            self.store.throttle_release(&key).await?;
            return Ok(Err(NotConfirmed::Busy));
        };
        if ok {
            self.store.throttle_clear(&key).await?;
            return Ok(Ok(()));
        }
        let now = self.now();
        let addr = client.addr_string();
        let event = Event {
            tenant: Some(user.tenant_id),
            actor: Some(&name),
            client_addr: addr.as_deref(),
            detail: Some(why),
            ..Event::new(EventKind::SignInFailed)
        };
        self.store
            .record_failed_check(
                &key,
                self.policy.lockout_attempts,
                now.plus(self.policy.lockout_duration),
                None,
                |_| event.row(now),
            )
            .await?;
        Ok(Err(NotConfirmed::Wrong))
    }
}
