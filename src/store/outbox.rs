//! The mail outbox: enqueue (inside the caller's transaction), claim with a lease so two
//! nodes never take the same message, record what became of each, hand a stopping
//! worker's claims back, report the backlog, and reseal queued bodies for a key rotation.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{flag, new_id, AuditRow, Store, StoreResult, TenantId, UserId};
use crate::clock::Timestamp;

/// A message to queue; bodies are already sealed.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: &'static str,
    pub recipient: String,
    pub user_id: Option<UserId>,
    pub tenant_id: Option<TenantId>,
    pub subject: String,
    pub body_text: Vec<u8>,
    pub body_html: Vec<u8>,
}

/// A claimed message, ready to deliver.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: Vec<u8>,
    pub body_html: Vec<u8>,
    pub attempts: i64,
    pub queued_at: Timestamp,
    pub tenant_id: Option<TenantId>,
}

/// The delivery record of a message.
#[derive(Debug, Clone)]
pub struct MailRecord {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub user_id: Option<UserId>,
    pub status: String,
    pub attempts: i64,
    pub queued_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub failed_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Whether the sealed bodies are still stored (they are dropped once sent).
    pub has_body: bool,
}

pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    m: &NewMail,
    now: Timestamp,
) -> StoreResult<i64> {
    let insert = sqlx::query(
        "INSERT INTO outbox (kind, recipient, user_id, tenant_id, subject, body_text, body_html, status, \
         attempts, queued_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8) RETURNING id",
    )
    .bind(m.kind)
    .bind(&m.recipient)
    .bind(m.user_id)
    .bind(m.tenant_id)
    .bind(&m.subject)
    .bind(&m.body_text)
    .bind(&m.body_html)
    .bind(now);
    Ok(new_id(insert, conn).await?)
}

/// Queues `notice`, when there is one, inside the caller's transaction.
pub(super) async fn enqueue_notice(
    conn: &mut AnyConnection,
    notice: Option<&NewMail>,
    now: Timestamp,
) -> StoreResult<()> {
    if let Some(mail) = notice {
        enqueue(conn, mail, now).await?;
    }
    Ok(())
}

impl Store {
    pub async fn enqueue_mail(&self, m: &NewMail, now: Timestamp) -> StoreResult<i64> {
        let mut conn = self.pool.acquire().await?;
        enqueue(&mut conn, m, now).await
    }

    /// Takes up to `limit` due messages for `lease_until`. The claim conditions are repeated
    /// in the outer WHERE so that on PostgreSQL a second node that waited on the row lock
    /// re-checks them against the committed claim and skips the row.
    pub async fn claim_mail(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        claim_token: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.all(
            sqlx::query(
                "UPDATE outbox SET claimed_until = $1, claim_token = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $3 \
                              AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY id LIMIT $4) \
                   AND status = 'queued' AND (claimed_until IS NULL OR claimed_until < $3) \
                 RETURNING id, kind, recipient, subject, body_text, body_html, attempts, queued_at, tenant_id",
            )
            .bind(lease_until)
            .bind(claim_token)
            .bind(now)
            .bind(limit),
            |r| {
                Ok(OutboxMessage {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    recipient: r.try_get("recipient")?,
                    subject: r.try_get("subject")?,
                    body_text: r
                        .try_get::<Option<Vec<u8>>, _>("body_text")?
                        .unwrap_or_default(),
                    body_html: r
                        .try_get::<Option<Vec<u8>>, _>("body_html")?
                        .unwrap_or_default(),
                    attempts: r.try_get("attempts")?,
                    queued_at: r.try_get("queued_at")?,
                    tenant_id: r.try_get("tenant_id")?,
                })
            },
        )
        .await
    }

    /// Extends this worker's lease just before sending; false when the claim was lost (the
    /// lease ran out and another node took the message), and then it must not be sent.
    pub async fn renew_mail_claim(
        &self,
        id: i64,
        claim_token: &str,
        lease_until: Timestamp,
    ) -> StoreResult<bool> {
        self.affected_one(
            sqlx::query("UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND claim_token = $3 AND status = 'queued'")
                .bind(lease_until)
                .bind(id)
                .bind(claim_token),
        )
        .await
    }

    /// Delivered: the bodies (which may hold a link) are dropped; the record stays.
    pub async fn mail_sent(
        &self,
        id: i64,
        claim_token: &str,
        now: Timestamp,
        answer: &str,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = $1, body_text = NULL, body_html = NULL, \
                 claimed_until = NULL, claim_token = NULL, last_error = $2 WHERE id = $3 AND claim_token = $4",
            )
            .bind(now)
            .bind(answer)
            .bind(id)
            .bind(claim_token),
        )
        .await
    }

    /// Not delivered this time; try again at `next_attempt_at`.
    pub async fn mail_retry(
        &self,
        id: i64,
        claim_token: &str,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1, last_error = $2, claimed_until = NULL, claim_token = NULL \
                 WHERE id = $3 AND claim_token = $4",
            )
            .bind(next_attempt_at)
            .bind(error)
            .bind(id)
            .bind(claim_token),
        )
        .await
    }

    /// Given up: the bodies are dropped, the record and the relay's answer stay.
    /// Gives a message up (its body dropped), and — in the same transaction, so the two
    /// never disagree — writes the audit event that says so, when given.
    pub async fn mail_failed(
        &self,
        id: i64,
        claim_token: &str,
        now: Timestamp,
        error: &str,
        audit: Option<&AuditRow<'_>>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', failed_at = $1, last_error = $2, body_text = NULL, \
             body_html = NULL, claimed_until = NULL, claim_token = NULL WHERE id = $3 AND claim_token = $4",
        )
        .bind(now)
        .bind(error)
        .bind(id)
        .bind(claim_token)
        .execute(&mut *tx)
        .await?;
        // Only the node that still held the claim records the failure.
        if let (Some(row), 1) = (audit, done.rows_affected()) {
            super::audit::insert_audit(&mut *tx, row).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The delivery records that concern a user of `tenant`, newest first: the messages
    /// about them alone, and those of the tenant that went to several accounts sharing
    /// their email address `email` (the reset links or usernames of every account on one
    /// address, in one message). Never another tenant's mail, whatever address is set.
    pub async fn mail_records_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
        email: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MailRecord>> {
        self.all(
            sqlx::query(&format!(
                "{MAIL_RECORD_SELECT} WHERE id IN (\
                   SELECT id FROM outbox WHERE user_id = $1 \
                   UNION ALL SELECT id FROM outbox \
                     WHERE user_id IS NULL AND recipient = $2 AND tenant_id = $3) \
                 ORDER BY id DESC LIMIT $4"
            ))
            .bind(user)
            .bind(email)
            .bind(tenant)
            .bind(limit),
            read_mail_record,
        )
        .await
    }

    /// Queued mail: how many, and when the oldest was queued.
    pub async fn outbox_backlog(&self) -> StoreResult<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS depth, MIN(queued_at) AS oldest FROM outbox WHERE status = 'queued'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("depth")?, row.try_get("oldest")?))
    }

    /// Gives the messages still claimed under `claim_token` back to the outbox, as if never
    /// tried: the next worker (on this node after a restart, or another) sends them at once.
    pub async fn release_mail_claim(&self, claim_token: &str) -> StoreResult<u64> {
        self.affected(
            sqlx::query(
                "UPDATE outbox SET claimed_until = NULL, claim_token = NULL, attempts = attempts - 1 \
                 WHERE claim_token = $1 AND status = 'queued'",
            )
            .bind(claim_token),
        )
        .await
    }

    /// Queued mail bodies, for re-encryption: `(id, kind, recipient, body_text, body_html)`.
    #[allow(clippy::type_complexity)]
    pub async fn queued_bodies(&self) -> StoreResult<Vec<(i64, String, String, Vec<u8>, Vec<u8>)>> {
        self.all(
            sqlx::query(
                "SELECT id, kind, recipient, body_text, body_html FROM outbox \
                 WHERE body_text IS NOT NULL AND body_html IS NOT NULL",
            ),
            |r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("kind")?,
                    r.try_get("recipient")?,
                    r.try_get("body_text")?,
                    r.try_get("body_html")?,
                ))
            },
        )
        .await
    }

    pub async fn reseal_bodies(
        &self,
        id: i64,
        old_text: &[u8],
        text: &[u8],
        html: &[u8],
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "UPDATE outbox SET body_text = $1, body_html = $2 WHERE id = $3 AND body_text = $4",
            )
            .bind(text)
            .bind(html)
            .bind(id)
            .bind(old_text),
        )
        .await
    }
}

/// The columns of a delivery record (whether a body is still held, not the body).
pub(super) const MAIL_RECORD_SELECT: &str =
    "SELECT id, kind, recipient, user_id, status, attempts, queued_at, sent_at, failed_at, last_error, \
     CASE WHEN body_text IS NULL THEN 0 ELSE 1 END AS has_body FROM outbox";

pub(super) fn read_mail_record(r: &AnyRow) -> StoreResult<MailRecord> {
    Ok(MailRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        user_id: r.try_get("user_id")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        queued_at: r.try_get("queued_at")?,
        sent_at: r.try_get("sent_at")?,
        failed_at: r.try_get("failed_at")?,
        last_error: r.try_get("last_error")?,
        has_body: flag(r, "has_body")?,
    })
}
