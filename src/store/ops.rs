//! The database as a whole: the online backup of a SQLite database with its integrity
//! check, and the purge of rows no rule reads any more.

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
    #[error("there is no folder {0} to write the copy into")]
    NoFolder(String),
    #[error(
        "there is no database at {0} to back up: check DIALTONE_DATA_DIR or DIALTONE_DATABASE_URL"
    )]
    NoDatabase(String),
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

/// The SQLite database file `url` names, when that file does not exist: a backup of it
/// would otherwise make an empty database and copy that. `None` for PostgreSQL.
pub fn missing_sqlite_database(url: &str) -> Option<String> {
    super::sqlite_file(url)
        .filter(|file| !file.exists())
        .map(|file| file.display().to_string())
}

impl Store {
    /// Forgets throttle rows nobody can be limited by any more, reset links long dead and
    /// caller verifications long past their window, so no table grows without bound.
    pub async fn purge_stale(&self, quiet_before: Timestamp, now: Timestamp) -> StoreResult<u64> {
        let throttle = sqlx::query(
            "DELETE FROM signin_throttle WHERE window_start < $1 AND (locked_until IS NULL OR locked_until < $2)",
        );
        let mut purged = self.affected(throttle.bind(quiet_before).bind(now)).await?;
        for sql in [
            "DELETE FROM reset_tokens WHERE expires_at < $1",
            "DELETE FROM caller_verifications WHERE verified_at < $1",
        ] {
            purged += self.affected(sqlx::query(sql).bind(quiet_before)).await?;
        }
        Ok(purged)
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
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !folder.is_dir() {
                return Err(BackupError::NoFolder(folder.display().to_string()));
            }
        }
        let target = path
            .to_str()
            .ok_or_else(|| BackupError::Exists(format!("{shown} (not UTF-8)")))?;
        // The copy holds password hashes and sealed secrets: made private (0600) before
        // SQLite writes into it (VACUUM INTO takes an empty file).
        crate::private_files::private_file(path, true)
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        if let Err(e) = sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
        {
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
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
