//! Mail: composing messages (text and HTML, from templates), sealing their bodies for the
//! outbox, and delivering them with a worker through the configured transport.

pub mod compose;
pub mod transport;
pub mod worker;

use url::Url;

use crate::auth::keyring::{key_id, Keyring};
use crate::config::Settings;
use crate::store::{NewMail, OutboxMessage, Store, StoreResult, TenantId, UserId};

pub use compose::{AccountNotice, LinkLine, PasswordWas, UsernameLine};

const SEAL_PURPOSE: &str = "outbox";

/// A message in clear, before it is sealed into the outbox.
#[derive(Debug, Clone)]
pub struct Composed {
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Composes and seals messages for the outbox.
#[derive(Clone)]
pub struct Outbox {
    keys: Keyring,
    provider: String,
    public_url: Url,
}

impl Outbox {
    pub fn new(keys: Keyring, settings: &Settings) -> Outbox {
        Outbox {
            keys,
            provider: settings.provider_name.clone(),
            public_url: settings.public_url.clone(),
        }
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// An absolute URL on the configured public address — never the request's Host.
    pub fn link(&self, path_and_query: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }

    /// Seals `message` for `recipient`.
    pub fn seal(
        &self,
        message: Composed,
        recipient: &str,
        user: Option<UserId>,
        tenant: Option<TenantId>,
    ) -> NewMail {
        let aad = aad(message.kind, recipient);
        NewMail {
            kind: message.kind,
            recipient: recipient.to_owned(),
            user_id: user,
            tenant_id: tenant,
            subject: message.subject,
            body_text: self.keys.seal(SEAL_PURPOSE, &aad, message.text.as_bytes()),
            body_html: self.keys.seal(SEAL_PURPOSE, &aad, message.html.as_bytes()),
        }
    }

    /// Opens a claimed message's bodies.
    pub fn open(
        &self,
        m: &OutboxMessage,
    ) -> Result<(String, String), crate::auth::seal::SealError> {
        let aad = aad(&m.kind, &m.recipient);
        let text = self.keys.open(SEAL_PURPOSE, &aad, &m.body_text)?;
        let html = self.keys.open(SEAL_PURPOSE, &aad, &m.body_html)?;
        Ok((
            String::from_utf8_lossy(&text).into_owned(),
            String::from_utf8_lossy(&html).into_owned(),
        ))
    }

    /// Re-encrypts queued bodies under the current key (key rotation). Returns how many
    /// messages changed and the keys still in use by bodies that could not be changed.
    pub async fn reseal_queued(&self, store: &Store) -> StoreResult<(u64, Vec<u32>)> {
        let current = self.keys.current_id();
        let mut changed = 0;
        let mut in_use = Vec::new();
        for (id, kind, recipient, text, html) in store.queued_bodies().await? {
            if key_id(&text) == Some(current) && key_id(&html) == Some(current) {
                continue;
            }
            let aad = aad(&kind, &recipient);
            match (
                self.keys.open(SEAL_PURPOSE, &aad, &text),
                self.keys.open(SEAL_PURPOSE, &aad, &html),
            ) {
                (Ok(t), Ok(h)) => {
                    let new_text = self.keys.seal(SEAL_PURPOSE, &aad, &t);
                    let new_html = self.keys.seal(SEAL_PURPOSE, &aad, &h);
                    store.reseal_bodies(id, &text, &new_text, &new_html).await?;
                    changed += 1;
                }
                _ => in_use.extend(key_id(&text)),
            }
        }
        Ok((changed, in_use))
    }
}

/// Binds a sealed body to its kind and recipient, so it cannot be re-addressed in the table.
fn aad(kind: &str, recipient: &str) -> Vec<u8> {
    format!("{kind}\n{recipient}").into_bytes()
}
