//! WebDriver's virtual authenticator (the W3C WebAuthn WebDriver extension): a passkey
//! device inside the browser, so `navigator.credentials.create()` and `get()` succeed
//! without a person touching anything. Used by the passkey tests, and by any test that
//! signs in with a passkey.

use serde_json::{json, Value};

use super::Chrome;

/// A virtual authenticator added to a browser window.
pub struct VirtualAuthenticator {
    pub id: String,
}

impl Chrome {
    /// Adds a platform passkey authenticator (CTAP2, internal transport, resident keys,
    /// user verification that always succeeds) to this window.
    pub async fn add_virtual_authenticator(&self) -> VirtualAuthenticator {
        let value = self
            .webauthn_command(
                reqwest::Method::POST,
                "authenticator",
                Some(json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "isUserConsenting": true,
                })),
            )
            .await;
        let id = value
            .as_str()
            .unwrap_or_else(|| panic!("an authenticator id, got {value}"))
            .to_owned();
        VirtualAuthenticator { id }
    }

    /// The credentials the authenticator holds (each with `credentialId`, `rpId`,
    /// `signCount`, …).
    pub async fn authenticator_credentials(&self, a: &VirtualAuthenticator) -> Vec<Value> {
        let value = self
            .webauthn_command(
                reqwest::Method::GET,
                &format!("authenticator/{}/credentials", a.id),
                None,
            )
            .await;
        value.as_array().cloned().unwrap_or_default()
    }

    /// Sends `/session/{id}/webauthn/{path}` to chromedriver; its `value`.
    async fn webauthn_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let url = format!(
            "http://127.0.0.1:{}/session/{session}/webauthn/{path}",
            self.driver.port
        );
        let mut request = reqwest::Client::new().request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let r = request.send().await.unwrap();
        let ok = r.status().is_success();
        let text = r.text().await.unwrap();
        assert!(ok, "webauthn/{path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["value"].clone()
    }
}
