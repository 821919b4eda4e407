//! The PBX link: what the SIP server asks of Dialtone and what Dialtone tells it.
//!
//! - The credential lookup: a tenant's extension → `HA1` digests of its SIP secret, for a
//!   SIP server holding a PBX token. Answered from the store's in-memory copy when fresh:
//!   no hashing pool, no database round trip.
//! - PBX tokens: made (printed once, kept as a SHA-256), listed, revoked; audited.
//! - The notifier: when a secret changes or stops being valid, a notice queued with the
//!   change is delivered to Kamailio's JSON-RPC (`htable.delete` of the cached HA1 and
//!   `ul.rm` of the registrations), with a short timeout and retries, never in a page's way.
//! - Registered devices: `ul.lookup` of an address of record, for the Phone tab and the
//!   admin's user page, with a short timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::Md5;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{self, Actor, Event, EventKind};
use crate::auth::keyring::Keyring;
use crate::auth::token::{looks_like_token, random_token, token_hash};
use crate::clock::{SharedClock, Timestamp};
use crate::domain::Extension;
use crate::services::device_secrets::{
    generate_sip_secret, open_sip_secret_with, seal_sip_secret_with,
};
use crate::services::Unexpected;
use crate::store::{PbxNotice, PbxTokenRecord, Store, StoreError, UserWithoutSecret};

/// How long the list of valid PBX tokens answers before it is read again (a token revoked
/// on another node, or by the CLI, stops working within this).
pub const TOKEN_FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a JSON-RPC call to Kamailio may take; a page or the notifier never waits longer.
pub const RPC_TIMEOUT: Duration = Duration::from_millis(1500);
/// The longest wait between two attempts at a notice.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a taken notice is left alone by other nodes.
const LEASE: Duration = Duration::from_secs(30);
/// How often the notifier looks for due notices.
const POLL: Duration = Duration::from_millis(200);
/// The htable of Kamailio's HA1 cache and the usrloc table of registrations (the shipped
/// configuration's names).
const HA1_HTABLE: &str = "ha1";
const LOCATION_TABLE: &str = "location";

/// The address of record of an extension, `EXT@DOMAIN`: the key of Kamailio's HA1 cache
/// and registrations.
pub fn aor(extension: &Extension, domain: &str) -> String {
    format!("{extension}@{}", domain.to_ascii_lowercase())
}

/// What the SIP server gets for one extension. The clear secret never leaves Dialtone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SipCredential {
    pub user: String,
    pub domain: String,
    pub ha1: String,
    pub ha1_sha256: String,
}

impl SipCredential {
    fn new(user: &str, domain: &str, secret: &str) -> SipCredential {
        let material = format!("{user}:{domain}:{secret}");
        SipCredential {
            user: user.to_owned(),
            domain: domain.to_owned(),
            ha1: hex::encode(Md5::digest(material.as_bytes())),
            ha1_sha256: hex::encode(Sha256::digest(material.as_bytes())),
        }
    }
}

/// What the credential lookup found.
#[derive(Debug, Clone)]
pub enum CredentialLookup {
    Found(SipCredential),
    /// No such extension at that SIP domain.
    Missing,
    /// The extension's tenant is suspended: its phones may not register.
    Suspended,
}

/// A phone registered for an extension, as Kamailio knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub user_agent: String,
    /// Where the phone is reached (the source address Kamailio saw, else its contact).
    pub address: String,
    /// Seconds until the registration runs out unless renewed.
    pub expires_in: i64,
}

/// Why the registered devices cannot be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DevicesUnavailable {
    #[error("the phone system is not connected to the portal")]
    NotConnected,
    #[error("the phone system did not answer")]
    Unreachable,
}

#[derive(Debug, thiserror::Error)]
pub enum PbxTokenError {
    #[error("a PBX token named {0} already exists")]
    Exists(String),
    #[error("a PBX token name is 1 to 64 letters, digits, '.', '-' or '_'")]
    BadName,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[derive(Default)]
struct TokenCache {
    hashes: Vec<[u8; 32]>,
    read_at: Option<Timestamp>,
}

struct Inner {
    store: Store,
    keyring: Keyring,
    clock: SharedClock,
    tokens: Mutex<TokenCache>,
    rpc: Option<Rpc>,
}

/// The PBX link service; cheap to clone.
#[derive(Clone)]
pub struct PbxLink {
    inner: Arc<Inner>,
}

impl PbxLink {
    pub fn new(
        store: Store,
        keyring: Keyring,
        clock: SharedClock,
        kamailio_rpc: Option<url::Url>,
    ) -> anyhow::Result<PbxLink> {
        let rpc = kamailio_rpc.map(Rpc::new).transpose()?;
        Ok(PbxLink {
            inner: Arc::new(Inner {
                store,
                keyring,
                clock,
                tokens: Mutex::default(),
                rpc,
            }),
        })
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    // ---- the credential lookup -------------------------------------------------------

    /// Whether `token` is a valid PBX token. Its hash is compared with every valid hash in
    /// constant time; the list is read from the database at most every [`TOKEN_FRESH_FOR`].
    pub async fn token_valid(&self, token: &str) -> Result<bool, Unexpected> {
        if !looks_like_token(token) {
            return Ok(false);
        }
        let presented = token_hash(token);
        let now = self.now();
        let cached = {
            let cache = self.lock_tokens();
            match cache.read_at {
                Some(at) if at <= now && now < at.plus(TOKEN_FRESH_FOR) => {
                    Some(matches(&cache.hashes, &presented))
                }
                _ => None,
            }
        };
        if let Some(valid) = cached {
            return Ok(valid);
        }
        let hashes: Vec<[u8; 32]> = self
            .inner
            .store
            .pbx_token_hashes()
            .await?
            .into_iter()
            .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .collect();
        let valid = matches(&hashes, &presented);
        *self.lock_tokens() = TokenCache {
            hashes,
            read_at: Some(now),
        };
        Ok(valid)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        // The cache holds no invariant a panicking holder could break halfway.
        self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget_tokens(&self) {
        *self.lock_tokens() = TokenCache::default();
    }

    /// The HA1 digests of `extension` in the tenant whose SIP domain is `domain`.
    pub async fn sip_credential(
        &self,
        extension: &Extension,
        domain: &str,
    ) -> Result<CredentialLookup, Unexpected> {
        let Some(row) = self
            .inner
            .store
            .sip_credential(domain, extension, self.now())
            .await?
        else {
            return Ok(CredentialLookup::Missing);
        };
        if row.suspended {
            return Ok(CredentialLookup::Suspended);
        }
        let secret = open_sip_secret_with(
            &self.inner.keyring,
            row.tenant_id,
            &row.extension,
            &row.sealed_secret,
        )
        .ok_or_else(|| {
            Unexpected::from(anyhow::anyhow!(
                "a stored SIP secret does not open with the data key and its row"
            ))
        })?;
        Ok(CredentialLookup::Found(SipCredential::new(
            &row.extension,
            &row.domain,
            &secret,
        )))
    }

    /// Gives every user made before SIP secrets existed a secret, so every extension can
    /// register. Run at start-up; returns how many users got one.
    pub async fn backfill_sip_secrets(&self) -> Result<u64, Unexpected> {
        let store = &self.inner.store;
        let mut made = 0;
        let mut after = 0;
        loop {
            let batch = store.walk_users::<UserWithoutSecret>(after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = last.user_id.0;
            for u in &batch {
                let sealed = seal_sip_secret_with(
                    &self.inner.keyring,
                    u.tenant_id,
                    &u.extension,
                    &generate_sip_secret(),
                );
                store.set_sip_secret_if_missing(u.user_id, &sealed).await?;
                made += 1;
            }
        }
        Ok(made)
    }

    // ---- PBX tokens --------------------------------------------------------------------

    /// Makes a token named `name` and returns it: the only time it is ever visible.
    pub async fn add_token(&self, name: &str, actor: &Actor) -> Result<String, PbxTokenError> {
        let valid_name = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid_name {
            return Err(PbxTokenError::BadName);
        }
        let token = random_token();
        match self
            .inner
            .store
            .insert_pbx_token(name, &token_hash(&token), self.now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(PbxTokenError::Exists(name.to_owned())),
            Err(e) => return Err(Unexpected::from(e).into()),
        }
        self.forget_tokens();
        self.audit(EventKind::PbxTokenAdded, actor, name).await?;
        Ok(token)
    }

    pub async fn tokens(&self) -> Result<Vec<PbxTokenRecord>, Unexpected> {
        Ok(self.inner.store.pbx_tokens().await?)
    }

    /// Revokes the token named `name`; false when there is none.
    pub async fn revoke_token(&self, name: &str, actor: &Actor) -> Result<bool, Unexpected> {
        let gone = self.inner.store.delete_pbx_token(name).await?;
        self.forget_tokens();
        if gone {
            self.audit(EventKind::PbxTokenRevoked, actor, name).await?;
        }
        Ok(gone)
    }

    async fn audit(&self, kind: EventKind, actor: &Actor, name: &str) -> Result<(), Unexpected> {
        audit::record(
            &self.inner.store,
            self.now(),
            Event {
                detail: Some(name),
                ..Event::by(kind, actor.name(), actor.addr())
            },
        )
        .await?;
        Ok(())
    }

    // ---- registered devices ------------------------------------------------------------

    /// The phones registered for `extension` at `domain`, as Kamailio knows them.
    pub async fn registered_devices(
        &self,
        extension: &Extension,
        domain: &str,
    ) -> Result<Vec<Device>, DevicesUnavailable> {
        let rpc = self
            .inner
            .rpc
            .as_ref()
            .ok_or(DevicesUnavailable::NotConnected)?;
        match rpc
            .call("ul.lookup", json!([LOCATION_TABLE, aor(extension, domain)]))
            .await
        {
            Ok(result) => Ok(devices_in(&result)),
            Err(RpcError::NotFound) => Ok(Vec::new()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read registered devices from Kamailio");
                Err(DevicesUnavailable::Unreachable)
            }
        }
    }

    // ---- the notifier ------------------------------------------------------------------

    /// Delivers queued notices until dropped.
    pub async fn run_notifier(self) {
        loop {
            match self.deliver_due().await {
                Ok(0) => tokio::time::sleep(POLL).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the PBX notice queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Delivers the notices due now; returns how many were taken.
    pub async fn deliver_due(&self) -> Result<usize, Unexpected> {
        let store = &self.inner.store;
        let now = self.now();
        let due = store.take_due_pbx_notices(now, LEASE, 50).await?;
        for notice in &due {
            let Some(rpc) = &self.inner.rpc else {
                // No SIP server to tell: nothing holds the old secret.
                store.pbx_notice_done(notice.id).await?;
                continue;
            };
            match forget_on_kamailio(rpc, &notice.aor).await {
                Ok(()) => store.pbx_notice_done(notice.id).await?,
                Err(e) => {
                    let wait = backoff(notice);
                    tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "could not tell Kamailio to forget a SIP credential");
                    store
                        .pbx_notice_failed(notice.id, self.now().plus(wait), &e.to_string())
                        .await?;
                }
            }
        }
        Ok(due.len())
    }
}

fn matches(known: &[[u8; 32]], presented: &[u8]) -> bool {
    // Every hash is compared, so the time taken does not say which one matched.
    known
        .iter()
        .fold(subtle::Choice::from(0), |acc, h| acc | h.ct_eq(presented))
        .into()
}

fn backoff(notice: &PbxNotice) -> Duration {
    let exp = u32::try_from(notice.attempts.clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

async fn forget_on_kamailio(rpc: &Rpc, aor: &str) -> Result<(), RpcError> {
    for (method, table) in [("htable.delete", HA1_HTABLE), ("ul.rm", LOCATION_TABLE)] {
        match rpc.call(method, json!([table, aor])).await {
            // Nothing to forget is as good as forgotten.
            Ok(_) | Err(RpcError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads `ul.lookup`'s answer: `{"AoR": …, "Contacts": [{"Contact": {…}}, …]}`.
fn devices_in(result: &Value) -> Vec<Device> {
    let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    result
        .get("Contacts")
        .and_then(Value::as_array)
        .map(|contacts| {
            contacts
                .iter()
                .filter_map(|c| c.get("Contact"))
                .map(|c| Device {
                    user_agent: text(c, "User-Agent").unwrap_or_default(),
                    address: text(c, "Received")
                        .filter(|r| !r.is_empty() && r != "[not set]")
                        .or_else(|| text(c, "Address"))
                        .unwrap_or_default(),
                    expires_in: c.get("Expires").and_then(Value::as_i64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
enum RpcError {
    #[error("Kamailio JSON-RPC: {0}")]
    Transport(reqwest::Error),
    #[error("Kamailio JSON-RPC answered error {code}: {message}")]
    Failed { code: i64, message: String },
    #[error("Kamailio JSON-RPC answered something unreadable")]
    Unreadable,
    #[error("not found")]
    NotFound,
}

/// Kamailio's JSON-RPC over HTTP (jsonrpcs over xhttp).
struct Rpc {
    client: reqwest::Client,
    url: url::Url,
}

impl Rpc {
    fn new(url: url::Url) -> anyhow::Result<Rpc> {
        let client = reqwest::Client::builder()
            .timeout(RPC_TIMEOUT)
            .connect_timeout(RPC_TIMEOUT)
            .build()?;
        Ok(Rpc { client, url })
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        let answer = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| RpcError::Transport(e.without_url()))?
            .bytes()
            .await
            .map_err(|e| RpcError::Transport(e.without_url()))?;
        let answer: Value = serde_json::from_slice(&answer).map_err(|_| RpcError::Unreadable)?;
        if let Some(error) = answer.get("error") {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            if code == 404 {
                return Err(RpcError::NotFound);
            }
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(RpcError::Failed { code, message });
        }
        answer.get("result").cloned().ok_or(RpcError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_is_the_digest_of_user_realm_and_secret() {
        let c = SipCredential::new("201", "acme.example", "secret");
        // Computed independently (Python's hashlib) from "201:acme.example:secret".
        assert_eq!(c.ha1, "630d9fcaa7cf0d5ee67b600f5dfae5c4");
        assert_eq!(
            c.ha1_sha256,
            "d72282ca3b04f70b426df6b3d5835fb74c83fc563b7291a954e37e5f0b27daff"
        );
    }

    #[test]
    fn an_aor_is_extension_at_lowercase_domain() {
        assert_eq!(
            aor(&Extension::parse("201").unwrap(), "Acme.Example"),
            "201@acme.example"
        );
    }

    #[test]
    fn only_a_known_hash_matches() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert!(matches(&[a, b], &b));
        assert!(!matches(&[a], &b));
        assert!(!matches(&[], &a));
        assert!(!matches(&[a], &a[..31]));
    }

    #[test]
    fn registered_devices_are_read_from_ul_lookup() {
        let answer = json!({"AoR": "201@acme.example", "Contacts": [
            {"Contact": {"Address": "sip:201@192.0.2.7:5060", "Expires": 3590,
                         "User-Agent": "baresip", "Received": "[not set]"}},
            {"Contact": {"Address": "sip:201@10.0.0.2", "Expires": 60,
                         "User-Agent": "Yealink", "Received": "sip:198.51.100.1:5060"}}
        ]});
        let found = devices_in(&answer);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].address, "sip:201@192.0.2.7:5060");
        assert_eq!(found[1].address, "sip:198.51.100.1:5060");
        assert_eq!(found[1].user_agent, "Yealink");
        assert!(devices_in(&json!({})).is_empty());
    }

    #[test]
    fn retries_back_off_to_a_bound() {
        let n = |attempts| PbxNotice {
            id: 1,
            aor: String::new(),
            attempts,
            next_attempt_at: Timestamp(0),
        };
        assert_eq!(backoff(&n(0)), Duration::from_secs(1));
        assert_eq!(backoff(&n(3)), Duration::from_secs(8));
        assert_eq!(backoff(&n(40)), MAX_BACKOFF);
        assert_eq!(backoff(&n(-5)), Duration::from_secs(1));
    }
}
