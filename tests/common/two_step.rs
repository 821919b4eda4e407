//! Two-step sign-in in the suites: TOTP codes computed here, apart from the portal's own
//! code (RFC 6238: HMAC-SHA-1, 6 digits, 30 s), from the secret a setup page shows; what
//! the pages show (the secret, the recovery codes); and one helper per two-step endpoint.

use std::time::Duration;

use dialtone::clock::{Clock, Timestamp};
use hmac::{Hmac, Mac};
use reqwest::{Response, StatusCode};

use super::{location, Browser, TestApp};

/// Decodes base32 (RFC 4648; spaces ignored, no padding needed).
fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The 6-digit code an authenticator app shows at `at` for the base32 `secret`.
pub fn totp_code(secret: &str, at: Timestamp) -> String {
    let key = base32_decode(secret);
    let step = at.0.div_euclid(30);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&step.to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([d[o] & 0x7f, d[o + 1], d[o + 2], d[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// The base32 key a setup page shows (spaces removed).
pub fn totp_secret_in(body: &str) -> String {
    let at = body
        .find("id=\"totp-secret\">")
        .expect("the setup page shows the key")
        + "id=\"totp-secret\">".len();
    body[at..at + body[at..].find('<').unwrap()].replace(' ', "")
}

/// The recovery codes a page shows once.
pub fn recovery_codes_in(body: &str) -> Vec<String> {
    let at = body
        .find("id=\"recovery-codes\">")
        .expect("the page shows recovery codes");
    let list = &body[at..at + body[at..].find("</ul>").unwrap()];
    list.split("<li>")
        .skip(1)
        .map(|s| s[..s.find("</li>").unwrap()].to_owned())
        .collect()
}

impl Browser {
    /// The second step of a sign-in, with `code`.
    pub async fn two_step(&self, code: &str) -> Response {
        self.post("/login/two-step", &[("code", code)]).await
    }

    /// The operator console's second step, with `code`.
    pub async fn operator_two_step(&self, code: &str) -> Response {
        self.post("/operator/login/two-step", &[("code", code)])
            .await
    }

    /// Sets up an authenticator app on the page at `setup` (Settings, or the setup a
    /// sign-in is sent to), confirming with the code at `now`. Returns the key shown and
    /// the confirming response (the recovery codes page when it worked).
    pub async fn set_up_app(&self, setup: &str, now: Timestamp) -> (String, Response) {
        let page = self.get(setup).await;
        assert_eq!(page.status(), StatusCode::OK, "the setup page {setup}");
        let secret = totp_secret_in(&page.text().await.unwrap());
        let r = self
            .post(setup, &[("code", &totp_code(&secret, now))])
            .await;
        (secret, r)
    }

    /// Signs an operator in, through the second step with the app whose key is `known`,
    /// or — the first time — through setting one up. Returns the key.
    pub async fn operator_sign_in_with_app(
        &self,
        name: &str,
        password: &str,
        known: Option<&str>,
        now: Timestamp,
    ) -> String {
        let r = self.operator_login(name, password).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "operator password");
        match location(&r).as_str() {
            "/operator/login/two-step/setup" => {
                let (secret, r) = self.set_up_app("/operator/login/two-step/setup", now).await;
                assert_eq!(r.status(), StatusCode::OK, "the app is set up");
                secret
            }
            "/operator/login/two-step" => {
                let secret = known.expect("the operator's app key").to_owned();
                let r = self.operator_two_step(&totp_code(&secret, now)).await;
                assert_eq!(location(&r), "/operator/tenants", "the second step");
                secret
            }
            other => panic!("an operator's password leads to {other}"),
        }
    }
}

impl TestApp {
    /// The code `secret`'s app shows now, after moving the clock on one 30-second step,
    /// so a code already used at this instant is never typed again (codes work once).
    pub fn fresh_totp(&self, secret: &str) -> String {
        self.advance(Duration::from_secs(30));
        totp_code(secret, self.clock.now())
    }

    /// A browser signed in as `username` (with `PASSWORD`) through the second step, with
    /// a fresh code of `secret`'s app.
    pub async fn signed_in_with_app(&self, username: &str, secret: &str) -> Browser {
        let b = self.browser();
        let r = b.login(username, super::PASSWORD).await;
        assert_eq!(
            location(&r),
            "/login/two-step",
            "the password leads to the second step"
        );
        let r = b.two_step(&self.fresh_totp(secret)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the second step");
        b
    }

    /// Sets up an authenticator app for `username` from Settings (signing in with
    /// `PASSWORD`); returns the key and the recovery codes shown.
    pub async fn with_app(&self, username: &str) -> (String, Vec<String>) {
        let b = self.signed_in(username).await;
        let (secret, r) = b
            .set_up_app("/settings/two-step/setup", self.clock.now())
            .await;
        assert_eq!(r.status(), StatusCode::OK, "the app is confirmed");
        let codes = recovery_codes_in(&r.text().await.unwrap());
        // Its owner is mailed that a second factor was added; read here, so that a test
        // sees only the mail of what it does next.
        self.take_mail_about("A second factor was added").await;
        (secret, codes)
    }
}
