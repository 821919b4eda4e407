//! `dialtone api-token` and `dialtone tenant suspend|resume`, run as a real process.

mod common;

use common::{text, Cli};

#[tokio::test]
async fn api_tokens_are_made_once_listed_and_revoked_from_the_command_line() {
    let cli = Cli::new().await;
    let out = cli.run(&["api-token", "add", "billing"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).lines().last().unwrap().trim().to_owned();
    assert_eq!(token.len(), 43);
    let again = cli.run(&["api-token", "add", "billing"], None);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));
    let list = text(&cli.run(&["api-token", "list"], None).stdout);
    assert!(list.contains("billing") && list.contains("never used") && !list.contains(&token));
    assert!(cli
        .run(&["api-token", "revoke", "billing"], None)
        .status
        .success());
    let gone = cli.run(&["api-token", "revoke", "billing"], None);
    assert!(!gone.status.success());
    assert!(text(&gone.stderr).contains("no API token named billing"));
}

#[tokio::test]
async fn a_tenant_is_suspended_and_resumed_from_the_command_line() {
    let cli = Cli::new().await;
    assert!(cli
        .run(&["tenant", "add", "acme", "--name", "Acme"], None)
        .status
        .success());
    let out = cli.run(&["tenant", "suspend", "acme"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Suspended tenant acme"));
    let out = cli.run(&["tenant", "resume", "acme"], None);
    assert!(text(&out.stdout).contains("Resumed tenant acme"));
    let missing = cli.run(&["tenant", "suspend", "nosuch"], None);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no such tenant"));
}
