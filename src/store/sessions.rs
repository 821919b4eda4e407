//! User sessions: opened, read with their user (through the session cache), slid, marked
//! re-authenticated, ended one or all at once, and purged past their limits. Every write
//! forgets what it made wrong in the cache, here and on the other nodes.

use sqlx::Row;

use super::session_cache::{Change, Lookup};
use super::users::{user_from_row, USER_COLUMNS};
use super::{SessionId, SessionRecord, Store, StoreResult, UserId, UserRecord};
use crate::clock::Timestamp;

impl Store {
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<SessionId> {
        let mut conn = self.pool.acquire().await?;
        insert_session(&mut conn, token_hash, user, now).await
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
            "SELECT {USER_COLUMNS}, s.id AS session_id, s.created_at AS session_created_at, \
             s.last_seen_at AS session_last_seen_at, s.authenticated_at AS session_authenticated_at \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id \
             WHERE s.token_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let user = user_from_row(&r)?;
        let session = SessionRecord {
            id: SessionId(r.try_get("session_id")?),
            user_id: user.id,
            created_at: Timestamp(r.try_get("session_created_at")?),
            last_seen_at: Timestamp(r.try_get("session_last_seen_at")?),
            authenticated_at: Timestamp(r.try_get("session_authenticated_at")?),
        };
        self.sessions.put(token_hash, epoch, &session, &user, now);
        Ok(Some((session, user)))
    }

    /// Slides the idle timer. False when the session no longer exists (ended elsewhere).
    pub async fn touch_session(&self, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 {
            self.sessions.touched(id, now);
            Ok(true)
        } else {
            self.changed(Change::Session(id)).await;
            Ok(false)
        }
    }

    /// The password was proven again in this session (for sensitive actions).
    pub async fn session_reauthenticated(&self, id: SessionId, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET authenticated_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        self.changed(Change::Session(id)).await;
        Ok(())
    }

    pub async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        self.changed(Change::Session(id)).await;
        Ok(())
    }

    pub async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        self.changed(Change::User(user)).await;
        Ok(done.rows_affected())
    }

    /// Removes sessions past either limit, so the table does not grow without bound.
    pub async fn purge_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> StoreResult<u64> {
        let mut purged = 0;
        for table in ["sessions", "operator_sessions"] {
            let done = sqlx::query(&format!(
                "DELETE FROM {table} WHERE last_seen_at < $1 OR created_at < $2"
            ))
            .bind(idle_before.0)
            .bind(created_before.0)
            .execute(&self.pool)
            .await?;
            purged += done.rows_affected();
        }
        Ok(purged)
    }
}

pub(super) async fn insert_session(
    conn: &mut sqlx::AnyConnection,
    token_hash: &[u8],
    user: UserId,
    now: Timestamp,
) -> StoreResult<SessionId> {
    let row = sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, authenticated_at) \
         VALUES ($1, $2, $3, $3, $3) RETURNING id",
    )
    .bind(token_hash)
    .bind(user.0)
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    Ok(SessionId(row.try_get(0)?))
}
