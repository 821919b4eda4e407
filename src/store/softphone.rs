//! The softphone's one record: the audit event of a sign-in's first SIP credential.
//! No table of its own — the audit log already says whether this sign-in had one.

use super::{AuditRow, Store, StoreResult};
use crate::clock::Timestamp;

impl Store {
    /// Records `e` unless an event of the same tenant, kind, actor and detail was recorded
    /// at or after `since`; whether it was recorded. One statement, so a refresh never
    /// audits again; the search is bounded by the tenant's `(tenant_id, at)` index.
    pub async fn insert_audit_once_since(
        &self,
        e: &AuditRow<'_>,
        since: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO audit_events (at, tenant_id, kind, actor, subject, client_addr, detail) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS ( \
               SELECT 1 FROM audit_events WHERE tenant_id = $2 AND at >= $8 \
               AND kind = $3 AND actor = $4 AND detail = $7)",
        )
        .bind(e.at.0)
        .bind(e.tenant_id.map(|t| t.0))
        .bind(e.kind)
        .bind(e.actor)
        .bind(e.subject)
        .bind(e.client_addr)
        .bind(e.detail)
        .bind(since.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
