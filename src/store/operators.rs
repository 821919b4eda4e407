//! Operators of the provider's console: the accounts, their sessions, and the record of
//! callers each one verified as a tenant admin.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, record, stored, SessionId, Store, StoreResult, UserId};
use crate::clock::Timestamp;
use crate::domain::OperatorName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct OperatorId(pub i64);

#[derive(Clone)]
pub struct OperatorRecord {
    pub id: OperatorId,
    pub name: OperatorName,
    pub password_hash: String,
}

impl std::fmt::Debug for OperatorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorSessionRecord {
    pub id: SessionId,
    pub operator_id: OperatorId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

impl Store {
    pub async fn insert_operator(
        &self,
        name: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.run_unique(
            sqlx::query(
                "INSERT INTO operators (name, password_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(name)
            .bind(password_hash)
            .bind(now),
        )
        .await
    }

    pub async fn operator_by_name(
        &self,
        name: &OperatorName,
    ) -> StoreResult<Option<OperatorRecord>> {
        let sql = operator_sql("name = $1");
        self.optional(sqlx::query(&sql).bind(name.as_str()), operator_from_row)
            .await
    }

    /// An operator by id (to finish their pending sign-in).
    pub async fn operator_by_id(&self, id: OperatorId) -> StoreResult<Option<OperatorRecord>> {
        let sql = operator_sql("id = $1");
        self.optional(sqlx::query(&sql).bind(id), operator_from_row)
            .await
    }

    pub async fn insert_operator_session(
        &self,
        token_hash: &[u8],
        operator: OperatorId,
        now: Timestamp,
    ) -> StoreResult<SessionId> {
        let insert = sqlx::query(
            "INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        );
        let id = new_id(insert.bind(token_hash).bind(operator).bind(now), &self.pool).await?;
        Ok(SessionId(id))
    }

    /// The operator session with this token hash and its operator, in one round trip.
    pub async fn operator_session(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(OperatorSessionRecord, OperatorRecord)>> {
        self.optional(
            sqlx::query(
                "SELECT s.id AS id, s.created_at, s.last_seen_at, o.id AS operator_id, \
                 o.name AS operator_name, o.password_hash \
                 FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
                 WHERE s.token_hash = $1",
            )
            .bind(token_hash),
            |r| Ok((record(r)?, operator_from_row(r)?)),
        )
        .await
    }

    /// Slides the idle timer. False when the session no longer exists (ended elsewhere).
    pub async fn touch_operator_session(&self, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        self.slide_idle_timer("operator_sessions", id, now).await
    }

    pub async fn delete_operator_session(&self, id: SessionId) -> StoreResult<()> {
        self.run(sqlx::query("DELETE FROM operator_sessions WHERE id = $1").bind(id))
            .await
    }

    pub async fn record_caller_verified(
        &self,
        operator: OperatorId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "INSERT INTO caller_verifications (operator_id, user_id, verified_at) VALUES ($1, $2, $3)",
            )
            .bind(operator)
            .bind(user)
            .bind(now),
        )
        .await
    }

    /// When this operator last verified a caller as this admin, if ever.
    pub async fn last_caller_verification(
        &self,
        operator: OperatorId,
        user: UserId,
    ) -> StoreResult<Option<Timestamp>> {
        let last = sqlx::query(
            "SELECT MAX(verified_at) FROM caller_verifications WHERE operator_id = $1 AND user_id = $2",
        );
        self.value(last.bind(operator).bind(user)).await
    }

    /// The admins (extension, tenant code) this operator verified a caller as after `since`.
    pub async fn verified_admins(
        &self,
        operator: OperatorId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, String)>> {
        self.all(
            sqlx::query(
                "SELECT DISTINCT u.extension AS extension, t.code AS code FROM caller_verifications v \
                 JOIN users u ON u.id = v.user_id JOIN tenants t ON t.id = u.tenant_id \
                 WHERE v.operator_id = $1 AND v.verified_at > $2",
            )
            .bind(operator)
            .bind(since),
            |r| Ok((r.try_get("extension")?, r.try_get("code")?)),
        )
        .await
    }
}

/// The operators `condition` selects, with the columns [`operator_from_row`] reads.
fn operator_sql(condition: &str) -> String {
    format!(
        "SELECT id AS operator_id, name AS operator_name, password_hash FROM operators \
         WHERE {condition}"
    )
}

fn operator_from_row(r: &AnyRow) -> StoreResult<OperatorRecord> {
    Ok(OperatorRecord {
        id: r.try_get("operator_id")?,
        name: stored(r, "operator_name", OperatorName::parse)?,
        password_hash: r.try_get("password_hash")?,
    })
}
