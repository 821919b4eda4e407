//! A short-lived copy of the sessions in use, so a signed-in page costs no database round
//! trip. It keeps the rules of every [`ForgettingCache`]; here:
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
//! raced with a change is not kept. Unknown tokens are never stored, so guessing cannot
//! fill the cache; it is bounded besides, without a cliff: past its capacity the least
//! recently used session makes room, one at a time.

use std::time::Duration;

use crate::clock::Timestamp;

use super::cache::{Cached, ForgettingCache, Reach};
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

/// A cached session is found again by its id.
impl Cached for (SessionRecord, UserRecord) {
    type Id = SessionId;

    fn id(&self) -> SessionId {
        self.0.id
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

/// The sessions by the hash of their token.
pub(super) struct SessionCache(ForgettingCache<Key, (SessionRecord, UserRecord)>);

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache(ForgettingCache::new(CAPACITY, FRESH_FOR))
    }
}

impl SessionCache {
    /// A token hash of any other length than a key's is simply not found.
    pub(super) fn get(&self, token_hash: &[u8], now: Timestamp) -> Lookup {
        match self.0.get(token_hash, now) {
            Ok(found) => Lookup::Hit(Box::new(found)),
            Err(epoch) => Lookup::Miss { epoch },
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
        if let Ok(key) = Key::try_from(token_hash) {
            self.0.put(key, epoch, (session.clone(), user.clone()), now);
        }
    }

    /// The session's idle timer was written; the entry follows without a new read.
    pub(super) fn touched(&self, id: SessionId, now: Timestamp) {
        self.0.update(id, |(session, _)| session.last_seen_at = now);
    }

    pub(super) fn forget(&self, change: Change) {
        match change {
            Change::Session(id) => self.0.forget(Reach::One(id)),
            Change::User(id) => self.0.forget(Reach::Matching(&|(_, user)| user.id == id)),
            Change::All => self.0.forget(Reach::All),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.sizes().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            UserRecord::sample(user, ""),
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
