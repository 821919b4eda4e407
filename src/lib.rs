//! Dialtone: the customer portal account system of a hosted-PBX provider.
//!
//! Map of the crate, one direction only — `web` → services → `store`:
//! - [`config`]: settings from defaults, `dialtone.toml`, `DIALTONE_*` and flags.
//! - [`clock`]: the injected clock every time-based rule reads, and how times read.
//! - [`domain`]: `Username`, `Extension`, `TenantCode`, `SipDomain`, `Email`,
//!   `NewPassword`, `Pin`, `TwoStepRequirement`, parsed once at the edge.
//! - [`auth`]: password hashing pool, session tokens, CSRF tokens, the secret key, TOTP.
//! - [`services`]: every rule, one service per concern over one shared context; the
//!   guard owns every limit (see the module's map of where each rule lives).
//!   The PBX link ([`services::pbx`]) answers the SIP server's credential lookups.
//! - [`audit`]: the security event log.
//! - [`store`]: the one facade over SQLite and PostgreSQL, one module per kind of record
//!   (tenants, users, sessions, operators, audit, throttle, outbox, … — its module doc
//!   lists them); `tests/store.rs` checks each one's contract on both databases.
//! - [`web`]: router, pages, extractors, middleware.
//! - [`app`]: wires everything into a running server bound to its own listener.
//! - [`cli`]: the `dialtone` command line.
//! - [`telemetry`]: log format and the Prometheus metrics.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod mail;
pub mod private_files;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod web;
