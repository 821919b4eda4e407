//! The `dialtone` command line, run as a real process against a real database.

mod common;

use common::{text, Cli};

#[tokio::test]
async fn tenants_users_and_operators_are_created_from_the_command_line() {
    let cli = Cli::new().await;
    let out = cli.run(&["tenant", "add", "Acme", "--name", "Acme Ltd"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("acme"));

    let out = cli.run(
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

    let out = cli.run(
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

    let out = cli.run(&["user", "unlock", "200-acme"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = cli.run(
        &["operator", "add", "olga", "--password-stdin"],
        Some("Operator-Pass-99"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn failures_print_one_line_and_exit_non_zero() {
    let cli = Cli::new().await;
    assert!(cli
        .run(&["tenant", "add", "acme", "--name", "Acme"], None)
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
        // What clap refuses is one line too, naming what is wrong.
        (vec!["user", "add", "204-acme"], None, "--name"),
        (vec!["user", "frobnicate"], None, "frobnicate"),
        (vec!["backup"], None, "<path>"),
        (
            vec!["operator", "add", "ops2admin", "--password-stdin"],
            Some("Ops2Admin\n"),
            "not allowed",
        ),
    ] {
        let out = cli.run(&args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.to_lowercase().contains(expect), "{args:?}: {err}");
    }
    let out = cli.run(&["user", "add", "201-acme", "--name", "Sam"], None);
    assert!(out.status.success());
    let out = cli.run(&["user", "add", "201-acme", "--name", "Sam"], None);
    assert!(text(&out.stderr).contains("already exists"));
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_named_with_its_cause() {
    let cli = Cli::new().await;
    let out = cli
        .command()
        .args(["pbx", "token", "list"])
        .env(
            "DIALTONE_DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/dialtone",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_naming_it() {
    let cli = Cli::new().await;
    for (var, value) in [
        ("DIALTONE_SESSION_IDLE", "0s"),
        ("DIALTONE_LOCKOUT_ATTEMPTS", "many"),
        ("DIALTONE_SESION_IDLE", "4h"),
        ("DIALTONE_HASH_WORKERS", "100000"),
        ("DIALTONE_LOG", "bad[[["),
    ] {
        let out = cli
            .command()
            .args(["serve"])
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
    std::fs::write(
        cli.dir.path().join("dialtone.toml"),
        "session_max = \"1h\"\n",
    )
    .unwrap();
    let out = cli.command().args(["serve"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("session_max"));
}

#[tokio::test]
async fn reset_password_prints_a_temporary_password_or_queues_a_link() {
    let cli = Cli::new().await;
    assert!(cli
        .run(&["tenant", "add", "acme", "--name", "Acme"], None)
        .status
        .success());
    assert!(cli
        .run(
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
    assert!(cli
        .run(&["user", "add", "202-acme", "--name", "Kim"], None)
        .status
        .success());

    let out = cli.run(&["user", "reset-password", "201-acme"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Temporary password for 201-acme"));

    let out = cli.run(&["user", "reset-password", "201-acme", "--link"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("queued"));
    for _ in 0..2 {
        let out = cli.run(&["user", "reset-password", "201-acme", "--link"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = cli.run(&["user", "reset-password", "201-acme", "--link"], None);
    assert!(!out.status.success(), "a fourth link in 15 minutes");
    assert!(text(&out.stderr).contains("already sent 3 reset emails"));

    let out = cli.run(&["user", "reset-password", "202-acme", "--link"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no email on file"));
    let out = cli.run(&["user", "reset-password", "299-acme"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no user"));
}
