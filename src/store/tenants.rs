//! Tenants: created (with their audit event, and with a first admin in the same
//! transaction when asked), read, listed (searched and paged for the console, by cursor
//! for the API), renamed, moved to another SIP domain, suspended, resumed and deleted. A
//! change that makes SIP secrets stop working queues the notices for the SIP server in its
//! own transaction, and every lifecycle change forgets the cached sessions and credentials.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::session_cache::Change;
use super::throttle::{RESET_MAIL_KEY_SQL, STAFF_RESET_MAIL_KEY_SQL};
use super::users::{insert_user_in, ApiUserRow};
use super::{
    classify, new_id, page_sql, pbx, search_pattern, stored, AuditRow, NewTenant, NewUser,
    NewUserRows, Store, StoreResult, Tenant, TenantId, TenantUpdate,
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

/// A row of the operator's tenant list.
#[derive(Debug, Clone)]
pub struct TenantListRow {
    pub tenant: Tenant,
    pub users: i64,
}

const TENANT_COLUMNS: &str = "id, code, name, sip_domain, suspended_at, created_at";

/// A tenant from a row that selected `id, code, name, sip_domain` of `tenants`.
fn tenant_from_row(r: &AnyRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        code: stored(r, "code", TenantCode::parse)?,
        name: r.try_get("name")?,
        sip_domain: r.try_get("sip_domain")?,
    })
}

fn tenant_row(r: &AnyRow) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        tenant: tenant_from_row(r)?,
        suspended_at: r.try_get("suspended_at")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Adds a tenant and its audit event (whose tenant is the new one) in one
    /// transaction.
    pub async fn insert_tenant(
        &self,
        t: &NewTenant<'_>,
        audit: &AuditRow<'_>,
        now: Timestamp,
    ) -> StoreResult<TenantId> {
        let mut tx = self.pool.begin().await?;
        let id = insert_tenant_in(&mut tx, t, audit, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Adds a tenant and its first user, each with its audit event, in one transaction,
    /// and returns both as written (read in it): all of it is written or none, so a tenant
    /// is never left without the admin it was made for, nor a temporary password lost
    /// after the tenant was written. The user's SIP secret is what `seal_sip_secret` makes
    /// of the new tenant's id (a secret is sealed to its row), and both events are the new
    /// tenant's.
    pub async fn insert_tenant_with_user(
        &self,
        t: &NewTenant<'_>,
        audit: &AuditRow<'_>,
        first: &NewUserRows<'_>,
        seal_sip_secret: impl FnOnce(TenantId) -> Vec<u8>,
        now: Timestamp,
    ) -> StoreResult<(TenantRow, ApiUserRow)> {
        let mut tx = self.pool.begin().await?;
        let id = insert_tenant_in(&mut tx, t, audit, now).await?;
        let sealed = seal_sip_secret(id);
        let first = NewUserRows {
            user: NewUser {
                sip_secret: Some(&sealed),
                ..first.user
            },
            ..*first
        };
        let admin = insert_user_in(&mut tx, id, &first, now).await?;
        let written = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let tenant = tenant_row(&written)?;
        tx.commit().await?;
        Ok((tenant, admin))
    }

    pub async fn tenant_by_code(&self, code: &TenantCode) -> StoreResult<Option<Tenant>> {
        self.optional(
            sqlx::query("SELECT id, code, name, sip_domain FROM tenants WHERE code = $1")
                .bind(code.as_str()),
            tenant_from_row,
        )
        .await
    }

    /// One page of tenants, searched by Client ID (code) or name, with their user counts.
    pub async fn list_tenants(
        &self,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<TenantListRow>, i64)> {
        let pattern = search_pattern(search);
        let filter =
            "($1 IS NULL OR t.code LIKE $1 ESCAPE '\\' OR LOWER(t.name) LIKE $1 ESCAPE '\\')";
        let select = "SELECT t.id, t.code, t.name, t.sip_domain, \
                      (SELECT COUNT(*) FROM users u WHERE u.tenant_id = t.id) AS users FROM tenants t";
        let (sql, count_sql) = page_sql(select, "tenants t", filter, "t.code", 1);
        let rows = sqlx::query(&sql)
            .bind(pattern.as_deref())
            .bind(limit)
            .bind(offset);
        let read = |r: &AnyRow| {
            Ok(TenantListRow {
                tenant: tenant_from_row(r)?,
                users: r.try_get("users")?,
            })
        };
        let count = sqlx::query(&count_sql).bind(pattern.as_deref());
        self.page(rows, read, count).await
    }

    /// Tenants in code order after `after`, at most `limit`.
    pub async fn tenants_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<TenantRow>> {
        self.all(
            sqlx::query(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE ($1 IS NULL OR code > $1) \
                 ORDER BY code LIMIT $2"
            ))
            .bind(after)
            .bind(limit),
            tenant_row,
        )
        .await
    }

    pub async fn tenant_row(&self, code: &TenantCode) -> StoreResult<Option<TenantRow>> {
        self.optional(
            sqlx::query(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE code = $1"
            ))
            .bind(code.as_str()),
            tenant_row,
        )
        .await
    }

    /// The addresses of record of every user of a tenant: at `domain` when given (one
    /// the tenant is leaving), else at its current SIP domain.
    async fn tenant_aors(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: TenantId,
        domain: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT u.extension AS extension, t.sip_domain AS sip_domain \
             FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter()
            .map(|r| {
                let ext: String = r.try_get("extension")?;
                let at = match domain {
                    Some(d) => d.to_owned(),
                    None => r.try_get("sip_domain")?,
                };
                Ok(format!("{ext}@{}", at.to_ascii_lowercase()))
            })
            .collect()
    }

    /// Renames a tenant and/or moves it to another SIP domain, in one transaction; on a
    /// move the SIP server forgets every address of record at the old domain.
    /// [`super::StoreError::Conflict`] when another tenant has the new domain, and then
    /// nothing changes.
    pub async fn update_tenant(
        &self,
        id: TenantId,
        change: &TenantUpdate<'_>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // The writes come first so SQLite takes its write lock at once.
        if let Some(name) = change.name {
            sqlx::query("UPDATE tenants SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((old, domain)) = change.sip_domain {
            sqlx::query("UPDATE tenants SET sip_domain = $1 WHERE id = $2")
                .bind(domain)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            let aors = Self::tenant_aors(&mut tx, id, Some(old)).await?;
            pbx::insert_notices(&mut tx, &aors, now).await?;
        }
        // Cached sessions carry the tenant's name.
        self.commit_forgetting(tx, Change::All).await
    }

    /// Suspends a tenant: marks it, ends every session of its users and queues the notices
    /// that make the SIP server forget their credentials and registrations. False when it
    /// was suspended already (nothing changes).
    pub async fn suspend_tenant(&self, id: TenantId, now: Timestamp) -> StoreResult<bool> {
        let suspend = sqlx::query(
            "UPDATE tenants SET suspended_at = $1 WHERE id = $2 AND suspended_at IS NULL",
        );
        let done = self
            .one_then(suspend.bind(now).bind(id), |mut tx| async move {
                sqlx::query(
                    "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE tenant_id = $1)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let aors = Self::tenant_aors(&mut tx, id, None).await?;
                pbx::insert_notices(&mut tx, &aors, now).await?;
                Ok(tx)
            })
            .await?;
        Ok(self.changed_if(done, Change::All).await)
    }

    /// Puts a suspended tenant back in service. False when it was not suspended.
    pub async fn resume_tenant(&self, id: TenantId) -> StoreResult<bool> {
        let query = sqlx::query(
            "UPDATE tenants SET suspended_at = NULL WHERE id = $1 AND suspended_at IS NOT NULL",
        );
        Ok(self
            .affected_forgetting(query.bind(id), Change::All)
            .await?
            == 1)
    }

    /// Deletes a tenant with its users and everything of theirs; the audit log keeps its
    /// history (no longer tied to the tenant row), and the SIP server forgets every user.
    pub async fn delete_tenant(&self, id: TenantId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // The write comes first so SQLite takes its write lock at once.
        sqlx::query("UPDATE audit_events SET tenant_id = NULL WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let aors = Self::tenant_aors(&mut tx, id, None).await?;
        let users = "(SELECT id FROM users WHERE tenant_id = $1)";
        // Explicit deletes as well as the cascades, so the result never depends on a
        // connection's foreign-key setting.
        for sql in [
            format!("DELETE FROM sessions WHERE user_id IN {users}"),
            format!("DELETE FROM reset_tokens WHERE user_id IN {users}"),
            format!("DELETE FROM security_questions WHERE user_id IN {users}"),
            format!("DELETE FROM caller_verifications WHERE user_id IN {users}"),
            format!("DELETE FROM outbox WHERE user_id IN {users} OR tenant_id = $1"),
            format!(
                "DELETE FROM signin_throttle WHERE key IN \
                 (SELECT {RESET_MAIL_KEY_SQL} FROM users u WHERE u.tenant_id = $1 \
                  UNION ALL SELECT {STAFF_RESET_MAIL_KEY_SQL} FROM users u WHERE u.tenant_id = $1)"
            ),
            "DELETE FROM api_idempotency WHERE token_id IN (SELECT id FROM api_tokens WHERE tenant_id = $1)".to_owned(),
            "DELETE FROM api_tokens WHERE tenant_id = $1".to_owned(),
            "DELETE FROM users WHERE tenant_id = $1".to_owned(),
            "DELETE FROM tenants WHERE id = $1".to_owned(),
        ] {
            sqlx::query(&sql).bind(id).execute(&mut *tx).await?;
        }
        pbx::insert_notices(&mut tx, &aors, now).await?;
        self.commit_forgetting(tx, Change::All).await
    }
}

/// Writes a tenant and its audit event (given the new tenant's id) in the caller's
/// transaction.
async fn insert_tenant_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &NewTenant<'_>,
    audit: &AuditRow<'_>,
    now: Timestamp,
) -> StoreResult<TenantId> {
    let insert = sqlx::query(
        "INSERT INTO tenants (code, name, sip_domain, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(t.code.as_str())
    .bind(t.name)
    .bind(t.sip_domain)
    .bind(now);
    let id = TenantId(new_id(insert, &mut **tx).await.map_err(classify)?);
    let audit = AuditRow {
        tenant_id: Some(id),
        ..*audit
    };
    super::audit::insert_audit(&mut **tx, &audit).await?;
    Ok(id)
}
