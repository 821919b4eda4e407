//! Passkeys: each user's WebAuthn credentials (name, the verified credential as JSON,
//! created, last used) and the server half of a ceremony in flight, one per user and kind,
//! with its expiry on the caller's clock.

use sqlx::Row;

use super::outbox::{self, NewMail};
use super::{classify, new_id, record, Store, StoreResult, UserId};
use crate::clock::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct PasskeyId(pub i64);

/// A stored passkey.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRecord {
    pub id: PasskeyId,
    pub user_id: UserId,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    pub user_handle: String,
    pub name: String,
    /// The verified credential (public key, counter), as JSON.
    pub passkey: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A passkey about to be stored.
pub struct NewPasskey<'a> {
    pub user_id: UserId,
    pub credential_id: &'a str,
    pub user_handle: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
}

/// Which ceremony is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Adding a passkey in Settings.
    Register,
    /// Signing in with one.
    Authenticate,
}

impl CeremonyKind {
    fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::Authenticate => "authenticate",
        }
    }
}

const PASSKEY_COLUMNS: &str =
    "id, user_id, credential_id, user_handle, name, passkey, created_at, last_used_at";

impl Store {
    /// Stores a verified passkey and queues `notice` in the same transaction; `Conflict`
    /// when its credential is already stored (for this user or any other).
    pub async fn insert_passkey(
        &self,
        p: &NewPasskey<'_>,
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<PasskeyId> {
        let insert = sqlx::query(
            "INSERT INTO passkeys (user_id, credential_id, user_handle, name, passkey, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(p.user_id)
        .bind(p.credential_id)
        .bind(p.user_handle)
        .bind(p.name)
        .bind(p.passkey)
        .bind(now);
        let mut tx = self.pool.begin().await?;
        let id = new_id(insert, &mut *tx).await.map_err(classify)?;
        outbox::enqueue_notice(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(PasskeyId(id))
    }

    /// A user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user: UserId) -> StoreResult<Vec<PasskeyRecord>> {
        self.all(
            sqlx::query(&format!(
                "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .bind(user),
            record,
        )
        .await
    }

    /// One of the user's passkeys; `None` when there is no such passkey or it is another
    /// user's.
    pub async fn passkey_of(
        &self,
        user: UserId,
        id: PasskeyId,
    ) -> StoreResult<Option<PasskeyRecord>> {
        self.optional(
            sqlx::query(&format!(
                "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = $1 AND user_id = $2"
            ))
            .bind(id)
            .bind(user),
            record,
        )
        .await
    }

    pub async fn has_passkey(&self, user: UserId) -> StoreResult<bool> {
        let count = sqlx::query("SELECT COUNT(*) FROM passkeys WHERE user_id = $1");
        Ok(self.value::<i64>(count.bind(user)).await? > 0)
    }

    /// Renames one of the user's passkeys; false when it is not theirs (or gone).
    pub async fn rename_passkey(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &str,
    ) -> StoreResult<bool> {
        self.affected_one(
            sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
                .bind(name)
                .bind(id)
                .bind(user),
        )
        .await
    }

    /// Deletes one of the user's passkeys; false when it is not theirs (or gone).
    pub async fn delete_passkey(&self, user: UserId, id: PasskeyId) -> StoreResult<bool> {
        self.affected_one(
            sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user),
        )
        .await
    }

    /// A sign-in used the passkey: its last use, and its credential when the sign-in
    /// moved it on (the signature counter, the backup flags).
    pub async fn passkey_used(
        &self,
        id: PasskeyId,
        updated: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "UPDATE passkeys SET last_used_at = $1, passkey = COALESCE($2, passkey) WHERE id = $3",
            )
            .bind(now)
            .bind(updated)
            .bind(id),
        )
        .await
    }

    /// Keeps the server half of a new ceremony, replacing the user's earlier one of the
    /// same kind; ceremonies of anyone that ran out by `now` are dropped on the way, so the
    /// table holds only live ones.
    pub async fn put_ceremony(
        &self,
        user: UserId,
        kind: CeremonyKind,
        state: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO passkey_ceremonies (user_id, kind, state, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, kind) \
             DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at",
        )
        .bind(user)
        .bind(kind.as_str())
        .bind(state)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the user's ceremony of `kind` — deleted in the same statement, so two
    /// answers to one challenge cannot both use it — if it is still live at `now`.
    pub async fn take_ceremony(
        &self,
        user: UserId,
        kind: CeremonyKind,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let take = sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE user_id = $1 AND kind = $2 \
             RETURNING state, expires_at",
        );
        let taken = self
            .optional(take.bind(user).bind(kind.as_str()), |r| {
                Ok((r.try_get("state")?, r.try_get("expires_at")?))
            })
            .await?;
        Ok(taken.and_then(|(state, expires_at): (String, Timestamp)| {
            (expires_at > now).then_some(state)
        }))
    }
}
