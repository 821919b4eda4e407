//! Test harness: starts the real portal on 127.0.0.1 port 0 with a fresh database —
//! a SQLite file in a temporary directory, or a new PostgreSQL database when
//! `DIALTONE_TEST_DATABASE_URL` is set — and a pinned clock the test moves by hand.
//!
//! Suites speak HTTP through [`Browser`] (one helper per endpoint), arrange with the
//! fixtures here (`spawn_app`, `signed_in_user`, `signed_in_admin`, …), run the binary
//! through [`Cli`], and check what lies below HTTP only through `TestApp` helpers named
//! for what they check. This file (with `passkeys.rs`, its passkey helpers) is the only
//! one that names the store or the services:
//! every store read goes through `TestApp::store`, every service call through
//! `TestApp::services` (or, for the wiring, `self.portal`).
#![allow(dead_code)]

mod api;
mod browser;
mod cli;
mod faults;
mod mail;
mod passkeys;
mod two_step;

// Not every suite uses every part.
#[allow(unused_imports)]
pub use api::*;
#[allow(unused_imports)]
pub use browser::*;
#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use faults::*;
#[allow(unused_imports)]
pub use mail::*;
#[allow(unused_imports)]
pub use passkeys::*;
#[allow(unused_imports)]
pub use two_step::*;
pub mod kamailio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dialtone::app::{Application, Portal};
use dialtone::clock::{Clock, ManualClock, Timestamp};
use dialtone::config::{Layers, Settings};
use dialtone::domain::{
    DisplayName, Email, NewPassword, OperatorName, PasswordContext, Role, TenantCode, Username,
};

pub const TENANT: &str = "wickedsprockets";
/// The tenant's admin, extension 200 (email 200@example.com when made by `add_user_as`).
pub const ADMIN: &str = "200-wickedsprockets";
/// The tenant's user, extension 201 (email 201@example.com).
pub const USER: &str = "201-wickedsprockets";
pub const PASSWORD: &str = "Sprocket-Tuesday-42";
/// A valid password other than `PASSWORD`, for changes and resets.
pub const NEW: &str = "Gearbox-Sunday-77";
pub const OPERATOR: &str = "olivia";
pub const OPERATOR_PASSWORD: &str = "Console-Lantern-77";
/// A fixed start so expiry arithmetic is the same in every run.
pub const START: Timestamp = Timestamp(1_800_000_000);

/// What the store keeps, as the checks below read it.
pub type StoredUser = dialtone::store::UserRecord;
pub type AuditEvent = dialtone::store::AuditRecord;
pub type MailRecord = dialtone::store::MailRecord;
pub type SessionRecord = dialtone::store::SessionRecord;
pub type SecurityQuestionRecord = dialtone::store::SecurityQuestionRecord;
/// How long a node trusts its session cache without hearing from the database.
pub const SESSION_CACHE_FRESH_FOR: Duration = dialtone::store::SESSION_CACHE_FRESH_FOR;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The internal listener (PBX credential lookup).
    pub internal: Option<SocketAddr>,
    pub base: String,
    pub clock: ManualClock,
    pub portal: Portal,
    pub data_dir: Arc<tempfile::TempDir>,
    /// The authenticator app key of each operator the fixtures set one up for.
    operator_apps: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Who the tests' own direct calls act as, in the audit log.
pub fn test_actor() -> dialtone::audit::Actor {
    dialtone::audit::Actor::new("test", None)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Extra settings for one test, as `dialtone.toml` keys.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    start(
        data_dir,
        fresh_database().await,
        ManualClock::new(START),
        extra,
    )
    .await
}

/// A fresh tenant with admin 200 and user 201 (both with `PASSWORD`), and a browser
/// signed in as the admin.
pub async fn spawn_tenant() -> (TestApp, Browser) {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    let admin = app.signed_in(ADMIN).await;
    (app, admin)
}

/// Starts a server on an existing data directory and database (a restart).
async fn start(
    data_dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    clock: ManualClock,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut layers = Layers::default();
    layers.set("data_dir", data_dir.path().display().to_string());
    layers.set("listen", "127.0.0.1:0");
    layers.set("internal_listen", "127.0.0.1:0");
    layers.set("mail_poll", "100ms");
    if let Some(url) = database_url {
        layers.set("database_url", url);
    }
    for (k, v) in extra {
        layers.set(k, *v);
    }
    let settings: Settings = layers.resolve().expect("test settings");
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .expect("app builds");
    let addr = app.local_addr();
    let internal = app.internal_addr();
    let portal = app.portal().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        internal,
        base: format!("http://{addr}"),
        clock,
        portal,
        data_dir,
        operator_apps: Arc::default(),
        stop: Some(stop),
        running: Some(running),
    }
}

/// A port nothing listens on yet.
pub fn free_port() -> u16 {
    use rand::Rng;
    // Below the kernel's ephemeral range (32768 and up here): a port handed out by
    // `bind(0)` and let go can be taken by any outgoing connection before the server that
    // was meant to listen on it starts. Here only another test picking at random can take
    // it. Free for UDP too, since SIP listens on both.
    for _ in 0..1000 {
        let port = rand::thread_rng().gen_range(20_000..32_000);
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 32000")
}

/// On PostgreSQL runs (`DIALTONE_TEST_DATABASE_URL` set), a new empty database; on
/// SQLite runs, none (the portal makes its file in the data directory).
pub async fn fresh_database() -> Option<String> {
    match std::env::var("DIALTONE_TEST_DATABASE_URL") {
        Ok(admin_url) => Some(fresh_postgres_database(&admin_url).await),
        Err(_) => None,
    }
}

/// A new, empty database on the test server, so tests never see each other's rows.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url)
        .await
        .expect("DIALTONE_TEST_DATABASE_URL answers");
    let name = format!(
        "dialtone_t_{}",
        dialtone::auth::token::random_token()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
    );
    let name = &name[..40];
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(admin_url).expect("url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The server: its nodes, its clock, its mail folder and browsers pointed at it.
impl TestApp {
    /// Stops the server (as a crash or a deploy would) and starts a new one on the same
    /// data directory, database and clock, with other settings.
    pub async fn restart_with(mut self, extra: &[(&str, &str)]) -> TestApp {
        let database_url = self.database_url().to_owned();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
        let mut app = start(
            self.data_dir.clone(),
            Some(database_url),
            self.clock.clone(),
            extra,
        )
        .await;
        app.operator_apps = self.operator_apps.clone();
        app
    }

    /// Another `dialtone serve` node on the same database, data directory and clock, as
    /// a second server behind the load balancer would be.
    pub async fn second_node(&self) -> TestApp {
        start(
            self.data_dir.clone(),
            Some(self.database_url().to_owned()),
            self.clock.clone(),
            &[],
        )
        .await
    }

    /// Builds (without running) another node on this data directory and database, as
    /// start-up does: for what start-up must refuse.
    pub async fn build_node(&self) -> anyhow::Result<()> {
        let mut layers = Layers::default();
        layers.set("data_dir", self.data_dir.path().display().to_string());
        layers.set("listen", "127.0.0.1:0");
        layers.set("database_url", self.database_url().to_owned());
        let settings = layers.resolve().expect("settings");
        Application::build(settings, Arc::new(self.clock.clone()))
            .await
            .map(drop)
    }

    pub fn database_url(&self) -> &str {
        &self.portal.settings.database_url
    }

    pub fn is_postgres(&self) -> bool {
        self.store().backend() == dialtone::store::Backend::Postgres
    }

    /// The database opened as anyone with a copy of it would, with no key.
    pub async fn raw_database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(self.database_url())
            .await
            .expect("the database opens")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GETs `path` by hand, sending exactly `cookie` (`name=value`), as a replayed or
    /// forged request would.
    pub async fn get_sending_cookie(&self, path: &str, cookie: &str) -> reqwest::Response {
        plain_client()
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    /// A new browser (its own cookie jar) pointed at this node.
    pub fn browser(&self) -> Browser {
        Browser::at(&self.base)
    }

    /// The server's time, as its pinned clock says.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn mail_dir(&self) -> std::path::PathBuf {
        self.data_dir.path().join("mail")
    }

    /// The `.eml` files delivered so far, oldest first.
    pub fn mail_files(&self) -> Vec<std::path::PathBuf> {
        eml_files_in(&self.mail_dir())
    }

    /// Waits (bounded) until at least `n` mail files exist, and returns them parsed.
    pub async fn wait_for_mail(&self, n: usize) -> Vec<Mail> {
        wait_for_messages(n, "mail files", || self.mail_files()).await
    }

    /// Waits (bounded) for the one delivered mail, whose subject starts with `subject`,
    /// and removes it from the mail folder (a fixture's notice, read so that a test sees
    /// only what follows).
    pub async fn take_mail_about(&self, subject: &str) -> Mail {
        let mail = self.wait_for_mail(1).await;
        assert_eq!(mail.len(), 1, "one mail");
        assert!(mail[0].subject.starts_with(subject), "{}", mail[0].subject);
        for file in self.mail_files() {
            std::fs::remove_file(file).unwrap();
        }
        mail.into_iter().next().unwrap()
    }
}

/// Fixtures: people and browsers signed in as them.
impl TestApp {
    /// Creates `username` (its tenant too, when missing) with `password`.
    pub async fn add_user(&self, username: &str, password: &str) {
        self.add_user_as(username, Some(password), Role::User).await;
    }

    /// Creates `ADMIN` with `PASSWORD`.
    pub async fn add_admin(&self) {
        self.add_user_as(ADMIN, Some(PASSWORD), Role::Admin).await;
    }

    /// Creates a user named Sam Staff with email EXTENSION@example.com; with no
    /// password, returns the generated temporary one.
    pub async fn add_user_as(
        &self,
        username: &str,
        password: Option<&str>,
        role: Role,
    ) -> Option<String> {
        let extension = Username::parse(username)
            .unwrap()
            .extension()
            .as_str()
            .to_owned();
        let email = format!("{extension}@example.com");
        self.add_person(username, "Sam Staff", Some(&email), role, password)
            .await
    }

    /// A browser signed in as `username` with `PASSWORD`.
    pub async fn signed_in(&self, username: &str) -> Browser {
        let b = self.browser();
        b.login_ok(username, PASSWORD).await;
        b
    }

    /// Creates `USER` and signs a browser in as them.
    pub async fn signed_in_user(&self) -> Browser {
        self.add_user(USER, PASSWORD).await;
        self.signed_in(USER).await
    }

    /// Creates `USER`, signs a browser in and returns the session's `Set-Cookie` too.
    pub async fn signed_in_user_and_cookie(&self) -> (Browser, String) {
        self.add_user(USER, PASSWORD).await;
        let b = self.browser();
        let r = b.login(USER, PASSWORD).await;
        let cookie = set_cookie(&r, "dialtone_session").expect("a session cookie");
        (b, cookie)
    }

    /// Creates `ADMIN` and signs a browser in as them.
    pub async fn signed_in_admin(&self) -> Browser {
        self.add_admin().await;
        self.signed_in(ADMIN).await
    }

    /// The key of the authenticator app the fixtures set up for operator `name`.
    pub fn operator_app(&self, name: &str) -> Option<String> {
        self.operator_apps.lock().unwrap().get(name).cloned()
    }

    /// A browser signed in to the operator console as `name` (with `OPERATOR_PASSWORD`):
    /// the first time through setting up the authenticator app operators must have,
    /// later through the second step (a step of the clock on, so a code is never reused).
    pub async fn signed_in_operator(&self, name: &str) -> Browser {
        let op = self.browser();
        let known = self.operator_apps.lock().unwrap().get(name).cloned();
        if known.is_some() {
            self.advance(Duration::from_secs(30));
        }
        let secret = op
            .operator_sign_in_with_app(name, OPERATOR_PASSWORD, known.as_deref(), self.clock.now())
            .await;
        self.operator_apps
            .lock()
            .unwrap()
            .insert(name.to_owned(), secret);
        op
    }
}

// Below HTTP. Everything from here on reaches past the portal's pages into its services
// and store; suites call these helpers, never the services or the store themselves.
impl TestApp {
    /// The one way into the store.
    fn store(&self) -> &dialtone::store::Store {
        &self.portal.store
    }

    /// The one way to the services.
    fn services(&self) -> &dialtone::services::Services {
        &self.portal.services
    }

    pub async fn add_tenant(&self, code: &str) {
        self.services()
            .provisioning
            .create_tenant(
                &TenantCode::parse(code).unwrap(),
                &DisplayName::parse("Wicked Sprockets").unwrap(),
                None,
                &test_actor(),
            )
            .await
            .unwrap();
    }

    /// Creates a user (its tenant too, when missing) with its own display name and email
    /// (`None`: no email on file); with no password, returns the generated temporary one.
    pub async fn add_person(
        &self,
        username: &str,
        name: &str,
        email: Option<&str>,
        role: Role,
        password: Option<&str>,
    ) -> Option<String> {
        let username = Username::parse(username).unwrap();
        let tenant = username.tenant();
        if self.store().tenant_by_code(tenant).await.unwrap().is_none() {
            self.add_tenant(tenant.as_str()).await;
        }
        let context = PasswordContext {
            username: Some(&username),
            ..PasswordContext::default()
        };
        let password =
            password.map(|p| NewPassword::parse(p, &context).expect("test password is valid"));
        let email = email.map(|e| Email::parse(e).unwrap());
        let (_, temporary) = self
            .services()
            .provisioning
            .create_user(
                &username,
                &DisplayName::parse(name).unwrap(),
                email.as_ref(),
                role,
                password,
                &test_actor(),
            )
            .await
            .unwrap();
        temporary.map(|p| p.expose().to_owned())
    }

    /// Creates an operator `name` with `OPERATOR_PASSWORD`.
    pub async fn add_operator(&self, name: &str) {
        self.services()
            .provisioning
            .create_operator(
                &OperatorName::parse(name).unwrap(),
                &NewPassword::parse(OPERATOR_PASSWORD, &PasswordContext::default()).unwrap(),
                &test_actor(),
            )
            .await
            .unwrap();
    }

    /// Locks `username` as someone elsewhere would: five wrong passwords, each from a
    /// browser of its own.
    pub async fn lock_from_elsewhere(&self, username: &str) {
        for _ in 0..5 {
            self.browser().login(username, "Guess-Password-1").await;
        }
    }

    /// Unlocks `username` as `dialtone user unlock` would; true when it was locked.
    pub async fn unlock(&self, username: &str) -> bool {
        let username = Username::parse(username).unwrap();
        self.services()
            .provisioning
            .unlock(&username, &test_actor())
            .await
            .unwrap()
    }

    /// Rotates the secret key as `dialtone key rotate` would: the new key's number and
    /// how many rows were sealed again.
    pub async fn rotate_key(&self) -> (u32, u64) {
        dialtone::app::rotate_key(&self.portal).await.unwrap()
    }

    /// The user's SIP secret and voicemail PIN, opened.
    pub async fn phone_secrets_of(&self, username: &str) -> (Option<String>, Option<String>) {
        self.try_phone_secrets_of(username).await.unwrap()
    }

    /// The user's SIP secret and voicemail PIN, or why they would not open.
    pub async fn try_phone_secrets_of(
        &self,
        username: &str,
    ) -> Result<(Option<String>, Option<String>), String> {
        let user = self.stored_user(username).await.expect("the user exists");
        self.services()
            .device_secrets
            .open(&user)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// The user's row, if there is one.
    pub async fn stored_user(&self, username: &str) -> Option<StoredUser> {
        let u = Username::parse(username).unwrap();
        self.store().user_by_username(&u).await.unwrap()
    }

    pub async fn user_id(&self, username: &str) -> i64 {
        self.stored_user(username)
            .await
            .expect("the user exists")
            .id
            .0
    }

    /// How many users the tenant has.
    pub async fn user_count(&self, tenant: &str) -> usize {
        let tenant = self
            .store()
            .tenant_by_code(&TenantCode::parse(tenant).unwrap())
            .await
            .unwrap()
            .unwrap();
        let now = Timestamp(0);
        self.store()
            .list_users(tenant.id, None, now, 10_000, 0)
            .await
            .unwrap()
            .1 as usize
    }

    pub async fn tenant_count(&self) -> i64 {
        self.store().list_tenants(None, 100, 0).await.unwrap().1
    }

    pub async fn sessions_of(&self, username: &str) -> i64 {
        let user = self.stored_user(username).await.expect("the user exists");
        self.store().count_user_sessions(user.id).await.unwrap()
    }

    /// The live session stored under `key` (the hash of a token, or whatever a test
    /// tries as one), as the server sees it now.
    pub async fn session_under(&self, key: &[u8]) -> Option<SessionRecord> {
        self.store()
            .session_with_user(key, self.clock.now())
            .await
            .unwrap()
            .map(|(session, _)| session)
    }

    pub async fn security_question_of(&self, username: &str) -> Option<SecurityQuestionRecord> {
        let id = self
            .stored_user(username)
            .await
            .expect("the user exists")
            .id;
        self.store().security_question(id).await.unwrap()
    }

    /// Every audit event of `kind`, newest first.
    pub async fn audit_events(&self, kind: &str) -> Vec<AuditEvent> {
        self.store()
            .audit_events(None, Some(kind), 10_000)
            .await
            .unwrap()
    }

    /// The audit events of `kind` in the tenant's own log, newest first.
    pub async fn tenant_audit_events(&self, tenant: &str, kind: &str) -> Vec<AuditEvent> {
        let tenant = self
            .store()
            .tenant_by_code(&TenantCode::parse(tenant).unwrap())
            .await
            .unwrap()
            .unwrap();
        self.store()
            .audit_events(Some(tenant.id), Some(kind), 10_000)
            .await
            .unwrap()
    }

    pub async fn audit_count(&self, kind: &str) -> usize {
        self.audit_events(kind).await.len()
    }

    /// How many attempts the events of `kind` stand for (a burst of refusals is one event).
    pub async fn audit_repeats(&self, kind: &str) -> i64 {
        self.audit_events(kind)
            .await
            .iter()
            .map(|e| e.repeats)
            .sum()
    }

    /// The outbox's delivery records, newest first.
    pub async fn mail_records(&self) -> Vec<MailRecord> {
        self.store().mail_records(1000).await.unwrap()
    }

    /// Waits (bounded) until at least `n` messages are in the outbox — requests are
    /// processed after their answer is sent — and returns the delivery records.
    pub async fn wait_for_queued(&self, n: usize) -> Vec<MailRecord> {
        for _ in 0..300 {
            let records = self.mail_records().await;
            if records.len() >= n {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.mail_records().await
    }

    /// Waits (bounded) until no message is still queued, and returns the records.
    pub async fn wait_for_mail_settled(&self) -> Vec<MailRecord> {
        for _ in 0..100 {
            let r = self.mail_records().await;
            if r.iter().all(|m| m.status != "queued") {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.mail_records().await
    }

    /// Waits (bounded) for a delivery record that `is` says is the one; panics with
    /// `never` when none comes.
    pub async fn wait_for_mail_record(
        &self,
        is: impl Fn(&MailRecord) -> bool,
        never: &str,
    ) -> MailRecord {
        for _ in 0..300 {
            if let Some(m) = self.mail_records().await.into_iter().find(&is) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{never}");
    }
}
