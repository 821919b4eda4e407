//! Two-step sign-in records: an account's authenticator app (sealed secret, confirmed or
//! not, the last step accepted), its recovery codes (hashes), the sign-ins waiting for
//! their second step, and a tenant's rule on who must have a second factor. A factor's
//! owner is a tenant user or an operator ([`FactorOwner`]); the column it lives in is
//! chosen here and nowhere else.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::outbox::{self, NewMail};
use super::{record, stored, OperatorId, Store, StoreError, StoreResult, TenantId, UserId};
use crate::clock::Timestamp;
use crate::domain::TwoStepRequirement;

/// Whose second factor: a tenant user's or an operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorOwner {
    User(UserId),
    Operator(OperatorId),
}

impl FactorOwner {
    /// The owner column and its value.
    fn column(self) -> (&'static str, i64) {
        match self {
            FactorOwner::User(id) => ("user_id", id.0),
            FactorOwner::Operator(id) => ("operator_id", id.0),
        }
    }

    /// The owner column values as they are inserted: `(user_id, operator_id)`.
    fn ids(self) -> (Option<UserId>, Option<OperatorId>) {
        match self {
            FactorOwner::User(id) => (Some(id), None),
            FactorOwner::Operator(id) => (None, Some(id)),
        }
    }

    fn from_row(r: &AnyRow) -> StoreResult<FactorOwner> {
        match (r.try_get("user_id")?, r.try_get("operator_id")?) {
            (Some(u), None) => Ok(FactorOwner::User(u)),
            (None, Some(o)) => Ok(FactorOwner::Operator(o)),
            _ => Err(StoreError::Corrupt("factor owner")),
        }
    }
}

/// An authenticator app as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct TotpRecord {
    /// The secret sealed under the data key.
    pub sealed_secret: Vec<u8>,
    /// `None` until a first code confirmed it.
    pub confirmed_at: Option<Timestamp>,
    /// The newest step whose code was accepted.
    pub last_step: i64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A sealed authenticator secret, for re-encryption under a new data key.
#[derive(Debug, Clone)]
pub struct SealedTotp {
    pub id: i64,
    pub owner: FactorOwner,
    pub sealed_secret: Vec<u8>,
}

/// What a pending sign-in waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPurpose {
    /// The second step: a code (or, later, a passkey).
    Verify,
    /// Setting up a second factor the rules demand, before any session.
    Enrol,
}

impl PendingPurpose {
    fn as_str(self) -> &'static str {
        match self {
            PendingPurpose::Verify => "verify",
            PendingPurpose::Enrol => "enrol",
        }
    }

    fn parse(s: &str) -> Result<PendingPurpose, ()> {
        match s {
            "verify" => Ok(PendingPurpose::Verify),
            "enrol" => Ok(PendingPurpose::Enrol),
            _ => Err(()),
        }
    }
}

/// A sign-in waiting for its second step.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    pub id: i64,
    pub owner: FactorOwner,
    pub purpose: PendingPurpose,
    pub password_stamp: Vec<u8>,
    pub expires_at: Timestamp,
}

/// A new pending sign-in.
pub struct NewPending<'a> {
    pub token_hash: &'a [u8],
    pub owner: FactorOwner,
    pub purpose: PendingPurpose,
    pub password_stamp: &'a [u8],
    pub expires_at: Timestamp,
}

impl Store {
    /// The account's authenticator app, confirmed or not.
    pub async fn totp_factor(&self, owner: FactorOwner) -> StoreResult<Option<TotpRecord>> {
        let (column, id) = owner.column();
        self.optional(
            sqlx::query(&format!(
                "SELECT secret AS sealed_secret, confirmed_at, last_step FROM totp_factors \
                 WHERE {column} = $1"
            ))
            .bind(id),
            record,
        )
        .await
    }

    /// Stores a new, unconfirmed authenticator secret, replacing an unconfirmed one; a
    /// confirmed app is never replaced (false then).
    pub async fn begin_totp(
        &self,
        owner: FactorOwner,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (column, _) = owner.column();
        let (user, operator) = owner.ids();
        self.affected_one(
            sqlx::query(&format!(
                "INSERT INTO totp_factors (user_id, operator_id, secret, confirmed_at, last_step, created_at) \
                 VALUES ($1, $2, $3, NULL, 0, $4) \
                 ON CONFLICT ({column}) DO UPDATE SET secret = $3, created_at = $4, last_step = 0 \
                 WHERE totp_factors.confirmed_at IS NULL"
            ))
            .bind(user)
            .bind(operator)
            .bind(sealed_secret)
            .bind(now),
        )
        .await
    }

    /// Confirms the unconfirmed app with the step of its first code and, in the same
    /// transaction, replaces the recovery codes with `code_hashes` and queues `notice`.
    /// False when there was no unconfirmed app (confirmed meanwhile, or never begun).
    pub async fn confirm_totp(
        &self,
        owner: FactorOwner,
        step: i64,
        code_hashes: &[Vec<u8>],
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (column, id) = owner.column();
        let confirm = format!(
            "UPDATE totp_factors SET confirmed_at = $1, last_step = $2 \
             WHERE {column} = $3 AND confirmed_at IS NULL"
        );
        self.one_then(
            sqlx::query(&confirm).bind(now).bind(step).bind(id),
            |mut tx| async move {
                replace_codes(&mut tx, owner, code_hashes, now).await?;
                outbox::enqueue_notice(&mut tx, notice, now).await?;
                Ok(tx)
            },
        )
        .await
    }

    /// Takes `step` as the newest accepted step of the confirmed app, atomically: false
    /// when that step (or a later one) was already accepted — a replay.
    pub async fn accept_totp_step(&self, owner: FactorOwner, step: i64) -> StoreResult<bool> {
        let (column, id) = owner.column();
        self.affected_one(
            sqlx::query(&format!(
                "UPDATE totp_factors SET last_step = $1 \
                 WHERE {column} = $2 AND confirmed_at IS NOT NULL AND last_step < $1"
            ))
            .bind(step)
            .bind(id),
        )
        .await
    }

    /// Replaces the account's recovery codes (the old ones stop working).
    pub async fn replace_recovery_codes(
        &self,
        owner: FactorOwner,
        code_hashes: &[Vec<u8>],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        replace_codes(&mut tx, owner, code_hashes, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends the unused recovery code with this hash, atomically (two concurrent uses:
    /// one wins), queuing `notice` in the same transaction. False when there is none.
    pub async fn use_recovery_code(
        &self,
        owner: FactorOwner,
        code_hash: &[u8],
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (column, id) = owner.column();
        let spend = format!(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE {column} = $2 AND code_hash = $3 AND used_at IS NULL"
        );
        self.one_then(
            sqlx::query(&spend).bind(now).bind(id).bind(code_hash),
            |mut tx| async move {
                outbox::enqueue_notice(&mut tx, notice, now).await?;
                Ok(tx)
            },
        )
        .await
    }

    /// How many unused recovery codes the account has.
    pub async fn recovery_codes_left(&self, owner: FactorOwner) -> StoreResult<i64> {
        let (column, id) = owner.column();
        let sql =
            format!("SELECT COUNT(*) FROM recovery_codes WHERE {column} = $1 AND used_at IS NULL");
        self.value(sqlx::query(&sql).bind(id)).await
    }

    /// Removes the account's authenticator app (confirmed or not), its recovery codes and
    /// its pending sign-ins — and, with `passkeys`, a user's passkeys — queuing `notice`
    /// in the same transaction when there was a confirmed app or a passkey. False when
    /// there was none (nothing is queued then).
    pub async fn remove_second_factor(
        &self,
        owner: FactorOwner,
        passkeys: bool,
        notice: Option<&NewMail>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (column, id) = owner.column();
        let mut tx = self.pool.begin().await?;
        // The write first, so SQLite takes its write lock at once.
        let removed = sqlx::query(&format!(
            "DELETE FROM totp_factors WHERE {column} = $1 RETURNING confirmed_at"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut had = match removed {
            Some(r) => r.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
            None => false,
        };
        if let (true, FactorOwner::User(user)) = (passkeys, owner) {
            let gone = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            had |= gone.rows_affected() > 0;
        }
        for table in ["recovery_codes", "sign_in_pending"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let (true, Some(mail)) = (had, notice) {
            outbox::enqueue(&mut tx, mail, now).await?;
        }
        tx.commit().await?;
        Ok(had)
    }

    /// Records a sign-in waiting for its second step.
    pub async fn insert_pending(&self, p: &NewPending<'_>, now: Timestamp) -> StoreResult<()> {
        let (user, operator) = p.owner.ids();
        self.run(
            sqlx::query(
                "INSERT INTO sign_in_pending (token_hash, user_id, operator_id, purpose, password_stamp, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(p.token_hash)
            .bind(user)
            .bind(operator)
            .bind(p.purpose.as_str())
            .bind(p.password_stamp)
            .bind(now)
            .bind(p.expires_at),
        )
        .await
    }

    /// The pending sign-in with this token hash, expired or not.
    pub async fn pending(&self, token_hash: &[u8]) -> StoreResult<Option<PendingRecord>> {
        self.optional(
            sqlx::query(
                "SELECT id, user_id, operator_id, purpose, password_stamp, expires_at \
                 FROM sign_in_pending WHERE token_hash = $1",
            )
            .bind(token_hash),
            |r| {
                Ok(PendingRecord {
                    id: r.try_get("id")?,
                    owner: FactorOwner::from_row(r)?,
                    purpose: stored(r, "purpose", PendingPurpose::parse)?,
                    password_stamp: r.try_get("password_stamp")?,
                    expires_at: r.try_get("expires_at")?,
                })
            },
        )
        .await
    }

    /// Ends a pending sign-in; true for the one caller that ended it (so a step is
    /// completed once, however many requests race).
    pub async fn take_pending(&self, id: i64) -> StoreResult<bool> {
        self.affected_one(sqlx::query("DELETE FROM sign_in_pending WHERE id = $1").bind(id))
            .await
    }

    /// Forgets pending sign-ins that expired before `before`.
    pub async fn purge_pending(&self, before: Timestamp) -> StoreResult<u64> {
        self.affected(sqlx::query("DELETE FROM sign_in_pending WHERE expires_at < $1").bind(before))
            .await
    }

    /// Who of the tenant must have a second factor.
    pub async fn two_step_requirement(&self, tenant: TenantId) -> StoreResult<TwoStepRequirement> {
        let query = sqlx::query("SELECT two_step_required FROM tenants WHERE id = $1");
        let found = self
            .optional(query.bind(tenant), |r| {
                stored(r, "two_step_required", |s| {
                    TwoStepRequirement::parse(s).ok_or(())
                })
            })
            .await?;
        Ok(found.unwrap_or_default())
    }

    pub async fn set_two_step_requirement(
        &self,
        tenant: TenantId,
        requirement: TwoStepRequirement,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query("UPDATE tenants SET two_step_required = $1 WHERE id = $2")
                .bind(requirement.as_str())
                .bind(tenant),
        )
        .await
    }

    /// Up to `limit` sealed authenticator secrets with an id above `after`, in id order.
    pub async fn sealed_totp_after(&self, after: i64, limit: i64) -> StoreResult<Vec<SealedTotp>> {
        let columns = "id, user_id, operator_id, secret";
        self.after_id("totp_factors", columns, None, after, limit, |r| {
            Ok(SealedTotp {
                id: r.try_get("id")?,
                owner: FactorOwner::from_row(r)?,
                sealed_secret: r.try_get("secret")?,
            })
        })
        .await
    }

    /// Replaces a sealed secret re-encrypted under a new key, unless it changed meanwhile.
    pub async fn reseal_totp(&self, row: &SealedTotp, sealed: &[u8]) -> StoreResult<bool> {
        self.affected_one(
            sqlx::query("UPDATE totp_factors SET secret = $1 WHERE id = $2 AND secret = $3")
                .bind(sealed)
                .bind(row.id)
                .bind(&row.sealed_secret),
        )
        .await
    }
}

async fn replace_codes(
    conn: &mut sqlx::AnyConnection,
    owner: FactorOwner,
    code_hashes: &[Vec<u8>],
    now: Timestamp,
) -> StoreResult<()> {
    let (column, id) = owner.column();
    let (user, operator) = owner.ids();
    sqlx::query(&format!("DELETE FROM recovery_codes WHERE {column} = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for hash in code_hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, operator_id, code_hash, used_at, created_at) \
             VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(user)
        .bind(operator)
        .bind(hash.as_slice())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
