//! What the JSON API reads and writes beyond the pages: API tokens (hashes only), the
//! replay store behind `Idempotency-Key`, cursor-paged lists, and a tenant's lifecycle —
//! rename, new SIP domain, suspend, resume, delete. A change that makes SIP secrets stop
//! working queues the notices for the SIP server in its own transaction, and every
//! lifecycle change forgets the cached sessions and credentials.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::session_cache::Change;
use super::throttle::USERNAME_KEY_SQL;
use super::{
    audit_from_row, classify, stored, user_from_row, AuditRecord, Store, StoreError, StoreResult,
    Tenant, TenantId, UserRecord, AUDIT_COLUMNS, USER_COLUMNS,
};
use crate::clock::Timestamp;
use crate::domain::TenantCode;

/// A tenant as the API shows it.
#[derive(Debug, Clone)]
pub struct TenantRow {
    pub tenant: Tenant,
    pub suspended_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A user as the API shows it: the record, whether it is locked now, and when it was made.
#[derive(Debug, Clone)]
pub struct ApiUserRow {
    pub user: UserRecord,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

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

const TENANT_COLUMNS: &str = "id, code, name, sip_domain, suspended_at, created_at";

const TOKEN_SELECT: &str = "SELECT k.id AS id, k.name AS name, k.tenant_id AS tenant_id, \
     t.code AS tenant_code, \
     CAST(CASE WHEN t.suspended_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS tenant_suspended, \
     k.token_hash AS token_hash, k.created_at AS created_at, k.last_used_at AS last_used_at \
     FROM api_tokens k LEFT JOIN tenants t ON t.id = k.tenant_id";

fn tenant_row(r: &AnyRow) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        tenant: Tenant {
            id: TenantId(r.try_get("id")?),
            code: stored(r, "code", TenantCode::parse)?,
            name: r.try_get("name")?,
            sip_domain: r.try_get("sip_domain")?,
        },
        suspended_at: r.try_get::<Option<i64>, _>("suspended_at")?.map(Timestamp),
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

fn api_user_row(r: &AnyRow) -> StoreResult<ApiUserRow> {
    Ok(ApiUserRow {
        user: user_from_row(r)?,
        locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(Timestamp),
        created_at: Timestamp(r.try_get("user_created_at")?),
    })
}

fn token_row(r: &AnyRow) -> StoreResult<ApiTokenRecord> {
    let tenant = match r.try_get::<Option<i64>, _>("tenant_id")? {
        Some(id) => Some((TenantId(id), stored(r, "tenant_code", TenantCode::parse)?)),
        None => None,
    };
    Ok(ApiTokenRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        tenant,
        tenant_suspended: r.try_get::<i64, _>("tenant_suspended")? != 0,
        token_hash: r.try_get("token_hash")?,
        created_at: Timestamp(r.try_get("created_at")?),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp),
    })
}

impl Store {
    // ---- tenants -------------------------------------------------------------------

    /// Tenants in code order after `after`, at most `limit`.
    pub async fn tenants_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<TenantRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE ($1 IS NULL OR code > $1) \
             ORDER BY code LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_row).collect()
    }

    pub async fn tenant_row(&self, code: &TenantCode) -> StoreResult<Option<TenantRow>> {
        let row = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE code = $1"
        ))
        .bind(code.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| tenant_row(&r)).transpose()
    }

    pub async fn rename_tenant(&self, id: TenantId, name: &str) -> StoreResult<()> {
        sqlx::query("UPDATE tenants SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        // Cached sessions carry the tenant's name.
        self.changed(Change::All).await;
        Ok(())
    }

    /// The addresses of record of every user of a tenant at its current SIP domain.
    async fn tenant_aors(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: TenantId,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT u.extension AS extension, t.sip_domain AS sip_domain \
             FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1",
        )
        .bind(id.0)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter()
            .map(|r| {
                let ext: String = r.try_get("extension")?;
                let domain: String = r.try_get("sip_domain")?;
                Ok(format!("{ext}@{}", domain.to_ascii_lowercase()))
            })
            .collect()
    }

    async fn notify_all(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        aors: &[String],
        now: Timestamp,
    ) -> StoreResult<()> {
        for aor in aors {
            super::pbx::insert_notice(tx, aor, now).await?;
        }
        Ok(())
    }

    /// Moves a tenant from `old` to another SIP domain; the SIP server forgets every
    /// address of record at the old one. [`StoreError::Conflict`] when another tenant has it.
    pub async fn set_tenant_sip_domain(
        &self,
        id: TenantId,
        old: &str,
        domain: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // The write comes first so SQLite takes its write lock at once.
        sqlx::query("UPDATE tenants SET sip_domain = $1 WHERE id = $2")
            .bind(domain)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let rows = sqlx::query("SELECT extension FROM users WHERE tenant_id = $1")
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await?;
        let mut aors = Vec::with_capacity(rows.len());
        for r in &rows {
            let ext: String = r.try_get("extension")?;
            aors.push(format!("{ext}@{}", old.to_ascii_lowercase()));
        }
        Self::notify_all(&mut tx, &aors, now).await?;
        tx.commit().await?;
        self.changed(Change::All).await;
        Ok(())
    }

    /// Suspends a tenant: marks it, ends every session of its users and queues the notices
    /// that make the SIP server forget their credentials and registrations. False when it
    /// was suspended already (nothing changes).
    pub async fn suspend_tenant(&self, id: TenantId, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tenants SET suspended_at = $1 WHERE id = $2 AND suspended_at IS NULL",
        )
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE tenant_id = $1)",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        let aors = Self::tenant_aors(&mut tx, id).await?;
        Self::notify_all(&mut tx, &aors, now).await?;
        tx.commit().await?;
        self.changed(Change::All).await;
        Ok(true)
    }

    /// Puts a suspended tenant back in service. False when it was not suspended.
    pub async fn resume_tenant(&self, id: TenantId) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tenants SET suspended_at = NULL WHERE id = $1 AND suspended_at IS NOT NULL",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        self.changed(Change::All).await;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a tenant with its users and everything of theirs; the audit log keeps its
    /// history (no longer tied to the tenant row), and the SIP server forgets every user.
    pub async fn delete_tenant(&self, id: TenantId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // The write comes first so SQLite takes its write lock at once.
        sqlx::query("UPDATE audit_events SET tenant_id = NULL WHERE tenant_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let aors = Self::tenant_aors(&mut tx, id).await?;
        let users = "(SELECT id FROM users WHERE tenant_id = $1)";
        // Explicit deletes as well as the cascades, so the result never depends on a
        // connection's foreign-key setting.
        for sql in [
            format!("DELETE FROM sessions WHERE user_id IN {users}"),
            format!("DELETE FROM reset_tokens WHERE user_id IN {users}"),
            format!("DELETE FROM security_questions WHERE user_id IN {users}"),
            format!("DELETE FROM caller_verifications WHERE user_id IN {users}"),
            format!("DELETE FROM outbox WHERE user_id IN {users} OR tenant_id = $1"),
            "DELETE FROM api_idempotency WHERE token_id IN (SELECT id FROM api_tokens WHERE tenant_id = $1)".to_owned(),
            "DELETE FROM api_tokens WHERE tenant_id = $1".to_owned(),
            "DELETE FROM users WHERE tenant_id = $1".to_owned(),
            "DELETE FROM tenants WHERE id = $1".to_owned(),
        ] {
            sqlx::query(&sql).bind(id.0).execute(&mut *tx).await?;
        }
        Self::notify_all(&mut tx, &aors, now).await?;
        tx.commit().await?;
        self.changed(Change::All).await;
        Ok(())
    }

    // ---- users ---------------------------------------------------------------------

    fn api_user_sql(condition: &str) -> String {
        format!(
            "SELECT {USER_COLUMNS}, u.created_at AS user_created_at, th.locked_until AS locked_until \
             FROM users u JOIN tenants t ON t.id = u.tenant_id \
             LEFT JOIN signin_throttle th ON th.key = {USERNAME_KEY_SQL} AND th.locked_until > $2 \
             WHERE u.tenant_id = $1 AND {condition}"
        )
    }

    /// A tenant's users in extension order (shorter numbers first) after `after`.
    pub async fn users_after(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        now: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ApiUserRow>> {
        let sql = Self::api_user_sql(
            "($3 IS NULL OR LENGTH(u.extension) > LENGTH($3) \
               OR (LENGTH(u.extension) = LENGTH($3) AND u.extension > $3)) \
             ORDER BY LENGTH(u.extension), u.extension LIMIT $4",
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(now.0)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(api_user_row).collect()
    }

    pub async fn api_user(
        &self,
        tenant: TenantId,
        extension: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ApiUserRow>> {
        let sql = Self::api_user_sql("u.extension = $3");
        let row = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(now.0)
            .bind(extension)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| api_user_row(&r)).transpose()
    }

    /// A tenant's audit events older than the event `before` (newest first).
    pub async fn audit_before(
        &self,
        tenant: TenantId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(tenant.0)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    // ---- API tokens ----------------------------------------------------------------

    /// [`StoreError::Conflict`] when the scope already has a token of that name.
    pub async fn insert_api_token(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (name, tenant_id, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(tenant.map(|t| t.0))
        .bind(token_hash)
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    /// The provider's tokens (`None`) or one tenant's, by name.
    pub async fn api_tokens(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiTokenRecord>> {
        let rows = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE COALESCE(k.tenant_id, 0) = $1 ORDER BY k.name"
        ))
        .bind(tenant.map_or(0, |t| t.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_row).collect()
    }

    pub async fn api_token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<ApiTokenRecord>> {
        let row = sqlx::query(&format!("{TOKEN_SELECT} WHERE k.token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| token_row(&r)).transpose()
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
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- idempotency ---------------------------------------------------------------

    /// The answer first given under `key` for this token, if it is newer than `after`.
    pub async fn idempotent_answer(
        &self,
        token: i64,
        key: &str,
        after: Timestamp,
    ) -> StoreResult<Option<IdempotentAnswer>> {
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM api_idempotency \
             WHERE token_id = $1 AND idem_key = $2 AND created_at > $3",
        )
        .bind(token)
        .bind(key)
        .bind(after.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let status: i64 = r.try_get("status")?;
        Ok(Some(IdempotentAnswer {
            request_hash: r.try_get("request_hash")?,
            status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
            body: r.try_get("body")?,
        }))
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
            .bind(expired_before.0)
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
        .bind(now.0)
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
