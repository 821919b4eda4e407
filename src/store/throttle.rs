//! The `signin_throttle` table: one counter per key, counted atomically before anything
//! is checked, locked once its window holds the limit. Every key format lives here, in
//! [`ThrottleKey`], and the SQL that joins on a key takes its pattern from here too, so
//! existing rows keep working and no format is written twice. The rules that read the
//! counters (how many, how long) are the guard's, in `services::guard`.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::{Executor, Row};

use super::audit::insert_audit;
use super::{AuditRow, SessionId, Store, StoreResult, UserId};
use crate::clock::Timestamp;
use crate::domain::{OperatorName, Username};

/// The name of one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey(String);

/// What follows a username key in the key of one of its trusted browsers.
const DEVICE_SUFFIX: &str = "#device:";

/// What follows a username key in the key of one of its signed-in sessions.
const SESSION_SUFFIX: &str = "#session:";

/// What follows a username key in the keys that belong to it (its trusted browsers, its
/// sessions), cleared with it.
const SUB_KEY: &str = "#";

/// The SQL expression of a tenant user's [`ThrottleKey::username`], for a query that
/// selects `u` from `users` joined with `t` from `tenants`.
pub(crate) const USERNAME_KEY_SQL: &str = "'user:' || u.extension || '-' || t.code";

/// The SQL expression of a user's [`ThrottleKey::reset_mail`], for a query that selects
/// `u` from `users`.
pub(crate) const RESET_MAIL_KEY_SQL: &str = "'reset-mail:' || u.id";

/// The same of [`ThrottleKey::reset_mail_by_staff`].
pub(crate) const STAFF_RESET_MAIL_KEY_SQL: &str = "'reset-mail-staff:' || u.id";

impl ThrottleKey {
    /// Sign-in failures of one username, known or not: `user:201-wickedsprockets`.
    pub fn username(u: &Username) -> ThrottleKey {
        ThrottleKey(format!("user:{u}"))
    }

    /// Sign-in failures of one username from one trusted browser (a valid device
    /// cookie): `user:201-wickedsprockets#device:ID`. Clearing the username's key clears
    /// these too (a reset, an unlock).
    pub fn device(u: &Username, device_id: &str) -> ThrottleKey {
        ThrottleKey(format!("user:{u}{DEVICE_SUFFIX}{device_id}"))
    }

    /// Password checks inside one signed-in session (to change the password, to reveal a
    /// secret), counted for that session alone as a trusted browser's sign-ins are:
    /// `user:201-wickedsprockets#session:ID`. Clearing the username's key clears these too.
    pub fn session(u: &Username, session: SessionId) -> ThrottleKey {
        ThrottleKey(format!("user:{u}{SESSION_SUFFIX}{}", session.0))
    }

    /// Whether this key counts the attempts of one trusted browser (a [`ThrottleKey::device`]).
    pub fn is_trusted_browser(&self) -> bool {
        self.0.starts_with("user:") && self.0.contains(DEVICE_SUFFIX)
    }

    /// Sign-in failures of one operator name: `operator:NAME`, which no tenant username
    /// can be.
    pub fn operator(name: &OperatorName) -> ThrottleKey {
        ThrottleKey(format!("operator:{name}"))
    }

    /// Password failures from one client address across usernames. IPv6 clients are
    /// grouped by /64, the block one subscriber usually holds, so hopping between
    /// addresses does not escape the limit.
    pub fn address(addr: IpAddr) -> ThrottleKey {
        ThrottleKey(format!("addr:{}", client_block(addr)))
    }

    /// Recovery requests (reset links, usernames) from one client address, IPv6 grouped
    /// by /64 as for [`ThrottleKey::address`].
    pub fn recovery_address(addr: IpAddr) -> ThrottleKey {
        ThrottleKey(format!("recovery:{}", client_block(addr)))
    }

    /// Reset links mailed for one account at its own request ("Forgot password?").
    pub fn reset_mail(user: UserId) -> ThrottleKey {
        ThrottleKey(format!("reset-mail:{}", user.0))
    }

    /// Reset links mailed for one account by someone trusted with it (an admin, an
    /// operator, the API, the CLI): a budget of its own, so strangers asking again and
    /// again cannot keep the account's admin from sending one.
    pub fn reset_mail_by_staff(user: UserId) -> ThrottleKey {
        ThrottleKey(format!("reset-mail-staff:{}", user.0))
    }

    /// Usernames reminders mailed to one address (as stored: parsed, lowercased).
    pub fn usernames_mail(email: &str) -> ThrottleKey {
        ThrottleKey(format!("usernames-mail:{email}"))
    }

    /// Guesses made with one reset link: wrong answers to "your email address", and new
    /// passwords that were the current one.
    pub fn reset_email_guesses(link_id: i64) -> ThrottleKey {
        ThrottleKey(format!("reset-email:{link_id}"))
    }

    /// Operators' tries at the answer of one admin's security question.
    pub fn caller_tries(admin: UserId) -> ThrottleKey {
        ThrottleKey(format!("caller:{}", admin.0))
    }

    /// JSON API requests of one token in one minute (`minute` counts minutes since the
    /// epoch), so the count starts afresh each minute however busy the token is.
    pub fn api_token(token_id: i64, minute: i64) -> ThrottleKey {
        ThrottleKey(format!("api:{token_id}:{minute}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One client as the limits see it: an IPv4 address (an IPv4-mapped IPv6 one as IPv4),
/// or the /64 an IPv6 address is in.
fn client_block(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A failure of a client address whose attempt was already counted (before the hash):
/// at `limit`, locked until `lock_until` (see [`Store::record_failed_check`]).
#[derive(Debug, Clone, Copy)]
pub struct AddressFailure<'a> {
    pub key: &'a ThrottleKey,
    pub limit: u32,
    pub lock_until: Timestamp,
}

/// The outcome of counting one attempt for a throttle key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    /// Attempts counted in the current window, this one included.
    pub attempts: i64,
    pub locked_until: Option<Timestamp>,
}

/// The sliding count (see [`Store::throttle_count`]).
const COUNT_SLIDING: &str =
    "INSERT INTO signin_throttle (key, window_start, attempts, locked_until) VALUES ($1, $2, 1, NULL) \
     ON CONFLICT (key) DO UPDATE SET \
       attempts = CASE WHEN (signin_throttle.locked_until IS NOT NULL AND signin_throttle.locked_until <= $2) \
                         OR (signin_throttle.locked_until IS NULL AND signin_throttle.window_start <= $3) \
                       THEN 1 ELSE signin_throttle.attempts + 1 END, \
       window_start = CASE WHEN signin_throttle.locked_until IS NOT NULL AND signin_throttle.locked_until > $2 \
                       THEN signin_throttle.window_start ELSE $2 END, \
       locked_until = CASE WHEN signin_throttle.locked_until <= $2 THEN NULL \
                       ELSE signin_throttle.locked_until END \
     RETURNING attempts, locked_until";

/// The fixed-window count (see [`Store::throttle_count_fixed`]).
const COUNT_FIXED: &str =
    "INSERT INTO signin_throttle (key, window_start, attempts, locked_until) VALUES ($1, $2, 1, NULL) \
     ON CONFLICT (key) DO UPDATE SET \
       attempts = CASE WHEN signin_throttle.window_start <= $3 THEN 1 \
                       ELSE signin_throttle.attempts + 1 END, \
       window_start = CASE WHEN signin_throttle.window_start <= $3 THEN $2 \
                       ELSE signin_throttle.window_start END \
     RETURNING attempts, locked_until";

impl Store {
    /// Counts one attempt for `key`, atomically, before anything is checked. The count
    /// starts again only after `window` without attempts (or when a lock has run out), so
    /// no window-long span can ever hold more attempts than the limit — bursts at a
    /// window's edge included. `window_start` holds the time of the latest attempt.
    pub async fn throttle_count(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<ThrottleState> {
        throttle_count(&self.pool, key, now, window).await
    }

    /// Counts one sign-in attempt before its password is checked: first under the
    /// client's `address`, when given, and then — unless `address_refusal` refuses the
    /// attempt on the address's new state — under `name`, both in one transaction (one
    /// commit where there were two). Both counts use the sliding window of
    /// [`Store::throttle_count`]. `Err` with the address's refusal (the name was not
    /// counted); `Ok` with the name's state otherwise.
    pub async fn count_sign_in<E>(
        &self,
        address: Option<(&ThrottleKey, Duration)>,
        name: (&ThrottleKey, Duration),
        now: Timestamp,
        address_refusal: impl FnOnce(&ThrottleState) -> Result<(), E>,
    ) -> StoreResult<Result<ThrottleState, E>> {
        let (key, window) = name;
        let Some((address, address_window)) = address else {
            // One count: no transaction around it.
            return Ok(Ok(throttle_count(&self.pool, key, now, window).await?));
        };
        let mut tx = self.pool.begin().await?;
        let state = throttle_count(&mut *tx, address, now, address_window).await?;
        if let Err(refused) = address_refusal(&state) {
            tx.commit().await?;
            return Ok(Err(refused));
        }
        let state = throttle_count(&mut *tx, key, now, window).await?;
        tx.commit().await?;
        Ok(Ok(state))
    }

    /// Counts one attempt for `key` in a fixed window: the count starts again `window`
    /// after the first attempt of the current one, however many came since, so a steady
    /// trickle of requests cannot keep a limit spent for ever.
    pub async fn throttle_count_fixed(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<ThrottleState> {
        count_with(&self.pool, COUNT_FIXED, key, now, window).await
    }

    /// Records that a counted attempt failed; locks the key until `lock_until` once the
    /// window holds `limit` attempts. Returns when the key is locked until, if it is.
    pub async fn throttle_fail(
        &self,
        key: &ThrottleKey,
        limit: u32,
        lock_until: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        throttle_fail(&self.pool, key, limit, lock_until).await
    }

    /// Records a password that did not match, in one transaction (one commit where there
    /// were four): the failure under `key`, which locks it once its window holds `limit`
    /// attempts; the failure of the client's address (counted before the hash), when
    /// given; and the audit row
    /// that `audit` makes, told whether this failure locked `key`. Returns when `key` is
    /// locked until, if it is.
    pub async fn record_failed_check<'a>(
        &self,
        key: &ThrottleKey,
        limit: u32,
        lock_until: Timestamp,
        address: Option<&AddressFailure<'_>>,
        audit: impl FnOnce(Option<Timestamp>) -> AuditRow<'a>,
    ) -> StoreResult<Option<Timestamp>> {
        let mut tx = self.pool.begin().await?;
        // A write first, so SQLite takes its write lock at once.
        let locked = throttle_fail(&mut *tx, key, limit, lock_until).await?;
        if let Some(a) = address {
            // Its attempt was counted before the hash; this failure may lock it.
            throttle_fail(&mut *tx, a.key, a.limit, a.lock_until).await?;
        }
        insert_audit(&mut *tx, &audit(locked)).await?;
        tx.commit().await?;
        Ok(locked)
    }

    /// Gives back an attempt that was counted but never checked (the hashing pool was full).
    pub async fn throttle_release(&self, key: &ThrottleKey) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "UPDATE signin_throttle SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
            )
            .bind(key.as_str()),
        )
        .await
    }

    /// Forgets every counted attempt and lock for `key` (success, reset, unlock).
    pub async fn throttle_clear(&self, key: &ThrottleKey) -> StoreResult<bool> {
        let done = throttle_clear(&self.pool, key).await?;
        Ok(done)
    }

    /// The current lock of `key`, without counting anything.
    pub async fn throttle_locked_until(&self, key: &ThrottleKey) -> StoreResult<Option<Timestamp>> {
        let query = sqlx::query("SELECT locked_until FROM signin_throttle WHERE key = $1");
        let found = self
            .optional(query.bind(key.as_str()), |r| Ok(r.try_get("locked_until")?))
            .await?;
        Ok(found.flatten())
    }

    /// How many of the trusted browsers of username key `key` (its `KEY#device:…` keys)
    /// are locked after `now`.
    pub async fn throttle_browsers_locked(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let query = sqlx::query(
            "SELECT COUNT(*) FROM signin_throttle WHERE key LIKE $1 AND locked_until > $2",
        );
        let pattern = format!("{}{DEVICE_SUFFIX}%", key.as_str());
        Ok(self
            .optional(query.bind(pattern).bind(now), |r| Ok(r.try_get(0)?))
            .await?
            .unwrap_or(0))
    }

    /// How many attempts `key` holds in its current window (0 when it has none or the
    /// window has passed), without counting one more.
    pub async fn throttle_attempts(
        &self,
        key: &ThrottleKey,
        window_after: Timestamp,
    ) -> StoreResult<i64> {
        let query = sqlx::query(
            "SELECT attempts FROM signin_throttle WHERE key = $1 AND window_start > $2",
        );
        let found = self
            .optional(query.bind(key.as_str()).bind(window_after), |r| {
                Ok(r.try_get("attempts")?)
            })
            .await?;
        Ok(found.unwrap_or(0))
    }
}

pub(crate) async fn throttle_clear<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &ThrottleKey,
) -> StoreResult<bool> {
    // The key and the keys that belong to it (`KEY#device:…`, `KEY#session:…`); no key
    // holds a LIKE wildcard (`%`, `_`) before its suffix, and only username keys have any.
    let done = sqlx::query("DELETE FROM signin_throttle WHERE key = $1 OR key LIKE $2")
        .bind(key.as_str())
        .bind(format!("{}{SUB_KEY}%", key.as_str()))
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

async fn throttle_count<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &ThrottleKey,
    now: Timestamp,
    window: Duration,
) -> StoreResult<ThrottleState> {
    count_with(db, COUNT_SLIDING, key, now, window).await
}

/// Counts one attempt with `sql` ([`COUNT_SLIDING`] or [`COUNT_FIXED`]: `$1` the key, `$2`
/// now, `$3` the window's start) and reads the state it returns.
async fn count_with<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    sql: &str,
    key: &ThrottleKey,
    now: Timestamp,
    window: Duration,
) -> StoreResult<ThrottleState> {
    let row = sqlx::query(sql)
        .bind(key.as_str())
        .bind(now)
        .bind(now.minus(window))
        .fetch_one(db)
        .await?;
    Ok(ThrottleState {
        attempts: row.try_get("attempts")?,
        locked_until: row.try_get("locked_until")?,
    })
}

async fn throttle_fail<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &ThrottleKey,
    limit: u32,
    lock_until: Timestamp,
) -> StoreResult<Option<Timestamp>> {
    let row = sqlx::query(
        "UPDATE signin_throttle SET locked_until = CASE \
           WHEN locked_until IS NULL AND attempts >= $2 THEN $3 ELSE locked_until END \
         WHERE key = $1 RETURNING locked_until",
    )
    .bind(key.as_str())
    .bind(i64::from(limit))
    .bind(lock_until)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some(r) => r.try_get("locked_until")?,
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Email;

    fn username(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[test]
    fn every_key_format_is_pinned_so_existing_rows_keep_working() {
        let user = UserId(42);
        let cases = [
            (
                ThrottleKey::username(&username("201-WickedSprockets")),
                "user:201-wickedsprockets",
            ),
            (
                ThrottleKey::operator(&OperatorName::parse("Olive").unwrap()),
                "operator:olive",
            ),
            (
                ThrottleKey::address("192.0.2.7".parse().unwrap()),
                "addr:192.0.2.7",
            ),
            (
                ThrottleKey::recovery_address("192.0.2.7".parse().unwrap()),
                "recovery:192.0.2.7",
            ),
            (ThrottleKey::reset_mail(user), "reset-mail:42"),
            (
                ThrottleKey::reset_mail_by_staff(user),
                "reset-mail-staff:42",
            ),
            (
                ThrottleKey::usernames_mail(Email::parse("Sam@Example.com").unwrap().as_str()),
                "usernames-mail:sam@example.com",
            ),
            (ThrottleKey::reset_email_guesses(7), "reset-email:7"),
            (ThrottleKey::caller_tries(user), "caller:42"),
            (ThrottleKey::api_token(7, 30_000_000), "api:7:30000000"),
            (
                ThrottleKey::device(&username("201-wickedsprockets"), "abc"),
                "user:201-wickedsprockets#device:abc",
            ),
            (
                ThrottleKey::session(&username("201-wickedsprockets"), SessionId(9)),
                "user:201-wickedsprockets#session:9",
            ),
        ];
        for (key, expected) in cases {
            assert_eq!(key.as_str(), expected);
            assert_eq!(key.is_trusted_browser(), expected.contains("#device:"));
        }
        assert_eq!(USERNAME_KEY_SQL, "'user:' || u.extension || '-' || t.code");
        assert_eq!(RESET_MAIL_KEY_SQL, "'reset-mail:' || u.id");
        assert_eq!(STAFF_RESET_MAIL_KEY_SQL, "'reset-mail-staff:' || u.id");
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_bit_prefix() {
        let a = ThrottleKey::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ThrottleKey::address("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, ThrottleKey::address("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            ThrottleKey::address("::ffff:192.0.2.7".parse().unwrap()).as_str(),
            "addr:192.0.2.7"
        );
        // Recovery requests are grouped the same way: a client cannot ask for mail from a
        // new address of its /64 each time.
        assert_eq!(
            ThrottleKey::recovery_address("2001:db8:1:2:aaaa::1".parse().unwrap()).as_str(),
            "recovery:2001:db8:1:2::/64"
        );
        assert_eq!(
            ThrottleKey::recovery_address("2001:db8:1:2:bbbb::9".parse().unwrap()),
            ThrottleKey::recovery_address("2001:db8:1:2::1".parse().unwrap())
        );
    }
}
