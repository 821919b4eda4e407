//! The account services: every rule of DESIGN.md about signing in, sessions, lockout,
//! passwords and provisioning. No HTTP here: the web layer turns outcomes into pages.

pub mod admin;
pub mod demo;
pub mod operators;
mod passwords;
pub mod phone;
mod provisioning;
pub mod recovery;
pub mod security;
mod seed;
mod sessions;
mod signin;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{self, Event};
use crate::auth::keyring::Keyring;
use crate::auth::Hasher;
use crate::clock::{SharedClock, Timestamp};
use crate::config::Settings;
use crate::mail::Outbox;
use crate::store::{Store, StoreError};
use tokio::sync::Notify;

pub use admin::{AdminError, UserDetail, UserFields, PAGE_SIZE};
pub use passwords::{ChangePasswordError, PasswordForm};
pub(crate) use provisioning::valid_sip_domain;
pub use provisioning::{
    generate_operator_password, generate_temporary_password, ProvisionError, TEMPORARY_PASSWORD_TTL,
};
pub use recovery::{Identifier, ResetError, ResetLinkView};
pub use sessions::SessionUser;
pub use signin::{SignInError, SignedIn};

/// An unexpected failure (database down, hashing thread died); shown to users as a 500.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Unexpected(#[from] anyhow::Error);

impl From<StoreError> for Unexpected {
    fn from(e: StoreError) -> Self {
        Unexpected(e.into())
    }
}

impl From<crate::auth::hashing::HashError> for Unexpected {
    fn from(e: crate::auth::hashing::HashError) -> Self {
        Unexpected(e.into())
    }
}

/// The numbers behind the rules, from the settings.
#[derive(Debug, Clone)]
pub struct Policy {
    pub session_idle: Duration,
    pub session_max: Duration,
    /// How often at most the sliding idle timer is written per session.
    pub session_touch_every: Duration,
    pub lockout_attempts: u32,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    pub address_attempts: u32,
    pub address_lock: Duration,
    pub reset_ttl: Duration,
}

impl Policy {
    pub fn from_settings(s: &Settings) -> Policy {
        Policy {
            session_idle: s.session_idle,
            session_max: s.session_max,
            // Once a minute, or more often when the idle time is short, so the slide is
            // never off by more than a tenth of it.
            session_touch_every: Duration::from_secs(60).min(s.session_idle / 10),
            lockout_attempts: s.lockout_attempts,
            lockout_window: s.lockout_window,
            lockout_duration: s.lockout_duration,
            address_attempts: s.address_attempts,
            address_lock: Duration::from_secs(5 * 60),
            reset_ttl: s.reset_ttl,
        }
    }
}

/// Where a request came from, for throttling and the audit log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client {
    pub addr: Option<IpAddr>,
}

impl Client {
    fn addr_string(&self) -> Option<String> {
        self.addr.map(|a| a.to_string())
    }
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Hasher,
    clock: SharedClock,
    policy: Policy,
    public_host: String,
    outbox: Outbox,
    /// Wakes the mail worker when something was queued.
    mail_wake: Arc<Notify>,
    /// Seals device secrets (SIP secrets, PINs).
    keyring: Keyring,
}

/// Everything the services are built from.
pub struct Wiring {
    pub store: Store,
    pub hasher: Hasher,
    pub clock: SharedClock,
    pub policy: Policy,
    pub public_host: String,
    pub outbox: Outbox,
    pub mail_wake: Arc<Notify>,
    pub keyring: Keyring,
}

impl Accounts {
    pub fn new(w: Wiring) -> Self {
        Accounts {
            store: w.store,
            hasher: w.hasher,
            clock: w.clock,
            policy: w.policy,
            public_host: w.public_host,
            outbox: w.outbox,
            mail_wake: w.mail_wake,
            keyring: w.keyring,
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn audit(&self, event: Event<'_>) -> Result<(), Unexpected> {
        audit::record(&self.store, self.now(), event).await?;
        Ok(())
    }
}

/// The throttle key of a username.
fn user_key(username: &str) -> String {
    format!("user:{username}")
}

/// The throttle key of a client address. IPv6 clients are grouped by /64, the block one
/// subscriber usually holds, so hopping between addresses does not escape the limit.
fn addr_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::addr_key;

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_bit_prefix() {
        let a = addr_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = addr_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, addr_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            addr_key("::ffff:192.0.2.7".parse().unwrap()),
            "addr:192.0.2.7"
        );
    }
}
