//! Passkeys below HTTP: the rows kept, a stored passkey for tests that need one without a
//! browser, and the service's sign-in check, which has no page of its own yet (the second
//! step of a sign-in calls it).

use dialtone::clock::Clock;
use dialtone::services::passkeys::{PasskeyRefusal, SignInStartError};
use dialtone::services::Client;
use dialtone::store::{NewPasskey, PasskeyRecord};

use super::TestApp;

pub type StoredPasskey = PasskeyRecord;

impl TestApp {
    /// The user's stored passkeys, oldest first.
    pub async fn passkeys_of(&self, username: &str) -> Vec<StoredPasskey> {
        let user = self.stored_user(username).await.expect("the user exists");
        self.store().passkeys_of(user.id).await.unwrap()
    }

    /// Stores a passkey row named `name` for `username` as adding one would (with a
    /// made-up credential that no authenticator holds); its id.
    pub async fn add_stored_passkey(&self, username: &str, name: &str) -> i64 {
        let user = self.stored_user(username).await.expect("the user exists");
        let credential = dialtone::auth::token::random_token();
        self.store()
            .insert_passkey(
                &NewPasskey {
                    user_id: user.id,
                    credential_id: &credential,
                    user_handle: "00000000-0000-4000-8000-000000000000",
                    name,
                    passkey: "{}",
                },
                None,
                self.clock.now(),
            )
            .await
            .unwrap()
            .0
    }

    /// Starts a sign-in with a passkey for `username`, as the second step of a sign-in
    /// would: the options for `navigator.credentials.get()`, or why not.
    pub async fn passkey_sign_in_challenge(&self, username: &str) -> Result<String, String> {
        let user = self.stored_user(username).await.expect("the user exists");
        match self.services().passkeys.start_authentication(user.id).await {
            Ok(options) => Ok(options),
            Err(SignInStartError::NoPasskey) => Err("no passkey".to_owned()),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    /// Checks a browser's answer to the pending sign-in challenge of `username`.
    pub async fn finish_passkey_sign_in(
        &self,
        username: &str,
        response: &str,
    ) -> Result<(), PasskeyRefusal> {
        let user = self.stored_user(username).await.expect("the user exists");
        self.services()
            .passkeys
            .finish_authentication(user.id, response, Client::default())
            .await
            .unwrap()
    }
}
