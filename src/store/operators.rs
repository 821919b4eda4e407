//! What the provider's operator console reads and writes: operators and their sessions,
//! tenants across the whole provider, tenant admins with their support questions, the
//! verified-caller record, and the provider-wide audit log.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::admin::escape_like;
use super::throttle::USERNAME_KEY_SQL;
use super::{
    audit_from_row, stored, tenant_from_row, user_from_row, AuditRecord, SessionId, Store,
    StoreResult, Tenant, TenantId, UserId, UserRecord, AUDIT_COLUMNS, USER_COLUMNS,
};
use crate::clock::Timestamp;
use crate::domain::OperatorName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

#[derive(Debug, Clone)]
pub struct OperatorSessionRecord {
    pub id: SessionId,
    pub operator_id: OperatorId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// A row of the operator's tenant list.
#[derive(Debug, Clone)]
pub struct TenantListRow {
    pub tenant: Tenant,
    pub users: i64,
}

/// A tenant admin as the console lists them.
#[derive(Debug, Clone)]
pub struct AdminRow {
    pub user: UserRecord,
    pub question: Option<String>,
    pub locked_until: Option<Timestamp>,
}

/// A stored support question; the answer only as a hash.
#[derive(Clone)]
pub struct SecurityQuestionRecord {
    pub question: String,
    pub answer_hash: String,
}

impl Store {
    pub async fn operator_by_name(
        &self,
        name: &OperatorName,
    ) -> StoreResult<Option<OperatorRecord>> {
        let row = sqlx::query(
            "SELECT id AS operator_id, name AS operator_name, password_hash FROM operators WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| operator_from_row(&r)).transpose()
    }

    pub async fn insert_operator_session(
        &self,
        token_hash: &[u8],
        operator: OperatorId,
        now: Timestamp,
    ) -> StoreResult<SessionId> {
        let row = sqlx::query(
            "INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(token_hash)
        .bind(operator.0)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(SessionId(row.try_get(0)?))
    }

    /// The operator session with this token hash and its operator, in one round trip.
    pub async fn operator_session(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(OperatorSessionRecord, OperatorRecord)>> {
        let row = sqlx::query(
            "SELECT s.id AS session_id, s.created_at, s.last_seen_at, o.id AS operator_id, \
             o.name AS operator_name, o.password_hash \
             FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let operator = operator_from_row(&r)?;
        let session = OperatorSessionRecord {
            id: SessionId(r.try_get("session_id")?),
            operator_id: operator.id,
            created_at: Timestamp(r.try_get("created_at")?),
            last_seen_at: Timestamp(r.try_get("last_seen_at")?),
        };
        Ok(Some((session, operator)))
    }

    /// Slides the idle timer. False when the session no longer exists (ended elsewhere).
    pub async fn touch_operator_session(&self, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE operator_sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_operator_session(&self, id: SessionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One page of tenants, searched by Client ID (code) or name, with their user counts.
    pub async fn list_tenants(
        &self,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<TenantListRow>, i64)> {
        let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
        let filter =
            "($1 IS NULL OR t.code LIKE $1 ESCAPE '\\' OR LOWER(t.name) LIKE $1 ESCAPE '\\')";
        let rows = sqlx::query(&format!(
            "SELECT t.id, t.code, t.name, t.sip_domain, \
               (SELECT COUNT(*) FROM users u WHERE u.tenant_id = t.id) AS users \
             FROM tenants t WHERE {filter} ORDER BY t.code LIMIT $2 OFFSET $3"
        ))
        .bind(pattern.as_deref())
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let list = rows
            .iter()
            .map(|r| {
                Ok(TenantListRow {
                    tenant: tenant_from_row(r)?,
                    users: r.try_get("users")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM tenants t WHERE {filter}"))
            .bind(pattern.as_deref())
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok((list, total))
    }

    /// A tenant's admins, with their support question (if any) and whether they are
    /// locked out right now.
    pub async fn tenant_admins(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<AdminRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, q.question AS question, th.locked_until AS locked_until FROM users u \
             JOIN tenants t ON t.id = u.tenant_id \
             LEFT JOIN security_questions q ON q.user_id = u.id \
             LEFT JOIN signin_throttle th ON th.key = {USERNAME_KEY_SQL} \
               AND th.locked_until > $2 \
             WHERE u.tenant_id = $1 AND u.role = 'admin' ORDER BY LENGTH(u.extension), u.extension"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(now.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AdminRow {
                    user: user_from_row(r)?,
                    question: r.try_get("question")?,
                    locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(Timestamp),
                })
            })
            .collect()
    }

    pub async fn security_question(
        &self,
        user: UserId,
    ) -> StoreResult<Option<SecurityQuestionRecord>> {
        let row =
            sqlx::query("SELECT question, answer_hash FROM security_questions WHERE user_id = $1")
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(SecurityQuestionRecord {
                question: r.try_get(0)?,
                answer_hash: r.try_get(1)?,
            })
        })
        .transpose()
    }

    /// Sets or replaces a user's support question and answer hash.
    pub async fn set_security_question(
        &self,
        user: UserId,
        question: &str,
        answer_hash: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO security_questions (user_id, question, answer_hash, set_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             question = excluded.question, answer_hash = excluded.answer_hash, set_at = excluded.set_at",
        )
        .bind(user.0)
        .bind(question)
        .bind(answer_hash)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn record_caller_verified(
        &self,
        operator: OperatorId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO caller_verifications (operator_id, user_id, verified_at) VALUES ($1, $2, $3)",
        )
        .bind(operator.0)
        .bind(user.0)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When this operator last verified a caller as this admin, if ever.
    pub async fn last_caller_verification(
        &self,
        operator: OperatorId,
        user: UserId,
    ) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MAX(verified_at) FROM caller_verifications WHERE operator_id = $1 AND user_id = $2",
        )
        .bind(operator.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?.map(Timestamp))
    }

    /// The admins (extension, tenant code) this operator verified a caller as after `since`.
    pub async fn verified_admins(
        &self,
        operator: OperatorId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT u.extension AS extension, t.code AS code FROM caller_verifications v \
             JOIN users u ON u.id = v.user_id JOIN tenants t ON t.id = u.tenant_id \
             WHERE v.operator_id = $1 AND v.verified_at > $2",
        )
        .bind(operator.0)
        .bind(since.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("extension")?, r.try_get("code")?)))
            .collect()
    }

    /// One page of the provider's audit log, newest first: events with no tenant (operator
    /// sign-ins, operators created) and everything an operator did in any tenant.
    pub async fn provider_audit_page(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let condition = "tenant_id IS NULL OR actor LIKE 'operator:%'";
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE {condition} ORDER BY id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let events = rows
            .iter()
            .map(audit_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE {condition}"
        ))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok((events, total))
    }
}

fn operator_from_row(r: &AnyRow) -> StoreResult<OperatorRecord> {
    Ok(OperatorRecord {
        id: OperatorId(r.try_get("operator_id")?),
        name: stored(r, "operator_name", OperatorName::parse)?,
        password_hash: r.try_get("password_hash")?,
    })
}
