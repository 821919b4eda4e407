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

use crate::auth::key::SecretKey;
use crate::auth::keyring::Keyring;
use crate::auth::Hasher;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::mail::transport::Transport;
use crate::mail::worker::Worker;
use crate::mail::Outbox;
use crate::services::pbx::PbxLink;
use crate::services::{self, Policy, Services};
use crate::store::Store;
use crate::web::{self, AppState, CookieNames};

/// Everything behind the portal except the listener: what the CLI commands use too. The
/// store and keyring are here for the wiring (workers, key rotation); requests reach them
/// only through [`Services`].
#[derive(Clone)]
pub struct Portal {
    pub settings: Arc<Settings>,
    pub services: Services,
    pub store: Store,
    pub keyring: Keyring,
    pub key: Arc<SecretKey>,
    pub clock: SharedClock,
    pub outbox: Outbox,
    pub mail_wake: Arc<Notify>,
    pub pbx: PbxLink,
    /// The hashing pool, for the metrics' view of its load.
    pub hasher: Hasher,
}

impl Portal {
    pub async fn open(settings: Settings, clock: SharedClock) -> anyhow::Result<Portal> {
        crate::private_files::private_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        // The metrics recorder first, so nothing counted from here on is lost.
        crate::telemetry::metrics_handle();
        let store = Store::connect(&settings.database_url)
            .await
            .context("cannot open the database")?;
        let keyring = open_keyring(&settings, &store).await?;
        let hasher = Hasher::new(settings.hash_workers, settings.signin_queue_wait);
        // Make the dummy hash now, off the request path, so the first unknown-username
        // sign-in takes as long as any other.
        tokio::task::spawn_blocking(crate::auth::hashing::dummy_hash)
            .await
            .context("cannot prepare password hashing")?;
        let host = settings
            .public_url
            .host_str()
            .unwrap_or("localhost")
            .to_owned();
        let key = Arc::new(keyring.signing_key());
        let outbox = Outbox::new(keyring.clone(), &settings);
        let mail_wake = Arc::new(Notify::new());
        let pbx = PbxLink::new(
            store.clone(),
            keyring.clone(),
            clock.clone(),
            settings.kamailio_rpc.clone(),
        )?;
        let backfilled = pbx.backfill_sip_secrets().await?;
        if backfilled > 0 {
            tracing::info!(users = backfilled, "gave users without a SIP secret one");
        }
        let services = Services::new(services::Context {
            store: store.clone(),
            hasher: hasher.clone(),
            clock: clock.clone(),
            policy: Policy::from_settings(&settings),
            public_host: host,
            public_url: settings.public_url.clone(),
            outbox: outbox.clone(),
            mail_wake: mail_wake.clone(),
            keyring: keyring.clone(),
            softphone: settings.softphone.clone(),
        });
        Ok(Portal {
            settings: Arc::new(settings),
            services,
            store,
            keyring,
            key,
            clock,
            outbox,
            mail_wake,
            pbx,
            hasher,
        })
    }

    /// The mail worker for this node's configured transport.
    pub fn mail_worker(&self) -> anyhow::Result<Worker> {
        let from: Mailbox = self.settings.mail_from.parse().map_err(|_| {
            anyhow::anyhow!("configuration: mail_from (DIALTONE_MAIL_FROM) is not a mail address")
        })?;
        Ok(Worker {
            store: self.store.clone(),
            outbox: self.outbox.clone(),
            transport: Transport::from_settings(&self.settings)?,
            from,
            clock: self.clock.clone(),
            poll: self.settings.mail_poll,
            wake: self.mail_wake.clone(),
        })
    }
}

/// Purpose and value of the check sealed under every data key in use.
const KEY_CHECK: &str = "key-check";
const KEY_CHECK_VALUE: &[u8] = b"dialtone data key";

/// Loads the data key file — creating it only for a database that holds no sealed
/// secrets — and proves every key the database relies on is there and right. A missing or
/// wrong key stops start-up; it never silently makes new secrets.
async fn open_keyring(settings: &Settings, store: &Store) -> anyhow::Result<Keyring> {
    let path = &settings.secret_key_file;
    let shown = path.display();
    let checks = store.key_checks().await?;
    let ring = match Keyring::load(path)? {
        Some(ring) => ring,
        None if checks.is_empty() => Keyring::create(path)?,
        None => anyhow::bail!(
            "the data key file {shown} is missing, but this database holds secrets sealed with it; \
             restore the file or point DIALTONE_SECRET_KEY_FILE at it"
        ),
    };
    for (id, sealed) in &checks {
        if ring.open(KEY_CHECK, &id.to_be_bytes(), sealed).is_err() {
            let held = u32::try_from(*id).is_ok_and(|id| ring.ids().contains(&id));
            if held {
                anyhow::bail!("the data key file {shown} holds a different key {id} than the one this database was sealed with (wrong key file?)");
            }
            anyhow::bail!("key {id}, which seals secrets in this database, is not in the data key file {shown}");
        }
    }
    let current = i64::from(ring.current_id());
    store
        .add_key_check(
            current,
            &ring.seal(KEY_CHECK, &current.to_be_bytes(), KEY_CHECK_VALUE),
        )
        .await?;
    Ok(ring)
}

/// `dialtone key rotate`: a new current key; every sealed secret and queued mail body is
/// re-encrypted under it while the portal keeps serving (values sealed under the previous
/// key keep opening meanwhile). Returns the new key's number and how many rows changed.
pub async fn rotate_key(portal: &Portal) -> anyhow::Result<(u32, u64)> {
    let ring = &portal.keyring;
    let store = &portal.store;
    let id = ring.rotate()?;
    let current = i64::from(id);
    store
        .add_key_check(
            current,
            &ring.seal(KEY_CHECK, &current.to_be_bytes(), KEY_CHECK_VALUE),
        )
        .await?;
    let previous = ring.ids().iter().rev().nth(1).copied();
    let (users, mut in_use) = portal.services.device_secrets.reseal_everything().await?;
    let (mail, mail_keys) = portal.outbox.reseal_queued(store).await?;
    in_use.extend(mail_keys);
    let (apps, app_keys) = portal.services.two_step.reseal_everything().await?;
    in_use.extend(app_keys);
    // The previous key stays a while for nodes that have not re-read the file yet.
    in_use.extend(previous);
    ring.retain(&in_use)?;
    store.retire_key_checks(&ring.ids()).await?;
    Ok((id, users + mail + apps))
}

/// How long a stopping server waits for the message being sent.
const MAIL_STOP_WAIT: Duration = Duration::from_secs(20);

/// The portal, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    /// The internal listener (PBX credential lookup), unless turned off.
    internal: Option<TcpListener>,
    portal: Portal,
    worker: Worker,
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        let listen = settings.listen;
        let portal = Portal::open(settings, clock).await?;
        let worker = portal.mail_worker()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let internal = match portal.settings.internal_listen {
            Some(at) => Some(TcpListener::bind(at).await.with_context(|| {
                format!("cannot listen on {at} (internal_listen; `off` disables it)")
            })?),
            None => None,
        };
        Ok(Application {
            listener,
            internal,
            portal,
            worker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.portal.settings.listen)
    }

    /// Where the internal listener is bound, when it is on.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// Serves until `shutdown` completes, then finishes requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let portal = self.portal;
        let state = AppState {
            services: portal.services.clone(),
            key: portal.key.clone(),
            cookies: CookieNames::for_settings(&portal.settings),
            settings: portal.settings.clone(),
            pbx: portal.pbx.clone(),
        };
        let janitor = tokio::spawn(sweep_expired_sessions(portal.clone()));
        let (mail_stop, mail_stopped) = tokio::sync::watch::channel(false);
        let mailer = tokio::spawn(self.worker.run_until(mail_stopped));
        let follower = {
            let store = portal.store.clone();
            tokio::spawn(async move { store.follow_other_nodes().await })
        };
        let notifier = tokio::spawn(portal.pbx.clone().run_notifier());
        let (internal_stop, internal_stopped) = tokio::sync::watch::channel(false);
        let internal = self.internal.map(|listener| {
            let app = web::internal::router(portal.pbx.clone(), portal.services.levels.clone());
            let mut stopped = internal_stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(error = %e, "the internal listener failed");
                }
            })
        });
        let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = internal_stop.send(true);
        if let Some(internal) = internal {
            let _ = internal.await;
        }
        notifier.abort();
        janitor.abort();
        // The mail being sent is finished and recorded; the rest goes back to the outbox.
        let _ = mail_stop.send(true);
        let mut mailer = mailer;
        if tokio::time::timeout(MAIL_STOP_WAIT, &mut mailer)
            .await
            .is_err()
        {
            tracing::warn!("the mail worker did not stop in time; its leases run out instead");
            mailer.abort();
        }
        follower.abort();
        portal.store.close().await;
        served.context("server failed")
    }
}

/// Deletes sessions past their limits every few minutes; lookups already refuse them,
/// this only keeps the table small.
async fn sweep_expired_sessions(portal: Portal) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    let policy = Policy::from_settings(&portal.settings);
    loop {
        tick.tick().await;
        let now = portal.clock.now();
        if let Err(e) = portal
            .store
            .purge_sessions(
                now.minus(policy.session_idle),
                now.minus(policy.session_max),
            )
            .await
        {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
        if let Err(e) = portal.store.purge_pending(now).await {
            tracing::warn!(error = %e, "could not purge expired two-step sign-ins");
        }
        // A day of quiet is longer than any window or lock.
        if let Err(e) = portal
            .store
            .purge_stale(now.minus(Duration::from_secs(24 * 3600)), now)
            .await
        {
            tracing::warn!(error = %e, "could not purge stale throttle rows and links");
        }
        match portal
            .store
            .purge_audit(now.minus(portal.settings.audit_retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "purged audit events past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not purge old audit events"),
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
