//! `dialtone api-token add NAME | list | revoke NAME` (provider tokens of the JSON API,
//! printed once, kept as hashes) and `dialtone tenant suspend|resume CODE`.

use std::sync::Arc;

use clap::Subcommand;

use super::rfc3339;
use crate::app::Portal;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::TenantCode;
use crate::services::tenants::ProviderActor;

#[derive(Debug, Subcommand)]
pub(super) enum ApiTokenCommand {
    /// Make a provider token (reaches every tenant); it is printed once.
    Add { name: String },
    /// List the provider tokens (names, when made and last used; never the tokens).
    List,
    /// Revoke a provider token; it is refused from then on.
    Revoke { name: String },
}

pub(super) async fn run(command: ApiTokenCommand, settings: Settings) -> anyhow::Result<()> {
    let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
    let tokens = &portal.services.api_tokens;
    let by = ProviderActor::cli();
    match command {
        ApiTokenCommand::Add { name } => {
            let token = tokens.add_provider_token(&by, &name).await?;
            println!("Created API token {name}. The token (shown once):");
            println!("{token}");
        }
        ApiTokenCommand::List => {
            let list = tokens.provider_tokens().await?;
            if list.is_empty() {
                println!("No API tokens.");
            }
            for t in list {
                let used = t.last_used_at.map_or_else(
                    || "never used".to_owned(),
                    |at| format!("last used {}", rfc3339(at.0)),
                );
                println!("{}\tcreated {}\t{used}", t.name, rfc3339(t.created_at.0));
            }
        }
        ApiTokenCommand::Revoke { name } => {
            if !tokens.revoke_provider_token(&by, &name).await? {
                anyhow::bail!("there is no API token named {name}");
            }
            println!("Revoked API token {name}.");
        }
    }
    Ok(())
}

/// `dialtone tenant suspend CODE` (`resume` with `suspend` false).
pub(super) async fn suspend(code: &str, suspend: bool, settings: Settings) -> anyhow::Result<()> {
    let code = TenantCode::parse(code)?;
    let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
    let tenants = &portal.services.tenants;
    let by = ProviderActor::cli();
    if suspend {
        tenants.suspend(&by, &code).await?;
        println!(
            "Suspended tenant {code}: its users cannot sign in and its phones cannot register."
        );
    } else {
        tenants.resume(&by, &code).await?;
        println!("Resumed tenant {code}.");
    }
    Ok(())
}
