//! Mail: composing messages (text and HTML, from templates), sealing their bodies for the
//! outbox, and delivering them with a worker through the configured transport.

pub mod compose;
pub mod transport;
pub mod worker;

use std::sync::Arc;

use url::Url;

use crate::auth::key::SecretKey;
use crate::auth::seal;
use crate::config::Settings;
use crate::store::{NewMail, OutboxMessage, TenantId, UserId};

pub use compose::{LinkLine, UsernameLine};

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
    key: Arc<SecretKey>,
    provider: String,
    public_url: Url,
}

impl Outbox {
    pub fn new(key: Arc<SecretKey>, settings: &Settings) -> Outbox {
        Outbox {
            key,
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
            body_text: seal::seal(&self.key, SEAL_PURPOSE, &aad, message.text.as_bytes()),
            body_html: seal::seal(&self.key, SEAL_PURPOSE, &aad, message.html.as_bytes()),
        }
    }

    /// Opens a claimed message's bodies.
    pub fn open(&self, m: &OutboxMessage) -> Result<(String, String), seal::SealError> {
        let aad = aad(&m.kind, &m.recipient);
        let text = seal::open(&self.key, SEAL_PURPOSE, &aad, &m.body_text)?;
        let html = seal::open(&self.key, SEAL_PURPOSE, &aad, &m.body_html)?;
        Ok((
            String::from_utf8_lossy(&text).into_owned(),
            String::from_utf8_lossy(&html).into_owned(),
        ))
    }
}

/// Binds a sealed body to its kind and recipient, so it cannot be re-addressed in the table.
fn aad(kind: &str, recipient: &str) -> Vec<u8> {
    format!("{kind}\n{recipient}").into_bytes()
}
