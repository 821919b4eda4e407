//! Sessions: a sliding idle timer (written at most once a minute), an absolute cap, and
//! sign-out that ends the session on the server. The one liveness rule serves tenant and
//! operator sessions alike.

use super::{service, Client, Context, Policy, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::token;
use crate::clock::Timestamp;
use crate::store::{SessionId, SessionRecord, UserRecord};

/// What [`Policy::liveness`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    Ended,
    Live { slide: bool },
}

impl Policy {
    /// Whether a session (tenant or operator) created and last seen at these times is
    /// still live at `now` — inside both the idle time and the cap — and whether its idle
    /// timer is due to be written again.
    fn liveness(&self, created_at: Timestamp, last_seen_at: Timestamp, now: Timestamp) -> Liveness {
        let idle_end = last_seen_at.plus(self.session_idle);
        let hard_end = created_at.plus(self.session_max);
        if now >= idle_end || now >= hard_end {
            Liveness::Ended
        } else {
            Liveness::Live {
                slide: last_seen_at.until(now) >= self.session_touch_every,
            }
        }
    }
}

/// Which table a session lives in, for [`keep_alive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionOf {
    User,
    Operator,
}

/// The one liveness rule, applied to a session read at `now`: past the idle time or the
/// cap it is deleted and not live; when its idle timer is due it slides, and a session
/// ended meanwhile elsewhere (nothing to touch) is not live either.
pub(crate) async fn keep_alive(
    ctx: &Context,
    of: SessionOf,
    id: SessionId,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    now: Timestamp,
) -> Result<bool, Unexpected> {
    match ctx.policy.liveness(created_at, last_seen_at, now) {
        Liveness::Ended => {
            match of {
                SessionOf::User => ctx.store.delete_session(id).await?,
                SessionOf::Operator => ctx.store.delete_operator_session(id).await?,
            }
            Ok(false)
        }
        Liveness::Live { slide: true } => Ok(match of {
            SessionOf::User => ctx.store.touch_session(id, now).await?,
            SessionOf::Operator => ctx.store.touch_operator_session(id, now).await?,
        }),
        Liveness::Live { slide: false } => Ok(true),
    }
}

/// A live session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session: SessionRecord,
    pub user: UserRecord,
}

service!(
    /// Tenant users' sessions.
    Sessions
);

impl Sessions {
    /// The session behind a cookie value, if it is live; slides its idle timer.
    pub async fn authenticate(&self, cookie: &str) -> Result<Option<SessionUser>, Unexpected> {
        if !token::looks_like_token(cookie) {
            return Ok(None);
        }
        let ctx = &self.ctx;
        let now = ctx.now();
        let Some((session, user)) = ctx
            .store
            .session_with_user(&token::token_hash(cookie), now)
            .await?
        else {
            return Ok(None);
        };
        // A suspended tenant's sessions were ended; none may outlive it in a cache.
        if user.tenant_suspended {
            return Ok(None);
        }
        let (id, created, seen) = (session.id, session.created_at, session.last_seen_at);
        if !keep_alive(ctx, SessionOf::User, id, created, seen, now).await? {
            return Ok(None);
        }
        Ok(Some(SessionUser { session, user }))
    }

    /// Ends this session on the server.
    pub async fn sign_out(&self, su: &SessionUser, client: Client) -> Result<(), Unexpected> {
        self.ctx.store.delete_session(su.session.id).await?;
        let name = su.user.username().to_string();
        let addr = client.addr_string();
        self.ctx
            .audit(Event {
                tenant: Some(su.user.tenant_id),
                actor: Some(&name),
                client_addr: addr.as_deref(),
                ..Event::new(EventKind::SignOut)
            })
            .await
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn database_answers(&self) -> bool {
        match self.ctx.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "health check: the database does not answer");
                false
            }
        }
    }
}
