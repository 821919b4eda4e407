//! The one facade over SQLite and PostgreSQL. Every query is written once, in SQL both
//! databases accept; the few backend differences (connection pragmas, migrations) stay in
//! this module. Callers pass `now` in: storage never reads a clock.

mod admin;
mod operators;
mod outbox;
mod pbx;
mod phone;
mod records;
mod recovery;
mod seed;
mod session_cache;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::clock::Timestamp;
pub use admin::{AuditFilter, UserListRow};
pub use operators::{
    AdminRow, OperatorId, OperatorRecord, OperatorSessionRecord, SecurityQuestionRecord,
    TenantListRow,
};
pub use outbox::{MailRecord, NewMail, OutboxMessage};
pub use pbx::{
    PbxNotice, PbxTokenRecord, SipCredentialRow, UserWithoutSecret, CREDENTIAL_FRESH_FOR,
};
pub use phone::SealedSecrets;
pub use records::*;
pub use recovery::{NewResetLink, ResetRecord};
pub use session_cache::FRESH_FOR as SESSION_CACHE_FRESH_FOR;
use session_cache::{Change, Lookup, SessionCache};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (duplicate tenant code, extension, name…).
    #[error("already exists")]
    Conflict,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(e),
    }
}

/// One more failure of a client address, counted and, at `limit`, locked until
/// `lock_until` (see [`Store::record_failed_check`]).
#[derive(Debug, Clone, Copy)]
pub struct AddressFailure<'a> {
    pub key: &'a str,
    pub now: Timestamp,
    pub window: Duration,
    pub limit: u32,
    pub lock_until: Timestamp,
}

/// The outcome of counting one sign-in attempt for a throttle key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    /// Attempts counted in the current window, this one included.
    pub attempts: i64,
    pub locked_until: Option<Timestamp>,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: Arc<str>,
    sessions: Arc<SessionCache>,
    /// Credential rows of the PBX lookup; forgotten with the sessions (see `pbx`).
    pbx: Arc<pbx::CredentialCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

const USER_COLUMNS: &str =
    "u.id, u.tenant_id, t.code, t.name, u.extension, u.name, u.email, u.role, \
     u.password_hash, u.password_temporary, u.password_expires_at, u.last_sign_in_at, t.sip_domain, \
     CAST(CASE WHEN u.sip_secret IS NULL THEN 0 ELSE 1 END AS BIGINT), \
     CAST(CASE WHEN u.voicemail_pin IS NULL THEN 0 ELSE 1 END AS BIGINT)";
/// How many columns `USER_COLUMNS` selects; columns selected after them start here.
const USER_COLUMN_COUNT: usize = 15;

impl Store {
    /// Connects and runs the embedded migrations of the matching backend.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        if backend == Backend::Sqlite {
            if let Some(dir) = sqlite_parent_dir(url) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // a writer wait for the lock instead of failing at once.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(url).await?;
        let store = Store {
            pool,
            backend,
            url: Arc::from(url),
            sessions: Arc::default(),
            pbx: Arc::default(),
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&store.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&store.pool).await?,
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- tenants -------------------------------------------------------------------

    pub async fn insert_tenant(&self, t: &NewTenant<'_>, now: Timestamp) -> StoreResult<TenantId> {
        let row = sqlx::query(
            "INSERT INTO tenants (code, name, sip_domain, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(t.code)
        .bind(t.name)
        .bind(t.sip_domain)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok(TenantId(row.try_get(0)?))
    }

    pub async fn tenant_by_code(&self, code: &str) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id, code, name, sip_domain FROM tenants WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Tenant {
                id: TenantId(r.try_get(0)?),
                code: r.try_get(1)?,
                name: r.try_get(2)?,
                sip_domain: r.try_get(3)?,
            })
        })
        .transpose()
    }

    // ---- users ---------------------------------------------------------------------

    pub async fn insert_user(&self, u: &NewUser<'_>, now: Timestamp) -> StoreResult<UserId> {
        let row = sqlx::query(
            "INSERT INTO users (tenant_id, extension, name, email, role, password_hash, \
             password_temporary, password_expires_at, password_changed_at, created_at, sip_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
        )
        .bind(u.tenant_id.0)
        .bind(u.extension)
        .bind(u.name)
        .bind(u.email)
        .bind(u.role)
        .bind(u.password_hash)
        .bind(i64::from(u.password_expires_at.is_some()))
        .bind(u.password_expires_at.map(|t| t.0))
        .bind(now.0)
        .bind(u.sip_secret)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok(UserId(row.try_get(0)?))
    }

    pub async fn user_by_username(
        &self,
        tenant_code: &str,
        extension: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.id = u.tenant_id \
             WHERE t.code = $1 AND u.extension = $2"
        );
        let row = sqlx::query(&sql)
            .bind(tenant_code)
            .bind(extension)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r, 0)).transpose()
    }

    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r, 0)).transpose()
    }

    pub async fn record_sign_in(&self, id: UserId, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        self.changed(Change::User(id)).await;
        Ok(())
    }

    /// Sets a password and, in the same transaction, ends every session of the user, kills
    /// their outstanding reset links, queues the notice (when given) and — when `keep` is
    /// given — opens the one replacement session the caller stays signed in on.
    pub async fn replace_password(
        &self,
        id: UserId,
        change: &PasswordChange<'_>,
        keep: Option<&[u8]>,
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<Option<SessionId>> {
        let mut tx = self.pool.begin().await?;
        // The write comes first so SQLite takes its write lock at once (no upgrade deadlock).
        set_password(&mut tx, id, change, now).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE reset_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
            .bind(now.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let session = match keep {
            Some(hash) => Some(insert_session(&mut tx, hash, id, now).await?),
            None => None,
        };
        if let Some(mail) = notice {
            outbox::enqueue(&mut tx, mail, now).await?;
        }
        tx.commit().await?;
        self.changed(Change::User(id)).await;
        Ok(session)
    }

    // ---- operators -----------------------------------------------------------------

    pub async fn insert_operator(
        &self,
        name: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO operators (name, password_hash, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(password_hash)
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    // ---- sessions ------------------------------------------------------------------

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
            "SELECT {USER_COLUMNS}, s.id, s.created_at, s.last_seen_at, s.authenticated_at \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id \
             WHERE s.token_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let user = user_from_row(&r, 0)?;
        let session = SessionRecord {
            id: SessionId(r.try_get(USER_COLUMN_COUNT)?),
            user_id: user.id,
            created_at: Timestamp(r.try_get(USER_COLUMN_COUNT + 1)?),
            last_seen_at: Timestamp(r.try_get(USER_COLUMN_COUNT + 2)?),
            authenticated_at: Timestamp(r.try_get(USER_COLUMN_COUNT + 3)?),
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

    /// Forgets cached sessions a committed write made wrong, here and — on PostgreSQL — on
    /// every other node. A notice that cannot be sent is logged: the other nodes' entries
    /// then run out on their own within the cache's freshness.
    async fn changed(&self, change: Change) {
        self.sessions.forget(change);
        self.pbx.forget(change);
        if self.backend == Backend::Postgres {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(session_cache::CHANNEL)
                .bind(change.payload())
                .execute(&self.pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not tell other nodes a session changed");
            }
        }
    }

    /// Keeps this node's session cache in step with the other nodes', until dropped: on
    /// PostgreSQL it listens for their changes; when the listening connection drops (and
    /// notices may have been missed) it forgets every cached session. Nothing to do on
    /// SQLite, where one node owns the file.
    pub async fn follow_other_nodes(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        loop {
            let listener = async {
                let mut l = sqlx::postgres::PgListener::connect(&self.url).await?;
                l.listen(session_cache::CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' session changes");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Anything cached before the listener was up may have missed a notice.
            self.sessions.forget(Change::All);
            self.pbx.forget(Change::All);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notice)) => {
                        let change = Change::parse(notice.payload());
                        self.sessions.forget(change);
                        self.pbx.forget(change);
                    }
                    Ok(None) => {
                        // The connection dropped; the next receive reconnects.
                        self.sessions.forget(Change::All);
                        self.pbx.forget(Change::All);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the session-change listener");
                        break;
                    }
                }
            }
        }
    }

    pub async fn count_user_sessions(&self, user: UserId) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
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

    // ---- sign-in throttling --------------------------------------------------------

    /// Counts one attempt for `key`, atomically, before any password is checked. The count
    /// starts again only after `window` without attempts (or when a lock has run out), so
    /// no 15-minute span can ever hold more attempts than the limit — bursts at a window's
    /// edge included. `window_start` holds the time of the latest attempt.
    pub async fn throttle_count(
        &self,
        key: &str,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<ThrottleState> {
        throttle_count(&self.pool, key, now, window).await
    }

    /// Forgets throttle rows nobody can be limited by any more, reset links long dead and
    /// caller verifications long past their window, so no table grows without bound.
    pub async fn purge_stale(&self, quiet_before: Timestamp, now: Timestamp) -> StoreResult<u64> {
        let throttle = sqlx::query(
            "DELETE FROM signin_throttle WHERE window_start < $1 AND (locked_until IS NULL OR locked_until < $2)",
        )
        .bind(quiet_before.0)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        let links = sqlx::query("DELETE FROM reset_tokens WHERE expires_at < $1")
            .bind(quiet_before.0)
            .execute(&self.pool)
            .await?;
        let verified = sqlx::query("DELETE FROM caller_verifications WHERE verified_at < $1")
            .bind(quiet_before.0)
            .execute(&self.pool)
            .await?;
        Ok(throttle.rows_affected() + links.rows_affected() + verified.rows_affected())
    }

    /// Records that a counted attempt failed; locks the key until `lock_until` once the
    /// window holds `limit` attempts. Returns when the key is locked until, if it is.
    pub async fn throttle_fail(
        &self,
        key: &str,
        limit: u32,
        lock_until: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        throttle_fail(&self.pool, key, limit, lock_until).await
    }

    /// Records a password that did not match, in one transaction (one commit where there
    /// were four): the failure under `key`, which locks it once its window holds `limit`
    /// attempts; one more failure of the client's address, when given; and the audit row
    /// that `audit` makes, told whether this failure locked `key`. Returns when `key` is
    /// locked until, if it is.
    pub async fn record_failed_check<'a>(
        &self,
        key: &str,
        limit: u32,
        lock_until: Timestamp,
        address: Option<&AddressFailure<'_>>,
        audit: impl FnOnce(Option<Timestamp>) -> AuditRow<'a>,
    ) -> StoreResult<Option<Timestamp>> {
        let mut tx = self.pool.begin().await?;
        // A write first, so SQLite takes its write lock at once.
        let locked = throttle_fail(&mut *tx, key, limit, lock_until).await?;
        if let Some(a) = address {
            throttle_count(&mut *tx, a.key, a.now, a.window).await?;
            throttle_fail(&mut *tx, a.key, a.limit, a.lock_until).await?;
        }
        insert_audit(&mut *tx, &audit(locked)).await?;
        tx.commit().await?;
        Ok(locked)
    }

    /// Gives back an attempt that was counted but never checked (the hashing pool was full).
    pub async fn throttle_release(&self, key: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signin_throttle SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets every counted attempt and lock for `key` (success, reset, unlock).
    pub async fn throttle_clear(&self, key: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM signin_throttle WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The current lock of `key`, without counting anything.
    pub async fn throttle_locked_until(&self, key: &str) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query("SELECT locked_until FROM signin_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>(0)?.map(Timestamp),
            None => None,
        })
    }

    // ---- audit ---------------------------------------------------------------------

    pub async fn insert_audit(&self, e: &AuditRow<'_>) -> StoreResult<()> {
        insert_audit(&self.pool, e).await
    }

    /// The newest audit events, optionally only of one kind (for the admin page and tests).
    pub async fn audit_events(
        &self,
        tenant: Option<TenantId>,
        kind: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, kind, actor, subject, client_addr, detail FROM audit_events \
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR kind = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.map(|t| t.0))
        .bind(kind)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// An audit event from a row selecting `id, at, kind, actor, subject, client_addr, detail`.
fn audit_from_row(r: &AnyRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: r.try_get(0)?,
        at: Timestamp(r.try_get(1)?),
        kind: r.try_get(2)?,
        actor: r.try_get(3)?,
        subject: r.try_get(4)?,
        client_addr: r.try_get(5)?,
        detail: r.try_get(6)?,
    })
}

async fn throttle_count<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &str,
    now: Timestamp,
    window: Duration,
) -> StoreResult<ThrottleState> {
    let row = sqlx::query(
        "INSERT INTO signin_throttle (key, window_start, attempts, locked_until) VALUES ($1, $2, 1, NULL) \
         ON CONFLICT (key) DO UPDATE SET \
           attempts = CASE WHEN (signin_throttle.locked_until IS NOT NULL AND signin_throttle.locked_until <= $2) \
                             OR (signin_throttle.locked_until IS NULL AND signin_throttle.window_start <= $3) \
                           THEN 1 ELSE signin_throttle.attempts + 1 END, \
           window_start = CASE WHEN signin_throttle.locked_until IS NOT NULL AND signin_throttle.locked_until > $2 \
                           THEN signin_throttle.window_start ELSE $2 END, \
           locked_until = CASE WHEN signin_throttle.locked_until <= $2 THEN NULL \
                           ELSE signin_throttle.locked_until END \
         RETURNING attempts, locked_until",
    )
    .bind(key)
    .bind(now.0)
    .bind(now.minus(window).0)
    .fetch_one(db)
    .await?;
    Ok(ThrottleState {
        attempts: row.try_get(0)?,
        locked_until: row.try_get::<Option<i64>, _>(1)?.map(Timestamp),
    })
}

async fn throttle_fail<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &str,
    limit: u32,
    lock_until: Timestamp,
) -> StoreResult<Option<Timestamp>> {
    let row = sqlx::query(
        "UPDATE signin_throttle SET locked_until = CASE \
           WHEN locked_until IS NULL AND attempts >= $2 THEN $3 ELSE locked_until END \
         WHERE key = $1 RETURNING locked_until",
    )
    .bind(key)
    .bind(i64::from(limit))
    .bind(lock_until.0)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<i64>, _>(0)?.map(Timestamp),
        None => None,
    })
}

async fn insert_audit<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    e: &AuditRow<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, tenant_id, kind, actor, subject, client_addr, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.at.0)
    .bind(e.tenant_id.map(|t| t.0))
    .bind(e.kind)
    .bind(e.actor)
    .bind(e.subject)
    .bind(e.client_addr)
    .bind(e.detail)
    .execute(db)
    .await?;
    Ok(())
}

async fn set_password(
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
    .bind(change.expires_at.map(|t| t.0))
    .bind(now.0)
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_session(
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

fn user_from_row(r: &AnyRow, at: usize) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: UserId(r.try_get(at)?),
        tenant_id: TenantId(r.try_get(at + 1)?),
        tenant_code: r.try_get(at + 2)?,
        tenant_name: r.try_get(at + 3)?,
        extension: r.try_get(at + 4)?,
        name: r.try_get(at + 5)?,
        email: r.try_get(at + 6)?,
        role: r.try_get(at + 7)?,
        password_hash: r.try_get(at + 8)?,
        password_temporary: r.try_get::<i64, _>(at + 9)? != 0,
        password_expires_at: r.try_get::<Option<i64>, _>(at + 10)?.map(Timestamp),
        last_sign_in_at: r.try_get::<Option<i64>, _>(at + 11)?.map(Timestamp),
        sip_domain: r.try_get(at + 12)?,
        has_sip_secret: r.try_get::<i64, _>(at + 13)? != 0,
        has_pin: r.try_get::<i64, _>(at + 14)? != 0,
    })
}

/// The folder a `sqlite://PATH?…` URL's file lives in, so it can be created first.
fn sqlite_parent_dir(url: &str) -> Option<&Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}
