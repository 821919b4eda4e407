//! Files private to the service's user: the data directory is 0700 and every file in it
//! 0600 (the database and its `-wal`/`-shm`, the key file, mail files holding live reset
//! links), so no other local account can read them.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Mode of a private directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a private file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) if missing and makes it 0700, also when it existed.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Makes `path` 0600 when it exists, creating it empty (0600) when `create` and missing.
pub fn private_file(path: &Path, create: bool) -> io::Result<()> {
    if create && !path.exists() {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(FILE_MODE);
        }
        options.open(path)?;
    }
    if path.exists() {
        set_mode(path, FILE_MODE)?;
    }
    Ok(())
}

/// Options that create a file 0600 from the start (no window where it is readable).
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// A SQLite database file and its `-wal`/`-shm`/`-journal` companions made 0600; the file
/// is created 0600 if missing, so SQLite (which gives its companions the database file's
/// mode) never makes one readable by others.
pub fn private_sqlite(db: &Path) -> io::Result<()> {
    private_file(db, true)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = db.as_os_str().to_owned();
        companion.push(suffix);
        private_file(Path::new(&companion), false)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
