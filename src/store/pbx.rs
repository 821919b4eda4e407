//! The phone system's records: the SIP credential rows the lookup reads (with a short-lived
//! copy in memory), PBX tokens (hashes only) and the queue of notices for the SIP server
//! (queued inside the transaction of the change that needs them, see [`insert_notices`]).
//!
//! The credential cache is a [`ForgettingCache`] like the session cache: every write of
//! this store that changes a user forgets that user's entry before it returns (found by
//! the user, without a scan), other nodes forget on the PostgreSQL notice, and an entry
//! answers for at most [`CREDENTIAL_FRESH_FOR`] even if a notice is lost. Unknown users are
//! never cached, so guessing cannot fill it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::Row;

use super::cache::{Cached, ForgettingCache, Reach};
use super::session_cache::Change;
use super::{record, Backend, Store, StoreError, StoreResult, TenantId, UserId};
use crate::clock::Timestamp;
use crate::domain::Extension;

/// How long a cached credential row may answer before the database is asked again.
pub const CREDENTIAL_FRESH_FOR: Duration = Duration::from_secs(30);
/// At most this many credentials are held; past it, the least recently used one goes.
const CAPACITY: usize = 200_000;

/// What the credential lookup needs of one extension: the sealed secret and what it is
/// sealed to.
#[derive(Debug, Clone)]
pub struct SipCredentialRow {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub extension: String,
    /// The tenant's SIP domain as stored (lowercase).
    pub domain: String,
    pub sealed_secret: Vec<u8>,
    /// The tenant is suspended: the lookup answers 403.
    pub suspended: bool,
}

/// A PBX token as listed (never the token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PbxTokenRecord {
    pub name: String,
    pub created_at: Timestamp,
}

/// A queued notice: make the SIP server forget `aor` (`EXT@DOMAIN`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PbxNotice {
    pub id: i64,
    pub aor: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
}

type Key = (String, String);

/// A cached credential is found again by its user.
impl Cached for SipCredentialRow {
    type Id = UserId;

    fn id(&self) -> UserId {
        self.user_id
    }
}

/// The in-memory copy of credential rows, keyed by (domain, extension).
pub(super) struct CredentialCache {
    rows: ForgettingCache<Key, SipCredentialRow>,
    loader: Arc<Loader>,
}

impl CredentialCache {
    pub(super) fn new(backend: Backend) -> CredentialCache {
        CredentialCache {
            rows: ForgettingCache::new(CAPACITY, CREDENTIAL_FRESH_FOR),
            loader: Arc::new(Loader::new(reads_at_once(backend))),
        }
    }

    /// Closes the read connections kept out of the pool, with the pool.
    pub(super) async fn close(&self) {
        let idle = std::mem::take(&mut *self.loader.idle());
        for conn in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// At most this many reads of credential rows run at once; lookups that miss the cache
/// meanwhile wait and are then read together, in one query. SQLite reads in this process,
/// on a thread per connection: two readers keep a small server's cores busy, more only
/// trade turns. PostgreSQL spends most of a short read on the statement itself, not on
/// the keys it is given: one reader with longer batches answered the most (measured with
/// a million users: 19.6 k/s with one, 18.2 k/s with two, 14.6 k/s with four).
fn reads_at_once(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 2,
        Backend::Postgres => 1,
    }
}
/// The most keys one read asks for.
const MOST_PER_READ: usize = 32;

/// Reads the rows of cache misses from the database, batching those that arrive while
/// earlier reads run: when a registration storm misses the cache (a SIP server restarted,
/// a million phones), one round trip answers many lookups instead of one each. A lone
/// lookup is read at once, alone, as before.
///
/// The reads run on connections of their own, taken out of the pool once and kept: a
/// pooled connection is tested with one more round trip (a ping, on SQLite one more
/// wake-up of its thread) every time it goes back to the pool, which on this path cost
/// as much as the read itself. Each read runs in a task of its own, so a lookup whose
/// client leaves cannot drop a read halfway and leave its connection mid-query.
struct Loader {
    waiting: Mutex<Vec<Waiting>>,
    reads: Arc<tokio::sync::Semaphore>,
    /// The read connections not in use now (at most `reads_at_once`).
    idle: Mutex<Vec<sqlx::AnyConnection>>,
}

struct Waiting {
    key: Key,
    answer: tokio::sync::oneshot::Sender<StoreResult<Option<SipCredentialRow>>>,
}

impl Loader {
    fn new(reads_at_once: usize) -> Loader {
        Loader {
            waiting: Mutex::new(Vec::new()),
            reads: Arc::new(tokio::sync::Semaphore::new(reads_at_once)),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Waiting>> {
        // A list of senders holds no invariant a panicking holder could break halfway.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn idle(&self) -> MutexGuard<'_, Vec<sqlx::AnyConnection>> {
        // A list of idle connections holds no invariant either.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The row of `key`: read by whichever lookup gets a turn first, together with every
    /// other key waiting then.
    async fn load(
        self: &Arc<Self>,
        pool: &sqlx::AnyPool,
        key: Key,
    ) -> StoreResult<Option<SipCredentialRow>> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.lock().push(Waiting { key, answer: tx });
        loop {
            let turn = tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or_else(|_| Err(read_lost())),
                turn = self.reads.clone().acquire_owned() => turn,
            };
            let batch: Vec<Waiting> = {
                // The longest waiting first.
                let mut waiting = self.lock();
                let n = waiting.len().min(MOST_PER_READ);
                waiting.drain(..n).collect()
            };
            if batch.is_empty() {
                // Every waiting key, this one too, is in a read already.
                drop(turn);
                return rx.await.unwrap_or_else(|_| Err(read_lost()));
            }
            let (loader, pool) = (self.clone(), pool.clone());
            tokio::spawn(async move {
                loader.answer(&pool, batch).await;
                drop(turn);
            });
            // This key may have been left for a later read (more were waiting than one
            // read takes): wait for its answer or for another turn.
        }
    }

    /// Reads `batch` and answers each of its lookups.
    async fn answer(&self, pool: &sqlx::AnyPool, batch: Vec<Waiting>) {
        let keys: Vec<Key> = batch.iter().map(|w| w.key.clone()).collect();
        match self.read(pool, &keys).await {
            Ok(rows) => {
                for (w, row) in batch.into_iter().zip(rows) {
                    let _ = w.answer.send(Ok(row));
                }
            }
            Err(e) => {
                let unavailable = e.is_unavailable();
                let mut batch = batch.into_iter();
                if let Some(w) = batch.next() {
                    let _ = w.answer.send(Err(e));
                }
                for w in batch {
                    // The database is away: the same answer for everyone. Any other
                    // failure: each of the others is read alone and meets its own.
                    let answer = if unavailable {
                        Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
                    } else {
                        self.read(pool, std::slice::from_ref(&w.key))
                            .await
                            .map(|mut rows| rows.pop().flatten())
                    };
                    let _ = w.answer.send(answer);
                }
            }
        }
    }

    /// The rows of `keys` on a read connection of this loader's (one is taken out of the
    /// pool when none is idle). A connection that failed other than by the database's own
    /// answer is closed, not kept.
    async fn read(
        &self,
        pool: &sqlx::AnyPool,
        keys: &[Key],
    ) -> StoreResult<Vec<Option<SipCredentialRow>>> {
        let idle = self.idle().pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => pool.acquire().await?.detach(),
        };
        let read = read_rows(&mut conn, keys).await;
        match &read {
            Ok(_) | Err(sqlx::Error::Database(_)) => self.idle().push(conn),
            Err(_) => drop(conn),
        }
        Ok(read?)
    }
}

/// The answer of a lookup whose read was lost (its task ended without answering).
fn read_lost() -> StoreError {
    StoreError::Unavailable(sqlx::Error::WorkerCrashed)
}

/// The credential rows of `keys`, in their order (`None` where there is none), in one query.
/// Each asked key carries its place in `keys`, so a found row needs no strings to be
/// matched back: the domain and extension it answers are the ones asked (the join
/// compares them exactly, and SIP domains are stored lowercase).
async fn read_rows(
    conn: &mut sqlx::AnyConnection,
    keys: &[Key],
) -> sqlx::Result<Vec<Option<SipCredentialRow>>> {
    let asked: Vec<String> = (0..keys.len())
        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect();
    // `column1`…`column3`: the names both databases give a VALUES list's columns.
    let sql = format!(
        "SELECT k.column1 AS place, u.id, u.tenant_id, u.sip_secret, \
         CAST(CASE WHEN t.suspended_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS suspended \
         FROM (VALUES {}) AS k \
         JOIN tenants t ON lower(t.sip_domain) = k.column2 \
         JOIN users u ON u.tenant_id = t.id AND u.extension = k.column3 \
         WHERE u.sip_secret IS NOT NULL",
        asked.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (place, (domain, extension)) in keys.iter().enumerate() {
        query = query.bind(place as i64).bind(domain).bind(extension);
    }
    let mut found: Vec<Option<SipCredentialRow>> = vec![None; keys.len()];
    for r in query.fetch_all(&mut *conn).await? {
        let place: i64 = r.try_get(0)?;
        let Some((slot, (domain, extension))) = usize::try_from(place)
            .ok()
            .and_then(|i| Some((found.get_mut(i)?, keys.get(i)?)))
        else {
            continue;
        };
        *slot = Some(SipCredentialRow {
            user_id: r.try_get(1)?,
            tenant_id: r.try_get(2)?,
            extension: extension.clone(),
            domain: domain.clone(),
            sealed_secret: r.try_get(3)?,
            suspended: r.try_get::<i64, _>(4)? != 0,
        });
    }
    Ok(found)
}

impl CredentialCache {
    /// A fresh entry, or the epoch to store a database answer under.
    fn get(&self, key: &Key, now: Timestamp) -> Result<SipCredentialRow, u64> {
        self.rows.get(key, now)
    }

    /// Keeps a database answer unless something changed since `epoch`.
    fn put(&self, key: Key, epoch: u64, row: &SipCredentialRow, now: Timestamp) {
        self.rows.put(key, epoch, row.clone(), now);
    }

    pub(super) fn forget(&self, change: Change) {
        self.rows.forget(match change {
            // A session alone never changes a credential.
            Change::Session(_) => Reach::Nothing,
            Change::User(id) => Reach::One(id),
            Change::All => Reach::All,
        });
    }
}

impl Store {
    /// The credential row of `extension` in the tenant whose SIP domain is `domain`
    /// (compared without regard to case), from memory when a fresh copy is there.
    pub async fn sip_credential(
        &self,
        domain: &str,
        extension: &Extension,
        now: Timestamp,
    ) -> StoreResult<Option<SipCredentialRow>> {
        let key = (domain.to_ascii_lowercase(), extension.as_str().to_owned());
        let epoch = match self.pbx.get(&key, now) {
            Ok(row) => return Ok(Some(row)),
            Err(epoch) => epoch,
        };
        let found = self.pbx.loader.load(&self.pool, key.clone()).await?;
        if let Some(row) = &found {
            self.pbx.put(key, epoch, row, now);
        }
        Ok(found)
    }

    /// Notices due at `now`, oldest first, each taken for `lease` so another node leaves it.
    pub async fn take_due_pbx_notices(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<PbxNotice>> {
        let due = sqlx::query(
            "SELECT id, aor, attempts, next_attempt_at FROM pbx_notifications \
             WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        );
        let notices: Vec<PbxNotice> = self.all(due.bind(now).bind(limit), record).await?;
        let mut taken = Vec::with_capacity(notices.len());
        for notice in notices {
            let claim = sqlx::query(
                "UPDATE pbx_notifications SET next_attempt_at = $1 \
                 WHERE id = $2 AND next_attempt_at = $3",
            )
            .bind(now.plus(lease))
            .bind(notice.id)
            .bind(notice.next_attempt_at);
            if self.affected_one(claim).await? {
                taken.push(notice);
            }
        }
        Ok(taken)
    }

    pub async fn pbx_notice_done(&self, id: i64) -> StoreResult<()> {
        self.run(sqlx::query("DELETE FROM pbx_notifications WHERE id = $1").bind(id))
            .await
    }

    pub async fn pbx_notice_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "UPDATE pbx_notifications SET attempts = attempts + 1, next_attempt_at = $1, \
                 last_error = $2 WHERE id = $3",
            )
            .bind(next_attempt_at)
            .bind(error)
            .bind(id),
        )
        .await
    }

    // ---- PBX tokens ----------------------------------------------------------------

    pub async fn insert_pbx_token(
        &self,
        name: &str,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        self.run_unique(
            sqlx::query(
                "INSERT INTO pbx_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(name)
            .bind(token_hash)
            .bind(now),
        )
        .await
    }

    pub async fn pbx_tokens(&self) -> StoreResult<Vec<PbxTokenRecord>> {
        self.all(
            sqlx::query("SELECT name, created_at FROM pbx_tokens ORDER BY name"),
            record,
        )
        .await
    }

    /// Every valid token's hash.
    pub async fn pbx_token_hashes(&self) -> StoreResult<Vec<Vec<u8>>> {
        self.all(sqlx::query("SELECT token_hash FROM pbx_tokens"), |r| {
            Ok(r.try_get("token_hash")?)
        })
        .await
    }

    /// Deletes the token named `name`; false when there was none.
    pub async fn delete_pbx_token(&self, name: &str) -> StoreResult<bool> {
        self.affected_one(sqlx::query("DELETE FROM pbx_tokens WHERE name = $1").bind(name))
            .await
    }
}

/// Queues, inside the caller's transaction, the notices that make the SIP server forget
/// these addresses of record: the notice exists exactly when the change does.
pub(super) async fn insert_notices(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    aors: &[impl AsRef<str>],
    now: Timestamp,
) -> StoreResult<()> {
    for aor in aors {
        sqlx::query(
            "INSERT INTO pbx_notifications (aor, created_at, next_attempt_at) VALUES ($1, $2, $2)",
        )
        .bind(aor.as_ref())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: i64) -> SipCredentialRow {
        SipCredentialRow {
            user_id: UserId(user),
            tenant_id: TenantId(1),
            extension: "201".into(),
            domain: "acme.example".into(),
            sealed_secret: vec![1, 2, 3],
            suspended: false,
        }
    }

    fn key(ext: &str) -> Key {
        ("acme.example".into(), ext.into())
    }

    #[test]
    fn past_its_bound_only_the_least_recently_used_credential_goes() {
        let cache = CredentialCache {
            rows: ForgettingCache::new(3, CREDENTIAL_FRESH_FOR),
            loader: Arc::new(Loader::new(1)),
        };
        let now = Timestamp(1_000);
        for user in 1..=3 {
            let ext = format!("20{user}");
            let epoch = cache.get(&key(&ext), now).unwrap_err();
            cache.put(
                key(&ext),
                epoch,
                &SipCredentialRow {
                    extension: ext.clone(),
                    ..row(user)
                },
                now,
            );
        }
        // 201 is used again, so 202 is now the least recently used.
        assert!(cache.get(&key("201"), now).is_ok());
        let epoch = cache.get(&key("204"), now).unwrap_err();
        cache.put(
            key("204"),
            epoch,
            &SipCredentialRow {
                extension: "204".into(),
                ..row(4)
            },
            now,
        );
        assert!(cache.get(&key("202"), now).is_err());
        for ext in ["201", "203", "204"] {
            assert!(cache.get(&key(ext), now).is_ok(), "{ext}");
        }
        // Forgetting a user finds its entry without a scan, and only its entry.
        cache.forget(Change::User(UserId(3)));
        assert!(cache.get(&key("203"), now).is_err());
        assert!(cache.get(&key("204"), now).is_ok());
        let (entries, users) = cache.rows.sizes();
        assert_eq!(users, entries);
    }

    #[test]
    fn a_cached_credential_answers_until_stale_or_forgotten() {
        let cache = CredentialCache::new(Backend::Sqlite);
        let now = Timestamp(1_000);
        let epoch = cache.get(&key("201"), now).unwrap_err();
        cache.put(key("201"), epoch, &row(7), now);
        assert!(cache
            .get(&key("201"), now.plus(Duration::from_secs(1)))
            .is_ok());
        assert!(cache
            .get(&key("201"), now.plus(CREDENTIAL_FRESH_FOR))
            .is_err());
        let epoch = cache.get(&key("201"), now).unwrap_err();
        cache.put(key("201"), epoch, &row(7), now);
        cache.forget(Change::Session(crate::store::SessionId(7)));
        assert!(cache.get(&key("201"), now).is_ok());
        cache.forget(Change::User(UserId(7)));
        assert!(cache.get(&key("201"), now).is_err());
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = CredentialCache::new(Backend::Sqlite);
        let now = Timestamp(1_000);
        let epoch = cache.get(&key("201"), now).unwrap_err();
        cache.forget(Change::User(UserId(99)));
        cache.put(key("201"), epoch, &row(7), now);
        assert!(cache.get(&key("201"), now).is_err());
    }
}
