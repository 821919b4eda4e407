//! Admission to the hashing pool: by waiting time, not by a slot count, and fair across
//! sources.
//!
//! A password check waits for one of the pool's workers in a queue bounded by how long a
//! person would wait: at most `max_wait` of queued hashing work at the measured time of
//! one hash. Beyond that bound it is shed at once ([`Busy`]: the page answers 503 with
//! `Retry-After`). Waiting checks are served round-robin across their sources (a client
//! address, IPv6 by /64), priority sources first (browsers that proved themselves), and
//! one source may have only a few checks queued, so a flood from a few addresses waits
//! behind itself while a real user's one attempt is served within the bound. A waiter
//! whose client gave up (its future dropped) leaves the queue without being hashed.
//!
//! A flood from many addresses is met by what its checks show: a source whose last
//! checks failed ([`SUSPECT_AFTER`] in a row, remembered for the most recent
//! [`REMEMBERED_SOURCES`] sources) is served after every other, and at the bound a check
//! from anyone else takes the place of the newest check of such a source, which is shed.
//! A real user who typed the right password is never behind the flood's guesses.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;

use tokio::sync::oneshot;

use super::hashing::Busy;

/// Checks one source may have waiting at once; more from it are shed.
pub const PER_SOURCE_WAITING: usize = 4;

/// Failed checks in a row after which a source waits behind everyone else.
pub const SUSPECT_AFTER: u32 = 2;

/// How many sources' recent failures are remembered (least recently failed forgotten).
pub const REMEMBERED_SOURCES: usize = 16_384;

/// Who a password check is for, for fairness: a client address (IPv6 by /64), or the
/// portal itself for checks inside a signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source(pub String);

impl Source {
    /// Checks inside a signed-in session (changing a password, revealing a secret).
    pub fn portal() -> Source {
        Source("portal".to_owned())
    }
}

/// The queue in front of the hashing workers.
#[derive(Debug)]
pub struct Admission {
    inner: Mutex<Queue>,
}

#[derive(Debug)]
struct Queue {
    workers: usize,
    running: usize,
    max_wait: Duration,
    /// The time one hash takes, as measured (a moving average).
    per_hash: Duration,
    waiting: usize,
    next_id: u64,
    /// Sources with waiters, in the order they are served: priority ones first, then
    /// ordinary ones, then suspect ones.
    priority_turns: VecDeque<Source>,
    turns: VecDeque<Source>,
    suspect_turns: VecDeque<Source>,
    by_source: HashMap<Source, VecDeque<Waiter>>,
    /// Failed checks in a row, by source.
    failures: LruCache<Source, u32>,
}

/// Where a source's checks wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A browser that proved itself before.
    Priority,
    Ordinary,
    /// Its last checks failed.
    Suspect,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    grant: oneshot::Sender<()>,
}

/// A worker's place, held while the hash runs; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut q = self.admission.lock();
        q.running = q.running.saturating_sub(1);
        q.dispatch();
    }
}

/// Takes a waiter out of the queue if its future is dropped before it was served.
struct Leave<'a> {
    admission: &'a Arc<Admission>,
    source: Source,
    id: u64,
    served: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let mut q = self.admission.lock();
        q.remove(&self.source, self.id);
    }
}

impl Admission {
    /// `workers` hashes run at once; `per_hash` is the first estimate of one hash's time.
    pub fn new(workers: usize, max_wait: Duration, per_hash: Duration) -> Arc<Admission> {
        Arc::new(Admission {
            inner: Mutex::new(Queue {
                workers: workers.max(1),
                running: 0,
                max_wait,
                per_hash: per_hash.max(Duration::from_micros(100)),
                waiting: 0,
                next_id: 0,
                priority_turns: VecDeque::new(),
                turns: VecDeque::new(),
                suspect_turns: VecDeque::new(),
                by_source: HashMap::new(),
                failures: LruCache::new(
                    NonZeroUsize::new(REMEMBERED_SOURCES).unwrap_or(NonZeroUsize::MIN),
                ),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half-changed in a way
        // that matters more than refusing every sign-in would; carry on with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many checks may wait at once: `max_wait` of work spread over the workers.
    pub fn capacity(&self) -> usize {
        self.lock().capacity()
    }

    /// (running, waiting) checks now, for the metrics.
    pub fn load(&self) -> (usize, usize) {
        let q = self.lock();
        (q.running, q.waiting)
    }

    /// Folds one measured hash time into the estimate the bound is computed from.
    pub fn observe(&self, took: Duration) {
        let mut q = self.lock();
        // A moving average over about eight hashes: steady, and quick to follow a change.
        q.per_hash = (q.per_hash * 7 + took) / 8;
    }

    /// Records how a check from `source` ended: a failure counts toward its suspicion, a
    /// success clears it.
    pub fn note(&self, source: &Source, succeeded: bool) {
        let mut q = self.lock();
        if succeeded {
            q.failures.pop(source);
        } else if let Some(n) = q.failures.get_mut(source) {
            *n = n.saturating_add(1);
        } else {
            q.failures.put(source.clone(), 1);
        }
    }

    /// Waits for a worker; `Busy` at once when the queue is at its bound (and holds no
    /// suspect check to take the place of) or `source` has too many checks waiting.
    pub async fn admit(self: &Arc<Self>, source: Source, priority: bool) -> Result<Slot, Busy> {
        let (id, granted) = {
            let mut q = self.lock();
            if q.running < q.workers && q.waiting == 0 {
                q.running += 1;
                return Ok(Slot {
                    admission: self.clone(),
                });
            }
            let queued_here = q.by_source.get(&source).map_or(0, VecDeque::len);
            if queued_here >= PER_SOURCE_WAITING {
                return Err(Busy);
            }
            let class = q.class_of(&source, priority);
            if q.waiting >= q.capacity() && (class == Class::Suspect || !q.shed_newest_suspect()) {
                return Err(Busy);
            }
            let (tx, rx) = oneshot::channel();
            let id = q.next_id;
            q.next_id += 1;
            q.waiting += 1;
            let waiters = q.by_source.entry(source.clone()).or_default();
            let first = waiters.is_empty();
            waiters.push_back(Waiter { id, grant: tx });
            if first {
                q.turns_of(class).push_back(source.clone());
            }
            (id, rx)
        };
        let mut leave = Leave {
            admission: self,
            source,
            id,
            served: false,
        };
        match granted.await {
            Ok(()) => {
                leave.served = true;
                Ok(Slot {
                    admission: self.clone(),
                })
            }
            // The queue was dropped with the pool: nothing will ever run this.
            Err(_) => Err(Busy),
        }
    }
}

impl Queue {
    fn capacity(&self) -> usize {
        let work = self.max_wait.as_secs_f64() * self.workers as f64;
        (work / self.per_hash.as_secs_f64()).floor() as usize
    }

    fn class_of(&mut self, source: &Source, priority: bool) -> Class {
        if priority {
            Class::Priority
        } else if self
            .failures
            .peek(source)
            .is_some_and(|n| *n >= SUSPECT_AFTER)
        {
            Class::Suspect
        } else {
            Class::Ordinary
        }
    }

    fn turns_of(&mut self, class: Class) -> &mut VecDeque<Source> {
        match class {
            Class::Priority => &mut self.priority_turns,
            Class::Ordinary => &mut self.turns,
            Class::Suspect => &mut self.suspect_turns,
        }
    }

    /// Sheds the newest check of the suspect source that joined last, to make room;
    /// `false` when no suspect check waits.
    fn shed_newest_suspect(&mut self) -> bool {
        let Some(source) = self.suspect_turns.back().cloned() else {
            return false;
        };
        let Some(waiters) = self.by_source.get_mut(&source) else {
            self.suspect_turns.pop_back();
            return self.shed_newest_suspect();
        };
        // Dropping its sender tells the waiter it was shed.
        let shed = waiters.pop_back();
        if waiters.is_empty() {
            self.by_source.remove(&source);
            self.suspect_turns.pop_back();
        }
        if shed.is_some() {
            self.waiting = self.waiting.saturating_sub(1);
            return true;
        }
        self.shed_newest_suspect()
    }

    /// Hands free workers to waiters, one source at a time.
    fn dispatch(&mut self) {
        while self.running < self.workers {
            let Some(waiter) = self.next_waiter() else {
                return;
            };
            // A waiter whose client left has its receiver dropped; skip it.
            if waiter.grant.send(()).is_ok() {
                self.running += 1;
            }
        }
    }

    fn next_waiter(&mut self) -> Option<Waiter> {
        loop {
            let (source, class) = if let Some(s) = self.priority_turns.pop_front() {
                (s, Class::Priority)
            } else if let Some(s) = self.turns.pop_front() {
                (s, Class::Ordinary)
            } else {
                (self.suspect_turns.pop_front()?, Class::Suspect)
            };
            let Some(waiters) = self.by_source.get_mut(&source) else {
                continue;
            };
            let Some(waiter) = waiters.pop_front() else {
                self.by_source.remove(&source);
                continue;
            };
            self.waiting = self.waiting.saturating_sub(1);
            if waiters.is_empty() {
                self.by_source.remove(&source);
            } else {
                self.turns_of(class).push_back(source);
            }
            return Some(waiter);
        }
    }

    fn remove(&mut self, source: &Source, id: u64) {
        let Some(waiters) = self.by_source.get_mut(source) else {
            return;
        };
        let before = waiters.len();
        waiters.retain(|w| w.id != id);
        if waiters.len() < before {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if waiters.is_empty() {
            self.by_source.remove(source);
            self.turns.retain(|s| s != source);
            self.priority_turns.retain(|s| s != source);
            self.suspect_turns.retain(|s| s != source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(s: &str) -> Source {
        Source(s.to_owned())
    }

    /// One worker, 100 ms per hash, 1 s of waiting: ten may wait.
    fn queue() -> Arc<Admission> {
        Admission::new(1, Duration::from_secs(1), Duration::from_millis(100))
    }

    #[test]
    fn the_bound_is_the_waiting_time_of_the_measured_work() {
        let a = queue();
        assert_eq!(a.capacity(), 10);
        // Hashes turn out slower: fewer may wait.
        for _ in 0..64 {
            a.observe(Duration::from_millis(200));
        }
        assert!(a.capacity() <= 6, "{}", a.capacity());
        let two = Admission::new(2, Duration::from_secs(2), Duration::from_millis(20));
        assert_eq!(two.capacity(), 200);
    }

    #[tokio::test]
    async fn beyond_the_bound_a_check_is_shed_at_once() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let mut waiting = Vec::new();
        // Ten sources with one check each fill the bound.
        for i in 0..10 {
            let a = a.clone();
            waiting.push(tokio::spawn(async move {
                a.admit(source(&format!("s{i}")), false).await
            }));
        }
        tokio::task::yield_now().await;
        while a.lock().waiting < 10 {
            tokio::task::yield_now().await;
        }
        assert!(a.admit(source("late"), false).await.is_err());
        drop(running);
        let first = waiting.remove(0).await.unwrap();
        assert!(first.is_ok());
    }

    #[tokio::test]
    async fn one_source_may_queue_only_a_few_checks() {
        let a = queue();
        let _running = a.admit(source("x"), false).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..PER_SOURCE_WAITING {
            let a = a.clone();
            held.push(tokio::spawn(async move {
                a.admit(source("flood"), false).await
            }));
        }
        while a.lock().waiting < PER_SOURCE_WAITING {
            tokio::task::yield_now().await;
        }
        assert!(a.admit(source("flood"), false).await.is_err());
        // Someone else still gets in line.
        let a2 = a.clone();
        let other = tokio::spawn(async move { a2.admit(source("user"), false).await });
        while a.lock().waiting < PER_SOURCE_WAITING + 1 {
            tokio::task::yield_now().await;
        }
        for h in held {
            h.abort();
        }
        other.abort();
    }

    /// Queues `who` in this order behind a running check, then lets the worker go one
    /// check at a time and returns the order they were served in.
    async fn served_order(a: &Arc<Admission>, who: &[(&str, bool)]) -> Vec<String> {
        let running = a.admit(source("first"), false).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, (s, priority)) in who.iter().enumerate() {
            let (queue, tx, s, priority) = (a.clone(), tx.clone(), s.to_string(), *priority);
            tokio::spawn(async move {
                let slot = queue.admit(source(&s), priority).await.unwrap();
                tx.send((s, slot)).unwrap();
            });
            while a.lock().waiting < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(running);
        let mut order = Vec::new();
        for _ in who {
            let (s, slot) = rx.recv().await.unwrap();
            order.push(s);
            drop(slot);
        }
        order
    }

    #[tokio::test]
    async fn sources_are_served_in_turn_so_a_flood_waits_behind_itself() {
        let a = queue();
        let order = served_order(
            &a,
            &[
                ("flood", false),
                ("flood", false),
                ("flood", false),
                ("user", false),
            ],
        )
        .await;
        assert_eq!(order, ["flood", "user", "flood", "flood"]);
    }

    #[tokio::test]
    async fn proven_browsers_are_served_before_unknown_ones() {
        let a = queue();
        let order = served_order(&a, &[("a", false), ("b", false), ("trusted", true)]).await;
        assert_eq!(order, ["trusted", "a", "b"]);
    }

    #[tokio::test]
    async fn sources_whose_checks_keep_failing_are_served_after_everyone_else() {
        let a = queue();
        for _ in 0..SUSPECT_AFTER {
            a.note(&source("flood"), false);
        }
        // One failure is a typo, not a flood.
        a.note(&source("typo"), false);
        let order = served_order(&a, &[("flood", false), ("typo", false), ("user", false)]).await;
        assert_eq!(order, ["typo", "user", "flood"]);
        // A success clears the suspicion.
        a.note(&source("flood"), true);
        let order = served_order(&a, &[("flood", false), ("user", false)]).await;
        assert_eq!(order, ["flood", "user"]);
    }

    #[tokio::test]
    async fn at_the_bound_anyone_else_takes_the_place_of_a_suspect_check() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        // Ten suspect sources fill the bound.
        let mut flood = Vec::new();
        for i in 0..10 {
            let s = source(&format!("f{i}"));
            for _ in 0..SUSPECT_AFTER {
                a.note(&s, false);
            }
            let queue = a.clone();
            flood.push(tokio::spawn(async move { queue.admit(s, false).await }));
            while a.lock().waiting < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        // Another suspect check is shed at once; a user's takes the newest flood place.
        let late = source("f-late");
        for _ in 0..SUSPECT_AFTER {
            a.note(&late, false);
        }
        assert!(a.admit(late, false).await.is_err());
        let a2 = a.clone();
        let user = tokio::spawn(async move { a2.admit(source("user"), false).await });
        let shed = flood.pop().unwrap().await.unwrap();
        assert!(shed.is_err(), "the newest suspect check was shed");
        assert_eq!(a.lock().waiting, 10);
        drop(running);
        assert!(user.await.unwrap().is_ok(), "the user is served first");
        for f in flood {
            f.abort();
        }
    }

    #[test]
    fn the_failures_remembered_are_bounded() {
        let a = queue();
        for i in 0..REMEMBERED_SOURCES + 10 {
            a.note(&source(&format!("s{i}")), false);
        }
        assert_eq!(a.lock().failures.len(), REMEMBERED_SOURCES);
    }

    #[tokio::test]
    async fn a_client_that_gives_up_leaves_the_queue_without_being_served() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let a2 = a.clone();
        let gave_up = tokio::spawn(async move { a2.admit(source("gone"), false).await });
        while a.lock().waiting < 1 {
            tokio::task::yield_now().await;
        }
        gave_up.abort();
        let _ = gave_up.await;
        assert_eq!(a.lock().waiting, 0, "the waiter left the queue");
        drop(running);
        assert_eq!(a.lock().running, 0, "nobody was served for it");
        assert!(a.admit(source("next"), false).await.is_ok());
    }
}
