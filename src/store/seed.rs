//! Bulk loading of users, for benchmarks and load tests that need a large directory
//! quickly: many rows per statement, one transaction per batch. The portal itself never
//! calls it.

use super::{classify, Backend, NewUser, Store, StoreResult};
use crate::clock::Timestamp;

/// Columns bound per user row.
const COLUMNS: usize = 10;
/// Rows per statement: 1,000 × 10 binds stays under the bind limits of both databases.
const SEED_BATCH: usize = 1000;

impl Store {
    /// Inserts `users` (at most [`SEED_BATCH`] per statement) in one transaction.
    pub async fn insert_users_bulk(
        &self,
        users: &[NewUser<'_>],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in users.chunks(SEED_BATCH) {
            let mut sql = String::from(
                "INSERT INTO users (tenant_id, extension, name, email, role, password_hash, \
                 password_temporary, password_expires_at, password_changed_at, created_at, \
                 sip_secret) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * COLUMNS;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 9,
                    b + 10
                ));
            }
            let mut query = sqlx::query(&sql);
            for u in chunk {
                query = query
                    .bind(u.tenant_id.0)
                    .bind(u.extension.as_str())
                    .bind(u.name)
                    .bind(u.email)
                    .bind(u.role.as_str())
                    .bind(u.password_hash)
                    .bind(i64::from(u.password_expires_at.is_some()))
                    .bind(u.password_expires_at.map(|t| t.0))
                    .bind(now.0)
                    .bind(u.sip_secret);
            }
            query.execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// After a bulk load: folds SQLite's write-ahead log back into the database (readers
    /// would otherwise search a long log on every query until the next checkpoint), and
    /// refreshes PostgreSQL's planner statistics for the grown table.
    pub async fn settle_after_bulk_load(&self) -> StoreResult<()> {
        let sql = match self.backend {
            Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
            Backend::Postgres => "ANALYZE users",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }
}
