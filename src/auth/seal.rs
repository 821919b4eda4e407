//! Authenticated encryption at rest (XChaCha20-Poly1305): a fresh random 192-bit nonce per
//! message, stored in front of the ciphertext, and associated data that binds a ciphertext
//! to where it belongs, so a value moved elsewhere does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;

use super::key::SecretKey;

const NONCE_LEN: usize = 24;

/// The sealed value did not open: wrong key, wrong place, or tampered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealed value does not open with this key and context")]
pub struct SealError;

fn cipher(key: &SecretKey, purpose: &str) -> XChaCha20Poly1305 {
    let derived = key.mac(purpose, b"seal");
    XChaCha20Poly1305::new(&derived.into())
}

pub fn seal(key: &SecretKey, purpose: &str, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(key, purpose)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Encryption only fails for messages beyond 256 GiB; bodies are kilobytes.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

pub fn open(
    key: &SecretKey,
    purpose: &str,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN {
        return Err(SealError);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher(key, purpose)
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| SealError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_purpose_and_context() {
        let key = SecretKey::random();
        let sealed = seal(&key, "outbox", b"ctx", b"hello");
        assert_eq!(open(&key, "outbox", b"ctx", &sealed).unwrap(), b"hello");
        assert!(open(&key, "outbox", b"other", &sealed).is_err());
        assert!(open(&key, "sip", b"ctx", &sealed).is_err());
        assert!(open(&SecretKey::random(), "outbox", b"ctx", &sealed).is_err());
        assert!(open(&key, "outbox", b"ctx", &sealed[..10]).is_err());
        assert_ne!(
            seal(&key, "outbox", b"ctx", b"hello"),
            sealed,
            "fresh nonce each time"
        );
    }
}
