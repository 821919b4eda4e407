//! Operations: `/metrics` on the internal listener, request ids and JSON logs, the
//! online backup and its restore, and a clean stop.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;

fn request_id(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn metrics_count_sign_ins_lockouts_lookups_and_requests_by_route_without_personal_labels() {
    // An SMTP server that is not there keeps mail queued, so the outbox has an age.
    let app = spawn_app_with(&[("mail", "smtp://127.0.0.1:9"), ("mail_poll", "1h")]).await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..6 {
        b.login(USER, "Wrong-Password-99").await;
    }
    b.forgot_password(USER).await;
    for _ in 0..100 {
        if metric(&app.metrics().await, "dialtone_outbox_depth") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.advance(Duration::from_secs(700));
    plain_client()
        .get(app.url("/no-such-page/201-wickedsprockets?token=secret"))
        .send()
        .await
        .unwrap();
    let at = app.internal.unwrap();
    let lookup = plain_client()
        .get(format!(
            "http://{at}/pbx/v1/sip-credentials?user=201&domain=x.example"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), StatusCode::UNAUTHORIZED);

    let text = app.metrics().await;
    assert!(
        metric(&text, "dialtone_sign_ins_total{outcome=\"wrong_password\"}").unwrap() >= 5.0,
        "{text}"
    );
    assert!(
        metric(&text, "dialtone_sign_ins_total{outcome=\"locked\"}").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "dialtone_lockouts_total").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "dialtone_pbx_lookups_total{outcome=\"unauthorized\"}"
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("dialtone_pbx_lookup_duration_seconds_bucket{outcome=\"unauthorized\",le="),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "dialtone_http_requests_total{listener=\"public\",route=\"/login\",status=\"200\"}"
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "dialtone_http_requests_total{listener=\"public\",route=\"unmatched\",status=\"404\"}"
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(
        text.contains(
            "dialtone_http_request_duration_seconds_bucket{listener=\"public\",route=\"/login\""
        ),
        "{text}"
    );
    assert_eq!(metric(&text, "dialtone_outbox_depth"), Some(1.0), "{text}");
    assert_eq!(
        metric(&text, "dialtone_outbox_oldest_age_seconds"),
        Some(700.0),
        "{text}"
    );
    assert!(metric(&text, "dialtone_hashing_in_use").is_some(), "{text}");
    assert!(metric(&text, "dialtone_hashing_queued").is_some(), "{text}");
    assert!(
        text.contains("# TYPE dialtone_hashing_shed_total counter")
            || !text.contains("dialtone_hashing_shed_total")
    );
    for personal in [
        "wickedsprockets",
        "127.0.0.1",
        "example.com",
        "secret",
        "no-such-page",
    ] {
        assert!(
            !text.contains(personal),
            "{personal} appears in the metrics:\n{text}"
        );
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("dialtone_"), "{line}");
    }
}

#[tokio::test]
async fn every_response_carries_its_own_request_id_and_the_500_page_shows_it() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let first = request_id(&b.get("/login").await);
    let second = request_id(&b.get("/no-such-page").await);
    assert_eq!(first.len(), 16);
    assert!(first.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(first, second);
    let at = app.internal.unwrap();
    let internal = plain_client()
        .get(format!("http://{at}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&internal).len(), 16);

    // A client cannot choose its id (it would write into the log).
    let chosen = plain_client()
        .get(app.url("/login"))
        .header("x-request-id", "forged-id")
        .send()
        .await
        .unwrap();
    assert_ne!(request_id(&chosen), "forged-id");

    app.break_sessions_table().await;
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = request_id(&r);
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("reference {id}")), "{page}");
    for leak in [
        "sessions",
        "sqlx",
        "no such table",
        "does not exist",
        "database",
    ] {
        assert!(!page.contains(leak), "the 500 page shows {leak:?}");
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_request_fields() {
    let cli = Cli::new().await;
    let port = free_port();
    let mut child = cli
        .command()
        .arg("serve")
        .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
        .env("DIALTONE_INTERNAL_LISTEN", "off")
        .env("DIALTONE_LOG_FORMAT", "json")
        .env("DIALTONE_LOG", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let b = Browser::at(&format!("http://127.0.0.1:{port}"));
    let mut id = None;
    for _ in 0..600 {
        if let Ok(r) = b
            .client
            .get(format!("http://127.0.0.1:{port}/login"))
            .send()
            .await
        {
            id = Some(request_id(&r));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = id.expect("the server answers");
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "a SIGTERM stops the server cleanly");
    let lines = lines.join().unwrap();
    assert!(!lines.is_empty());
    let mut found = false;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(v.get(field).is_some(), "{field} missing in {line}");
        }
        if v["span"]["request_id"] == id.as_str() && v["message"] == "request finished" {
            assert_eq!(v["span"]["route"], "/login");
            assert_eq!(v["status"], 200);
            assert!(v["latency_ms"].as_f64().is_some(), "{line}");
            found = true;
        }
    }
    assert!(found, "no line for request {id}: {lines:#?}");

    let mut cmd = cli.command();
    let out = cmd
        .args(["user", "unlock", USER])
        .env("DIALTONE_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("DIALTONE_LOG_FORMAT"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_backup_into_a_missing_folder_or_of_a_missing_database_says_so_and_makes_nothing() {
    let cli = Cli::new().await;
    if cli.database_url.is_some() {
        return; // PostgreSQL is backed up with pg_dump (tested beside).
    }
    let made = cli.run(
        &["tenant", "add", TENANT, "--name", "Wicked Sprockets"],
        None,
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let nowhere = cli.dir.path().join("no-such-folder").join("copy.db");
    let out = cli.run(&["backup", &nowhere.display().to_string()], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no folder"),
        "{}",
        text(&out.stderr)
    );
    assert!(!nowhere.parent().unwrap().exists());

    // A mistyped data directory: no database there to copy, and none made.
    let typo = cli.dir.path().join("dta");
    let copy = cli.dir.path().join("copy.db");
    let out = cli
        .command()
        .args(["backup", &copy.display().to_string()])
        .env("DIALTONE_DATA_DIR", &typo)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no database"),
        "{}",
        text(&out.stderr)
    );
    assert!(!typo.exists() && !copy.exists());
}

#[tokio::test]
async fn a_backup_taken_under_write_load_passes_its_check_and_restores() {
    let cli = Cli::new().await;
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    ok(cli.run(
        &["tenant", "add", TENANT, "--name", "Wicked Sprockets"],
        None,
    ));
    ok(cli.run(
        &[
            "user",
            "add",
            USER,
            "--name",
            "Backup Caller",
            "--password-stdin",
        ],
        Some(PASSWORD),
    ));
    let backup = cli.dir.path().join("copy.db");
    let backup_arg = backup.display().to_string();
    if cli.database_url.is_some() {
        let out = cli.run(&["backup", &backup_arg], None);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("pg_dump"),
            "{}",
            text(&out.stderr)
        );
        assert!(!backup.exists());
        return;
    }

    let mut server = cli.serve(&[]).await;
    // Writers change passwords the whole time the copy is taken.
    let base = server.base.clone();
    let load = tokio::spawn(async move {
        let mut current = PASSWORD.to_owned();
        let mut changes = 0;
        for n in 0..15 {
            let b = FallibleBrowser::at(&base);
            assert!(b.sign_in(USER, &current).await.unwrap());
            let new = format!("Lantern-Backup-{n}");
            assert!(b.change_password(&current, &new).await.unwrap());
            current = new;
            changes += 1;
        }
        (current, changes)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cmd = cli.command();
    cmd.args(["backup", &backup_arg]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let printed = ok(out);
    assert!(printed.contains("integrity check passed"), "{printed}");
    assert!(printed.contains("data key file"), "{printed}");
    let (last, changes) = load.await.unwrap();
    assert_eq!(changes, 15);
    assert_eq!(sqlite_file_integrity(&backup).await, "ok");
    // The copy holds password hashes and sealed secrets: only the portal's user reads it.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "backup mode {mode:o}");
    }
    // Refuses to write over a file.
    let again = cli.run(&["backup", &backup_arg], None);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));

    // Restore as the README says: stop, put the copy in place, start.
    assert!(server.terminate(Duration::from_secs(30)).await);
    let db = cli.dir.path().join("dialtone.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&backup, &db).unwrap();
    // The copy holds the password of some moment during the load; finding which takes
    // wrong tries, so this restart allows them.
    let server = cli
        .serve(&[
            ("DIALTONE_LOCKOUT_ATTEMPTS", "100"),
            ("DIALTONE_ADDRESS_ATTEMPTS", "100"),
        ])
        .await;
    let b = FallibleBrowser::at(&server.base);
    let mut candidates = vec![PASSWORD.to_owned()];
    candidates.extend((0..15).map(|n| format!("Lantern-Backup-{n}")));
    let mut works = 0;
    for p in &candidates {
        if b.sign_in(USER, p).await.unwrap() {
            works += 1;
        }
    }
    assert_eq!(
        works, 1,
        "the restored database holds exactly one of the passwords"
    );
    let _ = last;
}
