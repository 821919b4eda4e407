//! The one shape of the store's short-lived copies of rows (the session cache, the
//! credential cache): the database stays the truth, and a copy is used only while it
//! cannot have gone wrong unseen.
//!
//! - an entry answers for at most the cache's freshness on the caller's clock, then the
//!   database is read again (a clock that went back counts as stale);
//! - a write that makes entries wrong forgets them at once ([`ForgettingCache::forget`]);
//! - a read that raced with a change is not kept: an epoch counts the changes, and an
//!   answer read from the database is stored only if none happened while it was read;
//! - it is bounded without a cliff: past its capacity the least recently used entry makes
//!   room, one at a time.
//!
//! Each entry is also found by one id of its value ([`Cached::id`]), so a change of that
//! id forgets or updates its entry without a scan.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;

use crate::clock::Timestamp;

/// A value a [`ForgettingCache`] holds.
pub(super) trait Cached: Clone {
    /// What finds an entry without a scan; one entry per id.
    type Id: Copy + Eq + Hash;

    fn id(&self) -> Self::Id;
}

/// What a change makes wrong of a cache.
pub(super) enum Reach<'a, V: Cached> {
    /// No entry; only reads in flight are not kept.
    Nothing,
    /// The entry of this id.
    One(V::Id),
    /// Every entry whose value matches (a scan).
    Matching(&'a dyn Fn(&V) -> bool),
    /// Every entry.
    All,
}

struct Entry<V> {
    value: V,
    read_at: Timestamp,
}

struct Inner<K, V: Cached> {
    entries: LruCache<K, Entry<V>>,
    /// Where each id's entry is.
    by_id: HashMap<V::Id, K>,
    /// Counts changes, so a read that overlapped one is not stored.
    epoch: u64,
}

impl<K: Hash + Eq, V: Cached> Inner<K, V> {
    fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(e) = self.entries.pop(key) {
            self.by_id.remove(&e.value.id());
        }
    }
}

pub(super) struct ForgettingCache<K, V: Cached> {
    inner: Mutex<Inner<K, V>>,
    fresh_for: Duration,
}

impl<K: Hash + Eq + Clone, V: Cached> ForgettingCache<K, V> {
    /// At most `capacity` entries, each answering for `fresh_for`.
    pub(super) fn new(capacity: usize, fresh_for: Duration) -> Self {
        ForgettingCache {
            inner: Mutex::new(Inner {
                entries: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
                by_id: HashMap::new(),
                epoch: 0,
            }),
            fresh_for,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // The maps hold no invariant a panicking holder could break halfway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh entry's value, or the epoch to [`ForgettingCache::put`] a database answer
    /// under.
    pub(super) fn get<Q>(&self, key: &Q, now: Timestamp) -> Result<V, u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(e) if e.read_at <= now && now < e.read_at.plus(self.fresh_for) => {
                Ok(e.value.clone())
            }
            Some(_) => {
                inner.remove(key);
                Err(inner.epoch)
            }
            None => Err(inner.epoch),
        }
    }

    /// Keeps what the database answered, unless something changed since `epoch`. An
    /// entry of the same id under another key (a user moved to another extension) goes.
    pub(super) fn put(&self, key: K, epoch: u64, value: V, now: Timestamp) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        let id = value.id();
        if let Some(old) = inner.by_id.insert(id, key.clone()) {
            if old != key {
                inner.entries.pop(&old);
            }
        }
        let entry = Entry {
            value,
            read_at: now,
        };
        // The least recently used entry made room (or this key's older entry).
        if let Some((evicted, e)) = inner.entries.push(key, entry) {
            let evicted_id = e.value.id();
            if evicted_id != id && inner.by_id.get(&evicted_id) == Some(&evicted) {
                inner.by_id.remove(&evicted_id);
            }
        }
    }

    /// Changes the entry of `id` in place (a write whose effect is known without a read).
    pub(super) fn update(&self, id: V::Id, change: impl FnOnce(&mut V)) {
        let mut inner = self.lock();
        let Inner { entries, by_id, .. } = &mut *inner;
        if let Some(e) = by_id.get(&id).and_then(|key| entries.peek_mut(key)) {
            change(&mut e.value);
        }
    }

    /// Forgets what a change reaches; reads in flight are not kept, whatever it reaches.
    pub(super) fn forget(&self, reach: Reach<'_, V>) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        match reach {
            Reach::Nothing => {}
            Reach::One(id) => {
                if let Some(key) = inner.by_id.remove(&id) {
                    inner.entries.pop(&key);
                }
            }
            Reach::Matching(matches) => {
                let keys: Vec<K> = inner
                    .entries
                    .iter()
                    .filter(|(_, e)| matches(&e.value))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    inner.remove(&key);
                }
            }
            Reach::All => {
                inner.entries.clear();
                inner.by_id.clear();
            }
        }
    }

    /// How many entries are held, and how many ids are indexed.
    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.by_id.len())
    }
}
