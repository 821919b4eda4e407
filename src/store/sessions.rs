//! User sessions: opened (with where they were opened), read with their user (through the
//! session cache), slid, marked re-authenticated, listed for "Your sessions" in Settings,
//! ended one or all at once, and purged past their limits. Every write forgets what it made
//! wrong in the cache, here and on the other nodes.

use super::session_cache::{Change, Lookup};
use super::users::{with_user, USER_COLUMNS};
use super::{new_id, record, SessionId, SessionRecord, Store, StoreResult, UserId, UserRecord};
use crate::clock::Timestamp;

/// Where a session was opened, kept with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOrigin {
    /// A few words about the browser ("Firefox on Linux"); never the User-Agent itself.
    pub device: String,
    pub client_addr: Option<String>,
}

/// One session of a user, for the list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionListRow {
    pub id: SessionId,
    pub device: Option<String>,
    pub client_addr: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

impl Store {
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<SessionId> {
        let mut conn = self.pool.acquire().await?;
        insert_session(&mut conn, token_hash, user, None, now).await
    }
    /// Opens a session, remembering where it was opened.
    pub async fn insert_session_from(
        &self,
        token_hash: &[u8],
        user: UserId,
        origin: &SessionOrigin,
        now: Timestamp,
    ) -> StoreResult<SessionId> {
        let mut conn = self.pool.acquire().await?;
        insert_session(&mut conn, token_hash, user, Some(origin), now).await
    }

    /// Every stored session of the user, most recently seen first (some may be past their
    /// limits and not yet purged: the caller judges liveness).
    pub async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<SessionListRow>> {
        self.all(
            sqlx::query(
                "SELECT id, device, client_addr, created_at, last_seen_at FROM sessions \
                 WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC",
            )
            .bind(user),
            record,
        )
        .await
    }

    /// Ends session `id` if it belongs to `user`; false when it does not (another user's,
    /// or gone already), and then nothing changed.
    pub async fn end_user_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let query = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2");
        let done = self.affected_one(query.bind(id).bind(user)).await?;
        Ok(self.changed_if(done, Change::Session(id)).await)
    }

    /// Ends every session of `user` except `keep`; how many ended.
    pub async fn end_other_sessions(&self, user: UserId, keep: SessionId) -> StoreResult<u64> {
        let query = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2");
        // The user's cached sessions are read again; the kept one is simply re-read.
        self.affected_forgetting(query.bind(user).bind(keep), Change::User(user))
            .await
    }

    /// The session with this token hash and its user: from the session cache while its
    /// entry is fresh at `now`, else in one round trip (and then kept).
    pub async fn session_with_user(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let epoch = match self.sessions.get(token_hash, now) {
            Lookup::Hit(found) => return Ok(Some(*found)),
            Lookup::Miss { epoch } => epoch,
        };
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.id AS id, s.created_at AS created_at, \
             s.last_seen_at AS last_seen_at, s.authenticated_at AS authenticated_at \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id \
             WHERE s.token_hash = $1"
        );
        let found = self
            .optional(sqlx::query(&sql).bind(token_hash), with_user)
            .await?;
        if let Some((session, user)) = &found {
            self.sessions.put(token_hash, epoch, session, user, now);
        }
        Ok(found)
    }

    /// Slides the idle timer. False when the session no longer exists (ended elsewhere).
    pub async fn touch_session(&self, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        if self.slide_idle_timer("sessions", id, now).await? {
            self.sessions.touched(id, now);
            Ok(true)
        } else {
            self.changed(Change::Session(id)).await;
            Ok(false)
        }
    }

    /// Slides the idle timer of session `id` of `table` (`sessions`, `operator_sessions`).
    /// False when the session no longer exists.
    pub(super) async fn slide_idle_timer(
        &self,
        table: &str,
        id: SessionId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let sql = format!("UPDATE {table} SET last_seen_at = $1 WHERE id = $2");
        self.affected_one(sqlx::query(&sql).bind(now).bind(id))
            .await
    }

    /// The password was proven again in this session (for sensitive actions).
    pub async fn session_reauthenticated(&self, id: SessionId, now: Timestamp) -> StoreResult<()> {
        self.run_forgetting(
            sqlx::query("UPDATE sessions SET authenticated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id),
            Change::Session(id),
        )
        .await
    }

    pub async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        self.run_forgetting(
            sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id),
            Change::Session(id),
        )
        .await
    }

    pub async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        let query = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user);
        self.affected_forgetting(query, Change::User(user)).await
    }

    /// Removes sessions past either limit, so the table does not grow without bound.
    pub async fn purge_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> StoreResult<u64> {
        let mut purged = 0;
        for table in ["sessions", "operator_sessions"] {
            let sql = format!("DELETE FROM {table} WHERE last_seen_at < $1 OR created_at < $2");
            let query = sqlx::query(&sql).bind(idle_before).bind(created_before);
            purged += self.affected(query).await?;
        }
        Ok(purged)
    }
}

pub(super) async fn insert_session(
    conn: &mut sqlx::AnyConnection,
    token_hash: &[u8],
    user: UserId,
    origin: Option<&SessionOrigin>,
    now: Timestamp,
) -> StoreResult<SessionId> {
    let insert = sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, authenticated_at, \
         device, client_addr) VALUES ($1, $2, $3, $3, $3, $4, $5) RETURNING id",
    )
    .bind(token_hash)
    .bind(user)
    .bind(now)
    .bind(origin.map(|o| o.device.as_str()))
    .bind(origin.and_then(|o| o.client_addr.as_deref()));
    Ok(SessionId(new_id(insert, conn).await?))
}
