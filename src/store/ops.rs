//! What operations tools read and do: the outbox backlog for the metrics, handing a
//! stopping worker's claimed mail back, and the online backup of a SQLite database.

use std::path::Path;

use sqlx::{Connection, Row};

use super::{Backend, Store, StoreError, StoreResult};
use crate::clock::Timestamp;

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// PostgreSQL is backed up with its own tools.
    #[error(
        "this database is PostgreSQL: back it up with `pg_dump --format=custom --file=FILE DATABASE_URL` \
         (restore with `pg_restore --clean --dbname=DATABASE_URL FILE`); `dialtone backup` copies SQLite databases only"
    )]
    Postgres,
    #[error("{0} already exists; give a new file name")]
    Exists(String),
    #[error("the copy at {path} failed its integrity check: {report}")]
    Damaged { path: String, report: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError::Store(StoreError::Database(e))
    }
}

impl Store {
    /// Queued mail: how many, and when the oldest was queued.
    pub async fn outbox_backlog(&self) -> StoreResult<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS depth, MIN(queued_at) AS oldest FROM outbox WHERE status = 'queued'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.try_get("depth")?,
            row.try_get::<Option<i64>, _>("oldest")?.map(Timestamp),
        ))
    }

    /// Gives the messages still claimed under `claim_token` back to the outbox, as if never
    /// tried: the next worker (on this node after a restart, or another) sends them at once.
    pub async fn release_mail_claim(&self, claim_token: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, claim_token = NULL, attempts = attempts - 1 \
             WHERE claim_token = $1 AND status = 'queued'",
        )
        .bind(claim_token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Writes a consistent copy of the SQLite database to `path` while it is in use
    /// (`VACUUM INTO` reads one snapshot; writers carry on), then checks the copy with
    /// `PRAGMA integrity_check`. Returns the copy's size in bytes.
    pub async fn backup_to(&self, path: &Path) -> Result<u64, BackupError> {
        if self.backend == Backend::Postgres {
            return Err(BackupError::Postgres);
        }
        let shown = path.display().to_string();
        if path.exists() {
            return Err(BackupError::Exists(shown));
        }
        let target = path
            .to_str()
            .ok_or_else(|| BackupError::Exists(format!("{shown} (not UTF-8)")))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        let report = integrity_report(path).await;
        match report {
            Ok(report) if report == "ok" => Ok(std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?),
            Ok(report) => {
                let _ = std::fs::remove_file(path);
                Err(BackupError::Damaged {
                    path: shown,
                    report,
                })
            }
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// `PRAGMA integrity_check` on this SQLite database: `ok`, or what is wrong. On
    /// PostgreSQL (which checks its pages itself) always `ok`.
    pub async fn integrity_check(&self) -> StoreResult<String> {
        if self.backend == Backend::Postgres {
            return Ok("ok".to_owned());
        }
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        join_report(&rows)
    }
}

/// Opens the SQLite file at `path` read-only and runs `PRAGMA integrity_check` on it.
async fn integrity_report(path: &Path) -> Result<String, BackupError> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(join_report(&rows)?)
}

fn join_report(rows: &[sqlx::any::AnyRow]) -> StoreResult<String> {
    let lines = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lines.join("; "))
}
