//! Password hashing (argon2id, OWASP parameters m=19 MiB, t=2, p=1) on a bounded pool.
//!
//! At most `workers` hashes run at once (one per core by default); the others wait in the
//! [`Admission`] queue, bounded by waiting time and fair across sources. Anything beyond
//! the bound is refused with [`Busy`] (after a hold that costs nothing, see
//! [`Admission`]), so a flood of sign-ins is shed instead of queueing without bound and
//! starving everyone else.

use std::sync::{mpsc, Arc, Mutex, OnceLock};

use super::admission::{Admission, Slot, Source};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The hashing pool and its queue are full; try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("argon2 failed")]
    Argon2(#[source] argon2::password_hash::Error),
    #[error("the hashing task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The pool's threads are gone, or one dropped the job unfinished.
    #[error("the hashing pool did not finish the job")]
    PoolGone,
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
        .map_err(HashError::Argon2)
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

/// Memory a hashing thread keeps between verifies (argon2id's 19 MiB of blocks), so a
/// busy pool neither allocates nor faults in fresh pages for every sign-in, and the
/// process holds at most one such buffer per hashing thread.
pub type Scratch = Vec<Block>;

/// Largest stored-hash memory cost a verify will allocate for (256 MiB); a hash asking
/// for more is treated as no match rather than growing the pool without bound.
const MAX_VERIFY_BLOCKS: usize = 256 * 1024;

/// `verify_now` on reused memory: same parameters (read from the stored hash), same
/// constant-time comparison of the output.
pub fn verify_with(scratch: &mut Scratch, stored: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_VERIFY_BLOCKS {
        return false;
    }
    if scratch.len() < blocks {
        scratch.resize(blocks, Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        &mut scratch[..blocks],
    );
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Puts the calling hashing thread below every thread that serves pages, so a flood of
/// sign-ins that fills the pool only gets the CPU that signed-in users leave over; with
/// nothing else to run, the hashing threads still get whole cores.
///
/// `SCHED_IDLE` first: a page request that wakes up takes the core from a hashing thread
/// at once. (At the lowest nice value alone, the scheduler may let the hashing thread
/// finish its time slice first, a few milliseconds.) Where that policy cannot be set, the
/// lowest nice value; where neither can, hashing runs at normal priority. Public for the
/// benchmark, which hashes at the same priority to measure what the hashing alone costs.
pub fn lower_priority() {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    let idle = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    );
    if idle.is_err() {
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASH_NICE);
    }
}

/// CPU time (user and system) the calling thread has used so far.
fn thread_cpu_time() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    std::time::Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The nice value of the hashing threads where `SCHED_IDLE` is not available.
const HASH_NICE: i32 = 19;

type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

#[derive(Clone, Debug)]
pub struct Hasher {
    /// The line in front of the workers.
    admission: Arc<Admission>,
    /// The hashing threads' queue; `None` if no thread could be started (then hashing
    /// falls back to the runtime's blocking pool).
    jobs: Option<mpsc::Sender<Job>>,
}

impl Hasher {
    /// `workers` = 0 means one per core; the queue holds `max_wait` of hashing work. The
    /// workers are dedicated threads that end when the last `Hasher` clone is dropped.
    pub fn new(workers: usize, max_wait: std::time::Duration) -> Hasher {
        let workers = if workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            workers
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("dialtone-hash-{i}"))
                .spawn(move || hashing_thread(&rx));
            if spawned.is_ok() {
                started += 1;
            }
        }
        Hasher {
            // Until hashes are measured, assume one takes 50 ms (a slow core's argon2id).
            admission: Admission::new(workers, max_wait, std::time::Duration::from_millis(50)),
            jobs: (started > 0).then_some(tx),
        }
    }

    /// Checks `password` against `stored` for someone already signed in (who goes before
    /// strangers), or refuses when the queue is at its bound.
    pub async fn verify(&self, stored: String, password: &str) -> Result<bool, HashError> {
        let password = SecretString::from(password.to_owned());
        self.admit(Source::portal(), true)
            .await?
            .verify(stored, password)
            .await
    }

    /// Hashes a new password (or any secret kept only as a hash) on the pool.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = SecretString::from(password.to_owned());
        self.admit(Source::portal(), true)
            .await?
            .run(move |_| hash_now(password.expose_secret()))
            .await?
    }

    /// Waits for a worker in `source`'s turn (`priority`: a browser that proved itself
    /// before), or `Busy` beyond the queue's bound (after the shed answer's hold).
    pub async fn admit(&self, source: Source, priority: bool) -> Result<Admitted, Busy> {
        let slot = self
            .admission
            .admit(source, priority)
            .await
            .inspect_err(|_| {
                crate::telemetry::hashing_shed();
            })?;
        Ok(Admitted {
            _slot: slot,
            admission: self.admission.clone(),
            jobs: self.jobs.clone(),
        })
    }
}

impl Hasher {
    /// Records how a sign-in check from `source` ended, for the queue's order under a
    /// flood (see [`Admission::note`]).
    pub fn note(&self, source: &Source, succeeded: bool) {
        self.admission.note(source, succeeded);
    }

    /// (running, waiting) hashes now, for the metrics.
    pub fn load(&self) -> (usize, usize) {
        self.admission.load()
    }
}

fn hashing_thread(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    let mut scratch = Scratch::new();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            // Every sender is gone: the `Hasher` was dropped.
            return;
        };
        // A panicking job loses its answer (the caller sees "failed"), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut scratch)));
    }
}

/// A place in the hashing queue, held from admission until the hash is done.
pub struct Admitted {
    _slot: Slot,
    admission: Arc<Admission>,
    jobs: Option<mpsc::Sender<Job>>,
}

impl Admitted {
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let Some(jobs) = &self.jobs else {
            return tokio::task::spawn_blocking(move || work(&mut Scratch::new()))
                .await
                .map_err(HashError::Task);
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let admission = self.admission.clone();
        jobs.send(Box::new(move |scratch: &mut Scratch| {
            // The work of the hash, not its wall time: a hashing thread yields to everything
            // else, and time spent waiting for a core is not a slower hash.
            let started = thread_cpu_time();
            let done = work(scratch);
            admission.observe(thread_cpu_time().saturating_sub(started));
            let _ = tx.send(done);
        }))
        .map_err(|_| HashError::PoolGone)?;
        rx.await.map_err(|_| HashError::PoolGone)
    }

    pub async fn verify(self, stored: String, password: SecretString) -> Result<bool, HashError> {
        self.run(move |scratch| verify_with(scratch, &stored, password.expose_secret()))
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

    #[test]
    fn verifying_on_reused_memory_agrees_with_the_library() {
        let mut scratch = Scratch::new();
        let h = hash_now("Correct-Horse-7").unwrap();
        let weaker = argon2::Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"Other-Horse-8", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        for _ in 0..2 {
            assert!(verify_with(&mut scratch, &h, "Correct-Horse-7"));
            assert!(!verify_with(&mut scratch, &h, "correct-horse-7"));
            // Other parameters in a stored hash are read from it, on the same memory.
            assert!(verify_with(&mut scratch, &weaker, "Other-Horse-8"));
            assert!(!verify_with(&mut scratch, &weaker, "Correct-Horse-7"));
            assert!(!verify_with(&mut scratch, "not a hash", "anything"));
        }
        let tampered = format!("{}A", &h[..h.len() - 1]);
        assert_eq!(
            verify_with(&mut scratch, &tampered, "Correct-Horse-7"),
            verify_now(&tampered, "Correct-Horse-7")
        );
    }

    fn pool(workers: usize) -> Hasher {
        Hasher::new(workers, std::time::Duration::from_secs(2))
    }

    #[tokio::test]
    async fn the_pool_verifies_and_hashes() {
        let hasher = pool(2);
        let h = hasher.hash("Correct-Horse-7").await.unwrap();
        assert!(hasher.verify(h.clone(), "Correct-Horse-7").await.unwrap());
        assert!(!hasher.verify(h, "Wrong-Horse-7").await.unwrap());
    }

    #[tokio::test]
    async fn the_load_counts_running_and_waiting_hashes() {
        let hasher = pool(1);
        assert_eq!(hasher.load(), (0, 0));
        let held = hasher.admit(Source::portal(), false).await.unwrap();
        assert_eq!(hasher.load(), (1, 0));
        drop(held);
        assert_eq!(hasher.load(), (0, 0));
    }

    #[tokio::test]
    async fn hashing_threads_yield_to_everything_else() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let hasher = pool(1);
        let policy = hasher
            .admit(Source::portal(), false)
            .await
            .unwrap()
            .run(|_| thread_priority::thread_schedule_policy())
            .await
            .unwrap()
            .unwrap();
        let nice = hasher
            .admit(Source::portal(), false)
            .await
            .unwrap()
            .run(|_| rustix::process::getpriority_process(None))
            .await
            .unwrap()
            .unwrap();
        assert!(
            policy == ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
                || nice == HASH_NICE,
            "hashing runs at {policy:?}, nice {nice}"
        );
    }
}
