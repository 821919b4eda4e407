//! What a tenant admin reads and changes: the user list (searched, paged, with lock state),
//! edits and deletes scoped to one tenant, and the audit log. Every query takes the
//! tenant, so one tenant's admin can never reach another tenant's rows.

use sqlx::Row;

use super::session_cache::Change;
use super::throttle::USERNAME_KEY_SQL;
use super::{
    audit_from_row, user_from_row, AuditRecord, Store, StoreResult, TenantId, UserId, UserRecord,
    AUDIT_COLUMNS, USER_COLUMNS,
};
use crate::clock::Timestamp;

/// A row of the admin's user list.
#[derive(Debug, Clone)]
pub struct UserListRow {
    pub user: UserRecord,
    pub locked_until: Option<Timestamp>,
}

/// Filters for the audit page.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    /// Events where this username acted or was acted on.
    pub username: Option<&'a str>,
    pub kind: Option<&'a str>,
}

impl Store {
    /// One page of a tenant's users, searched by extension, name or email, with whether
    /// each is locked out right now.
    pub async fn list_users(
        &self,
        tenant: TenantId,
        search: Option<&str>,
        now: Timestamp,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<UserListRow>, i64)> {
        let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
        let filter = "u.tenant_id = $1 AND ($2 IS NULL OR u.extension LIKE $2 ESCAPE '\\' \
                      OR LOWER(u.name) LIKE $2 ESCAPE '\\' OR COALESCE(u.email, '') LIKE $2 ESCAPE '\\')";
        let sql = format!(
            "SELECT {USER_COLUMNS}, th.locked_until AS locked_until FROM users u JOIN tenants t ON t.id = u.tenant_id \
             LEFT JOIN signin_throttle th ON th.key = {USERNAME_KEY_SQL} \
               AND th.locked_until > $3 \
             WHERE {filter} ORDER BY LENGTH(u.extension), u.extension LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(pattern.as_deref())
            .bind(now.0)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let list = rows
            .iter()
            .map(|r| {
                Ok(UserListRow {
                    user: user_from_row(r)?,
                    locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(Timestamp),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let count_sql = format!("SELECT COUNT(*) FROM users u WHERE {filter}");
        let total: i64 = sqlx::query(&count_sql)
            .bind(tenant.0)
            .bind(pattern.as_deref())
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok((list, total))
    }

    /// A user of this tenant by extension; another tenant's user is simply not found.
    pub async fn user_in_tenant(
        &self,
        tenant: TenantId,
        extension: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.id = u.tenant_id \
             WHERE u.tenant_id = $1 AND u.extension = $2"
        );
        let row = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(extension)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Changes name, email and role. Taking the admin role away fails (returns false,
    /// changing nothing) when the user is the tenant's last admin. When the email changes
    /// (`email_changed`), in the same transaction the user's outstanding reset links end
    /// (they went to the old address) and the notice to the old address is queued.
    pub async fn update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        name: &str,
        email: Option<&str>,
        role: &str,
        email_changed: Option<EmailChanged<'_>>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        lock_tenant_admins(&mut tx, tenant).await?;
        let done = sqlx::query(
            "UPDATE users SET name = $1, email = $2, role = $3 WHERE id = $4 AND tenant_id = $5 \
             AND ($3 = 'admin' OR role <> 'admin' \
                  OR (SELECT COUNT(*) FROM users WHERE tenant_id = $5 AND role = 'admin') > 1)",
        )
        .bind(name)
        .bind(email)
        .bind(role)
        .bind(id.0)
        .bind(tenant.0)
        .execute(&mut *tx)
        .await
        .map_err(super::classify)?;
        if done.rows_affected() == 1 {
            if let Some(changed) = email_changed {
                sqlx::query(
                    "UPDATE reset_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
                )
                .bind(changed.now.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                if let Some(mail) = changed.notice {
                    super::outbox::enqueue(&mut tx, mail, changed.now).await?;
                }
            }
        }
        tx.commit().await?;
        self.changed(Change::User(id)).await;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a user with their sessions, links and mail records (cascades); the audit log
    /// keeps their history. Fails (false) for the tenant's last admin.
    /// Deletes a user (never the tenant's last admin) with their sessions, links and mail,
    /// and in the same transaction queues the notice that tells the SIP server to forget
    /// `aor`. False, changing nothing, when the user is the last admin.
    pub async fn delete_user(
        &self,
        tenant: TenantId,
        id: UserId,
        aor: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        lock_tenant_admins(&mut tx, tenant).await?;
        // Explicit deletes as well as the cascades, so the result never depends on a
        // connection's foreign-key setting.
        let done = sqlx::query(
            "DELETE FROM users WHERE id = $1 AND tenant_id = $2 \
             AND (role <> 'admin' OR (SELECT COUNT(*) FROM users WHERE tenant_id = $2 AND role = 'admin') > 1)",
        )
        .bind(id.0)
        .bind(tenant.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM reset_tokens WHERE user_id = $1",
            "DELETE FROM outbox WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(id.0).execute(&mut *tx).await?;
        }
        super::pbx::insert_notice(&mut tx, aor, now).await?;
        tx.commit().await?;
        self.changed(Change::User(id)).await;
        Ok(true)
    }

    /// One page of a tenant's audit log, newest first.
    pub async fn audit_page(
        &self,
        tenant: TenantId,
        filter: &AuditFilter<'_>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let condition = "tenant_id = $1 AND ($2 IS NULL OR actor = $2 OR subject = $2) AND ($3 IS NULL OR kind = $3)";
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE {condition} ORDER BY id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(tenant.0)
        .bind(filter.username)
        .bind(filter.kind)
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
        .bind(tenant.0)
        .bind(filter.username)
        .bind(filter.kind)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok((events, total))
    }
}

/// An admin changed a user's email: when, and the notice to the old address (if any).
#[derive(Debug, Clone, Copy)]
pub struct EmailChanged<'a> {
    pub now: Timestamp,
    pub notice: Option<&'a super::NewMail>,
}

/// Takes the tenant's row lock before its admins are counted, so two concurrent
/// demotions or deletions of two different admins run one after the other and the
/// second sees the first: under PostgreSQL's READ COMMITTED both would otherwise count
/// two admins and leave none. A no-op write, so it is the same SQL on both databases
/// (on SQLite it takes the one write lock at once).
async fn lock_tenant_admins(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: TenantId,
) -> StoreResult<()> {
    sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
        .bind(tenant.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Escapes LIKE wildcards so a search for "50%" matches literally.
pub(super) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
