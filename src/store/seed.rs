//! Bulk loading of users, for benchmarks and load tests that need a large directory
//! quickly: many rows per statement, one transaction per batch. The portal itself never
//! calls it.

use super::users::{bind_new_user, NEW_USER_COLUMNS};
use super::{classify, Backend, NewUser, Store, StoreResult, TenantId};
use crate::clock::Timestamp;

/// Columns bound per user row.
const COLUMNS: usize = 10;
/// Rows per statement: 1,000 × 10 binds stays under the bind limits of both databases.
const SEED_BATCH: usize = 1000;

impl Store {
    /// Inserts `users` of `tenant` (at most [`SEED_BATCH`] per statement) in one
    /// transaction.
    pub async fn insert_users_bulk(
        &self,
        tenant: TenantId,
        users: &[NewUser<'_>],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in users.chunks(SEED_BATCH) {
            let mut sql = format!("INSERT INTO users ({NEW_USER_COLUMNS}) VALUES ");
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
                query = bind_new_user(query, tenant, u, now);
            }
            query.execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// After a bulk load: folds SQLite's write-ahead log back into the database (readers
    /// would otherwise search a long log on every query until the next checkpoint). On
    /// PostgreSQL, vacuums the grown table and refreshes its planner statistics: otherwise
    /// the first read of each new row writes its page again (to mark the rows' inserting
    /// transaction as committed), and the autovacuum the load sets off runs later, beside
    /// the lookups of registering phones.
    pub async fn settle_after_bulk_load(&self) -> StoreResult<()> {
        let sql = match self.backend {
            Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
            Backend::Postgres => "VACUUM (ANALYZE) users",
        };
        self.run(sqlx::query(sql)).await
    }
}
