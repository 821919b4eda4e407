//! The campaign: the real `dialtone serve` killed with SIGKILL at random moments while
//! clients sign in and change passwords (each change queues a "password changed" mail in
//! its own transaction). After every restart the database passes its integrity check and
//! every change the server acknowledged is there; at the end every queued mail has been
//! delivered exactly once.
//!
//! Cycles: 20 on SQLite and 5 on PostgreSQL by default; `DIALTONE_CAMPAIGN_KILLS=N` runs N
//! (the long run of BENCHMARKS.md used 200).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rand::Rng;

const ACCOUNTS: [&str; 3] = [
    "201-wickedsprockets",
    "202-wickedsprockets",
    "203-wickedsprockets",
];

fn kills(postgres: bool) -> usize {
    std::env::var("DIALTONE_CAMPAIGN_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if postgres { 5 } else { 20 })
}

/// What the clients know of one account.
struct Account {
    username: &'static str,
    email: String,
    /// The password the server last acknowledged (or was found to hold).
    password: String,
    /// A change sent but not answered before the kill: it may or may not have happened.
    pending: Option<String>,
    /// Changes that happened (acknowledged, or found after a kill).
    changes: usize,
    acknowledged: usize,
    next: usize,
}

impl Account {
    fn new_password(&mut self) -> String {
        self.next += 1;
        format!("Lantern-Harbor-{}-{}", self.username.len() * 7, self.next)
    }
}

/// Signs in and changes the password until the server stops answering.
async fn write_load(base: String, mut a: Account) -> Account {
    loop {
        // A new browser each round: a signed-in one is sent past the sign-in form.
        let b = FallibleBrowser::at(&base);
        match b.sign_in(a.username, &a.password).await {
            Ok(true) => {}
            Ok(false) => panic!(
                "{}: the acknowledged password was refused while serving",
                a.username
            ),
            Err(_) => return a,
        }
        let new = a.new_password();
        a.pending = Some(new.clone());
        match b.change_password(&a.password, &new).await {
            Ok(true) => {
                a.password = new;
                a.pending = None;
                a.changes += 1;
                a.acknowledged += 1;
            }
            Ok(false) => panic!("{}: a password change was refused", a.username),
            Err(_) => return a,
        }
    }
}

/// After a restart: the acknowledged password works, or — when a change was cut off —
/// exactly one of the old and the new one does.
async fn settle(base: &str, a: &mut Account) {
    let b = FallibleBrowser::at(base);
    let old_works = b.sign_in(a.username, &a.password).await.expect("answers");
    match a.pending.take() {
        None => assert!(
            old_works,
            "{}: an acknowledged password change was lost",
            a.username
        ),
        Some(new) if !old_works => {
            assert!(
                b.sign_in(a.username, &new).await.expect("answers"),
                "{}: neither the old nor the cut-off new password works",
                a.username
            );
            a.password = new;
            a.changes += 1;
        }
        Some(_) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_at_random_moments_loses_no_acknowledged_change_and_sends_each_mail_once(
) {
    let cli = Cli::new().await;
    let run = |args: &[&str], stdin: Option<&str>| {
        let out = cli.run(args, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    run(
        &["tenant", "add", TENANT, "--name", "Wicked Sprockets"],
        None,
    );
    let mut accounts = Vec::new();
    for username in ACCOUNTS {
        let email = format!("{}@example.com", &username[..3]);
        run(
            &[
                "user",
                "add",
                username,
                "--name",
                "Campaign Caller",
                "--email",
                &email,
                "--password-stdin",
            ],
            Some(PASSWORD),
        );
        accounts.push(Account {
            username,
            email,
            password: PASSWORD.to_owned(),
            pending: None,
            changes: 0,
            acknowledged: 0,
            next: 0,
        });
    }

    let cycles = kills(cli.database_url.is_some());
    let mut cut_off = 0;
    for cycle in 0..cycles {
        let mut server = cli.serve(&[]).await;
        for a in &mut accounts {
            settle(&server.base, a).await;
        }
        let load: Vec<_> = accounts
            .drain(..)
            .map(|a| tokio::spawn(write_load(server.base.clone(), a)))
            .collect();
        let after = rand::thread_rng().gen_range(100..1200);
        tokio::time::sleep(Duration::from_millis(after)).await;
        server.kill_9();
        for handle in load {
            let a = handle.await.expect("the load task ends without panicking");
            cut_off += usize::from(a.pending.is_some());
            accounts.push(a);
        }
        if let Some(report) = sqlite_integrity(&cli).await {
            assert_eq!(report, "ok", "integrity check after kill {}", cycle + 1);
        }
    }

    // One last start: settle, let the outbox drain, and count what was delivered. A kill
    // may have cut off a claimed message, which waits out its two-minute lease.
    let mut server = cli.serve(&[]).await;
    for a in &mut accounts {
        settle(&server.base, a).await;
    }
    let expected: usize = accounts.iter().map(|a| a.changes).sum();
    let mut delivered = BTreeMap::new();
    for _ in 0..1800 {
        delivered.clear();
        for mail in eml_files_in(&cli.dir.path().join("mail")) {
            let m = Mail::parse(&std::fs::read(&mail).expect("mail file reads"));
            if m.subject.to_ascii_lowercase().contains("password") {
                *delivered.entry(m.to).or_insert(0usize) += 1;
            }
        }
        if delivered.values().sum::<usize>() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for a in &accounts {
        assert_eq!(
            delivered.get(&a.email).copied().unwrap_or(0),
            a.changes,
            "{}: every password change's mail delivered exactly once",
            a.username
        );
    }
    assert!(
        server.terminate(Duration::from_secs(30)).await,
        "a SIGTERM stops the server cleanly"
    );
    let acknowledged: usize = accounts.iter().map(|a| a.acknowledged).sum();
    eprintln!(
        "campaign: {cycles} kills survived; {acknowledged} acknowledged changes and {cut_off} cut-off ones checked; {expected} mails each delivered once"
    );
    assert!(acknowledged > 0, "the load made changes");
}
