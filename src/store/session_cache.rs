//! A short-lived copy of the sessions in use, so a signed-in page costs no database round
//! trip. The database stays the truth:
//!
//! - an entry is used for at most [`FRESH_FOR`] on the caller's clock, then read again;
//! - every write of this store that changes a session or a user forgets the entries it
//!   touches at once, before the write returns;
//! - on PostgreSQL, where several nodes share the database, each such write is announced on
//!   [`CHANNEL`] and every node forgets the same entries when the notice arrives; a node
//!   that may have missed notices (its listening connection dropped) forgets everything.
//!
//! So a sign-out, a password change or an admin's edit is seen by the next request on any
//! node, and nothing can outlive [`FRESH_FOR`] even if a notice is lost. A lookup that
//! raced with a change is not kept: an epoch counts the changes, and an answer read from
//! the database is stored only if none happened while it was read. Unknown tokens are
//! never stored, so guessing cannot fill the cache; it is bounded besides, without a cliff:
//! past its capacity the least recently used session makes room, one at a time.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;
use std::time::Duration;

use crate::clock::Timestamp;

use super::{SessionId, SessionRecord, UserId, UserRecord};

/// How long an entry may answer before the database is asked again.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// The PostgreSQL channel the nodes announce changes on.
pub(super) const CHANNEL: &str = "dialtone_sessions";
/// At most this many sessions are held; past it, the least recently used one goes.
const CAPACITY: usize = 10_000;

type Key = [u8; 32];

/// A change that makes cached sessions wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// One session ended or changed.
    Session(SessionId),
    /// A user changed (password, name, role, secrets…) or lost every session.
    User(UserId),
    /// Anything may have changed.
    All,
}

impl Change {
    /// The notice's text on [`CHANNEL`].
    pub(super) fn payload(self) -> String {
        match self {
            Change::Session(id) => format!("s{}", id.0),
            Change::User(id) => format!("u{}", id.0),
            Change::All => "*".to_owned(),
        }
    }

    /// Reads a notice; anything unreadable is taken as [`Change::All`], the safe side.
    pub(super) fn parse(payload: &str) -> Change {
        let number = |s: &str| s.parse::<i64>().ok();
        match payload.split_at_checked(1) {
            Some(("s", id)) => number(id).map_or(Change::All, |id| Change::Session(SessionId(id))),
            Some(("u", id)) => number(id).map_or(Change::All, |id| Change::User(UserId(id))),
            _ => Change::All,
        }
    }
}

struct Entry {
    session: SessionRecord,
    user: UserRecord,
    read_at: Timestamp,
}

struct Inner {
    by_token: LruCache<Key, Entry>,
    by_session: HashMap<SessionId, Key>,
    /// Counts changes, so a read that overlapped one is not stored.
    epoch: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            by_token: LruCache::new(NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN)),
            by_session: HashMap::new(),
            epoch: 0,
        }
    }
}

/// What [`SessionCache::get`] found.
pub(super) enum Lookup {
    Hit(Box<(SessionRecord, UserRecord)>),
    /// Read the database, then [`SessionCache::put`] with this epoch.
    Miss {
        epoch: u64,
    },
}

#[derive(Default)]
pub(super) struct SessionCache {
    inner: Mutex<Inner>,
}

impl SessionCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map holds no invariant a panicking holder could break halfway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn get(&self, token_hash: &[u8], now: Timestamp) -> Lookup {
        let mut inner = self.lock();
        let epoch = inner.epoch;
        let Ok(key) = Key::try_from(token_hash) else {
            return Lookup::Miss { epoch };
        };
        match inner.by_token.get(&key) {
            Some(e) if fresh(e.read_at, now) => {
                Lookup::Hit(Box::new((e.session.clone(), e.user.clone())))
            }
            Some(_) => {
                inner.remove(&key);
                Lookup::Miss { epoch }
            }
            None => Lookup::Miss { epoch },
        }
    }

    /// Keeps what the database answered, unless something changed since `epoch`.
    pub(super) fn put(
        &self,
        token_hash: &[u8],
        epoch: u64,
        session: &SessionRecord,
        user: &UserRecord,
        now: Timestamp,
    ) {
        let Ok(key) = Key::try_from(token_hash) else {
            return;
        };
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        inner.by_session.insert(session.id, key);
        let evicted = inner.by_token.push(
            key,
            Entry {
                session: session.clone(),
                user: user.clone(),
                read_at: now,
            },
        );
        // The least recently used session made room (or this token's older entry).
        if let Some((old_key, old)) = evicted {
            if old_key != key {
                inner.by_session.remove(&old.session.id);
            }
        }
    }

    /// The session's idle timer was written; the entry follows without a new read.
    pub(super) fn touched(&self, id: SessionId, now: Timestamp) {
        let mut inner = self.lock();
        if let Some(key) = inner.by_session.get(&id).copied() {
            if let Some(e) = inner.by_token.peek_mut(&key) {
                e.session.last_seen_at = now;
            }
        }
    }

    pub(super) fn forget(&self, change: Change) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        match change {
            Change::Session(id) => {
                if let Some(key) = inner.by_session.get(&id).copied() {
                    inner.remove(&key);
                }
            }
            Change::User(id) => {
                let keys: Vec<Key> = inner
                    .by_token
                    .iter()
                    .filter(|(_, e)| e.user.id == id)
                    .map(|(k, _)| *k)
                    .collect();
                for key in keys {
                    inner.remove(&key);
                }
            }
            Change::All => {
                inner.by_token.clear();
                inner.by_session.clear();
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_token.len()
    }
}

impl Inner {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.by_token.pop(key) {
            self.by_session.remove(&e.session.id);
        }
    }
}

/// Read at `read_at`, still usable at `now` (a clock that went back counts as stale).
fn fresh(read_at: Timestamp, now: Timestamp) -> bool {
    read_at <= now && now < read_at.plus(FRESH_FOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantId;

    fn record(session: i64, user: i64) -> (SessionRecord, UserRecord) {
        let at = Timestamp(1_000);
        (
            SessionRecord {
                id: SessionId(session),
                user_id: UserId(user),
                created_at: at,
                last_seen_at: at,
                authenticated_at: at,
            },
            UserRecord {
                id: UserId(user),
                tenant_id: TenantId(1),
                tenant_code: crate::domain::TenantCode::parse("acme").unwrap(),
                tenant_name: "Acme".into(),
                extension: crate::domain::Extension::parse("201").unwrap(),
                name: "Ada".into(),
                email: None,
                role: crate::domain::Role::User,
                password_hash: String::new(),
                password_temporary: false,
                password_expires_at: None,
                last_sign_in_at: None,
                sip_domain: "acme.example".into(),
                has_sip_secret: true,
                has_pin: false,
                tenant_suspended: false,
            },
        )
    }

    fn token(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn hit(cache: &SessionCache, n: u8, now: Timestamp) -> bool {
        matches!(cache.get(&token(n), now), Lookup::Hit(_))
    }

    fn fill(cache: &SessionCache, n: u8, session: i64, user: i64, now: Timestamp) {
        let Lookup::Miss { epoch } = cache.get(&token(n), now) else {
            panic!("expected a miss");
        };
        let (s, u) = record(session, user);
        cache.put(&token(n), epoch, &s, &u, now);
    }

    #[test]
    fn an_entry_answers_until_it_is_no_longer_fresh() {
        let cache = SessionCache::default();
        let now = Timestamp(2_000);
        fill(&cache, 1, 10, 100, now);
        assert!(hit(&cache, 1, now));
        assert!(hit(&cache, 1, now.plus(Duration::from_secs(1))));
        assert!(!hit(&cache, 1, now.plus(FRESH_FOR)));
        assert!(!hit(&cache, 1, Timestamp(1_999)), "a clock that went back");
    }

    #[test]
    fn changes_forget_exactly_what_they_touch() {
        let cache = SessionCache::default();
        let now = Timestamp(2_000);
        fill(&cache, 1, 10, 100, now);
        fill(&cache, 2, 11, 100, now);
        fill(&cache, 3, 12, 200, now);
        cache.forget(Change::Session(SessionId(10)));
        assert!(!hit(&cache, 1, now));
        assert!(hit(&cache, 2, now) && hit(&cache, 3, now));
        cache.forget(Change::User(UserId(100)));
        assert!(!hit(&cache, 2, now));
        assert!(hit(&cache, 3, now));
        cache.forget(Change::All);
        assert!(!hit(&cache, 3, now));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = SessionCache::default();
        let now = Timestamp(2_000);
        let Lookup::Miss { epoch } = cache.get(&token(1), now) else {
            panic!("expected a miss");
        };
        cache.forget(Change::User(UserId(999)));
        let (s, u) = record(10, 100);
        cache.put(&token(1), epoch, &s, &u, now);
        assert!(!hit(&cache, 1, now));
    }

    #[test]
    fn a_touch_moves_the_cached_idle_timer() {
        let cache = SessionCache::default();
        let now = Timestamp(2_000);
        fill(&cache, 1, 10, 100, now);
        cache.touched(SessionId(10), Timestamp(2_001));
        let Lookup::Hit(found) = cache.get(&token(1), Timestamp(2_001)) else {
            panic!("expected a hit");
        };
        assert_eq!(found.0.last_seen_at, Timestamp(2_001));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = SessionCache::default();
        let now = Timestamp(2_000);
        for i in 0..(CAPACITY as i64 + 10) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.to_le_bytes());
            let Lookup::Miss { epoch } = cache.get(&key, now) else {
                panic!("expected a miss");
            };
            let (s, u) = record(i, i);
            cache.put(&key, epoch, &s, &u, now);
        }
        assert!(cache.len() <= CAPACITY);
        // No cliff: the newest sessions are all still there; only the oldest made room.
        let newest = CAPACITY as i64 + 9;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&newest.to_le_bytes());
        assert!(matches!(cache.get(&key, now), Lookup::Hit(_)));
        let mut oldest = [0u8; 32];
        oldest[..8].copy_from_slice(&0i64.to_le_bytes());
        assert!(matches!(cache.get(&oldest, now), Lookup::Miss { .. }));
        assert_eq!(cache.len(), CAPACITY);
    }

    #[test]
    fn notices_read_back_and_garbage_means_everything() {
        for c in [
            Change::Session(SessionId(7)),
            Change::User(UserId(-3)),
            Change::All,
        ] {
            assert_eq!(Change::parse(&c.payload()), c);
        }
        for junk in ["", "x1", "s", "uabc", "é", "s1 2"] {
            assert_eq!(Change::parse(junk), Change::All);
        }
    }
}
