//! Sessions: a 4-hour sliding idle timer (written at most once a minute), an absolute
//! cap, and sign-out that ends the session on the server.

use super::{Accounts, Client, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::token;
use crate::store::{SessionRecord, UserRecord};

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
        let Some((session, user)) = self
            .store
            .session_with_user(&token::token_hash(cookie))
            .await?
        else {
            return Ok(None);
        };
        let now = self.now();
        let idle_end = session.last_seen_at.plus(self.policy.session_idle);
        let hard_end = session.created_at.plus(self.policy.session_max);
        if now >= idle_end || now >= hard_end {
            self.store.delete_session(session.id).await?;
            return Ok(None);
        }
        if session.last_seen_at.until(now) >= self.policy.session_touch_every {
            self.store.touch_session(session.id, now).await?;
        }
        Ok(Some(SessionUser { session, user }))
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
