//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30-second
//! steps — what every authenticator app computes by default — plus the base32 form
//! (RFC 4648, no padding) a secret is typed in as. Machinery only: which steps are
//! accepted, and that each is accepted once, is the two-step service's rule.

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret: 160 bits, the HMAC-SHA-1 block RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut secret);
    secret
}

/// The step (counter) a moment falls in.
pub fn step_at(t: Timestamp) -> i64 {
    t.0.div_euclid(STEP_SECONDS)
}

/// The code of `step`, as the 6 digits an app shows.
pub fn code(secret: &[u8], step: i64) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for HMAC.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

/// Whether `typed` (already trimmed of spaces) is the code of `step`, compared in
/// constant time.
pub fn is_code(secret: &[u8], step: i64, typed: &str) -> bool {
    typed.len() == DIGITS && bool::from(code(secret, step).as_bytes().ct_eq(typed.as_bytes()))
}

/// A secret as base32 without padding (what apps accept typed in).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B, the SHA-1 rows (8 digits there; the last 6 here).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = step_at(Timestamp(t));
            assert_eq!(code(secret, step), &eight[2..], "t={t}");
            assert!(is_code(secret, step, &eight[2..]));
            assert!(!is_code(secret, step + 1, &eight[2..]));
        }
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(&new_secret()).len(), 32);
    }

    #[test]
    fn junk_is_never_a_code() {
        let secret = new_secret();
        for junk in ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"] {
            assert!(!is_code(&secret, 1, junk), "{junk}");
        }
    }
}
