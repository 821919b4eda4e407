//! The data key file: one or more numbered 256-bit keys, one per line (`ID HEX`), the last
//! one current. Device secrets (SIP secrets, PINs) and queued mail bodies are sealed under
//! the current key with its number in front, so after `dialtone key rotate` values sealed
//! under the previous key still open while they are re-encrypted. A file holding a single
//! bare hex key (the first format) is read as key 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::key::{KeyError, SecretKey};
use super::seal::{self, SealError};

/// A sealed value starts with this version byte and the key's number.
const VERSION: u8 = 1;
const HEADER: usize = 5;

#[derive(Clone)]
pub struct Keyring {
    path: PathBuf,
    keys: Arc<RwLock<Vec<(u32, SecretKey)>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn parse(path: &Path, text: &str) -> Result<Vec<(u32, SecretKey)>, KeyError> {
    let shown = || path.display().to_string();
    let mut keys = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (id, hex) = match line.split_once(' ') {
            Some((id, hex)) => (
                id.trim()
                    .parse::<u32>()
                    .map_err(|_| KeyError::Malformed(shown()))?,
                hex.trim(),
            ),
            None if keys.is_empty() => (1, line),
            None => return Err(KeyError::Malformed(shown())),
        };
        keys.push((
            id,
            SecretKey::from_hex(hex).ok_or_else(|| KeyError::Malformed(shown()))?,
        ));
    }
    if keys.is_empty() {
        return Err(KeyError::Malformed(shown()));
    }
    Ok(keys)
}

impl Keyring {
    /// Reads the key file; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Keyring>, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(Keyring {
                path: path.to_owned(),
                keys: Arc::new(RwLock::new(parse(path, &text)?)),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeyError::Read {
                path: path.display().to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// Creates a new key file (mode 0600) holding one fresh key.
    pub fn create(path: &Path) -> Result<Keyring, KeyError> {
        let keys = vec![(1, SecretKey::random())];
        write_file(path, &keys, true).map_err(|why| KeyError::Create {
            path: path.display().to_string(),
            why: why.to_string(),
        })?;
        Ok(Keyring {
            path: path.to_owned(),
            keys: Arc::new(RwLock::new(keys)),
        })
    }

    fn snapshot(&self) -> Vec<(u32, SecretKey)> {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// The numbers of the keys held, oldest first.
    pub fn ids(&self) -> Vec<u32> {
        self.snapshot().iter().map(|(id, _)| *id).collect()
    }

    pub fn current_id(&self) -> u32 {
        self.snapshot().last().map(|(id, _)| *id).unwrap_or(0)
    }

    /// The key that signs CSRF tokens: the oldest held, so a rotation does not void the
    /// forms open in browsers.
    pub fn signing_key(&self) -> SecretKey {
        self.snapshot()
            .first()
            .map(|(_, k)| k.clone())
            .unwrap_or_else(SecretKey::random)
    }

    /// Seals under the current key.
    pub fn seal(&self, purpose: &str, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let keys = self.snapshot();
        let Some((id, key)) = keys.last() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(HEADER + 40 + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&seal::seal(key, purpose, aad, plaintext));
        out
    }

    /// Opens a value sealed under any key held; re-reads the file once when the value names
    /// a key this process has not seen (another process rotated).
    pub fn open(&self, purpose: &str, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let id = key_id(sealed).ok_or(SealError)?;
        if !self.ids().contains(&id) {
            let _ = self.reload();
        }
        let keys = self.snapshot();
        let (_, key) = keys.iter().find(|(k, _)| *k == id).ok_or(SealError)?;
        seal::open(key, purpose, aad, &sealed[HEADER..])
    }

    /// Re-reads the key file.
    pub fn reload(&self) -> Result<(), KeyError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| KeyError::Read {
            path: self.path.display().to_string(),
            why: e.to_string(),
        })?;
        let keys = parse(&self.path, &text)?;
        if let Ok(mut held) = self.keys.write() {
            *held = keys;
        }
        Ok(())
    }

    /// Adds a new current key and writes the file atomically; older keys stay until
    /// [`Keyring::retain`] drops the ones nothing is sealed under. Returns the new number.
    pub fn rotate(&self) -> Result<u32, KeyError> {
        let mut keys = self.snapshot();
        let next = keys.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        keys.push((next, SecretKey::random()));
        self.replace(keys)?;
        Ok(next)
    }

    /// Keeps only the keys numbered in `ids` (the current key always stays).
    pub fn retain(&self, ids: &[u32]) -> Result<(), KeyError> {
        let current = self.current_id();
        let keys: Vec<_> = self
            .snapshot()
            .into_iter()
            .filter(|(id, _)| *id == current || ids.contains(id))
            .collect();
        self.replace(keys)
    }

    fn replace(&self, keys: Vec<(u32, SecretKey)>) -> Result<(), KeyError> {
        write_file(&self.path, &keys, false).map_err(|why| KeyError::Create {
            path: self.path.display().to_string(),
            why: why.to_string(),
        })?;
        if let Ok(mut held) = self.keys.write() {
            *held = keys;
        }
        Ok(())
    }
}

/// The number of the key a sealed value was made with.
pub fn key_id(sealed: &[u8]) -> Option<u32> {
    if sealed.len() < HEADER || sealed[0] != VERSION {
        return None;
    }
    Some(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

/// Writes the key file through a temporary file and a rename, mode 0600.
fn write_file(path: &Path, keys: &[(u32, SecretKey)], create_new: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if create_new && path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the key file already exists",
        ));
    }
    let mut file = options.open(&tmp)?;
    writeln!(
        file,
        "# Dialtone data keys: ID HEX, the last one current. Keep this file secret and backed up."
    )?;
    for (id, key) in keys {
        writeln!(file, "{id} {}", key.to_hex())?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sealed_before_a_rotation_still_open_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let ring = Keyring::create(&path).unwrap();
        let old = ring.seal("sip", b"1:201", b"secret");
        assert_eq!(key_id(&old), Some(1));
        assert_eq!(ring.rotate().unwrap(), 2);
        let new = ring.seal("sip", b"1:201", b"secret");
        assert_eq!(key_id(&new), Some(2));
        assert_eq!(ring.open("sip", b"1:201", &old).unwrap(), b"secret");
        assert_eq!(ring.open("sip", b"1:201", &new).unwrap(), b"secret");
        assert!(
            ring.open("sip", b"1:202", &new).is_err(),
            "bound to its place"
        );

        // Another process that loaded the file before the rotation learns the new key.
        let ring3 = Keyring::load(&path).unwrap().unwrap();
        ring.rotate().unwrap();
        let newest = ring.seal("sip", b"x", b"y");
        assert_eq!(ring3.open("sip", b"x", &newest).unwrap(), b"y");
        assert_eq!(ring.ids(), vec![1, 2, 3]);
        ring.retain(&[2]).unwrap();
        assert_eq!(
            Keyring::load(&path).unwrap().unwrap().ids(),
            vec![2, 3],
            "unused keys are dropped"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn a_bare_hex_file_is_key_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        let ring = Keyring::load(&path).unwrap().unwrap();
        assert_eq!(ring.ids(), vec![1]);
        std::fs::write(&path, "nonsense").unwrap();
        assert!(Keyring::load(&path).is_err());
    }
}
