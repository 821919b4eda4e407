//! API tokens (hashes only) and the replay store behind `Idempotency-Key`, which lives and
//! dies with its token.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{classify, flag, stored, Store, StoreError, StoreResult, TenantId};
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
    pub status: u16,
    /// Sealed with the data key by the caller.
    pub body: Vec<u8>,
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

    /// The answer first given under `key` for this token, if it is newer than `after`.
    pub async fn idempotent_answer(
        &self,
        token: i64,
        key: &str,
        after: Timestamp,
    ) -> StoreResult<Option<IdempotentAnswer>> {
        self.optional(
            sqlx::query(
                "SELECT request_hash, status, body FROM api_idempotency \
                 WHERE token_id = $1 AND idem_key = $2 AND created_at > $3",
            )
            .bind(token)
            .bind(key)
            .bind(after),
            |r| {
                let status: i64 = r.try_get("status")?;
                Ok(IdempotentAnswer {
                    request_hash: r.try_get("request_hash")?,
                    status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
                    body: r.try_get("body")?,
                })
            },
        )
        .await
    }

    /// Keeps the first answer under `key`, replacing one older than `expired_before`, and
    /// purges other expired answers.
    pub async fn save_idempotent_answer(
        &self,
        token: i64,
        key: &str,
        answer: &IdempotentAnswer,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_idempotency WHERE created_at <= $1")
            .bind(expired_before)
            .execute(&mut *tx)
            .await?;
        let saved = sqlx::query(
            "INSERT INTO api_idempotency (token_id, idem_key, request_hash, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token)
        .bind(key)
        .bind(&answer.request_hash)
        .bind(i64::from(answer.status))
        .bind(&answer.body)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(classify);
        match saved {
            // A concurrent retry saved first; its answer stands.
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
        tx.commit().await?;
        Ok(())
    }
}
