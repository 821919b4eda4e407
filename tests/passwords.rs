//! Changing a password from Settings, the password policy, and temporary passwords.

mod common;

use std::time::Duration;

use common::*;
use dialtone::domain::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let here = app.browser();
    let elsewhere = app.browser();
    here.login_ok(USER, PASSWORD).await;
    elsewhere.login_ok(USER, PASSWORD).await;

    let r = here.change_password(PASSWORD, NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings?saved=password");
    assert!(
        set_cookie(&r, "dialtone_session").is_some(),
        "the session is rotated"
    );

    let page = here.get("/settings?saved=password").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Your password was changed"));
    assert_eq!(
        elsewhere.get("/phone").await.status(),
        StatusCode::SEE_OTHER,
        "other sessions end"
    );
    assert_eq!(app.sessions_of(USER).await, 1);

    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.browser().login_ok(USER, NEW).await;
    assert_eq!(app.audit_count("password.changed").await, 1);
}

#[tokio::test]
async fn the_old_session_id_dies_when_the_password_changes() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let r = b.login(USER, PASSWORD).await;
    let old = set_cookie(&r, "dialtone_session").unwrap();
    let old = old.split(';').next().unwrap().to_owned();
    let r = b.change_password(PASSWORD, NEW, NEW).await;
    let new = set_cookie(&r, "dialtone_session").unwrap();
    assert_ne!(old, new.split(';').next().unwrap());
    let r = app.get_sending_cookie("/phone", &old).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_broken_rule_is_explained_at_once_and_nothing_changes() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;

    let r = b.change_password(PASSWORD, "abc", "abd").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("at least 8 characters"), "{body}");
    assert!(body.contains("uppercase"), "{body}");
    assert!(body.contains("do not match"), "{body}");
    assert!(!body.contains(PASSWORD), "passwords are never echoed");

    app.browser().login_ok(USER, PASSWORD).await;
    assert_eq!(app.audit_count("password.changed").await, 0);
}

#[tokio::test]
async fn policy_cases_each_get_their_message() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let long = format!("Aa{}", "x".repeat(127));
    for (new, expect) in [
        (long.as_str(), "at most 128"),
        ("Password2024!", "common"),
        ("201-WickedSprockets", "username"),
        ("Wickedsprockets", "username"),
        ("ALLUPPERCASE1", "lowercase"),
        ("Tab\tInside-99", "control"),
    ] {
        let r = b.change_password(PASSWORD, new, new).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{new}");
        let body = r.text().await.unwrap().to_lowercase();
        assert!(body.contains(expect), "{new}: expected {expect}");
    }
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_counts_toward_the_lock() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let r = b.change_password("Not-My-Password-1", NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("current password is not right"));
    for _ in 0..4 {
        b.change_password("Not-My-Password-1", NEW, NEW).await;
    }
    let r = b.change_password(PASSWORD, NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // The lock is this session's, not the name's; an unlock of the user clears it too.
    assert!(!app.unlock(USER).await, "the name itself was not locked");
    let r = b.change_password(PASSWORD, NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failures_from_elsewhere_do_not_stop_a_change_in_the_users_own_session() {
    // Someone locks the username with wrong sign-ins; the user, signed in, can still
    // change their password (the first thing they would want to do) — and the new
    // password ends the lock.
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    app.lock_from_elsewhere(USER).await;
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = b.change_password(PASSWORD, NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.browser().login_ok(USER, NEW).await;
}

#[tokio::test]
async fn a_change_without_the_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let r = b
        .post_raw(
            "/settings/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW),
                ("confirm_password", NEW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn unicode_passwords_are_normalised_the_same_way_at_set_and_sign_in() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    // "Ｇ" (fullwidth) and "ﬁ" (ligature) fold under NFKC to "G" and "fi".
    let r = b
        .change_password(PASSWORD, "Ｇrüße-ﬁnden-42", "Ｇrüße-ﬁnden-42")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.browser().login_ok(USER, "Grüße-finden-42").await;
}

#[tokio::test]
async fn a_temporary_password_only_opens_the_choose_a_new_password_page() {
    let app = spawn_app().await;
    let temporary = app
        .add_user_as(USER, None, Role::User)
        .await
        .expect("a temporary password");
    assert!(temporary.chars().count() >= 16);
    let b = app.browser();
    let r = b.login(USER, &temporary).await;
    assert_eq!(location(&r), "/password/choose");
    for path in ["/phone", "/settings"] {
        let r = b.get(path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/password/choose");
    }
    let page = b.get("/password/choose").await.text().await.unwrap();
    assert!(page.contains("Choose a new password"));

    let r = b.choose_password("short", "short").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = b.choose_password(NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/phone");
    assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    assert_eq!(
        app.browser().login(USER, &temporary).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.browser().login_ok(USER, NEW).await;
}

#[tokio::test]
async fn a_temporary_password_expires_after_seventy_two_hours() {
    let app = spawn_app().await;
    let temporary = app.add_user_as(USER, None, Role::User).await.unwrap();
    app.advance(Duration::from_secs(72 * 3600));
    let r = app.browser().login(USER, &temporary).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("temporary password has expired"));
}

#[tokio::test]
async fn a_user_with_a_chosen_password_cannot_use_the_choose_page() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let r = b.choose_password(NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings");
    app.browser().login_ok(USER, PASSWORD).await;
}
