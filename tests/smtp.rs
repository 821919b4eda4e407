//! The SMTP transport against a real SMTP server (Python's aiosmtpd, delivering into a
//! Maildir), including a relay that is down and comes back, and a restart before delivery.
//! Skipped with a printed reason when aiosmtpd is missing, unless
//! `DIALTONE_TEST_REQUIRE_SMTP` is set (CI sets it).

mod common;

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
        files_in(&self.new_dir())
            .iter()
            .map(|p| Mail::parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        wait_for_messages(n, "messages at the relay", || files_in(&self.new_dir())).await
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

/// Waits (bounded) until the first queued message has been tried at least once.
async fn wait_for_attempt(app: &TestApp) -> MailRecord {
    app.wait_for_mail_record(
        |m| m.attempts > 0 && m.last_error.is_some(),
        "the worker never tried the message",
    )
    .await
}

async fn loop_until_sent(app: &TestApp) -> MailRecord {
    app.wait_for_mail_record(|m| m.status == "sent", "the message was never marked sent")
        .await
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
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    assert_eq!(b.forgot_password(USER).await.status(), StatusCode::OK);

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

#[tokio::test]
async fn a_relay_that_is_down_and_comes_back_gets_the_message_once() {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let app = spawn_app_with(&[("mail", &smtp_url(port))]).await;
    app.add_user(USER, PASSWORD).await;
    assert_eq!(
        app.browser().forgot_password(USER).await.status(),
        StatusCode::OK
    );

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
    let record = app.mail_records().await.remove(0);
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
    app.add_user(USER, PASSWORD).await;
    assert_eq!(
        app.browser().forgot_password(USER).await.status(),
        StatusCode::OK
    );
    wait_for_attempt(&app).await;

    // The node stops before it could deliver; a new one starts on the same database.
    let relay = start_relay(port).await;
    let app = app.restart_with(&[("mail", &smtp_url(port))]).await;
    app.advance(Duration::from_secs(60));
    let mail = relay.wait_for(1).await.remove(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.messages().len(), 1, "delivered exactly once");

    let b = app.browser();
    let token = token_of(&mail.links()[0]);
    let r = b.reset_password(&token, "201@example.com", NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    b.login_ok(USER, NEW).await;
}
