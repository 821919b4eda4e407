//! The SMTP transport against a real SMTP server (Python's aiosmtpd, delivering into a
//! Maildir), including a relay that is down and comes back, and a restart before delivery.
//! Skipped with a printed reason when aiosmtpd is missing, unless
//! `DIALTONE_TEST_REQUIRE_SMTP` is set (CI sets it).

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use reqwest::StatusCode;

struct Relay {
    child: Child,
    maildir: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Relay {
    fn new_dir(&self) -> PathBuf {
        self.maildir.path().join("box").join("new")
    }

    fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<_> = std::fs::read_dir(self.new_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| Mail::parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..300 {
            if self.messages().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let m = self.messages();
        assert!(
            m.len() >= n,
            "expected {n} messages at the relay, found {}",
            m.len()
        );
        m
    }
}

fn aiosmtpd_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("DIALTONE_TEST_REQUIRE_SMTP").is_some() {
            panic!("aiosmtpd is required (pip install aiosmtpd) but missing");
        }
        eprintln!("SKIPPED: python3 with aiosmtpd is not installed (pip install aiosmtpd)");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_relay(port: u16) -> Relay {
    let maildir = tempfile::tempdir().unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir.path().join("box"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aiosmtpd starts");
    let relay = Relay { child, maildir };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return relay;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("aiosmtpd did not start on port {port}");
}

fn smtp_url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?tls=none")
}

async fn forgot(b: &Browser) {
    let r = b
        .post(
            "/password/forgot",
            &[("identifier", "201-wickedsprockets"), ("action", "reset")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn records(app: &TestApp) -> Vec<dialtone::store::MailRecord> {
    app.services
        .accounts
        .store()
        .mail_records(None, 10)
        .await
        .unwrap()
}

/// Waits (bounded) until the first queued message has been tried at least once.
async fn wait_for_attempt(app: &TestApp) -> dialtone::store::MailRecord {
    for _ in 0..300 {
        let r = records(app).await;
        if let Some(m) = r
            .into_iter()
            .find(|m| m.attempts > 0 && m.last_error.is_some())
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the worker never tried the message");
}

#[tokio::test]
async fn a_reset_mail_is_delivered_through_a_real_smtp_relay() {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let relay = start_relay(port).await;
    let app = spawn_app_with(&[
        ("mail", &smtp_url(port)),
        ("mail_from", "Wicked Portal <portal@provider.example>"),
    ])
    .await;
    app.add_user("201-wickedsprockets", PASSWORD).await;
    let b = app.browser();
    forgot(&b).await;

    let mail = relay.wait_for(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert_eq!(mail.from, "portal@provider.example");
    assert!(
        !mail.html.is_empty() && !mail.text.is_empty(),
        "text and HTML parts"
    );
    let link = mail.links().remove(0);
    assert_eq!(b.get(&path_of(&link)).await.status(), StatusCode::OK);

    let sent = loop_until_sent(&app).await;
    assert!(
        sent.last_error.as_deref().unwrap_or("").starts_with("250"),
        "{:?}",
        sent.last_error
    );
    assert!(
        app.mail_files().is_empty(),
        "nothing written to files with the smtp transport"
    );
}

async fn loop_until_sent(app: &TestApp) -> dialtone::store::MailRecord {
    for _ in 0..300 {
        if let Some(m) = records(app).await.into_iter().find(|m| m.status == "sent") {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the message was never marked sent");
}

#[tokio::test]
async fn a_relay_that_is_down_and_comes_back_gets_the_message_once() {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let app = spawn_app_with(&[("mail", &smtp_url(port))]).await;
    app.add_user("201-wickedsprockets", PASSWORD).await;
    forgot(&app.browser()).await;

    let tried = wait_for_attempt(&app).await;
    assert_eq!(
        tried.status, "queued",
        "a refused connection is retried, not given up"
    );
    assert!(tried.has_body);

    let relay = start_relay(port).await;
    // The retry is due 30 seconds later on the pinned clock.
    app.advance(Duration::from_secs(31));
    let mails = relay.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    loop_until_sent(&app).await;

    // More time and more worker passes do not send it again.
    app.advance(Duration::from_secs(3 * 3600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.messages().len(), 1);
    let record = records(&app).await.remove(0);
    assert_eq!(record.status, "sent");
    assert!(record.attempts >= 2);
    assert!(!record.has_body);
}

#[tokio::test]
async fn mail_queued_before_a_restart_is_delivered_once_after_it_and_its_link_works() {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let app = spawn_app_with(&[("mail", &smtp_url(port))]).await;
    app.add_user("201-wickedsprockets", PASSWORD).await;
    forgot(&app.browser()).await;
    wait_for_attempt(&app).await;

    // The node stops before it could deliver; a new one starts on the same database.
    let relay = start_relay(port).await;
    let app = app.restart_with(&[("mail", &smtp_url(port))]).await;
    app.advance(Duration::from_secs(60));
    let mail = relay.wait_for(1).await.remove(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.messages().len(), 1, "delivered exactly once");

    let b = app.browser();
    let token = mail.links()[0].split("token=").nth(1).unwrap().to_owned();
    let r = b
        .post(
            "/password/reset",
            &[
                ("token", &token),
                ("email", "201@example.com"),
                ("new_password", "Gearbox-Sunday-77"),
                ("confirm_password", "Gearbox-Sunday-77"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    b.login_ok("201-wickedsprockets", "Gearbox-Sunday-77").await;
}
