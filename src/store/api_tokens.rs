//! API tokens (hashes only) and the replay store behind `Idempotency-Key`, which lives and
//! dies with its token.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{flag, stored, Store, StoreError, StoreResult, TenantId};
use crate::clock::Timestamp;
use crate::domain::TenantCode;

/// An API token as stored (never the token).
#[derive(Debug, Clone)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub name: String,
    /// `None` for a provider token.
    pub tenant: Option<(TenantId, TenantCode)>,
    pub tenant_suspended: bool,
    pub token_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// The first answer given under an idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotentAnswer {
    pub request_hash: Vec<u8>,
    /// [`IdempotentAnswer::PENDING`] while the first request is still running.
    pub status: u16,
    /// Sealed with the data key by the caller.
    pub body: Vec<u8>,
}

/// What claiming an idempotency key found.
#[derive(Debug)]
pub enum Claimed {
    /// The key is this request's now.
    Now,
    /// Kept under the key: an answer, or another request's pending claim.
    Before(IdempotentAnswer),
    /// Another claim stopped this one and was let go meanwhile: claim again.
    Gone,
}

impl IdempotentAnswer {
    /// The status of a key claimed by a request that has not answered yet.
    pub const PENDING: u16 = 0;

    pub fn is_pending(&self) -> bool {
        self.status == Self::PENDING
    }
}

const TOKEN_SELECT: &str = "SELECT k.id AS id, k.name AS name, k.tenant_id AS tenant_id, \
     t.code AS tenant_code, \
     CAST(CASE WHEN t.suspended_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS tenant_suspended, \
     k.token_hash AS token_hash, k.created_at AS created_at, k.last_used_at AS last_used_at \
     FROM api_tokens k LEFT JOIN tenants t ON t.id = k.tenant_id";

fn token_row(r: &AnyRow) -> StoreResult<ApiTokenRecord> {
    let tenant = match r.try_get::<Option<i64>, _>("tenant_id")? {
        Some(id) => Some((TenantId(id), stored(r, "tenant_code", TenantCode::parse)?)),
        None => None,
    };
    Ok(ApiTokenRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        tenant,
        tenant_suspended: flag(r, "tenant_suspended")?,
        token_hash: r.try_get("token_hash")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl Store {
    /// [`StoreError::Conflict`] when the scope already has a token of that name.
    pub async fn insert_api_token(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        self.run_unique(
            sqlx::query(
                "INSERT INTO api_tokens (name, tenant_id, token_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(name)
            .bind(tenant)
            .bind(token_hash)
            .bind(now),
        )
        .await
    }

    /// The provider's tokens (`None`) or one tenant's, by name.
    pub async fn api_tokens(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiTokenRecord>> {
        self.all(
            sqlx::query(&format!(
                "{TOKEN_SELECT} WHERE COALESCE(k.tenant_id, 0) = $1 ORDER BY k.name"
            ))
            .bind(tenant.map_or(0, |t| t.0)),
            token_row,
        )
        .await
    }

    pub async fn api_token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<ApiTokenRecord>> {
        self.optional(
            sqlx::query(&format!("{TOKEN_SELECT} WHERE k.token_hash = $1")).bind(token_hash),
            token_row,
        )
        .await
    }

    /// Revokes the scope's token named `name`; false when there is none.
    pub async fn delete_api_token(
        &self,
        tenant: Option<TenantId>,
        name: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM api_idempotency WHERE token_id IN \
             (SELECT id FROM api_tokens WHERE COALESCE(tenant_id, 0) = $1 AND name = $2)",
        )
        .bind(tenant.map_or(0, |t| t.0))
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let done =
            sqlx::query("DELETE FROM api_tokens WHERE COALESCE(tenant_id, 0) = $1 AND name = $2")
                .bind(tenant.map_or(0, |t| t.0))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_api_token(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        self.run(
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id),
        )
        .await
    }

    // ---- idempotency ---------------------------------------------------------------

    /// Claims `key` of this token for a request about to run, as a pending answer whose
    /// body holds `claim` (a random value only the claiming request knows); `None` when
    /// claimed, else what is kept under it (pending while its first request runs).
    /// Answers older than `expired_before`, and claims older than `abandoned_before` that
    /// never answered, are purged first.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_idempotency_key(
        &self,
        token: i64,
        key: &str,
        request_hash: &[u8],
        claim: &[u8],
        now: Timestamp,
        expired_before: Timestamp,
        abandoned_before: Timestamp,
    ) -> StoreResult<Claimed> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM api_idempotency WHERE created_at <= $1 \
             OR (status = $2 AND created_at <= $3)",
        )
        .bind(expired_before)
        .bind(i64::from(IdempotentAnswer::PENDING))
        .bind(abandoned_before)
        .execute(&mut *tx)
        .await?;
        let claimed = sqlx::query(
            "INSERT INTO api_idempotency (token_id, idem_key, request_hash, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_id, idem_key) DO NOTHING",
        )
        .bind(token)
        .bind(key)
        .bind(request_hash)
        .bind(i64::from(IdempotentAnswer::PENDING))
        .bind(claim)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(Claimed::Now);
        }
        // On PostgreSQL the row that stopped the insert may be gone by now (its claim let
        // go); the caller then claims again.
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM api_idempotency \
             WHERE token_id = $1 AND idem_key = $2",
        )
        .bind(token)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else {
            return Ok(Claimed::Gone);
        };
        let status: i64 = row.try_get("status")?;
        Ok(Claimed::Before(IdempotentAnswer {
            request_hash: row.try_get("request_hash")?,
            status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
            body: row.try_get("body")?,
        }))
    }

    /// Keeps the answer of the request that claimed `key` with `claim` (sealed by the
    /// caller); false, keeping nothing, when that claim is no longer there (let go as
    /// abandoned, and perhaps claimed again).
    pub async fn answer_idempotency_key(
        &self,
        token: i64,
        key: &str,
        claim: &[u8],
        status: u16,
        body: &[u8],
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_idempotency SET status = $3, body = $4 \
             WHERE token_id = $1 AND idem_key = $2 AND status = $5 AND body = $6",
        )
        .bind(token)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .bind(i64::from(IdempotentAnswer::PENDING))
        .bind(claim)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lets go of `key`: the claim `claim` while it is still pending, or with `None` a
    /// kept answer (one that can no longer be opened), so a retry runs afresh. Another
    /// request's claim is never touched.
    pub async fn release_idempotency_key(
        &self,
        token: i64,
        key: &str,
        claim: Option<&[u8]>,
    ) -> StoreResult<()> {
        let query = match claim {
            Some(claim) => sqlx::query(
                "DELETE FROM api_idempotency WHERE token_id = $1 AND idem_key = $2 \
                 AND status = $3 AND body = $4",
            )
            .bind(token)
            .bind(key)
            .bind(i64::from(IdempotentAnswer::PENDING))
            .bind(claim),
            None => sqlx::query(
                "DELETE FROM api_idempotency WHERE token_id = $1 AND idem_key = $2 \
                 AND status <> $3",
            )
            .bind(token)
            .bind(key)
            .bind(i64::from(IdempotentAnswer::PENDING)),
        };
        self.run(query).await
    }
}
