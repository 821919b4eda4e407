//! The one facade over SQLite and PostgreSQL, one module per kind of record. Every query
//! is written once, in SQL both databases accept; the few backend differences (connection
//! pragmas, migrations, the cross-node notice, backups) stay in this module and `ops`.
//! Callers pass `now` in: storage never reads a clock.
//!
//! - `tenants`, `users`, `sessions`, `operators`, `security_questions`: the accounts.
//! - `throttle`: every limit's counter and key format; `audit`: the security event log.
//! - `outbox`: mail; `reset_links`: password reset links.
//! - `device_secrets`: sealed SIP secrets, voicemail PINs and the data-key checks;
//!   `pbx`: the SIP server's credential lookup, tokens and notices.
//! - `api_tokens`: API tokens and idempotent answers; `passkeys`: WebAuthn credentials
//!   and the ceremonies in flight.
//! - `seed`: bulk loading; `ops`: backup and purges; `test_support`: reads only tests use.
//! - `records`: the ids and rows the modules share; `cache`: the shape of the session cache
//!   (`session_cache`) and of the credential cache (in `pbx`).

mod api_tokens;
mod audit;
mod cache;
mod device_secrets;
mod operators;
mod ops;
mod outbox;
mod passkeys;
mod pbx;
mod records;
mod reset_links;
mod security_questions;
mod seed;
mod session_cache;
mod sessions;
mod tenants;
mod test_support;
mod throttle;
mod two_step;
mod users;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub use api_tokens::{ApiTokenRecord, Claimed, IdempotentAnswer};
pub use audit::{AuditFilter, Burst};
pub use device_secrets::{SealedSecrets, UserWithoutSecret, UsersWalk};
pub use operators::{OperatorId, OperatorRecord, OperatorSessionRecord};
pub use ops::{missing_sqlite_database, BackupError};
pub use outbox::{MailRecord, NewMail, OutboxMessage};
pub use passkeys::{CeremonyKind, NewPasskey, PasskeyId, PasskeyRecord};
pub use pbx::{PbxNotice, PbxTokenRecord, SipCredentialRow, CREDENTIAL_FRESH_FOR};
pub use records::*;
pub use reset_links::{NewResetLink, ResetRecord};
pub use security_questions::SecurityQuestionRecord;
pub use session_cache::FRESH_FOR as SESSION_CACHE_FRESH_FOR;
use session_cache::{Change, SessionCache};
pub use sessions::{SessionListRow, SessionOrigin};
pub use tenants::{TenantListRow, TenantRow};
pub use throttle::{AddressFailure, ThrottleKey, ThrottleState};
pub use two_step::{
    FactorOwner, NewPending, PendingPurpose, PendingRecord, SealedTotp, TotpRecord,
};
pub use users::{AdminRow, ApiUserRow, EmailChanged, UserListRow};

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
    /// The database cannot be reached just now: no connection within the pool's wait, or
    /// the connection dropped, or the server is shutting down. A retry later may work;
    /// pages answer 503 (see [`StoreError::is_unavailable`]).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// A stored value that no longer parses as what was written (edited by hand?).
    #[error("stored {0} does not parse")]
    Corrupt(&'static str),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if unreachable_database(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached (rather than refusing or failing this one
    /// operation): the caller may say "try again shortly" instead of "something broke".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// How long a request waits for a database connection before it is answered "unavailable".
/// On PostgreSQL, a few seconds: when the database is gone, the pool retries refused
/// connections until this runs out, and a person should not watch a page hang for longer.
/// SQLite's file is always there; its wait is for a free connection under load.
const POSTGRES_CONNECTION_WAIT: Duration = Duration::from_secs(4);
const SQLITE_CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// Errors that mean "the database is not there just now": the pool found no connection in
/// time (refused connections are retried until then), the connection broke mid-request,
/// or PostgreSQL said it is shutting down, starting up or out of connections.
fn unreachable_database(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| {
                let code = pg.code();
                // 08: connection exception; 57P01–57P03: admin/crash shutdown, cannot
                // connect now; 53300: too many connections.
                code.starts_with("08") || code.starts_with("57P0") || code == "53300"
            }),
        _ => false,
    }
}

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

/// A query with its values bound, as the record modules build them.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A transaction on the store's pool.
type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Store {
    /// Runs a write.
    async fn run(&self, query: AnyQuery<'_>) -> StoreResult<()> {
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// Runs a write that makes cached sessions wrong, then forgets what it changed (see
    /// [`Store::changed`]); how many rows it changed.
    async fn affected_forgetting(&self, query: AnyQuery<'_>, change: Change) -> StoreResult<u64> {
        let done = self.affected(query).await?;
        self.changed(change).await;
        Ok(done)
    }

    /// [`Store::affected_forgetting`], when how many rows does not matter.
    async fn run_forgetting(&self, query: AnyQuery<'_>, change: Change) -> StoreResult<()> {
        self.affected_forgetting(query, change).await.map(drop)
    }

    /// Runs a write a unique constraint may refuse ([`StoreError::Conflict`]).
    async fn run_unique(&self, query: AnyQuery<'_>) -> StoreResult<()> {
        query.execute(&self.pool).await.map_err(classify)?;
        Ok(())
    }

    /// Runs a write and answers how many rows it changed.
    async fn affected(&self, query: AnyQuery<'_>) -> StoreResult<u64> {
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    /// Runs a write of one row; false when there was no such row to change.
    async fn affected_one(&self, query: AnyQuery<'_>) -> StoreResult<bool> {
        Ok(self.affected(query).await? == 1)
    }

    /// Begins a transaction with `first`, a write of one row, and when it changed its row
    /// runs `then` in the same transaction (handed over and handed back) and commits;
    /// false, the transaction rolled back, when there was no such row to change.
    async fn one_then<Then: Future<Output = StoreResult<Tx>>>(
        &self,
        first: AnyQuery<'_>,
        then: impl FnOnce(Tx) -> Then,
    ) -> StoreResult<bool> {
        Self::one_then_in(self.pool.begin().await?, first, then).await
    }

    /// [`Store::one_then`] in a transaction begun already (which rolls back without the row).
    async fn one_then_in<Then: Future<Output = StoreResult<Tx>>>(
        mut tx: Tx,
        first: AnyQuery<'_>,
        then: impl FnOnce(Tx) -> Then,
    ) -> StoreResult<bool> {
        if first.execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        then(tx).await?.commit().await?;
        Ok(true)
    }

    /// Forgets what a write that may have changed nothing changed, when it did; whether
    /// it did.
    async fn changed_if(&self, done: bool, change: Change) -> bool {
        if done {
            self.changed(change).await;
        }
        done
    }

    /// Commits a write that made cached sessions or credentials wrong, then forgets what
    /// it changed (see [`Store::changed`]).
    async fn commit_forgetting(&self, tx: Tx, change: Change) -> StoreResult<()> {
        tx.commit().await?;
        self.changed(change).await;
        Ok(())
    }

    /// The row `query` selects, if any, read by `read`.
    async fn optional<T>(
        &self,
        query: AnyQuery<'_>,
        read: impl Fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(read).transpose()
    }

    /// Every row `query` selects, each read by `read`.
    async fn all<T>(
        &self,
        query: AnyQuery<'_>,
        read: impl Fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(read)
            .collect()
    }

    /// The first value of the one row `query` answers (a `COUNT(*)`, a `MAX(…)`).
    async fn value<T>(&self, query: AnyQuery<'_>) -> StoreResult<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        Ok(query.fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// A walk over a whole table a page at a time: `columns` of up to `limit` rows of
    /// `table` with an id above `after`, in id order, and when given only those the
    /// condition `only` keeps; each read by `read`.
    async fn after_id<T>(
        &self,
        table: &str,
        columns: &str,
        only: Option<&str>,
        after: i64,
        limit: i64,
        read: impl Fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let only = only.map(|c| format!(" AND ({c})")).unwrap_or_default();
        let sql = format!("SELECT {columns} FROM {table} WHERE id > $1{only} ORDER BY id LIMIT $2");
        self.all(sqlx::query(&sql).bind(after).bind(limit), read)
            .await
    }

    /// One page of a list: the rows `rows` selects, each read by `read`, and the total
    /// the `count` query answers.
    async fn page<T>(
        &self,
        rows: AnyQuery<'_>,
        read: impl Fn(&AnyRow) -> StoreResult<T>,
        count: AnyQuery<'_>,
    ) -> StoreResult<(Vec<T>, i64)> {
        Ok((self.all(rows, read).await?, self.value(count).await?))
    }
}

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
            // sqlx tests a connection when it is released (and closes a broken one); the
            // second test it makes by default, before every acquire, is one more round trip
            // on every query. A connection that broke while idle fails its next query
            // (StoreError::Unavailable, 503) and is closed when released.
            .test_before_acquire(false)
            .acquire_timeout(match backend {
                Backend::Sqlite => SQLITE_CONNECTION_WAIT,
                Backend::Postgres => POSTGRES_CONNECTION_WAIT,
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // a writer wait for the lock instead of failing at once. Reads come
                        // from the file mapped into memory (up to 1 GiB of it) rather than
                        // through a copy into each connection's own page cache: the pages
                        // are the operating system's cache, shared by every connection.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                             PRAGMA mmap_size = 1073741824;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = match options.connect(url).await {
            Ok(pool) => pool,
            // The pool only says that it waited; one direct connection says why (refused,
            // no such role, bad TLS setting), which is what a person starting it needs.
            Err(sqlx::Error::PoolTimedOut) => {
                let direct = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await;
                return Err(direct.err().unwrap_or(sqlx::Error::PoolTimedOut).into());
            }
            Err(e) => return Err(e.into()),
        };
        let store = Store {
            pool,
            backend,
            url: Arc::from(url),
            sessions: Arc::default(),
            pbx: Arc::new(pbx::CredentialCache::new(backend)),
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
        self.run(sqlx::query("SELECT 1")).await
    }

    pub async fn close(&self) {
        self.pbx.close().await;
        self.pool.close().await;
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
}

/// The id an `INSERT … RETURNING id` gave its new row.
async fn new_id<'q, E>(query: AnyQuery<'q>, db: E) -> sqlx::Result<i64>
where
    E: Executor<'q, Database = sqlx::Any> + 'q,
{
    query.fetch_one(db).await?.try_get(0)
}

/// The SQL of one page of a list and of how many rows the whole list holds: `select` (the
/// columns and the tables they come from) of the rows `filter` keeps, in `order`, the
/// page's `LIMIT` and `OFFSET` the placeholders after the first `params`; the count over
/// `counted`, the listed table alone.
fn page_sql(
    select: &str,
    counted: &str,
    filter: &str,
    order: &str,
    params: usize,
) -> (String, String) {
    let (limit, offset) = (params + 1, params + 2);
    (
        format!("{select} WHERE {filter} ORDER BY {order} LIMIT ${limit} OFFSET ${offset}"),
        format!("SELECT COUNT(*) FROM {counted} WHERE {filter}"),
    )
}

/// The LIKE pattern of a search: anywhere in the text, without regard to case, its
/// wildcards taken literally.
fn search_pattern(search: Option<&str>) -> Option<String> {
    search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())))
}

/// Escapes LIKE wildcards so a search for "50%" matches literally.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

/// A row read as the record whose fields are named as its columns.
fn record<T: for<'r> sqlx::FromRow<'r, AnyRow>>(r: &AnyRow) -> StoreResult<T> {
    Ok(T::from_row(r)?)
}

/// A flag read back from the 0 or 1 it is stored or selected as (an integer, the same on
/// both databases).
fn flag(r: &AnyRow, column: &'static str) -> StoreResult<bool> {
    Ok(r.try_get::<i64, _>(column)? != 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_told_apart_from_a_failed_query() {
        let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(refused()),
        ] {
            assert!(StoreError::from(e).is_unavailable());
        }
        for e in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("id".into()),
            sqlx::Error::Protocol("unexpected message".into()),
        ] {
            assert!(!StoreError::from(e).is_unavailable());
        }
        assert!(!StoreError::Conflict.is_unavailable());
    }
}
