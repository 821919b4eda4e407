//! Device cookies (the OWASP pattern against lockouts an attacker turns against a user):
//! after a successful sign-in the browser gets a signed, long-lived cookie naming the
//! account and a random device id. A sign-in that presents a valid one for the username
//! typed is counted for that device alone (the guard's [`sign_in_key`]), so failures from
//! elsewhere lock the name only for untrusted browsers, while 5 failures in the trusted
//! browser still lock that browser.
//!
//! This module is the one place the cookie is made and checked: [`issue`] after a
//! successful sign-in, [`recognise`] before counting an attempt. A later step of sign-in
//! (a second factor) asks [`recognise`] the same way.
//!
//! [`sign_in_key`]: super::guard::Guard::sign_in_key

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::auth::key::SecretKey;
use crate::auth::token;
use crate::domain::Username;

/// How long a browser stays trusted after its last successful sign-in.
pub const DEVICE_COOKIE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The MAC's purpose, so a device cookie's MAC is never valid as anything else.
const PURPOSE: &str = "device-cookie";

/// A browser that proved, with a valid device cookie, that it signed in to this account
/// before. Only [`recognise`] makes one.
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

/// A fresh device cookie value for `username`: `DEVICEID.USERNAME.MAC`. The device id is
/// kept when the browser already had one for this account.
pub fn issue(key: &SecretKey, username: &Username, known: Option<&TrustedDevice>) -> String {
    let id = match known {
        Some(d) => d.id.clone(),
        None => token::random_token(),
    };
    let body = format!("{id}.{username}");
    let mac = URL_SAFE_NO_PAD.encode(key.mac(PURPOSE, body.as_bytes()));
    format!("{body}.{mac}")
}

/// The trusted device behind `cookie`, if it is a valid device cookie for `username`.
pub fn recognise(
    key: &SecretKey,
    cookie: Option<&str>,
    username: &Username,
) -> Option<TrustedDevice> {
    let cookie = cookie?;
    let (body, mac) = cookie.rsplit_once('.')?;
    let (id, named) = body.split_once('.')?;
    if !token::looks_like_token(id) || named != username.to_string() {
        return None;
    }
    let expected = URL_SAFE_NO_PAD.encode(key.mac(PURPOSE, body.as_bytes()));
    bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
        .then(|| TrustedDevice { id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_valid_only_for_its_account_and_key() {
        let key = SecretKey::random();
        let user = Username::parse("201-wickedsprockets").unwrap();
        let other = Username::parse("202-wickedsprockets").unwrap();
        let cookie = issue(&key, &user, None);
        let device = recognise(&key, Some(&cookie), &user).expect("valid");
        assert_eq!(issue(&key, &user, Some(&device)), cookie, "the id is kept");
        assert!(recognise(&key, Some(&cookie), &other).is_none());
        assert!(recognise(&SecretKey::random(), Some(&cookie), &user).is_none());
        let forged = cookie.replace("201-", "202-");
        assert!(recognise(&key, Some(&forged), &other).is_none());
        for junk in ["", ".", "a.b.c", "..", "x.201-wickedsprockets.y"] {
            assert!(recognise(&key, Some(junk), &user).is_none(), "{junk}");
        }
    }
}
