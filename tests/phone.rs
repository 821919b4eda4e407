//! Phone credentials: the SIP secret (hidden until revealed with a recent sign-in,
//! regenerated on request) and the voicemail PIN, sealed at rest under a rotatable key and
//! kept apart from the portal password.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn the_sip_secret_is_hidden_until_revealed_and_the_reveal_is_audited() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let secret = app
        .phone_secrets_of(USER)
        .await
        .0
        .expect("every user has a SIP secret");
    assert!(
        secret.len() >= 22 && secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "128+ bits a phone accepts"
    );

    let page = b.get("/phone").await.text().await.unwrap();
    assert!(page.contains("wickedsprockets.sip.localhost"));
    assert!(page.contains("(hidden)"));
    assert!(!page.contains(&secret));

    let r = b.post("/phone/sip/reveal", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().await.unwrap().contains(&secret));
    let events = app.audit_events("sip.revealed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some(USER));
    assert!(
        !format!("{events:?}").contains(&secret),
        "no secret in the audit log"
    );
}

#[tokio::test]
async fn revealing_long_after_sign_in_asks_for_the_password_again() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let secret = app.phone_secrets_of(USER).await.0.unwrap();
    app.advance(Duration::from_secs(16 * 60));

    assert!(b
        .get("/phone")
        .await
        .text()
        .await
        .unwrap()
        .contains("confirm your password"));
    // A form error (DESIGN: 422), said at the password field.
    let r = b.post("/phone/sip/reveal", &[]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(!body.contains(&secret));
    assert!(
        body.contains("aria-describedby=\"reveal-hint reveal-error\""),
        "{body}"
    );
    let r = b
        .post("/phone/sip/reveal", &[("password", "Wrong-Password-1")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(!body.contains(&secret));
    assert!(body.contains("id=\"reveal-error\""), "{body}");

    let r = b.post("/phone/sip/reveal", &[("password", PASSWORD)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&secret));
    // The password was just proven, so the next reveal needs nothing more.
    let r = b.post("/phone/sip/reveal", &[]).await;
    assert!(r.text().await.unwrap().contains(&secret));
    assert_eq!(app.audit_count("sip.revealed").await, 2);
}

#[tokio::test]
async fn regenerating_the_sip_secret_keeps_portal_sessions() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let other = app.signed_in(USER).await;
    let before = app.phone_secrets_of(USER).await.0.unwrap();

    let r = b.post("/phone/sip/regenerate", &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the warning must be acknowledged"
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<details open>"),
        "the form stays open: {body}"
    );
    assert!(
        body.contains("aria-describedby=\"regenerate-error\""),
        "{body}"
    );
    assert_eq!(app.phone_secrets_of(USER).await.0.unwrap(), before);

    let r = b.post("/phone/sip/regenerate", &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = app.phone_secrets_of(USER).await.0.unwrap();
    assert_ne!(after, before);
    assert_eq!(
        other.get("/phone").await.status(),
        StatusCode::OK,
        "portal sessions stay"
    );
    assert_eq!(app.audit_count("sip.regenerated").await, 1);
}

#[tokio::test]
async fn changing_or_resetting_the_portal_password_keeps_the_sip_secret_and_pin() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    assert_eq!(
        b.change_pin("8352", "8352").await.status(),
        StatusCode::SEE_OTHER
    );
    let before = app.phone_secrets_of(USER).await;
    assert_eq!(before.1.as_deref(), Some("8352"));

    assert_eq!(
        b.change_password(PASSWORD, NEW, NEW).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.phone_secrets_of(USER).await, before);

    b.forgot_password(USER).await;
    let mail = app
        .wait_for_mail(2)
        .await
        .into_iter()
        .find(|m| !m.links().is_empty())
        .unwrap();
    let token = token_of(&mail.links()[0]);
    let r = b
        .reset_password(&token, "201@example.com", "Another-Pass-88")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.phone_secrets_of(USER).await, before);
}

#[tokio::test]
async fn every_pin_rule_has_its_message_and_a_refused_pin_changes_nothing() {
    let app = spawn_app().await;
    app.add_user("20145-wickedsprockets", PASSWORD).await;
    let b = app.signed_in("20145-wickedsprockets").await;
    for (pin, confirm, message) in [
        ("12", "12", "at least 4 digits"),
        ("12345678901", "12345678901", "at most 10 digits"),
        ("12a4", "12a4", "only the digits"),
        ("7777", "7777", "repeat one digit"),
        ("3456", "3456", "run of consecutive digits"),
        ("6543", "6543", "run of consecutive digits"),
        ("20145", "20145", "extension number"),
        ("8352", "8353", "do not match"),
    ] {
        let r = b.change_pin(pin, confirm).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{pin}");
        let body = r.text().await.unwrap();
        assert!(body.contains(message), "{pin}: expected {message}");
    }
    assert_eq!(app.phone_secrets_of("20145-wickedsprockets").await.1, None);
    let r = b.change_pin("8352", "8352").await;
    assert_eq!(location(&r), "/settings?saved=pin");
    assert!(b
        .get("/settings?saved=pin")
        .await
        .text()
        .await
        .unwrap()
        .contains("voicemail PIN was changed"));
    assert_eq!(app.audit_count("pin.changed").await, 1);
}

#[tokio::test]
async fn a_portal_password_may_not_contain_the_pin_or_the_sip_secret() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    b.change_pin("8352", "8352").await;
    let sip = app.phone_secrets_of(USER).await.0.unwrap();
    for new in ["Gearbox-8352-x".to_owned(), format!("Xy{sip}")] {
        let r = b.change_password(PASSWORD, &new, &new).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("voicemail PIN or SIP secret"));
    }
}

#[tokio::test]
async fn an_admin_sets_a_pin_and_regenerates_the_sip_secret_of_their_users_only() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    app.add_user("555-othercorp", PASSWORD).await;
    let admin = app.signed_in(ADMIN).await;
    let before = app.phone_secrets_of(USER).await.0.unwrap();

    let r = admin
        .post(
            "/admin/users/201/pin",
            &[("new_pin", "8352"), ("confirm_pin", "8352")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = admin
        .post("/admin/users/201/sip-secret", &[("confirm", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = app.phone_secrets_of(USER).await;
    assert_eq!(after.1.as_deref(), Some("8352"));
    assert_ne!(after.0.unwrap(), before);

    // Refusals are said at their fields.
    let r = admin
        .post(
            "/admin/users/201/pin",
            &[("new_pin", "201"), ("confirm_pin", "2010")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"admin-new-pin-error\""), "{body}");
    assert!(body.contains("id=\"admin-confirm-pin-error\""), "{body}");
    let r = admin.post("/admin/users/201/sip-secret", &[]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"admin-sip-confirm-error\""), "{body}");
    assert_eq!(app.phone_secrets_of(USER).await.1.as_deref(), Some("8352"));

    let other = app.phone_secrets_of("555-othercorp").await;
    assert_eq!(
        admin
            .post(
                "/admin/users/555/pin",
                &[("new_pin", "8352"), ("confirm_pin", "8352")]
            )
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .post("/admin/users/555/sip-secret", &[("confirm", "yes")])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.phone_secrets_of("555-othercorp").await, other);
}

#[tokio::test]
async fn a_secret_moved_onto_another_users_row_does_not_open() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_user("202-wickedsprockets", PASSWORD).await;
    let pool = app.raw_database().await;
    sqlx::query("UPDATE users SET sip_secret = (SELECT sip_secret FROM users WHERE extension = '201') WHERE extension = '202'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    assert!(app
        .try_phone_secrets_of("202-wickedsprockets")
        .await
        .is_err());
    let b = app.signed_in("202-wickedsprockets").await;
    // The tab itself never opens the secret; revealing it does, and fails.
    assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    let r = b.post("/phone/sip/reveal", &[]).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Something went wrong") && !body.contains("sealed"),
        "nothing internal leaks"
    );
}

#[tokio::test]
async fn key_rotation_keeps_every_secret_readable_under_the_new_key() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    b.change_pin("8352", "8352").await;
    app.add_user("202-wickedsprockets", PASSWORD).await;
    let before = (
        app.phone_secrets_of(USER).await,
        app.phone_secrets_of("202-wickedsprockets").await,
    );

    let (id, changed) = app.rotate_key().await;
    assert_eq!(id, 2);
    assert_eq!(changed, 2);
    assert_eq!(
        (
            app.phone_secrets_of(USER).await,
            app.phone_secrets_of("202-wickedsprockets").await
        ),
        before
    );
    let pool = app.raw_database().await;
    let sealed: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT sip_secret FROM users")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(sealed
        .iter()
        .all(|(s,)| dialtone::auth::keyring::key_id(s) == Some(2)));

    // Sign-ins and pages keep working, and a restarted node reads the rotated file.
    b.login_ok(USER, PASSWORD).await;
    let app = app.restart_with(&[]).await;
    assert_eq!(app.phone_secrets_of(USER).await, before.0);
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn a_wrong_or_missing_key_stops_start_up() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let key_file = app.data_dir.path().join("secret.key");
    let original = std::fs::read(&key_file).unwrap();

    std::fs::write(&key_file, format!("1 {}\n", "ab".repeat(32))).unwrap();
    let err = app.build_node().await.expect_err("a wrong key is refused");
    assert!(format!("{err:#}").contains("different key"), "{err:#}");

    std::fs::remove_file(&key_file).unwrap();
    let err = app
        .build_node()
        .await
        .expect_err("a missing key is refused");
    assert!(format!("{err:#}").contains("missing"), "{err:#}");
    assert!(!key_file.exists(), "no new key is made silently");

    std::fs::write(&key_file, original).unwrap();
    assert!(app.build_node().await.is_ok());
}

#[tokio::test]
async fn the_raw_database_never_holds_a_sip_secret_or_pin_in_clear() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    b.change_pin("83529174", "83529174").await;
    let (sip, pin) = app.phone_secrets_of(USER).await;
    let (sip, pin) = (sip.unwrap(), pin.unwrap());
    let everything = if app.database_url().starts_with("sqlite:") {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("dialtone.db")
            {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        let pool = app.raw_database().await;
        let mut text = String::new();
        for table in ["users", "audit_events", "outbox", "sessions"] {
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT CAST(t AS TEXT) FROM {table} t"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            for (r,) in rows {
                text.push_str(&r);
            }
        }
        pool.close().await;
        text
    };
    assert!(
        everything.contains("wickedsprockets"),
        "the scan sees the data"
    );
    assert!(!everything.contains(&sip), "SIP secret in clear");
    assert!(!everything.contains(&pin), "PIN in clear");
}
