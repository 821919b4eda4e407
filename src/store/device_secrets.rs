//! Sealed device secrets (SIP secret, voicemail PIN) and the data-key checks. The store
//! only moves the sealed bytes; it never sees a secret in clear. A new SIP secret queues
//! the notice that makes the SIP server forget the old one, in the same transaction.

use sqlx::Row;

use super::session_cache::Change;
use super::{pbx, record, Store, StoreResult, TenantId, UserId};
use crate::clock::Timestamp;

/// A user's sealed device secrets, for re-encryption.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedSecrets {
    pub user_id: UserId,
    pub tenant_id: i64,
    pub extension: String,
    pub sip_secret: Option<Vec<u8>>,
    pub voicemail_pin: Option<Vec<u8>>,
}

/// A user whose SIP secret was never made (created before SIP secrets existed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserWithoutSecret {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub extension: String,
}

/// A record read of users a page at a time, for a job that walks all of them.
pub trait UsersWalk: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> {
    /// The columns it is read from.
    const COLUMNS: &'static str;
    /// The condition of the users it is read of.
    const ONLY: &'static str;
}

/// The users whose SIP secret is still to be made.
impl UsersWalk for UserWithoutSecret {
    const COLUMNS: &'static str = "id AS user_id, tenant_id, extension";
    const ONLY: &'static str = "sip_secret IS NULL";
}

/// The users with a sealed secret, for re-encryption.
impl UsersWalk for SealedSecrets {
    const COLUMNS: &'static str = "id AS user_id, tenant_id, extension, sip_secret, voicemail_pin";
    const ONLY: &'static str = "sip_secret IS NOT NULL OR voicemail_pin IS NOT NULL";
}

impl Store {
    /// `(sip_secret, voicemail_pin)` of a user, sealed.
    pub async fn device_secrets(
        &self,
        user: UserId,
    ) -> StoreResult<(Option<Vec<u8>>, Option<Vec<u8>>)> {
        let query = sqlx::query("SELECT sip_secret, voicemail_pin FROM users WHERE id = $1");
        let found = self
            .optional(query.bind(user), |r| {
                Ok((r.try_get("sip_secret")?, r.try_get("voicemail_pin")?))
            })
            .await?;
        Ok(found.unwrap_or((None, None)))
    }

    /// Sets the SIP secret only if there is none yet (two first views at once make one).
    pub async fn set_sip_secret_if_missing(&self, user: UserId, sealed: &[u8]) -> StoreResult<()> {
        self.write_sealed(
            "UPDATE users SET sip_secret = $1 WHERE id = $2 AND sip_secret IS NULL",
            user,
            sealed,
        )
        .await
    }

    /// Replaces a user's sealed SIP secret and queues the notice that makes the SIP server
    /// forget the old one, in one transaction: the notice exists exactly when the change
    /// does (a user deleted meanwhile gets neither; the delete queued its own notice).
    pub async fn replace_sip_secret(
        &self,
        user: UserId,
        sealed: &[u8],
        aor: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let replace = sqlx::query("UPDATE users SET sip_secret = $1 WHERE id = $2");
        let done = self
            .one_then(replace.bind(sealed).bind(user), |mut tx| async move {
                pbx::insert_notices(&mut tx, &[aor], now).await?;
                Ok(tx)
            })
            .await?;
        self.changed_if(done, Change::User(user)).await;
        Ok(())
    }

    pub async fn set_voicemail_pin(&self, user: UserId, sealed: &[u8]) -> StoreResult<()> {
        self.write_sealed(
            "UPDATE users SET voicemail_pin = $1 WHERE id = $2",
            user,
            sealed,
        )
        .await
    }

    /// Writes one sealed value of `user` with `sql` (`$1` the value, `$2` the user) and
    /// forgets what the caches held of them.
    async fn write_sealed(&self, sql: &str, user: UserId, sealed: &[u8]) -> StoreResult<()> {
        self.run_forgetting(sqlx::query(sql).bind(sealed).bind(user), Change::User(user))
            .await
    }

    /// A walk over the users a `T` is read of (see [`UsersWalk`]): up to `limit` of them
    /// with an id above `after`, in id order.
    pub async fn walk_users<T: UsersWalk>(&self, after: i64, limit: i64) -> StoreResult<Vec<T>> {
        self.after_id("users", T::COLUMNS, Some(T::ONLY), after, limit, record)
            .await
    }

    /// Replaces a user's sealed secrets, only if they are still the ones read (a change
    /// made meanwhile by the user wins; the next rotation picks it up).
    pub async fn reseal_secrets(
        &self,
        old: &SealedSecrets,
        sip: Option<&[u8]>,
        pin: Option<&[u8]>,
    ) -> StoreResult<bool> {
        self.affected_one(
            sqlx::query(
                "UPDATE users SET sip_secret = $1, voicemail_pin = $2 WHERE id = $3 \
                 AND sip_secret IS NOT DISTINCT FROM $4 AND voicemail_pin IS NOT DISTINCT FROM $5",
            )
            .bind(sip)
            .bind(pin)
            .bind(old.user_id)
            .bind(old.sip_secret.as_deref())
            .bind(old.voicemail_pin.as_deref()),
        )
        .await
    }

    /// Every `(key_id, sealed check value)`.
    pub async fn key_checks(&self) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        self.all(
            sqlx::query("SELECT key_id, sealed FROM key_checks ORDER BY key_id"),
            |r| Ok((r.try_get("key_id")?, r.try_get("sealed")?)),
        )
        .await
    }

    pub async fn add_key_check(&self, key_id: i64, sealed: &[u8]) -> StoreResult<()> {
        self.run(
            sqlx::query("INSERT INTO key_checks (key_id, sealed) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING")
                .bind(key_id)
                .bind(sealed),
        )
        .await
    }

    /// Forgets the checks of keys no longer held.
    pub async fn retire_key_checks(&self, keep: &[u32]) -> StoreResult<()> {
        for (id, _) in self.key_checks().await? {
            if !keep.iter().any(|k| i64::from(*k) == id) {
                self.run(sqlx::query("DELETE FROM key_checks WHERE key_id = $1").bind(id))
                    .await?;
            }
        }
        Ok(())
    }
}
