//! The phone system's records: the SIP credential rows the lookup reads (with a short-lived
//! copy in memory), PBX tokens (hashes only) and the queue of notices for the SIP server
//! (queued inside the transaction of the change that needs them, see [`insert_notices`]).
//!
//! The credential cache follows the same rules as the session cache: every write of this
//! store that changes a user forgets that user's entries before it returns, other nodes
//! forget on the PostgreSQL notice, and an entry answers for at most [`CREDENTIAL_FRESH_FOR`]
//! even if a notice is lost. Unknown users are never cached, so guessing cannot fill it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sqlx::Row;

use super::session_cache::Change;
use super::{classify, Store, StoreResult, TenantId, UserId};
use crate::clock::Timestamp;

/// How long a cached credential row may answer before the database is asked again.
pub const CREDENTIAL_FRESH_FOR: Duration = Duration::from_secs(30);
/// At most this many credentials are held; past it, stale entries go, then all of them.
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
#[derive(Debug, Clone)]
pub struct PbxTokenRecord {
    pub name: String,
    pub created_at: Timestamp,
}

/// A queued notice: make the SIP server forget `aor` (`EXT@DOMAIN`).
#[derive(Debug, Clone)]
pub struct PbxNotice {
    pub id: i64,
    pub aor: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
}

type Key = (String, String);

struct Entry {
    row: SipCredentialRow,
    read_at: Timestamp,
}

#[derive(Default)]
struct Inner {
    by_aor: HashMap<Key, Entry>,
    epoch: u64,
}

/// The in-memory copy of credential rows, keyed by (domain, extension).
#[derive(Default)]
pub(super) struct CredentialCache {
    inner: Mutex<Inner>,
}

impl CredentialCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map holds no invariant a panicking holder could break halfway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh entry, or the epoch to store a database answer under.
    fn get(&self, key: &Key, now: Timestamp) -> Result<SipCredentialRow, u64> {
        let mut inner = self.lock();
        match inner.by_aor.get(key) {
            Some(e) if e.read_at <= now && now < e.read_at.plus(CREDENTIAL_FRESH_FOR) => {
                Ok(e.row.clone())
            }
            Some(_) => {
                inner.by_aor.remove(key);
                Err(inner.epoch)
            }
            None => Err(inner.epoch),
        }
    }

    fn put(&self, key: Key, epoch: u64, row: &SipCredentialRow, now: Timestamp) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        if inner.by_aor.len() >= CAPACITY {
            inner
                .by_aor
                .retain(|_, e| e.read_at <= now && now < e.read_at.plus(CREDENTIAL_FRESH_FOR));
            if inner.by_aor.len() >= CAPACITY {
                inner.by_aor.clear();
            }
        }
        inner.by_aor.insert(
            key,
            Entry {
                row: row.clone(),
                read_at: now,
            },
        );
    }

    pub(super) fn forget(&self, change: Change) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        match change {
            // A session alone never changes a credential.
            Change::Session(_) => {}
            Change::User(id) => inner.by_aor.retain(|_, e| e.row.user_id != id),
            Change::All => inner.by_aor.clear(),
        }
    }
}

impl Store {
    /// The credential row of `extension` in the tenant whose SIP domain is `domain`
    /// (compared without regard to case), from memory when a fresh copy is there.
    pub async fn sip_credential(
        &self,
        domain: &str,
        extension: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SipCredentialRow>> {
        let key = (domain.to_ascii_lowercase(), extension.to_owned());
        let epoch = match self.pbx.get(&key, now) {
            Ok(row) => return Ok(Some(row)),
            Err(epoch) => epoch,
        };
        let row = sqlx::query(
            "SELECT u.id, u.tenant_id, u.extension, t.sip_domain, u.sip_secret, \
             CAST(CASE WHEN t.suspended_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS suspended \
             FROM users u JOIN tenants t ON t.id = u.tenant_id \
             WHERE lower(t.sip_domain) = $1 AND u.extension = $2 AND u.sip_secret IS NOT NULL",
        )
        .bind(&key.0)
        .bind(&key.1)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let found = SipCredentialRow {
            user_id: UserId(r.try_get("id")?),
            tenant_id: TenantId(r.try_get("tenant_id")?),
            extension: r.try_get("extension")?,
            domain: r.try_get("sip_domain")?,
            sealed_secret: r.try_get("sip_secret")?,
            suspended: r.try_get::<i64, _>("suspended")? != 0,
        };
        self.pbx.put(key, epoch, &found, now);
        Ok(Some(found))
    }

    /// Notices due at `now`, oldest first, each taken for `lease` so another node leaves it.
    pub async fn take_due_pbx_notices(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<PbxNotice>> {
        let rows = sqlx::query(
            "SELECT id, aor, attempts, next_attempt_at FROM pbx_notifications \
             WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut taken = Vec::with_capacity(rows.len());
        for r in rows {
            let notice = PbxNotice {
                id: r.try_get("id")?,
                aor: r.try_get("aor")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: Timestamp(r.try_get("next_attempt_at")?),
            };
            let claimed = sqlx::query(
                "UPDATE pbx_notifications SET next_attempt_at = $1 \
                 WHERE id = $2 AND next_attempt_at = $3",
            )
            .bind(now.plus(lease).0)
            .bind(notice.id)
            .bind(notice.next_attempt_at.0)
            .execute(&self.pool)
            .await?;
            if claimed.rows_affected() == 1 {
                taken.push(notice);
            }
        }
        Ok(taken)
    }

    pub async fn pbx_notice_done(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM pbx_notifications WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn pbx_notice_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE pbx_notifications SET attempts = attempts + 1, next_attempt_at = $1, \
             last_error = $2 WHERE id = $3",
        )
        .bind(next_attempt_at.0)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- PBX tokens ----------------------------------------------------------------

    pub async fn insert_pbx_token(
        &self,
        name: &str,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO pbx_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(token_hash)
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn pbx_tokens(&self) -> StoreResult<Vec<PbxTokenRecord>> {
        let rows = sqlx::query("SELECT name, created_at FROM pbx_tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PbxTokenRecord {
                    name: r.try_get("name")?,
                    created_at: Timestamp(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Every valid token's hash.
    pub async fn pbx_token_hashes(&self) -> StoreResult<Vec<Vec<u8>>> {
        let rows = sqlx::query("SELECT token_hash FROM pbx_tokens")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("token_hash")?)).collect()
    }

    /// Deletes the token named `name`; false when there was none.
    pub async fn delete_pbx_token(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM pbx_tokens WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
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
        .bind(now.0)
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
    fn a_cached_credential_answers_until_stale_or_forgotten() {
        let cache = CredentialCache::default();
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
        let cache = CredentialCache::default();
        let now = Timestamp(1_000);
        let epoch = cache.get(&key("201"), now).unwrap_err();
        cache.forget(Change::User(UserId(99)));
        cache.put(key("201"), epoch, &row(7), now);
        assert!(cache.get(&key("201"), now).is_err());
    }
}
