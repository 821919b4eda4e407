//! Device cookies (the OWASP pattern against lockouts an attacker turns against a user):
//! after a successful sign-in the browser gets a signed, long-lived cookie naming the
//! account, a random device id, and (as a digest) the account and password it was issued
//! under. A sign-in that presents a valid one for the account as it is now is counted for
//! that device alone (the guard's [`sign_in_key`]), so failures from
//! elsewhere lock the name only for untrusted browsers, while 5 failures in the trusted
//! browser still lock that browser.
//!
//! This module is the one place the cookie is made and checked: [`issue`] after a
//! successful sign-in, [`claimed`] for the hashing queue's order before the account is
//! read, [`recognise`] before counting an attempt. A later step of sign-in
//! (a second factor) asks [`recognise`] the same way.
//!
//! [`sign_in_key`]: super::guard::Guard::sign_in_key

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use sha2::{Digest, Sha256};

use crate::auth::key::SecretKey;
use crate::auth::token;
use crate::domain::Username;
use crate::store::UserRecord;

/// How long a browser stays trusted after its last successful sign-in.
pub const DEVICE_COOKIE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The MAC's purpose, so a device cookie's MAC is never valid as anything else.
const PURPOSE: &str = "device-cookie";

/// A browser that proved, with a valid device cookie, that it signed in to this account
/// — this user, with the password they have now — before. Only [`Claim::trusted_for`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    id: String,
}

impl TrustedDevice {
    /// The device's random id (part of its throttle key).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Which account and password a cookie was issued under: a digest of the user's id and
/// stored password hash. A new password (a reset, a change, a temporary one) or a new
/// account under the same username (deleted and made again) makes every earlier cookie
/// a stranger's, so cookies collected while someone knew the password are worth nothing
/// once it is changed.
fn generation(user: &UserRecord) -> String {
    let digest = Sha256::digest(format!("{}:{}", user.id.0, user.password_hash).as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..9])
}

/// A fresh device cookie value for `user`: `DEVICEID.USERNAME.GENERATION.MAC`. The device
/// id is kept when the browser already had one for this account.
pub fn issue(key: &SecretKey, user: &UserRecord, known: Option<&TrustedDevice>) -> String {
    let id = match known {
        Some(d) => d.id.clone(),
        None => token::random_token(),
    };
    let body = format!("{id}.{}.{}", user.username(), generation(user));
    let mac = URL_SAFE_NO_PAD.encode(key.mac(PURPOSE, body.as_bytes()));
    format!("{body}.{mac}")
}

/// The device cookie for the browser that just set `user`'s password to `new_hash` (it
/// proved the old password, or a reset link and the email on file): trusted under the new
/// password, its device id kept when its cookie was valid before.
pub fn reissue(key: &SecretKey, cookie: Option<&str>, user: &UserRecord, new_hash: &str) -> String {
    let known = recognise(key, cookie, user);
    let changed = UserRecord {
        password_hash: new_hash.to_owned(),
        ..user.clone()
    };
    issue(key, &changed, known.as_ref())
}

/// A device cookie signed for a username, read before the account is: enough to wait
/// before strangers for hashing, never to be counted apart until [`Claim::trusted_for`]
/// finds it was issued to the account as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    id: String,
    generation: String,
}

impl Claim {
    /// The trusted device, if the claim was issued to `user` under their current password.
    pub fn trusted_for(&self, user: &UserRecord) -> Option<TrustedDevice> {
        let current = generation(user);
        bool::from(self.generation.as_bytes().ct_eq(current.as_bytes())).then(|| TrustedDevice {
            id: self.id.clone(),
        })
    }
}

/// The claim of `cookie` when it is a device cookie signed by `key` for `username`.
pub fn claimed(key: &SecretKey, cookie: Option<&str>, username: &Username) -> Option<Claim> {
    let (body, mac) = cookie?.rsplit_once('.')?;
    let mut parts = body.split('.');
    let (id, named, generation) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !token::looks_like_token(id) || named != username.to_string() {
        return None;
    }
    let expected = URL_SAFE_NO_PAD.encode(key.mac(PURPOSE, body.as_bytes()));
    bool::from(expected.as_bytes().ct_eq(mac.as_bytes())).then(|| Claim {
        id: id.to_owned(),
        generation: generation.to_owned(),
    })
}

/// The trusted device behind `cookie`, if it is a valid device cookie for `user` as they
/// are now (the same account, the same password).
pub fn recognise(
    key: &SecretKey,
    cookie: Option<&str>,
    user: &UserRecord,
) -> Option<TrustedDevice> {
    claimed(key, cookie, &user.username())?.trusted_for(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_valid_only_for_its_account_its_password_and_key() {
        let key = SecretKey::random();
        let user = UserRecord::sample(7, "$argon2id$first");
        let name = user.username();
        let other = Username::parse("202-acme").unwrap();
        let cookie = issue(&key, &user, None);
        let device = recognise(&key, Some(&cookie), &user).expect("valid");
        assert_eq!(issue(&key, &user, Some(&device)), cookie, "the id is kept");
        assert!(claimed(&key, Some(&cookie), &name).is_some());
        assert!(claimed(&key, Some(&cookie), &other).is_none());
        assert!(recognise(&SecretKey::random(), Some(&cookie), &user).is_none());
        let forged = cookie.replace("201-", "202-");
        assert!(claimed(&key, Some(&forged), &other).is_none());

        // A new password, or another account under the same name, trusts nothing before.
        let changed = UserRecord::sample(7, "$argon2id$second");
        assert!(
            claimed(&key, Some(&cookie), &name).is_some(),
            "still signed"
        );
        assert!(recognise(&key, Some(&cookie), &changed).is_none());
        let remade = UserRecord::sample(8, "$argon2id$first");
        assert!(recognise(&key, Some(&cookie), &remade).is_none());

        for junk in ["", ".", "a.b.c", "..", "x.201-acme.y", "a.201-acme.b.c.d"] {
            assert!(claimed(&key, Some(junk), &name).is_none(), "{junk}");
        }
    }
}
