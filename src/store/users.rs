//! Users: created (with their audit event, in one transaction), read (by username, id,
//! email, or extension within one tenant), listed a page or a cursor at a time with
//! whether each is locked out, edited, deleted, and their password replaced. Every query that reaches a tenant's users takes the tenant, so one
//! tenant's admin can never reach another tenant's rows; the lists join on the lockout
//! key's pattern from `throttle`, never a copy of it.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::session_cache::Change;
use super::sessions::SessionOrigin;
use super::throttle::{ThrottleKey, USERNAME_KEY_SQL};
use super::{
    classify, flag, new_id, outbox, page_sql, pbx, record, reset_links, search_pattern, sessions,
    stored, AnyQuery, AuditRow, NewMail, NewUser, NewUserRows, PasswordChange, SessionId, Store,
    StoreResult, TenantId, UserId, UserRecord,
};
use crate::clock::Timestamp;
use crate::domain::{Extension, Role, TenantCode, Username};

/// A row of the admin's user list.
#[derive(Debug, Clone)]
pub struct UserListRow {
    pub user: UserRecord,
    pub locked_until: Option<Timestamp>,
}

/// A user as the API shows it: the record, whether it is locked now, and when it was made.
#[derive(Debug, Clone)]
pub struct ApiUserRow {
    pub user: UserRecord,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A tenant admin as the console lists them.
#[derive(Debug, Clone)]
pub struct AdminRow {
    pub user: UserRecord,
    pub question: Option<String>,
    pub locked_until: Option<Timestamp>,
}

/// An admin changed a user's email: when, and the notice to the old address (if any).
#[derive(Debug, Clone, Copy)]
pub struct EmailChanged<'a> {
    pub now: Timestamp,
    pub notice: Option<&'a NewMail>,
}

/// The columns every user row is read from, by these names (see [`user_from_row`]), for a
/// query over `users u JOIN tenants t`.
pub(super) const USER_COLUMNS: &str =
    "u.id AS user_id, u.tenant_id AS tenant_id, t.code AS tenant_code, t.name AS tenant_name, \
     u.extension AS extension, u.name AS name, u.email AS email, u.role AS role, \
     u.password_hash AS password_hash, u.password_temporary AS password_temporary, \
     u.password_expires_at AS password_expires_at, u.last_sign_in_at AS last_sign_in_at, \
     t.sip_domain AS sip_domain, \
     CAST(CASE WHEN u.sip_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_sip_secret, \
     CAST(CASE WHEN u.voicemail_pin IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_pin, \
     CAST(CASE WHEN t.suspended_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS tenant_suspended";

/// The users `condition` selects (with what follows it, an order), with [`USER_COLUMNS`].
fn user_sql(condition: &str) -> String {
    format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE {condition}"
    )
}

impl Store {
    /// Adds a user of `tenant` and its audit event in one transaction, and returns the
    /// user as written (read in that transaction, so nothing after the commit can fail and
    /// lose a temporary password the caller has not shown yet). Their first password is a
    /// new password like any other: the sign-in lock of the name's
    /// [`ThrottleKey::username`] (counted while no account had it or under a deleted
    /// account that had it) is cleared with it.
    pub async fn insert_user(
        &self,
        tenant: TenantId,
        rows: &NewUserRows<'_>,
        now: Timestamp,
    ) -> StoreResult<ApiUserRow> {
        let mut tx = self.pool.begin().await?;
        let user = insert_user_in(&mut tx, tenant, rows, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user_by_username(&self, username: &Username) -> StoreResult<Option<UserRecord>> {
        let sql = user_sql("t.code = $1 AND u.extension = $2");
        self.optional(
            sqlx::query(&sql)
                .bind(username.tenant().as_str())
                .bind(username.extension().as_str()),
            user_from_row,
        )
        .await
    }

    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let sql = user_sql("u.id = $1");
        self.optional(sqlx::query(&sql).bind(id), user_from_row)
            .await
    }

    pub async fn record_sign_in(&self, id: UserId, now: Timestamp) -> StoreResult<()> {
        self.run_forgetting(
            sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id),
            Change::User(id),
        )
        .await
    }

    /// Sets a password and, in the same transaction, ends every session of the user, kills
    /// their outstanding reset links, queues the notice (when given) and — when `keep` is
    /// given (a token hash and where the caller is) — opens the one replacement session the
    /// caller stays signed in on.
    pub async fn replace_password(
        &self,
        id: UserId,
        change: &PasswordChange<'_>,
        keep: Option<(&[u8], &SessionOrigin)>,
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<Option<SessionId>> {
        let mut tx = self.pool.begin().await?;
        // The write comes first so SQLite takes its write lock at once (no upgrade deadlock).
        set_password(&mut tx, id, change, now).await?;
        let session = match keep {
            Some((hash, origin)) => {
                Some(sessions::insert_session(&mut tx, hash, id, Some(origin), now).await?)
            }
            None => None,
        };
        outbox::enqueue_notice(&mut tx, notice, now).await?;
        self.commit_forgetting(tx, Change::User(id)).await?;
        Ok(session)
    }

    pub async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>> {
        let sql = user_sql("u.email = $1 ORDER BY t.code, u.extension");
        self.all(sqlx::query(&sql).bind(email), user_from_row).await
    }

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
        let pattern = search_pattern(search);
        let filter = "u.tenant_id = $1 AND ($2 IS NULL OR u.extension LIKE $2 ESCAPE '\\' \
                      OR LOWER(u.name) LIKE $2 ESCAPE '\\' OR COALESCE(u.email, '') LIKE $2 ESCAPE '\\')";
        let select = format!(
            "SELECT {USER_COLUMNS}, th.locked_until AS locked_until FROM users u JOIN tenants t ON t.id = u.tenant_id \
             LEFT JOIN signin_throttle th ON th.key = {USERNAME_KEY_SQL} \
               AND th.locked_until > $3"
        );
        let order = "LENGTH(u.extension), u.extension";
        let (sql, count_sql) = page_sql(&select, "users u", filter, order, 3);
        let rows = sqlx::query(&sql)
            .bind(tenant)
            .bind(pattern.as_deref())
            .bind(now)
            .bind(limit)
            .bind(offset);
        let read = |r: &AnyRow| {
            Ok(UserListRow {
                user: user_from_row(r)?,
                locked_until: r.try_get("locked_until")?,
            })
        };
        let count = sqlx::query(&count_sql)
            .bind(tenant)
            .bind(pattern.as_deref());
        self.page(rows, read, count).await
    }

    /// A user of this tenant by extension; another tenant's user is simply not found.
    pub async fn user_in_tenant(
        &self,
        tenant: TenantId,
        extension: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = user_sql("u.tenant_id = $1 AND u.extension = $2");
        self.optional(
            sqlx::query(&sql).bind(tenant).bind(extension),
            user_from_row,
        )
        .await
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
        .bind(id)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 1 {
            if let Some(changed) = email_changed {
                reset_links::end_reset_links(&mut tx, id, changed.now).await?;
                outbox::enqueue_notice(&mut tx, changed.notice, changed.now).await?;
            }
        }
        self.commit_forgetting(tx, Change::User(id)).await?;
        Ok(done.rows_affected() == 1)
    }

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
        let delete = sqlx::query(
            "DELETE FROM users WHERE id = $1 AND tenant_id = $2 \
             AND (role <> 'admin' OR (SELECT COUNT(*) FROM users WHERE tenant_id = $2 AND role = 'admin') > 1)",
        );
        let done = Self::one_then_in(tx, delete.bind(id).bind(tenant), |mut tx| async move {
            // Explicit deletes as well as the cascades, so the result never depends on a
            // connection's foreign-key setting.
            for sql in [
                "DELETE FROM sessions WHERE user_id = $1",
                "DELETE FROM reset_tokens WHERE user_id = $1",
                "DELETE FROM outbox WHERE user_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            // The mail limits' counters go too: a user who later gets the same id (SQLite
            // reuses the highest) must not inherit them.
            sqlx::query("DELETE FROM signin_throttle WHERE key IN ($1, $2)")
                .bind(ThrottleKey::reset_mail(id).as_str())
                .bind(ThrottleKey::reset_mail_by_staff(id).as_str())
                .execute(&mut *tx)
                .await?;
            pbx::insert_notices(&mut tx, &[aor], now).await?;
            Ok(tx)
        })
        .await?;
        Ok(self.changed_if(done, Change::User(id)).await)
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
        self.all(sqlx::query(&sql).bind(tenant).bind(now), |r| {
            Ok(AdminRow {
                user: user_from_row(r)?,
                question: r.try_get("question")?,
                locked_until: r.try_get("locked_until")?,
            })
        })
        .await
    }

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
        self.all(
            sqlx::query(&sql)
                .bind(tenant)
                .bind(now)
                .bind(after)
                .bind(limit),
            api_user_row,
        )
        .await
    }

    pub async fn api_user(
        &self,
        tenant: TenantId,
        extension: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ApiUserRow>> {
        let sql = Self::api_user_sql("u.extension = $3");
        self.optional(
            sqlx::query(&sql).bind(tenant).bind(now).bind(extension),
            api_user_row,
        )
        .await
    }
}

/// [`Store::insert_user`] inside the caller's transaction.
pub(super) async fn insert_user_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: TenantId,
    rows: &NewUserRows<'_>,
    now: Timestamp,
) -> StoreResult<ApiUserRow> {
    let sql = format!(
        "INSERT INTO users ({NEW_USER_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id"
    );
    let insert = bind_new_user(sqlx::query(&sql), tenant, &rows.user, now);
    let id = UserId(new_id(insert, &mut **tx).await.map_err(classify)?);
    super::throttle::throttle_clear(&mut **tx, rows.username_key).await?;
    let audit = AuditRow {
        tenant_id: Some(tenant),
        ..rows.audit
    };
    super::audit::insert_audit(&mut **tx, &audit).await?;
    let written = sqlx::query(&Store::api_user_sql("u.id = $3"))
        .bind(tenant)
        .bind(now)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    api_user_row(&written)
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
        .bind(tenant)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The eleven columns a new user is written to, in the order of [`bind_new_user`]'s ten
/// values: the ninth (`now`) fills both `password_changed_at` and `created_at`.
pub(super) const NEW_USER_COLUMNS: &str =
    "tenant_id, extension, name, email, role, password_hash, password_temporary, \
     password_expires_at, password_changed_at, created_at, sip_secret";

/// Binds a new user's ten values, for [`NEW_USER_COLUMNS`].
pub(super) fn bind_new_user<'q>(
    query: AnyQuery<'q>,
    tenant: TenantId,
    u: &NewUser<'q>,
    now: Timestamp,
) -> AnyQuery<'q> {
    query
        .bind(tenant)
        .bind(u.extension.as_str())
        .bind(u.name)
        .bind(u.email)
        .bind(u.role.as_str())
        .bind(u.password_hash)
        .bind(i64::from(u.password_expires_at.is_some()))
        .bind(u.password_expires_at)
        .bind(now)
        .bind(u.sip_secret)
}

/// Sets a password and ends what the old one opened: every session of the user and
/// their outstanding reset links.
pub(super) async fn set_password(
    conn: &mut sqlx::AnyConnection,
    id: UserId,
    change: &PasswordChange<'_>,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, password_temporary = $2, password_expires_at = $3, \
         password_changed_at = $4 WHERE id = $5",
    )
    .bind(change.password_hash)
    .bind(i64::from(change.expires_at.is_some()))
    .bind(change.expires_at)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    super::throttle::throttle_clear(&mut *conn, change.username_key).await?;
    reset_links::end_reset_links(conn, id, now).await
}

/// A user from a row that selected [`USER_COLUMNS`]. Stored values were parsed before
/// they were written; one that no longer parses is reported, never passed on.
pub(super) fn user_from_row(r: &AnyRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: r.try_get("user_id")?,
        tenant_id: r.try_get("tenant_id")?,
        tenant_code: stored(r, "tenant_code", TenantCode::parse)?,
        tenant_name: r.try_get("tenant_name")?,
        extension: stored(r, "extension", Extension::parse)?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        role: stored(r, "role", Role::parse)?,
        password_hash: r.try_get("password_hash")?,
        password_temporary: flag(r, "password_temporary")?,
        password_expires_at: r.try_get("password_expires_at")?,
        last_sign_in_at: r.try_get("last_sign_in_at")?,
        sip_domain: r.try_get("sip_domain")?,
        has_sip_secret: flag(r, "has_sip_secret")?,
        has_pin: flag(r, "has_pin")?,
        tenant_suspended: flag(r, "tenant_suspended")?,
    })
}

/// A row that selected a record's columns beside [`USER_COLUMNS`] (its `user_id` the
/// user's id), as the record and its user.
pub(super) fn with_user<T: for<'r> sqlx::FromRow<'r, AnyRow>>(
    r: &AnyRow,
) -> StoreResult<(T, UserRecord)> {
    Ok((record(r)?, user_from_row(r)?))
}

fn api_user_row(r: &AnyRow) -> StoreResult<ApiUserRow> {
    Ok(ApiUserRow {
        user: user_from_row(r)?,
        locked_until: r.try_get("locked_until")?,
        created_at: r.try_get("user_created_at")?,
    })
}
