//! The `dialtone` command line, run as a real process against a real database.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn dialtone(data_dir: &Path, db: &Option<String>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.args(args)
        .env("DIALTONE_DATA_DIR", data_dir)
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = db {
        cmd.env("DIALTONE_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("dialtone runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A data directory and (on PostgreSQL runs) a fresh database shared by one test's commands.
async fn fixture() -> (tempfile::TempDir, Option<String>) {
    let url = match std::env::var("DIALTONE_TEST_DATABASE_URL") {
        Ok(admin) => Some(common::fresh_postgres_database(&admin).await),
        Err(_) => None,
    };
    (tempfile::tempdir().unwrap(), url)
}

#[tokio::test]
async fn tenants_users_and_operators_are_created_from_the_command_line() {
    let (dir, db) = fixture().await;
    let out = dialtone(
        dir.path(),
        &db,
        &["tenant", "add", "Acme", "--name", "Acme Ltd"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("acme"));

    let out = dialtone(
        dir.path(),
        &db,
        &[
            "user",
            "add",
            "201-acme",
            "--name",
            "Sam",
            "--email",
            "sam@acme.example",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Temporary password"), "{stdout}");

    let out = dialtone(
        dir.path(),
        &db,
        &[
            "user",
            "add",
            "200-acme",
            "--name",
            "Ada",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("Sprocket-Tuesday-42\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("Sprocket-Tuesday-42"));

    let out = dialtone(dir.path(), &db, &["user", "unlock", "200-acme"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = dialtone(
        dir.path(),
        &db,
        &["operator", "add", "olga", "--password-stdin"],
        Some("Operator-Pass-99"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn failures_print_one_line_and_exit_non_zero() {
    let (dir, db) = fixture().await;
    assert!(dialtone(
        dir.path(),
        &db,
        &["tenant", "add", "acme", "--name", "Acme"],
        None
    )
    .status
    .success());
    for (args, stdin, expect) in [
        (
            vec!["tenant", "add", "acme", "--name", "Again"],
            None,
            "already exists",
        ),
        (
            vec!["tenant", "add", "9acme", "--name", "Bad"],
            None,
            "tenant code",
        ),
        (
            vec!["user", "add", "201-nosuch", "--name", "X"],
            None,
            "no tenant",
        ),
        (
            vec!["user", "add", "abc-acme", "--name", "X"],
            None,
            "extension",
        ),
        (
            vec!["user", "add", "202-acme", "--name", "X", "--role", "boss"],
            None,
            "role",
        ),
        (
            vec!["user", "add", "203-acme", "--name", "X", "--password-stdin"],
            Some("short\n"),
            "not allowed",
        ),
        (vec!["user", "unlock", "999-acme"], None, "no user"),
    ] {
        let out = dialtone(dir.path(), &db, &args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.to_lowercase().contains(expect), "{args:?}: {err}");
    }
    let out = dialtone(
        dir.path(),
        &db,
        &["user", "add", "201-acme", "--name", "Sam"],
        None,
    );
    assert!(out.status.success());
    let out = dialtone(
        dir.path(),
        &db,
        &["user", "add", "201-acme", "--name", "Sam"],
        None,
    );
    assert!(text(&out.stderr).contains("already exists"));
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("DIALTONE_SESSION_IDLE", "0s"),
        ("DIALTONE_LOCKOUT_ATTEMPTS", "many"),
        ("DIALTONE_SESION_IDLE", "4h"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dialtone"))
            .args(["serve"])
            .env("DIALTONE_DATA_DIR", dir.path())
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(var),
            "{var}: {}",
            text(&out.stderr)
        );
    }
    std::fs::write(dir.path().join("dialtone.toml"), "session_max = \"1h\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dialtone"))
        .args(["serve"])
        .current_dir(dir.path())
        .env("DIALTONE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("session_max"));
}

#[tokio::test]
async fn reset_password_prints_a_temporary_password_or_queues_a_link() {
    let (dir, db) = fixture().await;
    assert!(dialtone(
        dir.path(),
        &db,
        &["tenant", "add", "acme", "--name", "Acme"],
        None
    )
    .status
    .success());
    assert!(dialtone(
        dir.path(),
        &db,
        &[
            "user",
            "add",
            "201-acme",
            "--name",
            "Sam",
            "--email",
            "sam@acme.example"
        ],
        None
    )
    .status
    .success());
    assert!(dialtone(
        dir.path(),
        &db,
        &["user", "add", "202-acme", "--name", "Kim"],
        None
    )
    .status
    .success());

    let out = dialtone(
        dir.path(),
        &db,
        &["user", "reset-password", "201-acme"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Temporary password for 201-acme"));

    let out = dialtone(
        dir.path(),
        &db,
        &["user", "reset-password", "201-acme", "--link"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("queued"));

    let out = dialtone(
        dir.path(),
        &db,
        &["user", "reset-password", "202-acme", "--link"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no email on file"));
    let out = dialtone(
        dir.path(),
        &db,
        &["user", "reset-password", "299-acme"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no user"));
}
