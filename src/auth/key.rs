//! One 32-byte secret key, held by the keyring (see `keyring.rs`, which reads and writes
//! the key file). Purpose-specific keys are derived from it.

use std::fmt;

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
    fn purposes_derive_different_keys() {
        let a = SecretKey::random();
        assert_eq!(a.mac("x", b"m"), a.mac("x", b"m"));
        assert_ne!(a.mac("x", b"m"), a.mac("y", b"m"));
        let back = SecretKey::from_hex(&a.to_hex()).unwrap();
        assert_eq!(a.mac("x", b"m"), back.mac("x", b"m"));
    }
}
