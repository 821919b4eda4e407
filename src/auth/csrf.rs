//! CSRF protection for every form: the browser holds a random value in an HttpOnly,
//! SameSite=Lax cookie, and each form carries an HMAC of it under the server's key.
//! A forged form has neither the cookie's value nor the key, so it cannot carry the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::key::SecretKey;

/// The token a form must carry for the browser holding `cookie_value`.
pub fn form_token(key: &SecretKey, cookie_value: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.mac("csrf", cookie_value.as_bytes()))
}

/// Whether `submitted` is the token for `cookie_value`, compared in constant time.
pub fn verify(key: &SecretKey, cookie_value: &str, submitted: &str) -> bool {
    let expected = form_token(key, cookie_value);
    expected.as_bytes().ct_eq(submitted.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_for_this_cookie_verifies() {
        let key = SecretKey::random();
        let token = form_token(&key, "cookie-a");
        assert!(verify(&key, "cookie-a", &token));
        assert!(!verify(&key, "cookie-b", &token));
        assert!(!verify(&key, "cookie-a", ""));
        assert!(!verify(&SecretKey::random(), "cookie-a", &token));
    }
}
