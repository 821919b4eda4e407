//! The `dialtone` command line: `serve`, `demo`, `tenant add`, `user add`,
//! `user unlock`, `operator add`, `backup`. Failures print one line on stderr and exit non-zero.

mod api;
mod pbx;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::app::{shutdown_signal, Application, Portal};
use crate::audit::Actor;
use crate::clock::SystemClock;
use crate::config::{Layers, Settings};
use crate::domain::{
    DisplayName, Email, NewPassword, OperatorName, PasswordContext, Role, SipDomain, TenantCode,
    Username,
};

#[derive(Debug, Parser)]
#[command(
    name = "dialtone",
    version,
    about = "The customer portal of a hosted-PBX provider"
)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

/// Flags that override `dialtone.toml` and `DIALTONE_*`.
#[derive(Debug, Args)]
struct Overrides {
    /// Configuration file (default: ./dialtone.toml when it exists).
    #[arg(long, global = true, env = "DIALTONE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: SQLite database, secret key, mail files.
    #[arg(long, global = true)]
    data_dir: Option<String>,
    /// sqlite://… or postgres://…
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Address to listen on, like 127.0.0.1:8080.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// The address users reach the portal at; links in mail use it.
    #[arg(long, global = true)]
    public_url: Option<String>,
    /// file, log or smtp://user:pass@host:port
    #[arg(long, global = true)]
    mail: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the portal.
    Serve,
    /// Run the portal with a demo tenant, admin and user, printing how to sign in.
    Demo,
    /// Manage tenants (customer companies).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage portal users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the provider's operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Manage the data key that seals SIP secrets, PINs and queued mail.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The phone system's link: PBX tokens for the credential lookup.
    #[command(subcommand)]
    Pbx(pbx::PbxCommand),
    /// Write a consistent copy of the SQLite database (safe while serving) and check it.
    Backup {
        /// The new file to write; it must not exist yet.
        path: PathBuf,
    },
    /// The JSON API's provider tokens.
    #[command(subcommand, name = "api-token")]
    ApiToken(api::ApiTokenCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a new current key and re-encrypt everything under it (safe while serving).
    Rotate,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Add {
        /// Tenant code (Client ID): 2–32 of a-z, 0-9 and '-', starting with a letter.
        code: String,
        #[arg(long)]
        name: String,
        /// The domain phones register to (default: derived from the code and public URL).
        #[arg(long)]
        sip_domain: Option<String>,
    },
    /// Suspend a tenant: no sign-in, sessions ended, phones stop registering; nothing deleted.
    Suspend { code: String },
    /// Put a suspended tenant back in service.
    Resume { code: String },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; without --password-stdin a temporary password is printed once.
    Add {
        /// extension-tenantcode, like 201-wickedsprockets
        username: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from standard input instead of generating a temporary one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Reset a user's password: a temporary password printed once, or a link by email.
    ResetPassword {
        username: String,
        /// Mail a reset link to the email on file instead.
        #[arg(long)]
        link: bool,
    },
    /// Clear a user's sign-in lockout.
    Unlock { username: String },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Create an operator; without --password-stdin a password is generated and printed once.
    Add {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Runs the command line and turns any failure into one line on stderr.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("dialtone: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused: help and the version as clap prints them; anything else
/// (a missing or unknown argument, a bad value) as one line naming it, exit status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    let said = said.join(" ");
    eprintln!(
        "dialtone: {} (see dialtone --help)",
        said.trim_start_matches("error: ")
    );
    ExitCode::from(2)
}

fn load_settings(o: &Overrides) -> anyhow::Result<Settings> {
    let mut layers = Layers::default();
    match &o.config {
        Some(path) => layers.add_toml(path)?,
        None => {
            let default = PathBuf::from("dialtone.toml");
            if default.exists() {
                layers.add_toml(&default)?;
            }
        }
    }
    layers.add_env(std::env::vars())?;
    for (key, value) in [
        ("data_dir", &o.data_dir),
        ("database_url", &o.database_url),
        ("listen", &o.listen),
        ("public_url", &o.public_url),
        ("mail", &o.mail),
    ] {
        if let Some(v) = value {
            layers.set(key, v.clone());
        }
    }
    Ok(layers.resolve()?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = load_settings(&cli.overrides)?;
    let serving = matches!(cli.command, Command::Serve | Command::Demo);
    crate::telemetry::init_logging(
        if serving { &settings.log } else { "warn" },
        settings.log_format,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(dispatch(cli.command, settings))
}

async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings, false).await,
        Command::Demo => serve(settings, true).await,
        Command::Tenant(TenantCommand::Add {
            code,
            name,
            sip_domain,
        }) => {
            let code = TenantCode::parse(&code)?;
            let name = DisplayName::parse(&name)?;
            let sip_domain = sip_domain.as_deref().map(SipDomain::parse).transpose()?;
            let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
            portal
                .services
                .provisioning
                .create_tenant(&code, &name, sip_domain.as_ref(), &Actor::cli())
                .await?;
            println!("Created tenant {code} ({name}).");
            Ok(())
        }
        Command::User(UserCommand::Add {
            username,
            name,
            email,
            role,
            password_stdin,
        }) => {
            let username = Username::parse(&username)?;
            let name = DisplayName::parse(&name)?;
            let email = email.as_deref().map(Email::parse).transpose()?;
            let role = Role::parse(&role)?;
            let password = if password_stdin {
                Some(password_from_stdin(PasswordContext {
                    username: Some(&username),
                    ..PasswordContext::default()
                })?)
            } else {
                None
            };
            let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
            let (_, temporary) = portal
                .services
                .provisioning
                .create_user(
                    &username,
                    &name,
                    email.as_ref(),
                    role,
                    password,
                    &Actor::cli(),
                )
                .await?;
            println!("Created {} {username} ({name}).", role.as_str());
            if let Some(p) = temporary {
                println!("Temporary password (shown once, valid 72 hours, must be changed at first sign-in): {}", p.expose());
            }
            Ok(())
        }
        Command::User(UserCommand::ResetPassword { username, link }) => {
            let username = Username::parse(&username)?;
            let cli = Actor::cli();
            let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
            let reset = portal
                .services
                .provisioning
                .reset_password(&username, link, &cli);
            match reset.await? {
                Some(p) => println!(
                    "Temporary password for {username} (shown once, valid 72 hours, must be changed at next sign-in): {}",
                    p.expose()
                ),
                None => println!("A reset link for {username} is queued to the email on file; a running portal delivers it."),
            }
            println!(
                "Every session of {username} was ended (a running portal lets go of them within {} seconds).",
                crate::store::SESSION_CACHE_FRESH_FOR.as_secs()
            );
            Ok(())
        }
        Command::User(UserCommand::Unlock { username }) => {
            let username = Username::parse(&username)?;
            let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
            let was_locked = portal
                .services
                .provisioning
                .unlock(&username, &Actor::cli())
                .await?;
            if was_locked {
                println!("Unlocked {username}.");
            } else {
                println!("{username} was not locked; its failed-attempt count is cleared.");
            }
            Ok(())
        }
        Command::Pbx(command) => pbx::run(command, settings).await,
        Command::Backup { path } => backup(&settings, &path).await,
        Command::ApiToken(command) => api::run(command, settings).await,
        Command::Tenant(TenantCommand::Suspend { code }) => {
            api::suspend(&code, true, settings).await
        }
        Command::Tenant(TenantCommand::Resume { code }) => {
            api::suspend(&code, false, settings).await
        }
        Command::Key(KeyCommand::Rotate) => {
            let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
            let (id, changed) = crate::app::rotate_key(&portal).await?;
            println!("Key {id} is now current; {changed} sealed value(s) re-encrypted under it.");
            Ok(())
        }
        Command::Operator(OperatorCommand::Add {
            name,
            password_stdin,
        }) => {
            let name = OperatorName::parse(&name)?;
            let (password, generated) = if password_stdin {
                let context = PasswordContext {
                    operator: Some(&name),
                    ..PasswordContext::default()
                };
                (password_from_stdin(context)?, false)
            } else {
                (
                    crate::services::passwords::generate_operator_password(),
                    true,
                )
            };
            let portal = Portal::open(settings, Arc::new(SystemClock)).await?;
            portal
                .services
                .provisioning
                .create_operator(&name, &password, &Actor::cli())
                .await?;
            println!("Created operator {name}.");
            if generated {
                println!("Password (shown once): {}", password.expose());
            }
            Ok(())
        }
    }
}

/// Reads one password from standard input (a trailing newline is not part of it) and
/// checks it against the policy.
fn password_from_stdin(context: PasswordContext<'_>) -> anyhow::Result<NewPassword> {
    let mut raw = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut raw)
        .context("cannot read the password from standard input")?;
    let raw = raw.strip_suffix('\n').unwrap_or(&raw);
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    match NewPassword::parse(raw, &context) {
        Ok(p) => Ok(p),
        Err(problems) => {
            let reasons: Vec<&str> = problems.iter().map(|p| p.message()).collect();
            bail!("the password is not allowed: {}", reasons.join(" "))
        }
    }
}

/// `dialtone backup PATH`: the copy, its check, and what else a restore needs.
async fn backup(settings: &Settings, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(missing) = crate::store::missing_sqlite_database(&settings.database_url) {
        return Err(crate::store::BackupError::NoDatabase(missing).into());
    }
    let store = crate::store::Store::connect(&settings.database_url)
        .await
        .context("cannot open the database")?;
    let written = store.backup_to(path).await;
    store.close().await;
    let bytes = written?;
    println!(
        "Wrote {} ({bytes} bytes); its integrity check passed.",
        path.display()
    );
    println!(
        "Keep the data key file {} with it: the copy's SIP secrets, PINs and queued mail open only with that key.",
        settings.secret_key_file.display()
    );
    Ok(())
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    let url = app.portal().settings.public_url.clone();
    if demo {
        crate::services::demo::ensure(&app.portal().services, &url).await?;
    } else if app.portal().settings.mail == crate::config::MailSetting::File {
        tracing::warn!(
            dir = %app.portal().settings.mail_dir().display(),
            "mail is written to files (DIALTONE_MAIL=file), not sent: fine for a demo, but set DIALTONE_MAIL to an smtp:// URL for real users"
        );
    }
    tracing::info!(address = %app.local_addr(), public_url = %url, "Dialtone is listening");
    if let Some(internal) = app.internal_addr() {
        tracing::info!(address = %internal, "the internal listener (PBX credential lookup) is listening");
    }
    app.run_until(shutdown_signal()).await
}

/// A Unix time as RFC 3339 (`2027-01-15T08:00:00Z`), for the listings the commands print.
fn rfc3339(unix: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
