//! Test harness: starts the real portal on 127.0.0.1 port 0 with a fresh database —
//! a SQLite file in a temporary directory, or a new PostgreSQL database when
//! `DIALTONE_TEST_DATABASE_URL` is set — and a pinned clock the test moves by hand.
#![allow(dead_code)]

pub mod kamailio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dialtone::app::{Application, Services};
use dialtone::clock::{ManualClock, Timestamp};
use dialtone::config::{Layers, Settings};
use dialtone::domain::{
    DisplayName, Email, NewPassword, PasswordContext, Role, TenantCode, Username,
};
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};

pub const TENANT: &str = "wickedsprockets";
pub const PASSWORD: &str = "Sprocket-Tuesday-42";
/// A fixed start so expiry arithmetic is the same in every run.
pub const START: Timestamp = Timestamp(1_800_000_000);

pub struct TestApp {
    pub addr: SocketAddr,
    /// The internal listener (PBX credential lookup).
    pub internal: Option<SocketAddr>,
    pub base: String,
    pub clock: ManualClock,
    pub services: Services,
    pub data_dir: Arc<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Extra settings for one test, as `dialtone.toml` keys.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let database_url = match std::env::var("DIALTONE_TEST_DATABASE_URL") {
        Ok(admin_url) => Some(fresh_postgres_database(&admin_url).await),
        Err(_) => None,
    };
    start(data_dir, database_url, ManualClock::new(START), extra).await
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
    let services = app.services().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        internal,
        base: format!("http://{addr}"),
        clock,
        services,
        data_dir,
        stop: Some(stop),
        running: Some(running),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
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

impl TestApp {
    /// Stops the server (as a crash or a deploy would) and starts a new one on the same
    /// data directory, database and clock, with other settings.
    pub async fn restart_with(mut self, extra: &[(&str, &str)]) -> TestApp {
        let database_url = self.services.settings.database_url.clone();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
        start(
            self.data_dir.clone(),
            Some(database_url),
            self.clock.clone(),
            extra,
        )
        .await
    }

    /// Another `dialtone serve` node on the same database, data directory and clock, as
    /// a second server behind the load balancer would be.
    pub async fn second_node(&self) -> TestApp {
        start(
            self.data_dir.clone(),
            Some(self.services.settings.database_url.clone()),
            self.clock.clone(),
            &[],
        )
        .await
    }

    pub fn is_postgres(&self) -> bool {
        self.services.accounts.store().backend() == dialtone::store::Backend::Postgres
    }

    pub fn mail_dir(&self) -> std::path::PathBuf {
        self.data_dir.path().join("mail")
    }

    /// The `.eml` files delivered so far, oldest first.
    pub fn mail_files(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(self.mail_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
    }

    /// Waits (bounded) until at least `n` mail files exist, and returns them parsed.
    pub async fn wait_for_mail(&self, n: usize) -> Vec<Mail> {
        for _ in 0..300 {
            if self.mail_files().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let files = self.mail_files();
        assert!(
            files.len() >= n,
            "expected {n} mail files, found {}",
            files.len()
        );
        files
            .iter()
            .map(|p| Mail::parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    /// Waits (bounded) until at least `n` messages are in the outbox — requests are
    /// processed after their answer is sent — and returns the delivery records.
    pub async fn wait_for_queued(&self, n: usize) -> Vec<dialtone::store::MailRecord> {
        let store = self.services.accounts.store();
        for _ in 0..300 {
            let records = store.mail_records(None, 1000).await.unwrap();
            if records.len() >= n {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.mail_records(None, 1000).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub async fn add_tenant(&self, code: &str) {
        self.services
            .accounts
            .create_tenant(
                &TenantCode::parse(code).unwrap(),
                &DisplayName::parse("Wicked Sprockets").unwrap(),
                None,
                "test",
            )
            .await
            .unwrap();
    }

    /// Creates `username` (its tenant too, when missing) with `password`.
    pub async fn add_user(&self, username: &str, password: &str) {
        self.add_user_as(username, Some(password), Role::User).await;
    }

    /// Creates a user; with no password, returns the generated temporary one.
    pub async fn add_user_as(
        &self,
        username: &str,
        password: Option<&str>,
        role: Role,
    ) -> Option<String> {
        let username = Username::parse(username).unwrap();
        let store = self.services.accounts.store();
        if store
            .tenant_by_code(username.tenant().as_str())
            .await
            .unwrap()
            .is_none()
        {
            self.add_tenant(username.tenant().as_str()).await;
        }
        let context = PasswordContext {
            username: Some(&username),
            ..PasswordContext::default()
        };
        let password =
            password.map(|p| NewPassword::parse(p, &context).expect("test password is valid"));
        let email = Email::parse(&format!("{}@example.com", username.extension())).unwrap();
        let (_, temporary) = self
            .services
            .accounts
            .create_user(
                &username,
                &DisplayName::parse("Sam Staff").unwrap(),
                Some(&email),
                role,
                password,
                "test",
            )
            .await
            .unwrap();
        temporary.map(|p| p.expose().to_owned())
    }

    /// Creates a user with its own display name and email (`None`: no email on file),
    /// for pages that list several people.
    pub async fn add_person(
        &self,
        username: &str,
        name: &str,
        email: Option<&str>,
        role: Role,
        password: &str,
    ) {
        let username = Username::parse(username).unwrap();
        let store = self.services.accounts.store();
        if store
            .tenant_by_code(username.tenant().as_str())
            .await
            .unwrap()
            .is_none()
        {
            self.add_tenant(username.tenant().as_str()).await;
        }
        let context = PasswordContext {
            username: Some(&username),
            ..PasswordContext::default()
        };
        let password = NewPassword::parse(password, &context).expect("test password is valid");
        let email = email.map(|e| Email::parse(e).unwrap());
        self.services
            .accounts
            .create_user(
                &username,
                &DisplayName::parse(name).unwrap(),
                email.as_ref(),
                role,
                Some(password),
                "test",
            )
            .await
            .unwrap();
    }

    pub async fn audit_count(&self, kind: &str) -> usize {
        self.services
            .accounts
            .store()
            .audit_events(None, Some(kind), 10_000)
            .await
            .unwrap()
            .len()
    }

    pub async fn sessions_of(&self, username: &str) -> i64 {
        let u = Username::parse(username).unwrap();
        let user = self
            .services
            .accounts
            .store()
            .user_by_username(u.tenant().as_str(), u.extension().as_str())
            .await
            .unwrap()
            .unwrap();
        self.services
            .accounts
            .store()
            .count_user_sessions(user.id)
            .await
            .unwrap()
    }
}

/// One browser: a cookie jar, no automatic redirects.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("GET")
    }

    /// The CSRF token this browser's forms carry (read from a page, as a browser would).
    pub async fn csrf(&self) -> String {
        // Signed-in browsers are sent on from the sign-in page; every page has a form.
        let mut r = self.get("/login").await;
        for _ in 0..3 {
            if r.status() != StatusCode::SEE_OTHER {
                break;
            }
            r = self.get(&location(&r)).await;
        }
        let body = r.text().await.unwrap();
        csrf_in(&body).expect("the page carries a csrf token")
    }

    /// Posts a form with this browser's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_raw(path, &all).await
    }

    /// Posts exactly the given fields.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(format!("{}{}", self.base, path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/login", &[("username", username), ("password", password)])
            .await
    }

    pub async fn login_ok(&self, username: &str, password: &str) {
        let r = self.login(username, password).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "sign-in as {username} should succeed"
        );
    }

    pub async fn change_password(&self, current: &str, new: &str, confirm: &str) -> Response {
        self.post(
            "/settings/password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", confirm),
            ],
        )
        .await
    }
}

pub fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let rest = &body[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The `Set-Cookie` value for `name`, if the response sets it.
pub fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// A delivered message, parsed as a mail client would.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        let m = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("an RFC 5322 message");
        let first = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_owned()
        };
        Mail {
            to: first(m.to()),
            from: first(m.from()),
            subject: m.subject().unwrap_or_default().to_owned(),
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }

    /// Every reset link in the text part.
    pub fn links(&self) -> Vec<String> {
        self.text
            .split_whitespace()
            .filter(|w| w.contains("/password/reset?token="))
            .map(|w| w.to_owned())
            .collect()
    }
}

/// The path and query of an absolute link, to follow it on the test server.
pub fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).expect("absolute link");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}
