//! The one facade over SQLite and PostgreSQL. Every query is written once, in SQL both
//! databases accept; the few backend differences (connection pragmas, migrations) stay in
//! this module. Callers pass `now` in: storage never reads a clock.

mod admin;
mod api;
mod operators;
mod ops;
mod outbox;
mod passkeys;
mod pbx;
mod phone;
mod records;
mod recovery;
mod seed;
mod session_cache;
mod softphone;
mod throttle;
mod two_step;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::clock::Timestamp;
use crate::domain::{Extension, Role, TenantCode, Username};
pub use admin::{AuditFilter, EmailChanged, UserListRow};
pub use api::{ApiTokenRecord, ApiUserRow, IdempotentAnswer, TenantRow};
pub use operators::{
    AdminRow, OperatorId, OperatorRecord, OperatorSessionRecord, SecurityQuestionRecord,
    TenantListRow,
};
pub use ops::BackupError;
pub use outbox::{MailRecord, NewMail, OutboxMessage};
pub use passkeys::{CeremonyKind, NewPasskey, PasskeyId, PasskeyRecord};
pub use pbx::{
    PbxNotice, PbxTokenRecord, SipCredentialRow, UserWithoutSecret, CREDENTIAL_FRESH_FOR,
};
pub use phone::SealedSecrets;
pub use records::*;
pub use recovery::{NewResetLink, ResetRecord};
pub use session_cache::FRESH_FOR as SESSION_CACHE_FRESH_FOR;
use session_cache::{Change, Lookup, SessionCache};
pub use throttle::{AddressFailure, ThrottleKey, ThrottleState};
pub use two_step::{
    FactorOwner, NewPending, PendingPurpose, PendingRecord, SealedTotp, TotpRecord,
    TwoStepRequirement,
};

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
    /// A stored value that no longer parses as what was written (edited by hand?).
    #[error("stored {0} does not parse")]
    Corrupt(&'static str),
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

/// The columns every user row is read from, by these names (see [`user_from_row`]), for a
/// query over `users u JOIN tenants t`.
const USER_COLUMNS: &str =
    "u.id AS user_id, u.tenant_id AS tenant_id, t.code AS tenant_code, t.name AS tenant_name, \
     u.extension AS extension, u.name AS name, u.email AS email, u.role AS role, \
     u.password_hash AS password_hash, u.password_temporary AS password_temporary, \
     u.password_expires_at AS password_expires_at, u.last_sign_in_at AS last_sign_in_at, \
     t.sip_domain AS sip_domain, \
     CAST(CASE WHEN u.sip_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_sip_secret, \
     CAST(CASE WHEN u.voicemail_pin IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_pin, \
     CAST(CASE WHEN t.suspended_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS tenant_suspended";

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
            if let Some(file) = sqlite_file(url) {
                crate::private_files::private_sqlite(file)
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
        .bind(t.code.as_str())
        .bind(t.name)
        .bind(t.sip_domain)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok(TenantId(row.try_get(0)?))
    }

    pub async fn tenant_by_code(&self, code: &TenantCode) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id, code, name, sip_domain FROM tenants WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| tenant_from_row(&r)).transpose()
    }

    // ---- users ---------------------------------------------------------------------

    pub async fn insert_user(&self, u: &NewUser<'_>, now: Timestamp) -> StoreResult<UserId> {
        let row = sqlx::query(
            "INSERT INTO users (tenant_id, extension, name, email, role, password_hash, \
             password_temporary, password_expires_at, password_changed_at, created_at, sip_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
        )
        .bind(u.tenant_id.0)
        .bind(u.extension.as_str())
        .bind(u.name)
        .bind(u.email)
        .bind(u.role.as_str())
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

    pub async fn user_by_username(&self, username: &Username) -> StoreResult<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.id = u.tenant_id \
             WHERE t.code = $1 AND u.extension = $2"
        );
        let row = sqlx::query(&sql)
            .bind(username.tenant().as_str())
            .bind(username.extension().as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
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
            "SELECT {USER_COLUMNS}, s.id AS session_id, s.created_at AS session_created_at, \
             s.last_seen_at AS session_last_seen_at, s.authenticated_at AS session_authenticated_at \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id \
             WHERE s.token_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let user = user_from_row(&r)?;
        let session = SessionRecord {
            id: SessionId(r.try_get("session_id")?),
            user_id: user.id,
            created_at: Timestamp(r.try_get("session_created_at")?),
            last_seen_at: Timestamp(r.try_get("session_last_seen_at")?),
            authenticated_at: Timestamp(r.try_get("session_authenticated_at")?),
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

    // ---- audit ---------------------------------------------------------------------

    pub async fn insert_audit(&self, e: &AuditRow<'_>) -> StoreResult<()> {
        insert_audit(&self.pool, e).await
    }

    /// Records a refused attempt in its burst (see [`insert_audit_burst`]), in one
    /// transaction.
    pub async fn insert_audit_burst(&self, e: &AuditRow<'_>, since: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_audit_burst(&mut tx, e, since).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes audit events older than `before` (the retention); returns how many.
    pub async fn purge_audit(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE COALESCE(last_at, at) < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The newest audit events, optionally only of one kind (for the admin page and tests).
    pub async fn audit_events(
        &self,
        tenant: Option<TenantId>,
        kind: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR kind = $2) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(tenant.map(|t| t.0))
        .bind(kind)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// The columns every audit event is read from, by these names (see [`audit_from_row`]).
pub(crate) const AUDIT_COLUMNS: &str =
    "id, at, kind, actor, subject, client_addr, detail, repeats, last_at";

/// An audit event from a row that selected [`AUDIT_COLUMNS`].
fn audit_from_row(r: &AnyRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: r.try_get("id")?,
        at: Timestamp(r.try_get("at")?),
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        subject: r.try_get("subject")?,
        client_addr: r.try_get("client_addr")?,
        detail: r.try_get("detail")?,
        repeats: r.try_get("repeats")?,
        last_at: r.try_get::<Option<i64>, _>("last_at")?.map(Timestamp),
    })
}

/// Records a refused attempt as part of the open burst of the same kind, actor, address
/// and tenant since `since` (one more repeat, the last one now), or as a new event.
pub(crate) async fn insert_audit_burst(
    conn: &mut sqlx::AnyConnection,
    e: &AuditRow<'_>,
    since: Timestamp,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE audit_events SET repeats = repeats + 1, last_at = $1 WHERE id = ( \
           SELECT id FROM audit_events WHERE kind = $2 AND at > $3 \
             AND COALESCE(client_addr, '') = COALESCE($4, '') \
             AND COALESCE(actor, '') = COALESCE($5, '') \
             AND COALESCE(tenant_id, 0) = COALESCE($6, 0) \
           ORDER BY id DESC LIMIT 1)",
    )
    .bind(e.at.0)
    .bind(e.kind)
    .bind(since.0)
    .bind(e.client_addr)
    .bind(e.actor)
    .bind(e.tenant_id.map(|t| t.0))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        insert_audit(&mut *conn, e).await?;
    }
    Ok(())
}

pub(crate) async fn insert_audit<'e>(
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

/// A user from a row that selected [`USER_COLUMNS`]. Stored values were parsed before
/// they were written; one that no longer parses is reported, never passed on.
fn user_from_row(r: &AnyRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: UserId(r.try_get("user_id")?),
        tenant_id: TenantId(r.try_get("tenant_id")?),
        tenant_code: stored(r, "tenant_code", TenantCode::parse)?,
        tenant_name: r.try_get("tenant_name")?,
        extension: stored(r, "extension", Extension::parse)?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        role: stored(r, "role", Role::parse)?,
        password_hash: r.try_get("password_hash")?,
        password_temporary: r.try_get::<i64, _>("password_temporary")? != 0,
        password_expires_at: r
            .try_get::<Option<i64>, _>("password_expires_at")?
            .map(Timestamp),
        last_sign_in_at: r
            .try_get::<Option<i64>, _>("last_sign_in_at")?
            .map(Timestamp),
        sip_domain: r.try_get("sip_domain")?,
        has_sip_secret: r.try_get::<i64, _>("has_sip_secret")? != 0,
        has_pin: r.try_get::<i64, _>("has_pin")? != 0,
        tenant_suspended: r.try_get::<i64, _>("tenant_suspended")? != 0,
    })
}

/// A tenant from a row that selected `id, code, name, sip_domain` of `tenants`.
fn tenant_from_row(r: &AnyRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId(r.try_get("id")?),
        code: stored(r, "code", TenantCode::parse)?,
        name: r.try_get("name")?,
        sip_domain: r.try_get("sip_domain")?,
    })
}

/// A text column parsed back into its domain type.
fn stored<T, E>(
    r: &AnyRow,
    column: &'static str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> StoreResult<T> {
    let raw: String = r.try_get(column)?;
    parse(&raw).map_err(|_| StoreError::Corrupt(column))
}

/// The folder a `sqlite://PATH?…` URL's file lives in, so it can be created first.
fn sqlite_parent_dir(url: &str) -> Option<&Path> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}

/// The database file of a SQLite URL (none for an in-memory one).
fn sqlite_file(url: &str) -> Option<&Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(Path::new(path))
}
