//! Admission to the hashing pool: by waiting time, not by a slot count, and fair across
//! sources.
//!
//! A password check waits for one of the pool's workers in a queue bounded by how long a
//! person would wait: at most `max_wait` of queued hashing work at the measured time of
//! one hash. Beyond that bound it is shed ([`Busy`]: the page answers 503 with
//! `Retry-After`). Waiting checks are served round-robin across their sources (a client
//! address, IPv6 by /64), priority sources first (browsers that proved themselves), and
//! one source may have only a few checks queued, so a flood from a few addresses waits
//! behind itself while a real user's one attempt is served within the bound. A waiter
//! whose client gave up (its future dropped) leaves the queue without being hashed.
//!
//! A flood from many addresses is met by what its checks show: a source whose last check
//! failed is doubtful and served after the ordinary ones; one whose last checks failed
//! ([`SUSPECT_AFTER`] in a row) is suspect and served after every other (failures are
//! remembered for the most recent [`REMEMBERED_SOURCES`] sources; a success clears them).
//! At the bound a check takes the place of the newest check of a class served after its
//! own, which is shed: suspect ones first, then doubtful ones, then (for a proven browser)
//! ordinary ones. A real user who typed the right password is never behind the flood's
//! guesses, and a flood of fresh addresses falls behind after its first guess from each.
//!
//! The last worker is not the flood's: checks from sources whose last check failed
//! (doubtful and suspect ones) hold at most every worker but one at once (with two or
//! more workers). The hashing threads yield to everything else, but a core busy with
//! argon2id still slows the pages that share it (its memory traffic evicts theirs from the
//! caches, and a waking page thread waits for the hashing thread to be switched out), so
//! a flood of wrong passwords leaves one core to the people who are signed in, and to the
//! sign-ins that have not failed, which may use every worker. A flood from addresses that
//! never failed before is ordinary until its first guess from each fails. The bound below
//! counts every worker, so a failing check may wait longer than it (on two workers, up to
//! twice as long): those are the flood's.
//!
//! A shed check is answered only after [`SHED_HOLD`], during which it holds no place in
//! the queue and costs nothing but a timer. A refusal answered at once costs the server
//! about a millisecond, so clients that retry at once would come straight back and take
//! the cores from the hashing threads (which yield to everything else): the more is shed,
//! the less is hashed. Holding the answer bounds what each client can cost. At most
//! [`HELD_AT_ONCE`] answers are held; beyond that a flood is answered at once, so it
//! cannot pile up memory.
//!
//! The bound is computed from the hashing *work* of one hash — the CPU time its hashing
//! thread spent on it (measured in `hashing.rs`), not its wall time. The hashing threads
//! yield to everything else, so when the cores are busy elsewhere a hash takes longer on
//! the clock without being more work; folding that into the estimate shrank the bound,
//! shed more, and made more churn to starve the hashes with: a feedback loop. The price
//! is that while pages (not hashes) take the cores, a check may wait somewhat longer than
//! `max_wait`; a smaller bound would not make those hashes any faster.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;

use tokio::sync::oneshot;

use super::hashing::Busy;

/// Checks one client address may have waiting at once; more from it are shed. The
/// portal's own checks ([`Source::portal`]) are many people's: they may hold up to half
/// the queue, so one tenant's busy API client cannot shed everyone's sign-ins.
pub const PER_SOURCE_WAITING: usize = 4;

/// Failed checks in a row after which a source waits behind everyone else (after fewer,
/// but at least one, it waits behind the ordinary sources: doubtful).
pub const SUSPECT_AFTER: u32 = 2;

/// How long a shed check waits before it is answered `Busy`: a person told to try again
/// loses nothing; a client that retries at once is slowed to one attempt per hold.
pub const SHED_HOLD: Duration = Duration::from_secs(1);

/// Shed answers held at once; beyond this a shed check is answered at once, so a huge
/// flood cannot pile up memory in held answers.
pub const HELD_AT_ONCE: usize = 2048;

/// How many sources' recent failures are remembered (least recently failed forgotten).
pub const REMEMBERED_SOURCES: usize = 16_384;

/// Who a password check is for, for fairness: a client address (IPv6 by /64), or the
/// portal itself for checks inside a signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source(pub String);

impl Source {
    /// Checks inside a signed-in session (changing a password, revealing a secret).
    pub fn portal() -> Source {
        Source(PORTAL.to_owned())
    }

    /// Whether the checks are one client's (capped at [`PER_SOURCE_WAITING`]) rather than
    /// the portal's own for everyone signed in (capped at half the queue).
    fn is_one_client(&self) -> bool {
        self.0 != PORTAL
    }
}

/// The portal's own source; no client address reads so.
const PORTAL: &str = "portal";

/// The queue in front of the hashing workers.
#[derive(Debug)]
pub struct Admission {
    inner: Mutex<Queue>,
    /// Shed answers being held now (at most [`HELD_AT_ONCE`]).
    held: AtomicUsize,
}

#[derive(Debug)]
struct Queue {
    workers: usize,
    running: usize,
    /// Of `running`, the checks of failing sources (at most [`Queue::failing_limit`]).
    failing_running: usize,
    max_wait: Duration,
    /// The time one hash takes, as measured (a moving average).
    per_hash: Duration,
    waiting: usize,
    next_id: u64,
    /// Sources with waiters, in the order they are served: priority ones first, then
    /// ordinary ones, then doubtful ones, then suspect ones.
    priority_turns: VecDeque<Source>,
    turns: VecDeque<Source>,
    doubtful_turns: VecDeque<Source>,
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
    /// Its last check failed (fewer than [`SUSPECT_AFTER`] in a row).
    Doubtful,
    /// Its last [`SUSPECT_AFTER`] checks or more failed.
    Suspect,
}

impl Class {
    /// Whether the source's last check failed: it may not take the last worker.
    fn is_failing(self) -> bool {
        matches!(self, Class::Doubtful | Class::Suspect)
    }
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    /// Sent when the waiter is served: whether it was served as a failing source's.
    grant: oneshot::Sender<bool>,
}

/// A worker's place, held while the hash runs; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    /// Held by a failing source's check (counted in `failing_running`).
    failing: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.lock().finish(self.failing);
    }
}

/// Takes a waiter out of the queue if its future is dropped before it was served, and
/// gives back the worker if it was handed one it never took (its client left between
/// being served and running).
struct Leave<'a> {
    admission: &'a Arc<Admission>,
    source: Source,
    id: u64,
    granted: oneshot::Receiver<bool>,
    served: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        // No grant can arrive after this; one that already has is read below.
        self.granted.close();
        let mut q = self.admission.lock();
        match self.granted.try_recv() {
            Ok(failing) => q.finish(failing),
            Err(_) => q.remove(&self.source, self.id),
        }
    }
}

/// Counts a shed answer while it is held; dropping it (the hold over, or the client gone)
/// frees its count.
struct Held<'a> {
    held: &'a AtomicUsize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// `workers` hashes run at once; `per_hash` is the first estimate of one hash's time.
    pub fn new(workers: usize, max_wait: Duration, per_hash: Duration) -> Arc<Admission> {
        Arc::new(Admission {
            inner: Mutex::new(Queue {
                workers: workers.max(1),
                running: 0,
                failing_running: 0,
                max_wait,
                per_hash: per_hash.max(Duration::from_micros(100)),
                waiting: 0,
                next_id: 0,
                priority_turns: VecDeque::new(),
                turns: VecDeque::new(),
                doubtful_turns: VecDeque::new(),
                suspect_turns: VecDeque::new(),
                by_source: HashMap::new(),
                failures: LruCache::new(
                    NonZeroUsize::new(REMEMBERED_SOURCES).unwrap_or(NonZeroUsize::MIN),
                ),
            }),
            held: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half-changed in a way
        // that matters more than refusing every sign-in would; carry on with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many checks may wait at once: `max_wait` of work spread over the workers.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.lock().capacity()
    }

    /// (running, waiting) checks now, for the metrics.
    pub fn load(&self) -> (usize, usize) {
        let q = self.lock();
        (q.running, q.waiting)
    }

    /// Folds one hash's measured work (its hashing thread's CPU time) into the estimate the
    /// bound is computed from.
    pub fn observe(&self, took: Duration) {
        let mut q = self.lock();
        // A moving average over about eight hashes: steady, and quick to follow a change.
        q.per_hash = (q.per_hash * 7 + took) / 8;
    }

    /// Records how a check from `source` ended: a failure counts toward its suspicion, a
    /// success clears it.
    ///
    /// A source that fails while it has checks waiting moves back to the turns of its new
    /// class at once: a flood address that queued its checks before its first guess was
    /// known to fail does not keep its place among the ordinary sources.
    pub fn note(&self, source: &Source, succeeded: bool) {
        let mut q = self.lock();
        if succeeded {
            q.failures.pop(source);
        } else {
            if let Some(n) = q.failures.get_mut(source) {
                *n = n.saturating_add(1);
            } else {
                q.failures.put(source.clone(), 1);
            }
            q.demote(source);
        }
    }

    /// Waits for a worker; `Busy` when the queue is at its bound (and holds no check of a
    /// later class to take the place of), `source` has too many checks waiting, or its
    /// place is taken while it waits. `Busy` comes only after [`SHED_HOLD`] (at once while
    /// [`HELD_AT_ONCE`] answers are held), with no place in the queue meanwhile.
    pub async fn admit(self: &Arc<Self>, source: Source, priority: bool) -> Result<Slot, Busy> {
        let admitted = self.queue_for(source, priority).await;
        if admitted.is_err() {
            self.hold_shed().await;
        }
        admitted
    }

    /// Holds a shed answer for [`SHED_HOLD`], unless [`HELD_AT_ONCE`] are held already.
    async fn hold_shed(&self) {
        let counted = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < HELD_AT_ONCE).then_some(n + 1)
            });
        if counted.is_err() {
            return;
        }
        let _held = Held { held: &self.held };
        tokio::time::sleep(SHED_HOLD).await;
    }

    /// Shed answers being held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Waits for a worker in `source`'s turn; `Busy` at once when shed.
    async fn queue_for(self: &Arc<Self>, source: Source, priority: bool) -> Result<Slot, Busy> {
        let (id, granted) = {
            let mut q = self.lock();
            let class = q.class_of(&source, priority);
            // Whoever waits now is served before a newcomer, except failing sources'
            // checks held back by their limit, which a newcomer that is not failing passes.
            if q.may_run(class) && (q.waiting == 0 || !class.is_failing()) {
                return Ok(q.start(self, class.is_failing()));
            }
            let queued_here = q.by_source.get(&source).map_or(0, VecDeque::len);
            let cap = if source.is_one_client() {
                PER_SOURCE_WAITING
            } else {
                (q.capacity() / 2).max(PER_SOURCE_WAITING)
            };
            if queued_here >= cap {
                return Err(Busy);
            }
            if q.waiting >= q.capacity() && !q.make_room_for(class, queued_here == 0) {
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
            granted,
            served: false,
        };
        match (&mut leave.granted).await {
            Ok(failing) => {
                leave.served = true;
                Ok(Slot {
                    admission: self.clone(),
                    failing,
                })
            }
            // Its place was taken by a check of an earlier class.
            Err(_) => Err(Busy),
        }
    }
}

impl Queue {
    /// How many checks of failing sources may run at once: every worker but one.
    fn failing_limit(&self) -> usize {
        self.workers.saturating_sub(1).max(1)
    }

    /// Whether a check of `class` may take a worker now.
    fn may_run(&self, class: Class) -> bool {
        self.running < self.workers
            && (!class.is_failing() || self.failing_running < self.failing_limit())
    }

    /// Counts a check that takes a worker now, and gives it its place.
    fn start(&mut self, admission: &Arc<Admission>, failing: bool) -> Slot {
        self.take_worker(failing);
        Slot {
            admission: admission.clone(),
            failing,
        }
    }

    fn take_worker(&mut self, failing: bool) {
        self.running += 1;
        if failing {
            self.failing_running += 1;
        }
    }

    /// A check is done with its worker (or never took the one it was handed): the next
    /// waiter may have it.
    fn finish(&mut self, failing: bool) {
        self.running = self.running.saturating_sub(1);
        if failing {
            self.failing_running = self.failing_running.saturating_sub(1);
        }
        self.dispatch();
    }

    fn capacity(&self) -> usize {
        let work = self.max_wait.as_secs_f64() * self.workers as f64;
        (work / self.per_hash.as_secs_f64()).floor() as usize
    }

    fn class_of(&mut self, source: &Source, priority: bool) -> Class {
        if priority {
            return Class::Priority;
        }
        match self.failures.peek(source).copied().unwrap_or(0) {
            0 => Class::Ordinary,
            n if n < SUSPECT_AFTER => Class::Doubtful,
            _ => Class::Suspect,
        }
    }

    /// Moves a waiting source whose failures now put it in a later class to the back of
    /// that class's turns. A proven browser keeps its place.
    fn demote(&mut self, source: &Source) {
        if !self.by_source.contains_key(source) {
            return;
        }
        let to = self.class_of(source, false);
        for from in [Class::Ordinary, Class::Doubtful] {
            if from == to {
                return;
            }
            let turns = self.turns_of(from);
            if let Some(at) = turns.iter().position(|s| s == source) {
                turns.remove(at);
                self.turns_of(to).push_back(source.clone());
                return;
            }
        }
    }

    fn turns_of(&mut self, class: Class) -> &mut VecDeque<Source> {
        match class {
            Class::Priority => &mut self.priority_turns,
            Class::Ordinary => &mut self.turns,
            Class::Doubtful => &mut self.doubtful_turns,
            Class::Suspect => &mut self.suspect_turns,
        }
    }

    /// At the bound, sheds a check served after `class` to make room for one of it: the
    /// newest suspect one, else the newest doubtful one, else (for a proven browser) the
    /// newest ordinary one. `false` when no such check waits.
    ///
    /// A flood from addresses that never failed before is not yet known by its failures,
    /// but it shows in its numbers: each of its addresses keeps several checks waiting,
    /// where a person has one. So an ordinary newcomer with nothing waiting (`alone`) may
    /// also take the place of the newest check of the ordinary source with the most
    /// checks waiting, when that is two or more.
    fn make_room_for(&mut self, class: Class, alone: bool) -> bool {
        let later: &[Class] = match class {
            Class::Suspect => &[],
            Class::Doubtful => &[Class::Suspect],
            Class::Ordinary => &[Class::Suspect, Class::Doubtful],
            Class::Priority => &[Class::Suspect, Class::Doubtful, Class::Ordinary],
        };
        later.iter().any(|c| self.shed_newest(*c))
            || (class == Class::Ordinary && alone && self.shed_from_the_most_waiting())
    }

    /// Sheds the newest check of the ordinary source with the most checks waiting, if it
    /// has two or more; `false` otherwise.
    fn shed_from_the_most_waiting(&mut self) -> bool {
        let most = self
            .turns
            .iter()
            .filter_map(|s| self.by_source.get(s).map(|w| (w.len(), s)))
            .filter(|(n, _)| *n >= 2)
            .max_by_key(|(n, _)| *n)
            .map(|(_, s)| s.clone());
        let Some(source) = most else {
            return false;
        };
        // Two or more wait, so the source keeps its turn with the rest.
        let shed = self.by_source.get_mut(&source).and_then(VecDeque::pop_back);
        if shed.is_some() {
            self.waiting = self.waiting.saturating_sub(1);
        }
        shed.is_some()
    }

    /// Sheds the newest check of the `class` source that joined last; `false` when no
    /// check of that class waits.
    fn shed_newest(&mut self, class: Class) -> bool {
        loop {
            let Some(source) = self.turns_of(class).back().cloned() else {
                return false;
            };
            let Some(waiters) = self.by_source.get_mut(&source) else {
                self.turns_of(class).pop_back();
                continue;
            };
            // Dropping its sender tells the waiter it was shed.
            let shed = waiters.pop_back();
            if waiters.is_empty() {
                self.by_source.remove(&source);
                self.turns_of(class).pop_back();
            }
            if shed.is_some() {
                self.waiting = self.waiting.saturating_sub(1);
                return true;
            }
        }
    }

    /// Hands free workers to waiters, one source at a time; failing sources' checks only
    /// while they hold fewer than [`Queue::failing_limit`].
    fn dispatch(&mut self) {
        while self.running < self.workers {
            let failing_may_run = self.may_run(Class::Doubtful);
            let Some((waiter, class)) = self.next_waiter(failing_may_run) else {
                return;
            };
            // A waiter whose client left has its receiver dropped; skip it.
            let failing = class.is_failing();
            if waiter.grant.send(failing).is_ok() {
                self.take_worker(failing);
            }
        }
    }

    /// The next waiter in turn, and the class it was served in; failing sources' only if
    /// `failing_may_run`.
    fn next_waiter(&mut self, failing_may_run: bool) -> Option<(Waiter, Class)> {
        loop {
            let (source, class) = if let Some(s) = self.priority_turns.pop_front() {
                (s, Class::Priority)
            } else if let Some(s) = self.turns.pop_front() {
                (s, Class::Ordinary)
            } else if !failing_may_run {
                return None;
            } else if let Some(s) = self.doubtful_turns.pop_front() {
                (s, Class::Doubtful)
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
            return Some((waiter, class));
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
            self.doubtful_turns.retain(|s| s != source);
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

    #[tokio::test(start_paused = true)]
    async fn beyond_the_bound_a_check_is_shed() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let mut waiting = fill_the_bound(&a, "s", 0).await;
        assert!(a.admit(source("late"), false).await.is_err());
        drop(running);
        let first = waiting.remove(0).await.unwrap();
        assert!(first.is_ok());
    }

    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
    async fn the_portals_own_checks_are_many_peoples_and_may_hold_half_the_queue() {
        // 20 may wait: the portal's own checks up to 10 of them.
        let a = Admission::new(1, Duration::from_secs(2), Duration::from_millis(100));
        let _running = a.admit(source("x"), false).await.unwrap();
        let many = a.capacity() / 2;
        assert!(many > PER_SOURCE_WAITING);
        let mut held = Vec::new();
        for _ in 0..many {
            let a = a.clone();
            held.push(tokio::spawn(async move {
                a.admit(Source::portal(), true).await
            }));
        }
        for _ in 0..1000 {
            if a.lock().waiting >= many {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(a.lock().waiting, many, "every one waits; none is shed");
        assert!(
            a.admit(Source::portal(), true).await.is_err(),
            "half is the most"
        );
        let user = a.clone();
        let user = tokio::spawn(async move { user.admit(source("user"), false).await });
        while a.lock().waiting < many + 1 {
            tokio::task::yield_now().await;
        }
        user.abort();
        for h in held {
            h.abort();
        }
    }

    /// Queues `who` in this order behind a running check, then lets the worker go one
    /// check at a time and returns the order they were served in.
    async fn served_order(a: &Arc<Admission>, who: &[(&str, bool)]) -> Vec<String> {
        served_order_after(a, who, |_| {}).await
    }

    /// [`served_order`], with `meanwhile` run on the queue once all of `who` wait.
    async fn served_order_after(
        a: &Arc<Admission>,
        who: &[(&str, bool)],
        meanwhile: impl FnOnce(&Admission),
    ) -> Vec<String> {
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
        meanwhile(a);
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
        // One failure is a typo, not a flood: behind those that did not fail, not behind
        // the flood.
        a.note(&source("typo"), false);
        let order = served_order(&a, &[("flood", false), ("typo", false), ("user", false)]).await;
        assert_eq!(order, ["user", "typo", "flood"]);
        // A success clears the suspicion.
        a.note(&source("flood"), true);
        let order = served_order(&a, &[("flood", false), ("user", false)]).await;
        assert_eq!(order, ["flood", "user"]);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_anyone_else_takes_the_place_of_a_suspect_check() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let mut flood = fill_the_bound(&a, "f", SUSPECT_AFTER).await;
        // Another suspect check is shed; a user's takes the newest flood place.
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

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_a_proven_browser_takes_the_place_of_an_unknown_one() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let mut unknown = fill_the_bound(&a, "u", 0).await;
        // An unknown browser is shed: no suspect check to take the place of.
        assert!(a.admit(source("stranger"), false).await.is_err());
        let a2 = a.clone();
        let proven = tokio::spawn(async move { a2.admit(source("proven"), true).await });
        let shed = unknown.pop().unwrap().await.unwrap();
        assert!(shed.is_err(), "the newest unknown check was shed");
        drop(running);
        assert!(
            proven.await.unwrap().is_ok(),
            "the proven browser is served first"
        );
        for u in unknown {
            u.abort();
        }
    }

    #[tokio::test]
    async fn a_source_that_fails_while_its_checks_wait_falls_behind_at_once() {
        let a = queue();
        // A flood address queues three checks before any of its guesses is known to fail,
        // then a user queues one.
        let who = [
            ("flood", false),
            ("flood", false),
            ("flood", false),
            ("user", false),
        ];
        let order = served_order_after(&a, &who, |a| {
            // Its guesses fail (elsewhere, on other workers): its waiting checks move
            // behind the user's, where before it kept its ordinary turn while any waited.
            for _ in 0..SUSPECT_AFTER {
                a.note(&source("flood"), false);
            }
        })
        .await;
        assert_eq!(order, ["user", "flood", "flood", "flood"]);
        assert!(a.lock().suspect_turns.is_empty() && a.lock().turns.is_empty());
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

    #[tokio::test]
    async fn a_client_that_leaves_after_it_was_served_gives_its_worker_back() {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let a2 = a.clone();
        let gone = tokio::spawn(async move { a2.admit(source("gone"), false).await });
        while a.lock().waiting < 1 {
            tokio::task::yield_now().await;
        }
        // The worker is handed to the waiter, whose client leaves before it runs.
        drop(running);
        assert_eq!(a.lock().running, 1, "handed to the waiter");
        gone.abort();
        let _ = gone.await;
        assert_eq!(
            a.lock().running,
            0,
            "the worker it never took is free again"
        );
        assert!(a.admit(source("next"), false).await.is_ok());
    }

    /// Two workers, 100 ms per hash, 1 s of waiting.
    fn two_workers() -> Arc<Admission> {
        Admission::new(2, Duration::from_secs(1), Duration::from_millis(100))
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_source_may_not_take_the_last_worker() {
        let a = two_workers();
        for s in ["flood-1", "flood-2"] {
            a.note(&source(s), false);
        }
        let first = a.admit(source("flood-1"), false).await.unwrap();
        let second = arrive(&a, "flood-2", 0, false).await;
        assert_eq!(a.lock().running, 1, "a worker stays free");
        assert!(queued(&a, "flood-2"));
        // Someone whose checks have not failed takes it at once, proven or not.
        let user = a.admit(source("user"), false).await.unwrap();
        drop(user);
        let proven = a.admit(source("browser"), true).await.unwrap();
        drop(proven);
        // The failing source's next check runs when the first one is done.
        drop(first);
        let second = second.await.unwrap().unwrap();
        assert_eq!(a.lock().running, 1);
        drop(second);
        assert_eq!(a.lock().running, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_a_check_that_may_take_the_free_worker_sheds_nobody() {
        let a = two_workers();
        a.note(&source("flood"), false);
        let _running = a.admit(source("flood"), false).await.unwrap();
        let mut waiting = Vec::new();
        for i in 0..a.capacity() {
            waiting.push(arrive(&a, &format!("f{i}"), SUSPECT_AFTER, false).await);
        }
        let bound = a.capacity();
        assert_eq!(a.lock().waiting, bound, "at the bound");
        let user = a.admit(source("user"), false).await;
        assert!(user.is_ok());
        assert_eq!(a.lock().waiting, bound, "no failing check was shed for it");
        assert_eq!(a.held(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn with_one_worker_a_failing_source_still_gets_it() {
        let a = queue();
        a.note(&source("flood"), false);
        let slot = a.admit(source("flood"), false).await.unwrap();
        assert_eq!(a.lock().running, 1);
        drop(slot);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ordinary_check_behind_failing_ones_takes_the_free_worker_at_once() {
        let a = two_workers();
        for s in ["flood-1", "flood-2", "flood-3"] {
            a.note(&source(s), false);
        }
        let _first = a.admit(source("flood-1"), false).await.unwrap();
        let _waiting = [
            arrive(&a, "flood-2", 0, false).await,
            arrive(&a, "flood-3", 0, false).await,
        ];
        assert_eq!(a.lock().waiting, 2);
        let user = a.admit(source("user"), false).await;
        assert!(
            user.is_ok(),
            "served although failing checks wait before it"
        );
        assert_eq!(a.lock().running, 2);
        assert_eq!(a.lock().waiting, 2);
    }

    #[tokio::test]
    async fn sources_are_served_proven_then_ordinary_then_doubtful_then_suspect() {
        let a = queue();
        a.note(&source("doubtful"), false);
        for _ in 0..SUSPECT_AFTER {
            a.note(&source("suspect"), false);
        }
        let order = served_order(
            &a,
            &[
                ("suspect", false),
                ("doubtful", false),
                ("ordinary", false),
                ("proven", true),
            ],
        )
        .await;
        assert_eq!(order, ["proven", "ordinary", "doubtful", "suspect"]);
    }

    type Waiting = tokio::task::JoinHandle<Result<Slot, Busy>>;

    fn queued(a: &Admission, name: &str) -> bool {
        a.lock().by_source.contains_key(&source(name))
    }

    /// Sends a check from `name` (a source with `failures` failed checks so far) and
    /// returns its task once the check has a place in the queue or is being held shed.
    async fn arrive(a: &Arc<Admission>, name: &str, failures: u32, priority: bool) -> Waiting {
        // Let checks shed earlier start their hold first.
        tokio::task::yield_now().await;
        let s = source(name);
        for _ in 0..failures {
            a.note(&s, false);
        }
        let held = a.held();
        let queue = a.clone();
        let task = tokio::spawn(async move { queue.admit(s, priority).await });
        while !queued(a, name) && a.held() == held {
            tokio::task::yield_now().await;
        }
        task
    }

    /// Ten sources, `prefix`0 to `prefix`9, each with `failures` failed checks so far, fill
    /// the bound with one check each.
    async fn fill_the_bound(a: &Arc<Admission>, prefix: &str, failures: u32) -> Vec<Waiting> {
        let mut tasks = Vec::new();
        for i in 0..10 {
            tasks.push(arrive(a, &format!("{prefix}{i}"), failures, false).await);
        }
        assert_eq!(a.lock().waiting, 10);
        tasks
    }

    /// Fills the bound (ten) behind a running check with one check from each of
    /// `waiting` (name, failures, proven browser), in this order; then newcomers like
    /// `newcomer` arrive one by one and each must take the place of the next of `shed`, in
    /// this order; when none is left, the next newcomer is shed itself.
    async fn displacement(waiting: &[(&str, u32, bool)], newcomer: (u32, bool), shed: &[&str]) {
        let a = queue();
        let _running = a.admit(source("x"), false).await.unwrap();
        let mut tasks = HashMap::new();
        for (name, failures, priority) in waiting {
            tasks.insert(
                name.to_string(),
                arrive(&a, name, *failures, *priority).await,
            );
        }
        assert_eq!(a.lock().waiting, 10);
        for (i, displaced) in shed.iter().enumerate() {
            let name = format!("newcomer-{i}");
            tasks.insert(
                name.clone(),
                arrive(&a, &name, newcomer.0, newcomer.1).await,
            );
            assert!(queued(&a, &name), "{name} got a place");
            assert!(!queued(&a, displaced), "{displaced} was shed for {name}");
            let task = tasks.remove(*displaced).unwrap();
            assert!(task.await.unwrap().is_err(), "{displaced} answered busy");
            assert_eq!(a.lock().waiting, 10);
        }
        let late = arrive(&a, "late", newcomer.0, newcomer.1).await;
        assert!(!queued(&a, "late"));
        assert!(late.await.unwrap().is_err(), "no later check left to shed");
        for (_, t) in tasks {
            t.abort();
        }
    }

    /// Seven ordinary sources and the rest as given.
    fn seven_ordinary_and<'a>(rest: &[(&'a str, u32, bool)]) -> Vec<(&'a str, u32, bool)> {
        let ordinary = ["o0", "o1", "o2", "o3", "o4", "o5", "o6"];
        ordinary
            .iter()
            .map(|o| (*o, 0, false))
            .chain(rest.iter().copied())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_an_ordinary_check_sheds_the_newest_suspect_then_doubtful_check() {
        let waiting = seven_ordinary_and(&[
            ("suspect-old", SUSPECT_AFTER, false),
            ("suspect-new", SUSPECT_AFTER, false),
            ("doubtful", 1, false),
        ]);
        displacement(
            &waiting,
            (0, false),
            &["suspect-new", "suspect-old", "doubtful"],
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_a_proven_browser_sheds_suspect_then_doubtful_then_ordinary_checks() {
        let waiting = seven_ordinary_and(&[
            ("doubtful-old", 1, false),
            ("doubtful-new", 1, false),
            ("suspect", SUSPECT_AFTER, false),
        ]);
        let shed = [
            "suspect",
            "doubtful-new",
            "doubtful-old",
            "o6",
            "o5",
            "o4",
            "o3",
            "o2",
            "o1",
            "o0",
        ];
        displacement(&waiting, (0, true), &shed).await;
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_a_doubtful_check_sheds_only_suspect_ones() {
        let waiting = seven_ordinary_and(&[
            ("suspect", SUSPECT_AFTER, false),
            ("doubtful", 1, false),
            ("proven", 0, true),
        ]);
        displacement(&waiting, (1, false), &["suspect"]).await;
    }

    /// A queue at its bound (ten waiting) behind a running check.
    async fn full_queue() -> (Arc<Admission>, Slot, Vec<Waiting>) {
        let a = queue();
        let running = a.admit(source("x"), false).await.unwrap();
        let mut waiting = Vec::new();
        for i in 0..10 {
            waiting.push(arrive(&a, &format!("s{i}"), 0, false).await);
        }
        assert_eq!(a.lock().waiting, 10);
        (a, running, waiting)
    }

    fn waiting_from(a: &Admission, name: &str) -> usize {
        a.lock()
            .by_source
            .get(&source(name))
            .map_or(0, VecDeque::len)
    }

    #[tokio::test(start_paused = true)]
    async fn a_person_with_one_check_takes_the_place_of_an_address_with_several_waiting() {
        let a = queue();
        let _running = a.admit(source("x"), false).await.unwrap();
        let mut tasks = Vec::new();
        // Addresses never seen failing fill the bound (ten): one with three checks
        // waiting, three with two, and one person with one.
        for (name, checks) in [("crowd", 3), ("f1", 2), ("f2", 2), ("f3", 2), ("solo", 1)] {
            for _ in 0..checks {
                let (queue, before) = (a.clone(), a.lock().waiting);
                let s = source(name);
                tasks.push(tokio::spawn(async move { queue.admit(s, false).await }));
                while a.lock().waiting == before {
                    tokio::task::yield_now().await;
                }
            }
        }
        assert_eq!(a.lock().waiting, 10);
        // A person's one check takes the place of the newest check of the address with
        // the most waiting.
        tasks.push(arrive(&a, "user", 0, false).await);
        assert!(queued(&a, "user"));
        assert_eq!(waiting_from(&a, "crowd"), 2);
        assert_eq!(a.lock().waiting, 10);
        // One more check from an address that already has checks waiting takes no one's
        // place: it is shed.
        let queue = a.clone();
        let more = tokio::spawn(async move { queue.admit(source("f1"), false).await });
        while a.held() < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(waiting_from(&a, "f1"), 2);
        assert!(more.await.unwrap().is_err());
        // Nor does anyone take the place of a person's only check.
        for i in 0..4 {
            tasks.push(arrive(&a, &format!("p{i}"), 0, false).await);
        }
        assert_eq!(waiting_from(&a, "solo"), 1);
        assert_eq!(waiting_from(&a, "user"), 1);
        for t in tasks {
            t.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shed_check_is_answered_only_after_the_hold_without_a_place_in_the_queue() {
        let (a, _running, waiting) = full_queue().await;
        let started = tokio::time::Instant::now();
        let queue = a.clone();
        let late = tokio::spawn(async move { queue.admit(source("late"), false).await });
        tokio::time::sleep(SHED_HOLD - Duration::from_millis(1)).await;
        assert!(!late.is_finished(), "not answered before the hold is over");
        assert_eq!(a.held(), 1);
        assert_eq!(a.lock().waiting, 10, "no place in the queue while held");
        assert!(!queued(&a, "late"));
        assert!(late.await.unwrap().is_err());
        assert!(started.elapsed() >= SHED_HOLD);
        assert_eq!(a.held(), 0, "the hold is over");
        for w in waiting {
            w.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_held_answers_bound_a_shed_check_is_answered_at_once() {
        let (a, _running, waiting) = full_queue().await;
        let mut held = Vec::new();
        for i in 0..HELD_AT_ONCE {
            let queue = a.clone();
            held.push(tokio::spawn(async move {
                queue.admit(source(&format!("late{i}")), false).await
            }));
        }
        while a.held() < HELD_AT_ONCE {
            tokio::task::yield_now().await;
        }
        let started = tokio::time::Instant::now();
        assert!(a.admit(source("one-more"), false).await.is_err());
        assert_eq!(started.elapsed(), Duration::ZERO, "answered at once");
        assert_eq!(a.held(), HELD_AT_ONCE);
        for h in held {
            assert!(h.await.unwrap().is_err());
        }
        assert_eq!(a.held(), 0);
        for w in waiting {
            w.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_gives_up_during_the_hold_frees_its_place_among_the_held() {
        let (a, _running, waiting) = full_queue().await;
        let queue = a.clone();
        let late = tokio::spawn(async move { queue.admit(source("late"), false).await });
        while a.held() < 1 {
            tokio::task::yield_now().await;
        }
        late.abort();
        assert!(late.await.unwrap_err().is_cancelled());
        assert_eq!(a.held(), 0, "the held count was given back");
        for w in waiting {
            w.abort();
        }
    }
}
