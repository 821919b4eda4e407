//! Password recovery by email: the same answer whatever exists, one message per address,
//! links that work once for an hour, and what a reset clears.

mod common;

use std::time::Duration;

use common::*;
use dialtone::domain::Role;
use reqwest::StatusCode;

/// Asks for `USER`'s reset link in `b`; the link as mailed.
async fn mailed_link(app: &TestApp, b: &Browser) -> String {
    b.forgot_password(USER).await;
    app.wait_for_mail(1).await[0].links()[0].clone()
}

#[tokio::test]
async fn a_forgotten_password_is_recovered_from_the_mail_file() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();

    let r = b.forgot_password(USER).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.contains("If an account matches, we sent a reset link to its email. The link works once, for 1 hour."));

    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert_eq!(mail.from, "no-reply@localhost");
    assert!(mail.subject.contains("Reset"));
    assert!(mail.text.contains(USER));
    assert!(mail.text.contains("1 hour"));
    assert!(mail.text.contains("did not ask"));
    assert!(mail.html.contains(&format!("Reset the password of {USER}")));
    let links = mail.links();
    assert_eq!(links.len(), 1);
    assert!(
        links[0].starts_with("http://localhost:8080/password/reset?token="),
        "{}",
        links[0]
    );

    let page = b.get(&path_of(&links[0])).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.text().await.unwrap().contains("Your email address"));

    let r = b
        .reset_password(&token_of(&links[0]), "201@example.com", NEW)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?reset=done");
    assert!(
        set_cookie(&r, "dialtone_session").is_none(),
        "no automatic sign-in"
    );
    assert!(b
        .get("/login?reset=done")
        .await
        .text()
        .await
        .unwrap()
        .contains("Your password was changed"));

    b.login_ok(USER, NEW).await;
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let notice = app.wait_for_mail(2).await.remove(1);
    assert_eq!(notice.to, "201@example.com");
    assert!(notice.subject.contains("was reset"), "{}", notice.subject);
    assert!(
        notice
            .text
            .contains("Every session of this account was signed out"),
        "a reset ends them all: {}",
        notice.text
    );
    assert!(notice.links().is_empty());
    assert_eq!(app.audit_count("reset.requested").await, 1);
    assert_eq!(app.audit_count("reset.used").await, 1);
}

#[tokio::test]
async fn the_answer_is_the_same_for_existing_unknown_email_less_and_locked_accounts() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_user("203-wickedsprockets", PASSWORD).await;
    // 202 has no email on file.
    app.add_person("202-wickedsprockets", "No Mail", None, Role::User, None)
        .await;
    let b = app.browser();
    for _ in 0..5 {
        b.login("203-wickedsprockets", "Wrong-Password-1").await;
    }
    let _ = b.csrf().await;

    let mut answers = Vec::new();
    for id in [
        USER,
        "999-wickedsprockets",
        "202-wickedsprockets",
        "203-wickedsprockets",
        "nobody@example.com",
        "201@example.com",
    ] {
        let r = b.forgot_password(id).await;
        answers.push((
            r.status(),
            r.text()
                .await
                .unwrap()
                .replace(&format!("value=\"{id}\""), ""),
        ));
    }
    for a in &answers[1..] {
        assert_eq!(a, &answers[0]);
    }
    // 201 twice (by username and by email) and the locked 203; nothing for the others.
    let mails = app.wait_for_mail(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mail_files().len(), 3);
    assert!(mails
        .iter()
        .all(|m| m.to == "201@example.com" || m.to == "203@example.com"));
}

#[tokio::test]
async fn one_address_on_several_extensions_gets_one_message_with_a_link_each() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    for ext in ["204", "205"] {
        app.add_person(
            &format!("{ext}-wickedsprockets"),
            "Front Desk",
            Some("desk@example.com"),
            Role::User,
            Some(PASSWORD),
        )
        .await;
    }
    let b = app.browser();
    b.forgot_password("DESK@example.com").await;
    let mail = app.wait_for_mail(1).await.remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mail_files().len(), 1, "one message for the address");
    assert!(mail.text.contains("204-wickedsprockets") && mail.text.contains("205-wickedsprockets"));
    let links = mail.links();
    assert_eq!(links.len(), 2);
    assert_ne!(links[0], links[1]);

    // Each link resets its own account only.
    let r = b
        .reset_password(&token_of(&links[0]), "desk@example.com", NEW)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.browser().login_ok("204-wickedsprockets", NEW).await;
    app.browser()
        .login_ok("205-wickedsprockets", PASSWORD)
        .await;
    assert_eq!(
        b.get(&path_of(&links[1])).await.status(),
        StatusCode::OK,
        "the other account's link still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_submits_of_one_link_succeed_exactly_once() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let token = token_of(&mailed_link(&app, &b).await);
    let csrf = b.csrf().await;

    let submits = (0..20).map(|i| {
        let b = b.clone();
        let token = token.clone();
        let csrf = csrf.clone();
        tokio::spawn(async move {
            let new = format!("Gearbox-Sunday-{i:02}");
            let r = b
                .post_raw(
                    "/password/reset",
                    &[
                        ("token", &token),
                        ("email", "201@example.com"),
                        ("new_password", &new),
                        ("confirm_password", &new),
                        ("csrf_token", &csrf),
                    ],
                )
                .await;
            (r.status(), new)
        })
    });
    let mut outcomes = Vec::new();
    for s in submits {
        outcomes.push(s.await.unwrap());
    }
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::SEE_OTHER)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for (status, _) in &outcomes {
        assert!(
            [
                StatusCode::SEE_OTHER,
                StatusCode::GONE,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(status),
            "{status}"
        );
    }
    app.browser().login_ok(USER, &winners[0].1).await;
    assert_eq!(app.audit_count("reset.used").await, 1);
}

#[tokio::test]
async fn a_link_expires_after_one_hour() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let link = mailed_link(&app, &b).await;

    app.advance(Duration::from_secs(59 * 60));
    assert_eq!(b.get(&path_of(&link)).await.status(), StatusCode::OK);
    app.advance(Duration::from_secs(60));
    let r = b.get(&path_of(&link)).await;
    assert_eq!(r.status(), StatusCode::GONE);
    let body = r.text().await.unwrap();
    assert!(body.contains("cannot be used"));
    assert!(body.contains("href=\"/password/forgot\""));
    assert_eq!(
        b.reset_password(&token_of(&link), "201@example.com", NEW)
            .await
            .status(),
        StatusCode::GONE
    );
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn opening_a_link_does_not_use_it_but_a_reset_does() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let link = mailed_link(&app, &b).await;
    for _ in 0..3 {
        assert_eq!(
            app.browser().get(&path_of(&link)).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        b.reset_password(&token_of(&link), "201@example.com", NEW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.get(&path_of(&link)).await.status(), StatusCode::GONE);
    assert_eq!(
        b.reset_password(&token_of(&link), "201@example.com", "Another-Pass-88")
            .await
            .status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn tampered_links_get_the_start_over_page() {
    let app = spawn_app().await;
    let b = app.browser();
    for token in ["", "abc", &"A".repeat(43), "%00%00"] {
        let r = b.get(&format!("/password/reset?token={token}")).await;
        assert_eq!(r.status(), StatusCode::GONE, "{token}");
    }
}

#[tokio::test]
async fn the_form_needs_the_email_on_file_and_a_good_password_and_then_changes_nothing() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let token = token_of(&mailed_link(&app, &b).await);

    let r = b.reset_password(&token, "someone@else.example", NEW).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not the email address on file"));

    let r = b.reset_password(&token, "201@example.com", "short").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("at least 8 characters"));

    app.browser().login_ok(USER, PASSWORD).await;
    assert_eq!(
        b.reset_password(&token, "201@EXAMPLE.com", NEW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_reset_ends_every_session_kills_other_links_and_clears_the_lock() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let signed_in = app.signed_in(USER).await;
    let b = app.browser();
    b.forgot_password(USER).await;
    b.forgot_password(USER).await;
    let mails = app.wait_for_mail(2).await;
    let (first, second) = (mails[0].links()[0].clone(), mails[1].links()[0].clone());
    for _ in 0..5 {
        b.login(USER, "Wrong-Password-1").await;
    }
    assert_eq!(
        b.login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    assert_eq!(
        b.reset_password(&token_of(&second), "201@example.com", NEW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        signed_in.get("/phone").await.status(),
        StatusCode::SEE_OTHER,
        "sessions ended"
    );
    assert_eq!(app.sessions_of(USER).await, 0);
    assert_eq!(
        b.get(&path_of(&first)).await.status(),
        StatusCode::GONE,
        "other links die"
    );
    b.login_ok(USER, NEW).await;
}

#[tokio::test]
async fn a_forged_host_header_does_not_change_the_link() {
    let app = spawn_app_with(&[("public_url", "http://portal.example.test:8080")]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let csrf = b.csrf().await;
    let r = b
        .client
        .post(app.url("/password/forgot"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .form(&[
            ("identifier", USER),
            ("action", "reset"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mail = app.wait_for_mail(1).await.remove(0);
    assert!(mail.links()[0].starts_with("http://portal.example.test:8080/password/reset?token="));
    assert!(!mail.text.contains("evil.example") && !mail.html.contains("evil.example"));
}

#[tokio::test]
async fn at_most_three_reset_mails_per_account_per_fifteen_minutes() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let first = b.forgot_password(USER).await.text().await.unwrap();
    for _ in 0..4 {
        assert_eq!(
            b.forgot_password(USER).await.text().await.unwrap(),
            first,
            "same answer when limited"
        );
    }
    app.wait_for_mail(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mail_files().len(), 3);
    assert_eq!(app.audit_count("reset.limited").await, 2);

    app.advance(Duration::from_secs(15 * 60 + 1));
    b.forgot_password(USER).await;
    app.wait_for_mail(4).await;
}

#[tokio::test]
async fn usernames_are_mailed_to_the_address_on_file() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let r = b
        .post(
            "/password/forgot",
            &[("identifier", "201@example.com"), ("action", "usernames")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("If an account matches, we sent the usernames on file to its email."));
    let mail = app.wait_for_mail(1).await.remove(0);
    assert!(mail.text.contains(USER));
    assert!(mail.text.contains("Client ID wickedsprockets"));
    assert!(
        mail.links().is_empty(),
        "no reset link in a username reminder"
    );

    // An address on accounts of two customers gets one reminder per customer, each
    // naming only that customer's usernames.
    app.add_person(
        "101-acme",
        "Sam at Acme",
        Some("201@example.com"),
        Role::User,
        Some(PASSWORD),
    )
    .await;
    b.post(
        "/password/forgot",
        &[("identifier", "201@example.com"), ("action", "usernames")],
    )
    .await;
    let mails = app.wait_for_mail(3).await;
    let (acme, ours): (Vec<_>, Vec<_>) =
        mails[1..].iter().partition(|m| m.text.contains("101-acme"));
    assert_eq!((acme.len(), ours.len()), (1, 1), "one message per tenant");
    assert!(!acme[0].text.contains(USER));
    assert!(ours[0].text.contains(USER) && !ours[0].text.contains("acme"));
}

#[tokio::test]
async fn a_malformed_identifier_is_a_form_error() {
    let app = spawn_app().await;
    let r = app.browser().forgot_password("not an account").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("username (like 201-wickedsprockets) or the email address"));
}

#[tokio::test]
async fn a_password_change_mails_a_notice_and_kills_outstanding_links() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let link = mailed_link(&app, &b).await;
    b.login_ok(USER, PASSWORD).await;
    assert_eq!(
        b.change_password(PASSWORD, NEW, NEW).await.status(),
        StatusCode::SEE_OTHER
    );
    let notice = app.wait_for_mail(2).await.remove(1);
    assert!(notice.subject.contains("was changed"));
    assert_eq!(
        app.browser().get(&path_of(&link)).await.status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn queued_bodies_are_sealed_and_dropped_once_sent() {
    // A relay nobody listens on keeps the message queued.
    let app = spawn_app_with(&[("mail", "smtp://127.0.0.1:9?tls=none")]).await;
    app.add_user(USER, PASSWORD).await;
    app.browser().forgot_password(USER).await;
    let records = app.wait_for_queued(1).await;
    assert_eq!(records.len(), 1);
    assert!(records[0].has_body);
    // Read the row as anyone with a copy of the database would.
    let pool = app.raw_database().await;
    let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as("SELECT body_text, body_html FROM outbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), 1);
    for body in [&rows[0].0, &rows[0].1] {
        let raw = String::from_utf8_lossy(body);
        assert!(
            !raw.contains("token=") && !raw.contains(USER),
            "sealed at rest"
        );
    }

    let app = app.restart_with(&[]).await;
    app.advance(Duration::from_secs(3600));
    app.wait_for_mail(1).await;
    let records = app.wait_for_mail_settled().await;
    assert_eq!(records[0].status, "sent");
    assert!(
        !records[0].has_body,
        "the body with the link is dropped once sent"
    );
}

#[tokio::test]
async fn five_wrong_email_answers_spend_the_link() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let token = token_of(&mailed_link(&app, &b).await);
    for _ in 0..4 {
        assert_eq!(
            b.reset_password(&token, "guess@example.com", NEW)
                .await
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        b.reset_password(&token, "guess@example.com", NEW)
            .await
            .status(),
        StatusCode::GONE
    );
    assert_eq!(
        b.reset_password(&token, "201@example.com", NEW)
            .await
            .status(),
        StatusCode::GONE
    );
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn the_browser_that_used_the_link_gets_in_while_others_keep_guessing() {
    // A user who resets because someone keeps locking their name: the lock the reset
    // cleared comes back with the next five guesses, but the browser that used the link
    // (and knew the email on file) is trusted under the new password.
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let link = mailed_link(&app, &b).await;
    let r = b
        .reset_password(&token_of(&link), "201@example.com", NEW)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.lock_from_elsewhere(USER).await;
    assert_eq!(
        app.browser().login(USER, NEW).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    b.login_ok(USER, NEW).await;
}

#[tokio::test]
async fn a_link_cannot_be_used_to_test_guesses_at_the_current_password() {
    // "The same as your current password" answers whether a guess is the password; with
    // a leaked link and the email on file, that could be asked for an hour. Each such
    // answer costs a guess on the link, as a wrong email does.
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let token = token_of(&mailed_link(&app, &b).await);
    let r = b.reset_password(&token, "201@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("different from your current one"));
    for _ in 0..3 {
        let r = b.reset_password(&token, "guess@example.com", NEW).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(
        b.reset_password(&token, "201@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::GONE,
        "the fifth guess spends the link"
    );
    assert_eq!(
        b.reset_password(&token, "201@example.com", NEW)
            .await
            .status(),
        StatusCode::GONE
    );
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_cannot_beat_the_mail_limit() {
    let app = spawn_app_with(&[]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let csrf = b.csrf().await;
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let b = b.clone();
            let csrf = csrf.clone();
            tokio::spawn(async move {
                b.post_raw(
                    "/password/forgot",
                    &[
                        ("identifier", USER),
                        ("action", "reset"),
                        ("csrf_token", &csrf),
                    ],
                )
                .await
                .status()
            })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    app.wait_for_mail(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.mail_files().len(), 3);
}

#[tokio::test]
async fn mail_that_can_never_be_delivered_is_given_up_audited_and_shown_to_the_admin() {
    // Nothing listens on the relay's port, so every attempt fails.
    let app = spawn_app_with(&[("mail", "smtp://127.0.0.1:9?tls=none")]).await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    app.browser().forgot_password(USER).await;
    app.wait_for_queued(1).await;
    for _ in 0..200 {
        let records = app.mail_records().await;
        if records.iter().any(|m| m.status == "failed") {
            break;
        }
        app.advance(Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let record = app.mail_records().await.remove(0);
    assert_eq!(record.status, "failed");
    assert_eq!(record.attempts, dialtone::mail::worker::MAX_ATTEMPTS);
    assert!(!record.has_body, "the link is dropped with the message");
    assert!(record.last_error.is_some());
    assert_eq!(app.audit_count("mail.failed").await, 1);

    let admin = app.signed_in(ADMIN).await;
    let page = admin.get("/admin/users/201").await.text().await.unwrap();
    assert!(page.contains("badge-danger\">failed"));
    let audit = admin
        .get("/admin/audit?kind=mail.failed")
        .await
        .text()
        .await
        .unwrap();
    assert!(audit.contains("given up after 10 attempt(s)"));
    assert!(!audit.contains("token="), "no link in the audit log");
}
