//! Credentials machinery with no business rules: the bounded password-hashing pool,
//! random tokens and their hashes, CSRF tokens, the server's secret key, and one-time
//! codes of authenticator apps (TOTP).

pub mod admission;
pub mod csrf;
pub mod hashing;
pub mod key;
pub mod keyring;
pub mod seal;
pub mod token;
pub mod totp;

pub use hashing::{Busy, Hasher};
