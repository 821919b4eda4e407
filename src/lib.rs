//! Dialtone: the customer portal account system of a hosted-PBX provider.
//!
//! Map of the crate, one direction only — `web` → services → `store`:
//! - [`config`]: settings from defaults, `dialtone.toml`, `DIALTONE_*` and flags.
//! - [`clock`]: the injected clock every time-based rule reads.
//! - [`domain`]: `Username`, `Extension`, `TenantCode`, `Email`, `NewPassword`, `Pin`,
//!   parsed once at the edge.
//! - [`auth`]: password hashing pool, session tokens, CSRF tokens, the secret key.
//! - [`accounts`]: the services — sign-in, lockout, sessions, passwords, tenants, users.
//! - [`services`]: the PBX link (credential lookup, PBX tokens, notices to Kamailio).
//! - [`audit`]: the security event log.
//! - [`store`]: the one facade over SQLite and PostgreSQL.
//! - [`web`]: router, pages, extractors, middleware.
//! - [`app`]: wires everything into a running server bound to its own listener.
//! - [`cli`]: the `dialtone` command line.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod mail;
pub mod services;
pub mod store;
pub mod web;
