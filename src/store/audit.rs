//! The audit log: events written (alone, inside a caller's transaction, folded into a
//! burst of refusals, or once per window), read a page or a cursor at a time for a tenant
//! or the provider, and purged past the retention.

use sqlx::Executor;

use super::{page_sql, record, AnyQuery, AuditRecord, AuditRow, Store, StoreResult, TenantId};
use crate::audit::OPERATOR_ACTOR_PREFIX;
use crate::clock::Timestamp;

/// Filters for the audit page.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    /// Events where this username acted or was acted on.
    pub username: Option<&'a str>,
    pub kind: Option<&'a str>,
}

/// The columns every audit event is read from: the fields of [`AuditRecord`].
pub(super) const AUDIT_COLUMNS: &str =
    "id, at, kind, actor, subject, client_addr, detail, repeats, last_at";

impl Store {
    pub async fn insert_audit(&self, e: &AuditRow<'_>) -> StoreResult<()> {
        insert_audit(&self.pool, e).await
    }

    /// Records a refused attempt in its burst (see [`insert_audit_burst`]), in one
    /// transaction.
    pub async fn insert_audit_burst(
        &self,
        e: &AuditRow<'_>,
        burst: Burst,
        since: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_audit_burst(&mut tx, e, burst, since).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes audit events older than `before` (the retention); returns how many.
    pub async fn purge_audit(&self, before: Timestamp) -> StoreResult<u64> {
        self.affected(
            sqlx::query("DELETE FROM audit_events WHERE COALESCE(last_at, at) < $1").bind(before),
        )
        .await
    }

    /// Records `e` unless an event of the same tenant, kind, actor and detail was recorded
    /// at or after `since`; whether it was recorded. One statement, so a refresh never
    /// audits again; the search is bounded by the tenant's `(tenant_id, at)` index.
    pub async fn insert_audit_once_since(
        &self,
        e: &AuditRow<'_>,
        since: Timestamp,
    ) -> StoreResult<bool> {
        self.affected_one(
            sqlx::query(
                "INSERT INTO audit_events (at, tenant_id, kind, actor, subject, client_addr, detail) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS ( \
                   SELECT 1 FROM audit_events WHERE tenant_id = $2 AND at >= $8 \
                   AND kind = $3 AND actor = $4 AND detail = $7)",
            )
            .bind_event(e)
            .bind(since),
        )
        .await
    }

    /// One page of a tenant's audit log, newest first.
    pub async fn audit_page(
        &self,
        tenant: TenantId,
        filter: &AuditFilter<'_>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let condition = "tenant_id = $1 AND ($2 IS NULL OR actor = $2 OR subject = $2) AND ($3 IS NULL OR kind = $3)";
        let (sql, count_sql) = events_page_sql(condition, 3);
        let rows = filtered(sqlx::query(&sql), tenant, filter)
            .bind(limit)
            .bind(offset);
        let count = filtered(sqlx::query(&count_sql), tenant, filter);
        self.page(rows, record, count).await
    }

    /// One page of the provider's audit log, newest first: events with no tenant (operator
    /// sign-ins, operators created) and everything an operator did in any tenant.
    pub async fn provider_audit_page(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let condition = format!("tenant_id IS NULL OR actor LIKE '{OPERATOR_ACTOR_PREFIX}%'");
        let (sql, count_sql) = events_page_sql(&condition, 0);
        let rows = sqlx::query(&sql).bind(limit).bind(offset);
        self.page(rows, record, sqlx::query(&count_sql)).await
    }

    /// A tenant's audit events older than the event `before` (newest first).
    pub async fn audit_before(
        &self,
        tenant: TenantId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.all(
            sqlx::query(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(before)
            .bind(limit),
            record,
        )
        .await
    }
}

/// Which refusals one audit event counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Burst {
    /// Of one kind, for one name, from one address, in one tenant (a name being guessed).
    PerName,
    /// Of one kind from one address in one tenant, whatever name each tried (an address
    /// refused as a whole, which could otherwise write a row per name it makes up); each
    /// tenant sees the refusals of its own names, and names of no tenant share one row.
    PerAddress,
}

/// The SQL of one page of the events that meet `condition`, newest first, and of how many
/// meet it; the page's `LIMIT` and `OFFSET` are the placeholders after the condition's
/// `params`.
fn events_page_sql(condition: &str, params: usize) -> (String, String) {
    let select = format!("SELECT {AUDIT_COLUMNS} FROM audit_events");
    page_sql(&select, "audit_events", condition, "id DESC", params)
}

/// Binds a tenant's audit page filter: `$1` the tenant, `$2` the username, `$3` the kind.
fn filtered<'q>(query: AnyQuery<'q>, tenant: TenantId, filter: &AuditFilter<'q>) -> AnyQuery<'q> {
    query.bind(tenant).bind(filter.username).bind(filter.kind)
}

/// Records a refused attempt as part of the open burst since `since` (one more repeat, the
/// last one now), or as a new event; `burst` says which refusals count together.
pub(super) async fn insert_audit_burst(
    conn: &mut sqlx::AnyConnection,
    e: &AuditRow<'_>,
    burst: Burst,
    since: Timestamp,
) -> StoreResult<()> {
    let per_address = burst == Burst::PerAddress;
    let done = sqlx::query(
        "UPDATE audit_events SET repeats = repeats + 1, last_at = $1 WHERE id = ( \
           SELECT id FROM audit_events WHERE kind = $2 AND at > $3 \
             AND COALESCE(client_addr, '') = COALESCE($4, '') \
             AND COALESCE(tenant_id, 0) = COALESCE($6, 0) \
             AND ($7 = 1 OR COALESCE(actor, '') = COALESCE($5, '')) \
           ORDER BY id DESC LIMIT 1)",
    )
    .bind(e.at)
    .bind(e.kind)
    .bind(since)
    .bind(e.client_addr)
    .bind(e.actor)
    .bind(e.tenant_id)
    .bind(i32::from(per_address))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        insert_audit(&mut *conn, e).await?;
    }
    Ok(())
}

pub(super) async fn insert_audit<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    e: &AuditRow<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, tenant_id, kind, actor, subject, client_addr, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind_event(e)
    .execute(db)
    .await?;
    Ok(())
}

/// Binds an event's columns, in the order `at, tenant_id, kind, actor, subject,
/// client_addr, detail`, to the query's next seven placeholders.
trait BindEvent<'q> {
    fn bind_event(self, e: &AuditRow<'q>) -> Self;
}

impl<'q> BindEvent<'q> for AnyQuery<'q> {
    fn bind_event(self, e: &AuditRow<'q>) -> Self {
        self.bind(e.at)
            .bind(e.tenant_id)
            .bind(e.kind)
            .bind(e.actor)
            .bind(e.subject)
            .bind(e.client_addr)
            .bind(e.detail)
    }
}
