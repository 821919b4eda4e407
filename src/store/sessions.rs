//! A user's own sessions, as "Your sessions" in Settings lists and ends them: where each
//! was opened (a few words about the browser, the address), when, and when last seen.
//! Every end goes through [`Store::changed`], so no node's session cache keeps serving one.

use sqlx::Row;

use super::session_cache::Change;
use super::{insert_session, SessionId, Store, StoreResult, UserId};
use crate::clock::Timestamp;

/// Where a session was opened, kept with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOrigin {
    /// A few words about the browser ("Firefox on Linux"); never the User-Agent itself.
    pub device: String,
    pub client_addr: Option<String>,
}

/// One session of a user, for the list.
#[derive(Debug, Clone)]
pub struct SessionListRow {
    pub id: SessionId,
    pub device: Option<String>,
    pub client_addr: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

impl Store {
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
        let rows = sqlx::query(
            "SELECT id, device, client_addr, created_at, last_seen_at FROM sessions \
             WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionListRow {
                    id: SessionId(r.try_get("id")?),
                    device: r.try_get("device")?,
                    client_addr: r.try_get("client_addr")?,
                    created_at: Timestamp(r.try_get("created_at")?),
                    last_seen_at: Timestamp(r.try_get("last_seen_at")?),
                })
            })
            .collect()
    }

    /// Ends session `id` if it belongs to `user`; false when it does not (another user's,
    /// or gone already), and then nothing changed.
    pub async fn end_user_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(id.0)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.changed(Change::Session(id)).await;
        Ok(true)
    }

    /// Ends every session of `user` except `keep`; how many ended.
    pub async fn end_other_sessions(&self, user: UserId, keep: SessionId) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user.0)
            .bind(keep.0)
            .execute(&self.pool)
            .await?;
        // The user's cached sessions are read again; the kept one is simply re-read.
        self.changed(Change::User(user)).await;
        Ok(done.rows_affected())
    }
}
