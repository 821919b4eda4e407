//! Wiring: settings → key, store, hashing pool, services → router bound to its own
//! listener. Port 0 works, so tests start the real server beside themselves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::accounts::{Accounts, Policy};
use crate::auth::key::SecretKey;
use crate::auth::Hasher;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::mail::transport::Transport;
use crate::mail::worker::Worker;
use crate::mail::Outbox;
use crate::store::Store;
use crate::web::{self, AppState, CookieNames};

/// Everything behind the portal except the listener: what the CLI commands use too.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub accounts: Accounts,
    pub key: Arc<SecretKey>,
    pub clock: SharedClock,
    pub outbox: Outbox,
    pub mail_wake: Arc<Notify>,
}

impl Services {
    pub async fn open(settings: Settings, clock: SharedClock) -> anyhow::Result<Services> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let key = SecretKey::load_or_create(&settings.secret_key_file)?;
        let store = Store::connect(&settings.database_url)
            .await
            .context("cannot open the database")?;
        let hasher = Hasher::new(settings.hash_workers);
        let host = settings
            .public_url
            .host_str()
            .unwrap_or("localhost")
            .to_owned();
        let key = Arc::new(key);
        let outbox = Outbox::new(key.clone(), &settings);
        let mail_wake = Arc::new(Notify::new());
        let accounts = Accounts::new(
            store,
            hasher,
            clock.clone(),
            Policy::from_settings(&settings),
            host,
            outbox.clone(),
            mail_wake.clone(),
        );
        Ok(Services {
            settings: Arc::new(settings),
            accounts,
            key,
            clock,
            outbox,
            mail_wake,
        })
    }

    /// The mail worker for this node's configured transport.
    pub fn mail_worker(&self) -> anyhow::Result<Worker> {
        let from: Mailbox = self.settings.mail_from.parse().map_err(|_| {
            anyhow::anyhow!("configuration: mail_from (DIALTONE_MAIL_FROM) is not a mail address")
        })?;
        Ok(Worker {
            store: self.accounts.store().clone(),
            outbox: self.outbox.clone(),
            transport: Transport::from_settings(&self.settings)?,
            from,
            clock: self.clock.clone(),
            poll: self.settings.mail_poll,
            wake: self.mail_wake.clone(),
        })
    }
}

/// The portal, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    services: Services,
    worker: Worker,
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        let listen = settings.listen;
        let services = Services::open(settings, clock).await?;
        let worker = services.mail_worker()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(Application {
            listener,
            services,
            worker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.services.settings.listen)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` completes, then finishes requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = AppState {
            accounts: self.services.accounts.clone(),
            key: self.services.key.clone(),
            cookies: CookieNames::for_settings(&self.services.settings),
            settings: self.services.settings.clone(),
        };
        let janitor = tokio::spawn(sweep_expired_sessions(self.services.clone()));
        let mailer = tokio::spawn(self.worker.run());
        let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        janitor.abort();
        mailer.abort();
        self.services.accounts.store().close().await;
        served.context("server failed")
    }
}

/// Deletes sessions past their limits every few minutes; lookups already refuse them,
/// this only keeps the table small.
async fn sweep_expired_sessions(services: Services) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        let now = services.clock.now();
        let policy = services.accounts.policy();
        if let Err(e) = services
            .accounts
            .store()
            .purge_sessions(
                now.minus(policy.session_idle),
                now.minus(policy.session_max),
            )
            .await
        {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
