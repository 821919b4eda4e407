//! Test harness: starts the real portal on 127.0.0.1 port 0 with a fresh database —
//! a SQLite file in a temporary directory, or a new PostgreSQL database when
//! `DIALTONE_TEST_DATABASE_URL` is set — and a pinned clock the test moves by hand.
#![allow(dead_code)]

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
    pub base: String,
    pub clock: ManualClock,
    pub services: Services,
    pub data_dir: tempfile::TempDir,
}

/// Extra settings for one test, as `dialtone.toml` keys.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut layers = Layers::default();
    layers.set("data_dir", data_dir.path().display().to_string());
    layers.set("listen", "127.0.0.1:0");
    if let Ok(admin_url) = std::env::var("DIALTONE_TEST_DATABASE_URL") {
        layers.set("database_url", fresh_postgres_database(&admin_url).await);
    }
    for (k, v) in extra {
        layers.set(k, *v);
    }
    let settings: Settings = layers.resolve().expect("test settings");
    let clock = ManualClock::new(START);
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .expect("app builds");
    let addr = app.local_addr();
    let services = app.services().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        clock,
        services,
        data_dir,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A new, empty database on the test server, so tests never see each other's rows.
async fn fresh_postgres_database(admin_url: &str) -> String {
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
