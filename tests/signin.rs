//! Signing in: the username format, one generic failure, the atomic lockout and the
//! per-address slow-down, CSRF and hostile input.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn signing_in_lands_on_the_phone_tab() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();

    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/phone");

    let page = b.get("/phone").await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(body.contains(USER));
    assert!(body.contains("Wicked Sprockets"));
    assert_eq!(app.audit_count("signin.ok").await, 1);
}

#[tokio::test]
async fn the_username_is_trimmed_and_the_tenant_code_is_case_insensitive() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.browser()
        .login_ok(" 201-WickedSprockets ", PASSWORD)
        .await;
}

#[tokio::test]
async fn unknown_users_unknown_tenants_and_wrong_passwords_get_the_same_answer() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let _ = b.csrf().await;

    let mut answers = Vec::new();
    for username in [USER, "999-wickedsprockets", "201-nosuchtenant"] {
        let r = b.login(username, "Wrong-Password-1").await;
        let status = r.status();
        let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().cloned().collect();
        let body = r
            .text()
            .await
            .unwrap()
            .replace(&format!("value=\"{username}\""), "value=\"USERNAME\"");
        answers.push((status, cookies, body));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert!(answers[0].2.contains("do not match"));
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(app.audit_count("signin.failed").await, 3);
}

#[tokio::test]
async fn malformed_usernames_get_a_clear_form_error_and_no_attempt_is_counted() {
    let app = spawn_app().await;
    let b = app.browser();
    let huge = "9".repeat(5000);
    for bad in [
        "",
        "201",
        "wickedsprockets",
        "abc-wickedsprockets",
        "201-",
        "-wickedsprockets",
        "201-9tenant",
        "201-wicked\0sprockets",
        "12345678901-acme",
        huge.as_str(),
        "201-wicked sprockets",
    ] {
        let r = b.login(bad, "Whatever-123").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        let body = r.text().await.unwrap();
        assert!(body.contains("field-error"), "{bad:?}");
        assert!(
            !body.contains("Whatever-123"),
            "the password is never echoed"
        );
    }
    assert_eq!(app.audit_count("signin.failed").await, 0);
}

#[tokio::test]
async fn an_empty_password_is_a_form_error() {
    let app = spawn_app().await;
    let r = app.browser().login(USER, "").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Enter your password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_attempts_check_exactly_five_passwords() {
    // The per-address slow-down would join in after 20; this test is about the username.
    let app = spawn_app_with(&[("address_attempts", "1000")]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let token = b.csrf().await;

    let attempts = (0..50).map(|_| {
        let b = b.clone();
        let token = token.clone();
        tokio::spawn(async move {
            b.post_raw(
                "/login",
                &[
                    ("username", USER),
                    ("password", "Wrong-Password-1"),
                    ("csrf_token", &token),
                ],
            )
            .await
            .status()
        })
    });
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let locked = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(unauthorized, 5, "{statuses:?}");
    assert_eq!(locked, 45, "{statuses:?}");
    assert_eq!(
        app.audit_count("signin.failed").await,
        5,
        "exactly five passwords were checked"
    );
    assert_eq!(app.audit_repeats("signin.locked").await, 45);

    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_locked_account_refuses_even_the_right_password_until_the_lock_ends() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..5 {
        assert_eq!(
            b.login(USER, "Wrong-Password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "900");
    assert!(r.text().await.unwrap().contains("Try again in 15 minutes"));

    app.advance(Duration::from_secs(10 * 60));
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "300");
    assert!(r.text().await.unwrap().contains("Try again in 5 minutes"));

    app.advance(Duration::from_secs(5 * 60));
    b.login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn unknown_usernames_lock_the_same_way() {
    let app = spawn_app().await;
    let b = app.browser();
    for _ in 0..5 {
        assert_eq!(
            b.login("777-ghosts", "Wrong-Password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = b.login("777-ghosts", "Wrong-Password-1").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn failures_spread_beyond_the_window_do_not_lock() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..4 {
        b.login(USER, "Wrong-Password-1").await;
    }
    app.advance(Duration::from_secs(16 * 60));
    for _ in 0..4 {
        assert_eq!(
            b.login(USER, "Wrong-Password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    b.login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn a_successful_sign_in_clears_the_failure_count() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..4 {
        b.login(USER, "Wrong-Password-1").await;
    }
    b.login_ok(USER, PASSWORD).await;
    for _ in 0..4 {
        assert_eq!(
            b.login(USER, "Wrong-Password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    b.login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn an_unlock_clears_a_lock() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..5 {
        b.login(USER, "Wrong-Password-1").await;
    }
    assert_eq!(
        b.login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert!(app.unlock(USER).await);
    b.login_ok(USER, PASSWORD).await;
    assert_eq!(app.audit_count("user.unlocked").await, 1);
}

#[tokio::test]
async fn hammering_a_locked_username_counts_against_the_address() {
    let app = spawn_app_with(&[("address_attempts", "8")]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..8 {
        b.login("999-wickedsprockets", "Wrong-Password-1").await;
    }
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("from your network"));
}

#[tokio::test]
async fn a_burst_at_the_edge_of_the_window_still_locks() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    b.login(USER, "Wrong-Password-1").await;
    app.advance(Duration::from_secs(899));
    for _ in 0..3 {
        b.login(USER, "Wrong-Password-1").await;
    }
    app.advance(Duration::from_secs(1));
    assert_eq!(
        b.login(USER, "Wrong-Password-1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.login(USER, "Wrong-Password-1").await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "five failures within a second of each other lock, whatever the window's edge"
    );
}

/// Six wrong passwords from `b`, each for another username nobody has: enough to slow its
/// address down when `address_attempts` is 6.
async fn fail_across_six_usernames(b: &Browser) {
    for ext in 300..306 {
        let r = b
            .login(&format!("{ext}-wickedsprockets"), "Wrong-Password-1")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn one_address_failing_across_many_usernames_is_slowed() {
    let app = spawn_app_with(&[("address_attempts", "6")]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    fail_across_six_usernames(&b).await;
    // A seventh username from the same address is not even checked.
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("from your network"));
    assert_eq!(app.audit_count("signin.throttled").await, 1);

    app.advance(Duration::from_secs(5 * 60));
    b.login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn a_browser_that_signed_in_before_is_not_slowed_by_failures_of_others_on_its_network() {
    let app = spawn_app_with(&[("address_attempts", "6")]).await;
    app.add_user(USER, PASSWORD).await;
    let own = app.browser();
    own.login_ok(USER, PASSWORD).await;
    own.logout().await;
    let other = app.browser();
    fail_across_six_usernames(&other).await;
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is slowed for a browser that never signed in"
    );
    // The browser that signed in to this account before is not.
    own.login_ok(USER, PASSWORD).await;
    own.logout().await;
    // Its cookie names one account: for any other name it is slowed like the rest.
    assert_eq!(
        own.login("399-wickedsprockets", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Refusals of the address are folded per tenant: the one on the tenant's user in its
    // log, the one on a name of nobody's in the provider's.
    assert_eq!(
        app.tenant_audit_events("wickedsprockets", "signin.throttled")
            .await
            .len(),
        1
    );
    assert_eq!(app.audit_count("signin.throttled").await, 2);
}

#[tokio::test]
async fn a_sign_in_without_the_csrf_token_is_refused_and_signs_nobody_in() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let _ = b.csrf().await;
    for token in [None, Some("forged"), Some("")] {
        let mut fields = vec![("username", USER), ("password", PASSWORD)];
        if let Some(t) = token {
            fields.push(("csrf_token", t));
        }
        let r = b.post_raw("/login", &fields).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&r, "dialtone_session").is_none());
    }
    // A token taken from another browser does not work either.
    let other = app.browser().csrf().await;
    let r = b
        .post_raw(
            "/login",
            &[
                ("username", USER),
                ("password", PASSWORD),
                ("csrf_token", &other),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("signin.ok").await, 0);
}

#[tokio::test]
async fn a_one_megabyte_body_is_refused_with_a_clear_error() {
    let app = spawn_app().await;
    let b = app.browser();
    let token = b.csrf().await;
    let big = "A".repeat(1024 * 1024);
    let r = b
        .post_raw(
            "/login",
            &[
                ("username", USER),
                ("password", &big),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("Too much data"));
}

#[tokio::test]
async fn garbage_bodies_never_cause_a_server_error() {
    let app = spawn_app().await;
    let b = app.browser();
    for body in [
        "%%%",
        "username=%FF%FE&password=x",
        "\0\0\0",
        "csrf_token=a&csrf_token=b",
    ] {
        let r = b
            .client
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body:?} gave {}", r.status());
    }
}

#[tokio::test]
async fn next_is_followed_only_for_paths_on_this_site() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    for (next, expected) in [
        ("/settings", "/settings"),
        ("//evil.example/x", "/phone"),
        ("https://evil.example", "/phone"),
        ("/\\evil.example", "/phone"),
    ] {
        let b = app.browser();
        let r = b
            .post(
                "/login",
                &[("username", USER), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), expected, "next={next}");
    }
}

#[tokio::test]
async fn the_sign_in_form_escapes_what_was_typed() {
    let app = spawn_app().await;
    let r = app.browser().login("<script>alert(1)</script>", "x").await;
    let body = r.text().await.unwrap();
    assert!(!body.contains("<script>alert(1)"));
    assert!(
        body.contains("&lt;script&gt;")
            || body.contains("&#60;script&#62;")
            || body.contains("&lt;script")
    );
}

async fn login_from(
    b: &Browser,
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let csrf = b.csrf().await;
    b.client
        .post(format!("{}/login", b.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_is_throttled_on_its_own() {
    let app = spawn_app_with(&[("address_attempts", "3"), ("trusted_proxies", "127.0.0.1")]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for ext in 300..303 {
        login_from(
            &b,
            "198.51.100.7",
            &format!("{ext}-wickedsprockets"),
            "Wrong-Password-1",
        )
        .await;
    }
    let r = login_from(&b, "198.51.100.7", USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = login_from(&b, "203.0.113.9", USER, PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "another office behind the balancer is not affected"
    );
}

#[tokio::test]
async fn a_forged_forwarded_for_header_is_ignored_without_a_trusted_proxy() {
    let app = spawn_app_with(&[("address_attempts", "3")]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for (i, ext) in (300..303).enumerate() {
        login_from(
            &b,
            &format!("198.51.100.{i}"),
            &format!("{ext}-wickedsprockets"),
            "Wrong-Password-1",
        )
        .await;
    }
    let r = login_from(&b, "203.0.113.9", USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
