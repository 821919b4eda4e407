//! `dialtone pbx token add NAME | list | revoke NAME`: the tokens a SIP server presents to
//! the internal listener's credential lookup. A token is printed once; only its hash is kept.

use std::sync::Arc;

use clap::Subcommand;

use super::rfc3339;
use crate::app::Portal;
use crate::audit::Actor;
use crate::clock::SystemClock;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub(super) enum PbxCommand {
    /// Manage the tokens SIP servers use on the internal listener.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Make a token for a SIP server; it is printed once.
    Add { name: String },
    /// List the tokens (names and when they were made, never the tokens).
    List,
    /// Revoke a token; the SIP server using it is refused from then on.
    Revoke { name: String },
}

pub(super) async fn run(command: PbxCommand, settings: Settings) -> anyhow::Result<()> {
    let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
    let pbx = &portal.pbx;
    match command {
        PbxCommand::Token(TokenCommand::Add { name }) => {
            let token = pbx.add_token(&name, &Actor::cli()).await?;
            println!("Created PBX token {name}. The token (shown once):");
            println!("{token}");
        }
        PbxCommand::Token(TokenCommand::List) => {
            let tokens = pbx.tokens().await?;
            if tokens.is_empty() {
                println!("No PBX tokens.");
            }
            for t in tokens {
                println!("{}\tcreated {}", t.name, rfc3339(t.created_at.0));
            }
        }
        PbxCommand::Token(TokenCommand::Revoke { name }) => {
            if !pbx.revoke_token(&name, &Actor::cli()).await? {
                anyhow::bail!("there is no PBX token named {name}");
            }
            println!("Revoked PBX token {name}.");
        }
    }
    Ok(())
}
