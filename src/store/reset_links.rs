//! Reset links: created together with the mail that carries them, and used up atomically
//! together with the password change they allow.

use super::outbox::{enqueue, enqueue_notice, NewMail};
use super::session_cache::Change;
use super::users::{set_password, with_user, USER_COLUMNS};
use super::{PasswordChange, Store, StoreResult, UserId, UserRecord};
use crate::clock::Timestamp;

pub struct NewResetLink {
    pub token_hash: Vec<u8>,
    pub user_id: UserId,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResetRecord {
    pub id: i64,
    pub user_id: UserId,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

impl Store {
    /// Stores the links and queues the one message that carries them, atomically.
    pub async fn create_reset_links(
        &self,
        links: &[NewResetLink],
        mail: &NewMail,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for link in links {
            sqlx::query("INSERT INTO reset_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(&link.token_hash)
                .bind(link.user_id)
                .bind(now)
                .bind(link.expires_at)
                .execute(&mut *tx)
                .await?;
        }
        enqueue(&mut tx, mail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a link used without a reset (too many wrong answers on its page).
    pub async fn spend_reset_link(&self, link_id: i64, now: Timestamp) -> StoreResult<()> {
        self.run(
            sqlx::query("UPDATE reset_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(link_id),
        )
        .await
    }

    pub async fn reset_link(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(ResetRecord, UserRecord)>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, r.id AS id, r.expires_at AS expires_at, r.used_at AS used_at FROM reset_tokens r \
             JOIN users u ON u.id = r.user_id JOIN tenants t ON t.id = u.tenant_id WHERE r.token_hash = $1"
        );
        self.optional(sqlx::query(&sql).bind(token_hash), with_user)
            .await
    }

    /// Uses the link and sets the password in one transaction: the link is marked used only
    /// if it still is unused and unexpired (so of concurrent submits exactly one wins); then
    /// the user's sessions end, their other links die, their lockout is cleared and the
    /// notice is queued. Returns false, changing nothing, when the link was already spent.
    pub async fn complete_reset(
        &self,
        link_id: i64,
        user: UserId,
        change: &PasswordChange<'_>,
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let spend = sqlx::query(
            "UPDATE reset_tokens SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
        );
        let done = self
            .one_then(spend.bind(now).bind(link_id), |mut tx| async move {
                set_password(&mut tx, user, change, now).await?;
                enqueue_notice(&mut tx, notice, now).await?;
                Ok(tx)
            })
            .await?;
        Ok(self.changed_if(done, Change::User(user)).await)
    }
}

/// Ends the user's outstanding reset links (a new password, or a new address to send
/// them to).
pub(super) async fn end_reset_links(
    conn: &mut sqlx::AnyConnection,
    user: UserId,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("UPDATE reset_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
