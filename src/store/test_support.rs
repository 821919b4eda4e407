//! Queries only the test suites call, to check what HTTP does not show (how many
//! sessions a user holds, what the audit log says, how many notices wait for the SIP
//! server). Nothing in the portal calls them; a rule that needs one of these reads gets
//! its own query in its record's module.

use super::audit::AUDIT_COLUMNS;
use super::outbox::{read_mail_record, MAIL_RECORD_SELECT};
use super::{record, AuditRecord, MailRecord, Store, StoreResult, TenantId, UserId};

impl Store {
    /// The newest audit events, optionally only of one kind.
    pub async fn audit_events(
        &self,
        tenant: Option<TenantId>,
        kind: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.all(
            sqlx::query(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events \
                 WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR kind = $2) \
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(kind)
            .bind(limit),
            record,
        )
        .await
    }

    pub async fn count_user_sessions(&self, user: UserId) -> StoreResult<i64> {
        let query = sqlx::query("SELECT COUNT(*) FROM sessions WHERE user_id = $1").bind(user);
        self.value(query).await
    }

    /// The newest delivery records, newest first.
    pub async fn mail_records(&self, limit: i64) -> StoreResult<Vec<MailRecord>> {
        let sql = format!("{MAIL_RECORD_SELECT} ORDER BY id DESC LIMIT $1");
        self.all(sqlx::query(&sql).bind(limit), read_mail_record)
            .await
    }

    /// How many notices wait.
    pub async fn pbx_queue_depth(&self) -> StoreResult<i64> {
        self.value(sqlx::query("SELECT COUNT(*) FROM pbx_notifications"))
            .await
    }
}
