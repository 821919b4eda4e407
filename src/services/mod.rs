//! The services: every rule of DESIGN.md, one service per concern over one shared
//! [`Context`]. No HTTP here: the web layer parses, calls one service, and renders what
//! it answers.
//!
//! Where each rule lives:
//! - [`guard`]: every counter and limit — the per-username lockout, the per-address
//!   slow-down, operator lockout, caller-verification tries, the recovery mail limits,
//!   wrong-email guesses on a reset link. One "is it locked", one unlock, one place that
//!   counts a failure.
//! - [`sign_in`]: signing in (tenant users), the dummy hash, temporary passwords at sign-in.
//! - [`sessions`]: the sliding idle timer, the absolute cap, sign-out.
//! - [`passwords`]: changing a password, choosing one after a temporary one, setting a
//!   temporary one for someone.
//! - [`recovery`]: reset links, the usernames reminder, using a link once.
//! - [`phone`]: the Phone tab, SIP secrets, voicemail PINs; [`device_secrets`] beside it
//!   seals them and rotates the data key.
//! - [`security_questions`]: an admin's support question.
//! - [`tenant_admin`]: everything a tenant admin may do to their own tenant's users.
//! - [`operator_console`]: everything a provider's operator may do.
//! - [`softphone`]: the Phone tab's softphone and its short-lived SIP credentials.
//! - [`provisioning`]: creating tenants, users and operators (CLI, demo, consoles);
//!   [`bulk`] seeds many users for the benchmark.
//! - [`tenants`]: a tenant's lifecycle for the provider (API and CLI): create with its
//!   first admin, rename, new SIP domain, suspend, resume, delete.
//! - [`two_step`]: two-step sign-in — authenticator apps (TOTP), recovery codes, the
//!   pending second step of a sign-in, and who must have a second factor (its
//!   `has_second_factor` is the one definition of having one).
//! - [`api_tokens`]: the JSON API's tokens (provider and tenant), who a token may reach,
//!   its rate limit, and the replay store behind `Idempotency-Key`.
//! - [`levels`]: the load the metrics scrape samples (hashing pool, outbox).
//! - [`passkeys`]: a user's passkeys (WebAuthn): adding, naming, removing, and the
//!   challenge and check of a sign-in with one.

pub mod api_tokens;
pub mod bulk;
pub mod demo;
pub mod device_secrets;
pub mod guard;
pub mod levels;
pub mod operator_console;
pub mod passkeys;
pub mod passwords;
pub mod pbx;
pub mod phone;
pub mod provisioning;
pub mod recovery;
pub mod security_questions;
pub mod sessions;
pub mod sign_in;
pub mod softphone;
pub mod tenant_admin;
pub mod tenants;
pub mod trusted_devices;
pub mod two_step;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::audit::{self, Actor, Event, EventKind};
use crate::auth::keyring::Keyring;
use crate::auth::Hasher;
use crate::clock::{SharedClock, Timestamp};
use crate::config::Settings;
use crate::mail::Outbox;
use crate::store::{Store, StoreError, UserRecord};

pub use guard::Refusal;
pub use sessions::SessionUser;

/// An unexpected failure (database down, hashing thread died, a stored value that does
/// not open); shown to users as a 500 and logged once, by the web layer.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Unexpected(#[from] anyhow::Error);

/// A failure that passes by itself, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// The database is unreachable just now (see [`StoreError::is_unavailable`]).
    DatabaseUnavailable,
    /// The hashing queue is at its bound just now (see [`crate::auth::hashing::Busy`]).
    Busy,
}

impl Unexpected {
    /// Whether the cause passes by itself (see [`Transient`]): worth a "try again
    /// shortly", not a fault report.
    pub fn transient(&self) -> Option<Transient> {
        use crate::auth::hashing::{Busy, HashError};
        self.0.chain().find_map(|c| {
            if c.downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_unavailable)
            {
                Some(Transient::DatabaseUnavailable)
            } else if c.is::<Busy>()
                || matches!(c.downcast_ref::<HashError>(), Some(HashError::Busy(_)))
            {
                Some(Transient::Busy)
            } else {
                None
            }
        })
    }

    /// A broken invariant, named for the log.
    pub(crate) fn invariant(what: &'static str) -> Unexpected {
        Unexpected(anyhow::Error::msg(what))
    }
}

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

impl From<askama::Error> for Unexpected {
    fn from(e: askama::Error) -> Self {
        Unexpected(anyhow::Error::new(e).context("mail template"))
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
    /// JSON API requests per token per minute.
    pub api_requests_per_minute: u32,
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
            api_requests_per_minute: s.api_rate_limit,
        }
    }
}

/// Where a request came from, for throttling and the audit log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client {
    pub addr: Option<IpAddr>,
    /// What the browser says it is (for "Your sessions").
    pub device: sessions::Device,
}

impl Client {
    fn addr_string(&self) -> Option<String> {
        self.addr.map(|a| a.to_string())
    }

    /// Whom a sign-in waits in line for the hashing pool as: its address (IPv6 by /64,
    /// as the address slow-down groups them), or one shared line for unknown ones.
    fn source(&self) -> crate::auth::admission::Source {
        crate::auth::admission::Source(match self.addr {
            Some(ip) => crate::store::ThrottleKey::address(ip).as_str().to_owned(),
            None => "unknown".to_owned(),
        })
    }
}

/// What every service is built from: the one place the wiring lives.
pub struct Context {
    pub store: Store,
    pub hasher: Hasher,
    pub clock: SharedClock,
    pub policy: Policy,
    /// The public URL's host, for derived SIP domains.
    pub public_host: String,
    /// The public URL: the passkeys' origin (its host is their relying party id).
    pub public_url: url::Url,
    pub outbox: Outbox,
    /// Wakes the mail worker when something was queued.
    pub mail_wake: Arc<Notify>,
    /// Seals device secrets (SIP secrets, PINs).
    pub keyring: Keyring,
    /// The softphone's WebSocket URL and `auth_ephemeral` secret, when configured.
    pub softphone: Option<crate::config::SoftphoneSetting>,
}

impl Context {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn audit(&self, event: Event<'_>) -> Result<(), Unexpected> {
        audit::record(&self.store, self.now(), event).await?;
        Ok(())
    }

    /// Records that `actor` did `kind` to `user`.
    async fn audit_user(
        &self,
        kind: EventKind,
        actor: &Actor,
        user: &UserRecord,
    ) -> Result<(), Unexpected> {
        let subject = user.username().to_string();
        self.audit(Event::on(kind, user.tenant_id, actor, &subject))
            .await
    }

    fn guard(&self) -> guard::Guard<'_> {
        guard::Guard::new(self)
    }
}

/// Every service, built once over one context; handlers and CLI commands take the one
/// they need.
#[derive(Clone)]
pub struct Services {
    pub sign_in: sign_in::SignIn,
    pub sessions: sessions::Sessions,
    pub passwords: passwords::Passwords,
    pub recovery: recovery::Recovery,
    pub phone: phone::Phone,
    pub device_secrets: device_secrets::DeviceSecrets,
    pub security_questions: security_questions::SecurityQuestions,
    pub tenant_admin: tenant_admin::TenantAdmin,
    pub operator_console: operator_console::OperatorConsole,
    pub provisioning: provisioning::Provisioning,
    pub bulk: bulk::BulkLoad,
    pub softphone: softphone::Softphone,
    pub api_tokens: api_tokens::ApiTokens,
    pub tenants: tenants::Tenants,
    pub two_step: two_step::TwoStep,
    pub passkeys: passkeys::Passkeys,
    pub levels: levels::LoadLevels,
}

impl Services {
    pub fn new(ctx: Context) -> Services {
        let ctx = Arc::new(ctx);
        Services {
            sign_in: sign_in::SignIn::new(ctx.clone()),
            sessions: sessions::Sessions::new(ctx.clone()),
            passwords: passwords::Passwords::new(ctx.clone()),
            recovery: recovery::Recovery::new(ctx.clone()),
            phone: phone::Phone::new(ctx.clone()),
            device_secrets: device_secrets::DeviceSecrets::new(ctx.clone()),
            security_questions: security_questions::SecurityQuestions::new(ctx.clone()),
            tenant_admin: tenant_admin::TenantAdmin::new(ctx.clone()),
            operator_console: operator_console::OperatorConsole::new(ctx.clone()),
            provisioning: provisioning::Provisioning::new(ctx.clone()),
            softphone: softphone::Softphone::new(ctx.clone()),
            api_tokens: api_tokens::ApiTokens::new(ctx.clone()),
            tenants: tenants::Tenants::new(ctx.clone()),
            two_step: two_step::TwoStep::new(ctx.clone()),
            passkeys: passkeys::Passkeys::new(ctx.clone()),
            levels: levels::LoadLevels::new(ctx.clone()),
            bulk: bulk::BulkLoad::new(ctx),
        }
    }
}

/// `From<StoreError>` for a service's error enum: a store failure is its `Unexpected`.
macro_rules! store_error_is_unexpected {
    ($error:ident) => {
        impl From<crate::store::StoreError> for $error {
            fn from(e: crate::store::StoreError) -> Self {
                $error::Unexpected(e.into())
            }
        }
    };
}
pub(crate) use store_error_is_unexpected;

/// Declares a service: a handle over the shared context, built by [`Services::new`].
macro_rules! service {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            ctx: std::sync::Arc<crate::services::Context>,
        }

        impl $name {
            pub(crate) fn new(ctx: std::sync::Arc<crate::services::Context>) -> Self {
                $name { ctx }
            }
        }
    };
}
pub(crate) use service;
