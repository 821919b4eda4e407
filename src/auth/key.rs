//! The server's secret key: 32 random bytes generated into the data directory on first
//! start (mode 0600), or read from `DIALTONE_SECRET_KEY_FILE`. Every node that shares a
//! database must be given the same key. Purpose-specific keys are derived from it.

use std::fmt;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;

#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the secret key file {path}: {why}")]
    Read { path: String, why: String },
    #[error("the secret key file {0} must hold 64 hexadecimal characters")]
    Malformed(String),
    #[error("cannot create the secret key file {path}: {why}")]
    Create { path: String, why: String },
}

impl SecretKey {
    pub fn from_hex(hex: &str) -> Option<SecretKey> {
        let bytes = hex::decode(hex.trim()).ok()?;
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(SecretKey(key))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn random() -> SecretKey {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        SecretKey(k)
    }

    /// Reads the key file, creating it (0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes =
                    hex::decode(text.trim()).map_err(|_| KeyError::Malformed(shown.clone()))?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed(shown))?;
                Ok(SecretKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::random();
                key.write_new(path).map_err(|why| KeyError::Create {
                    path: shown,
                    why: why.to_string(),
                })?;
                Ok(key)
            }
            Err(e) => Err(KeyError::Read {
                path: shown,
                why: e.to_string(),
            }),
        }
    }

    fn write_new(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(hex::encode(self.0).as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }

    /// HMAC-SHA256 of `message` under a key derived for `purpose`.
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let derived = self.derive(purpose);
        let mut mac = new_mac(&derived);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = new_mac(&self.0);
        mac.update(b"dialtone/");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[allow(clippy::expect_used)]
fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts a key of any length; the error case of this constructor cannot happen.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let a = SecretKey::load_or_create(&path).unwrap();
        let b = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(a.mac("x", b"m"), b.mac("x", b"m"));
        assert_ne!(a.mac("x", b"m"), a.mac("y", b"m"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            SecretKey::load_or_create(&path),
            Err(KeyError::Malformed(_))
        ));
    }
}
