//! Password hashing (argon2id, OWASP parameters m=19 MiB, t=2, p=1) on a bounded pool.
//!
//! At most `workers` hashes run at once (one per core by default) and at most `queue`
//! more wait; anything beyond is refused at once with [`Busy`], so a flood of sign-ins is
//! shed instead of queueing without bound and starving everyone else.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// The hashing pool and its queue are full; try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("hashing failed: {0}")]
    Failed(String),
}

/// argon2id with the OWASP-recommended parameters.
pub fn argon2() -> Argon2<'static> {
    // m = 19 MiB, t = 2, p = 1; these constants are valid, so `new` cannot fail.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes on the calling thread (CLI and tests; servers go through [`Hasher`]).
pub fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// Verifies on the calling thread; a malformed stored hash is simply "no match".
pub fn verify_now(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password nobody knows, verified against for unknown usernames so
/// their answer takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = crate::auth::token::random_token();
        hash_now(&random).unwrap_or_default()
    })
}

#[derive(Clone, Debug)]
pub struct Hasher {
    /// Permits for work admitted (running + waiting).
    admitted: Arc<Semaphore>,
    /// Permits for work running on a core.
    running: Arc<Semaphore>,
}

impl Hasher {
    /// `workers` = 0 means one per core; the queue holds twice as many as run.
    pub fn new(workers: usize) -> Hasher {
        let workers = if workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            workers
        };
        let queue = workers * 2;
        Hasher {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    /// Checks `password` against `stored`, or refuses at once when the pool is full.
    pub async fn verify(&self, stored: String, password: SecretString) -> Result<bool, HashError> {
        self.run(move || verify_now(&stored, password.expose_secret()))
            .await
    }

    /// Hashes a new password on the pool.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(move || hash_now(password.expose_secret())).await?
    }

    /// Admission without waiting: the caller learns at once whether it will be served.
    pub fn admit(&self) -> Result<Admitted, Busy> {
        let permit = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(Admitted {
            _admitted: permit,
            running: self.running.clone(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = self.admit()?;
        admitted.run(work).await
    }
}

/// A place in the hashing queue, held from admission until the hash is done.
pub struct Admitted {
    _admitted: tokio::sync::OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl Admitted {
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Failed("hashing pool closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    pub async fn verify(self, stored: String, password: SecretString) -> Result<bool, HashError> {
        self.run(move || verify_now(&stored, password.expose_secret()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let h = hash_now("Correct-Horse-7").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_now(&h, "Correct-Horse-7"));
        assert!(!verify_now(&h, "correct-horse-7"));
        assert!(!verify_now("not a hash", "anything"));
    }

    #[tokio::test]
    async fn a_full_pool_refuses_at_once() {
        let hasher = Hasher::new(1);
        let held: Vec<_> = (0..3).map(|_| hasher.admit().unwrap()).collect();
        assert!(matches!(hasher.admit(), Err(Busy)));
        drop(held);
        assert!(hasher.admit().is_ok());
    }
}
