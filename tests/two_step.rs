//! Two-step sign-in: setting up an authenticator app (confirmed by a first code before it
//! counts, its key sealed at rest), the second step after the password (a session only
//! after it, codes once, ±1 step of drift, the same lockout as passwords, 5 minutes to do
//! it), recovery codes (once each, mailed, made anew), who must have one (operators; a
//! tenant's admins or everyone), removal by an admin or a verifying operator, and device
//! cookies that never skip it. Codes are computed here from the key the page shows, on the
//! pinned clock.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

/// A session cookie set by this response, if any.
fn session_set(r: &reqwest::Response) -> bool {
    set_cookie(r, "dialtone_session").is_some_and(|c| !c.starts_with("dialtone_session=;"))
}

#[tokio::test]
async fn an_app_counts_only_once_confirmed_and_its_key_is_sealed_at_rest() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let page = b.get("/settings").await.text().await.unwrap();
    assert!(
        page.contains("href=\"/settings/two-step\""),
        "Settings links to it"
    );
    let page = b.get("/settings/two-step").await.text().await.unwrap();
    assert!(page.contains("off"), "{page}");

    let page = b
        .get("/settings/two-step/setup")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("src=\"data:image/svg+xml;base64,"),
        "a QR code drawn here"
    );
    assert!(
        page.contains("<label for=\"code\">"),
        "the code field is labelled"
    );
    let secret = totp_secret_in(&page);
    assert_eq!(secret.len(), 32, "160 bits of base32");

    // Not confirmed yet: a sign-in still asks for the password alone.
    let other = app.browser();
    let r = other.login(USER, PASSWORD).await;
    assert_eq!(location(&r), "/phone");

    // A wrong code is refused, tied to the field, and changes nothing.
    let wrong = if totp_code(&secret, app.now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = b.post("/settings/two-step/setup", &[("code", wrong)]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("aria-describedby=\"code-error\""), "{body}");
    assert_eq!(totp_secret_in(&body), secret, "the same key to try again");
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );

    let r = b
        .post(
            "/settings/two-step/setup",
            &[("code", &totp_code(&secret, app.now()))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let codes = recovery_codes_in(&r.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    let page = b.get("/settings/two-step").await.text().await.unwrap();
    assert!(
        page.contains("Unused recovery codes: <strong>10</strong>"),
        "{page}"
    );
    assert!(!page.contains(&codes[0]), "codes are shown once");
    assert_eq!(app.audit_count("two_step.enabled").await, 1);

    // Sealed at rest: neither the key nor its bytes are in the database.
    let pool = app.raw_database().await;
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT secret FROM totp_factors")
        .fetch_all(&pool)
        .await
        .unwrap();
    let hashes: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT code_hash FROM recovery_codes")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), 1);
    let raw = String::from_utf8_lossy(&rows[0].0).to_string();
    assert!(!raw.contains(&secret));
    assert_eq!(hashes.len(), 10);
    for (h,) in &hashes {
        assert!(!String::from_utf8_lossy(h).contains(&codes[0].replace('-', "")));
    }

    // From now on the password alone opens nothing.
    let r = app.browser().login(USER, PASSWORD).await;
    assert_eq!(location(&r), "/login/two-step");

    // The key still works after the data key is rotated twice (the first key is then
    // dropped, so only a key sealed anew still opens).
    let (_, changed) = app.rotate_key().await;
    assert!(changed >= 1);
    app.rotate_key().await;
    let pool = app.raw_database().await;
    let resealed: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT secret FROM totp_factors")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_ne!(resealed[0].0, rows[0].0, "sealed anew under the new key");
    app.signed_in_with_app(USER, &secret).await;
}

#[tokio::test]
async fn the_session_is_issued_only_after_the_second_step_with_a_fresh_id() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, _) = app.with_app(USER).await;

    let b = app.browser();
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login/two-step");
    assert!(!session_set(&r), "no session after the password alone");
    let pending = set_cookie(&r, "dialtone_pending").expect("a pending step cookie");
    assert!(
        pending.contains("HttpOnly") && pending.contains("Max-Age=300"),
        "{pending}"
    );
    // Nothing of the account is reachable meanwhile.
    for path in ["/phone", "/settings", "/settings/two-step"] {
        let r = b.get(path).await;
        assert!(location(&r).starts_with("/login"), "{path}");
    }
    // The pending step's token is not a session either.
    let r = app
        .get_sending_cookie(
            "/phone",
            &format!("dialtone_session={}", cookie_value(&pending)),
        )
        .await;
    assert!(location(&r).starts_with("/login"));

    let page = b.get("/login/two-step").await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(body.contains("autocomplete=\"one-time-code\""), "{body}");
    let r = b.two_step("").await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "an empty code is asked again"
    );

    let r = b.two_step(&app.fresh_totp(&secret)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/phone");
    let session = cookie_value(&set_cookie(&r, "dialtone_session").expect("a session now"));
    assert_ne!(
        session,
        cookie_value(&pending),
        "a fresh id, not the pending one"
    );
    assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    let ok = app.audit_events("signin.ok").await;
    assert_eq!(
        ok[0].detail.as_deref(),
        Some("second step: an authenticator code")
    );
    // The pending step is spent.
    let r = b.two_step(&app.fresh_totp(&secret)).await;
    assert!(location(&r).starts_with("/login"));
}

#[tokio::test]
async fn a_code_is_accepted_once_and_a_replay_in_its_window_is_refused() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, _) = app.with_app(USER).await;
    app.advance(Duration::from_secs(30));
    let code = totp_code(&secret, app.now());

    let first = app.browser();
    first.login(USER, PASSWORD).await;
    assert_eq!(location(&first.two_step(&code).await), "/phone");

    // Someone who saw the code types it again within its 30 seconds.
    let second = app.browser();
    second.login(USER, PASSWORD).await;
    let r = second.two_step(&code).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("That code is not right"));
    assert!(location(&second.get("/phone").await).starts_with("/login"));
    assert_eq!(app.audit_count("two_step.failed").await, 1);

    // The next step's code works.
    let r = second.two_step(&app.fresh_totp(&secret)).await;
    assert_eq!(location(&r), "/phone");
}

#[tokio::test]
async fn one_step_of_clock_drift_is_accepted_and_two_are_refused() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, _) = app.with_app(USER).await;
    app.advance(Duration::from_secs(10 * 60));
    let now = app.now();
    let at = |steps: i64| totp_code(&secret, dialtone::clock::Timestamp(now.0 + steps * 30));

    let b = app.browser();
    b.login(USER, PASSWORD).await;
    for off in [-2, 2] {
        let r = b.two_step(&at(off)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{off} steps off");
    }
    assert_eq!(
        location(&b.two_step(&at(-1)).await),
        "/phone",
        "a phone 30 s slow"
    );

    let c = app.browser();
    c.login(USER, PASSWORD).await;
    assert_eq!(
        location(&c.two_step(&at(1)).await),
        "/phone",
        "a phone 30 s fast"
    );
}

#[tokio::test]
async fn wrong_codes_count_toward_the_same_lockout_as_wrong_passwords() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, _) = app.with_app(USER).await;
    app.advance(Duration::from_secs(60));
    let b = app.browser();
    // Three wrong passwords, then the right one and two wrong codes: five failures.
    for _ in 0..3 {
        assert_eq!(
            b.login(USER, "Wrong-password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(location(&b.login(USER, PASSWORD).await), "/login/two-step");
    for _ in 0..2 {
        let r = b.two_step("000000").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right code is refused, and so is the right password.
    let r = b.two_step(&totp_code(&secret, app.now())).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.text().await.unwrap().contains("minutes"));
    let r = app.browser().login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let failed = app.audit_events("two_step.failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0].detail.as_deref(),
        Some("wrong code; this failure locked the name")
    );

    // Re-typing the password does not reset the count: five wrong codes lock alone.
    app.advance(Duration::from_secs(16 * 60));
    let c = app.browser();
    for round in 0..5 {
        assert_eq!(
            location(&c.login(USER, PASSWORD).await),
            "/login/two-step",
            "{round}"
        );
        assert_eq!(
            c.two_step("999999").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        c.login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // After the lock, the right code completes a sign-in and clears the count.
    app.advance(Duration::from_secs(16 * 60));
    app.signed_in_with_app(USER, &secret).await;
}

#[tokio::test]
async fn the_pending_step_expires_after_five_minutes() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, _) = app.with_app(USER).await;

    let b = app.browser();
    b.login(USER, PASSWORD).await;
    app.advance(Duration::from_secs(4 * 60 + 50));
    assert_eq!(b.get("/login/two-step").await.status(), StatusCode::OK);
    app.advance(Duration::from_secs(11));
    let r = b.get("/login/two-step").await;
    assert_eq!(location(&r), "/login?step=expired");
    let r = b.two_step(&totp_code(&secret, app.now())).await;
    assert_eq!(location(&r), "/login?step=expired");
    assert!(!session_set(&r));
    let page = b.get("/login?step=expired").await.text().await.unwrap();
    assert!(page.contains("not finished in time"));
    assert!(location(&b.get("/phone").await).starts_with("/login"));

    // Signing in again starts a new one.
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(location(&r), "/login/two-step");
    assert_eq!(
        location(&b.two_step(&totp_code(&secret, app.now())).await),
        "/phone"
    );
}

#[tokio::test]
async fn adding_an_app_after_fifteen_minutes_needs_the_password_and_its_owner_is_mailed() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    app.advance(Duration::from_secs(16 * 60));
    let page = b
        .get("/settings/two-step/setup")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"current_password\""), "{page}");
    let secret = totp_secret_in(&page);
    let code = totp_code(&secret, app.now());

    // The right code alone, in a session signed in long ago: refused, nothing added.
    let r = b.post("/settings/two-step/setup", &[("code", &code)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.unwrap();
    assert!(body.contains("confirm your portal password"), "{body}");
    assert_eq!(totp_secret_in(&body), secret, "the same key to try again");
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );

    // A wrong password: refused at its field and counted as a failed sign-in.
    let r = b
        .post(
            "/settings/two-step/setup",
            &[("code", &code), ("current_password", "Wrong-Password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"setup-password-error\""), "{body}");
    let failed = app.audit_events("signin.failed").await;
    assert_eq!(
        failed[0].detail.as_deref(),
        Some("wrong password when adding an authenticator app")
    );
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );

    // With the password: on, and its owner is told by mail.
    let r = b
        .post(
            "/settings/two-step/setup",
            &[("code", &code), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(recovery_codes_in(&r.text().await.unwrap()).len(), 10);
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/login/two-step"
    );
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert!(
        mail.subject.starts_with("A second factor was added"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("An authenticator app was added"));
}

#[tokio::test]
async fn a_recovery_code_works_once_and_its_use_is_mailed_and_audited() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (_, codes) = app.with_app(USER).await;

    let b = app.browser();
    b.login(USER, PASSWORD).await;
    let r = b.two_step(&codes[0]).await;
    assert_eq!(location(&r), "/phone");
    let ok = app.audit_events("signin.ok").await;
    assert_eq!(
        ok[0].detail.as_deref(),
        Some("second step: a recovery code")
    );
    assert_eq!(app.audit_count("two_step.recovery_code_used").await, 1);
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert!(
        mail.subject.contains("recovery code was used"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text.contains("9 unused recovery codes left"),
        "{}",
        mail.text
    );

    // The same code again: refused.
    let c = app.browser();
    c.login(USER, PASSWORD).await;
    assert_eq!(
        c.two_step(&codes[0]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Another, typed in lower case without hyphens: accepted.
    let typed = codes[1].replace('-', "").to_lowercase();
    assert_eq!(location(&c.two_step(&typed).await), "/phone");
    let page = c.get("/settings/two-step").await.text().await.unwrap();
    assert!(page.contains("Unused recovery codes: <strong>8</strong>"));
}

#[tokio::test]
async fn new_recovery_codes_need_the_password_and_void_the_old_ones() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, old) = app.with_app(USER).await;
    let b = app.signed_in_with_app(USER, &secret).await;

    let r = b
        .post(
            "/settings/two-step/recovery-codes",
            &[("current_password", "Wrong-password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("aria-describedby=\"codes-password-error\""));
    let r = b
        .post(
            "/settings/two-step/recovery-codes",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let new = recovery_codes_in(&r.text().await.unwrap());
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    assert_eq!(app.audit_count("two_step.codes_regenerated").await, 1);

    let c = app.browser();
    c.login(USER, PASSWORD).await;
    assert_eq!(c.two_step(&old[0]).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(location(&c.two_step(&new[0]).await), "/phone");
}

#[tokio::test]
async fn a_user_turns_it_off_with_their_password() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (secret, _) = app.with_app(USER).await;
    let b = app.signed_in_with_app(USER, &secret).await;
    let r = b
        .post(
            "/settings/two-step/remove",
            &[("current_password", "Wrong-password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = b
        .post(
            "/settings/two-step/remove",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/settings/two-step?done=removed");
    assert_eq!(app.audit_count("two_step.removed").await, 1);
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );
}

#[tokio::test]
async fn a_trusted_device_cookie_does_not_skip_the_second_step() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    // This browser signed in before: it holds a device cookie for the account.
    let b = app.signed_in(USER).await;
    let (secret, r) = b.set_up_app("/settings/two-step/setup", app.now()).await;
    assert_eq!(r.status(), StatusCode::OK);
    b.logout().await;

    let r = b.login(USER, PASSWORD).await;
    assert_eq!(
        location(&r),
        "/login/two-step",
        "the device cookie skips nothing"
    );
    assert!(!session_set(&r));
    assert!(location(&b.get("/phone").await).starts_with("/login"));
    assert_eq!(
        location(&b.two_step(&app.fresh_totp(&secret)).await),
        "/phone"
    );
}

#[tokio::test]
async fn a_temporary_password_goes_through_the_second_step_then_choose_a_new_one() {
    let (app, admin) = spawn_tenant().await;
    let (secret, _) = app.with_app(USER).await;
    let temporary = admin.admin_temporary_password("201").await;

    let b = app.browser();
    assert_eq!(
        location(&b.login(USER, &temporary).await),
        "/login/two-step"
    );
    let r = b.two_step(&app.fresh_totp(&secret)).await;
    assert_eq!(location(&r), "/password/choose");
    assert_eq!(location(&b.get("/phone").await), "/password/choose");
    let r = b.choose_password(NEW, NEW).await;
    assert_eq!(location(&r), "/phone");
}

#[tokio::test]
async fn operators_must_set_up_an_app_before_anything_of_the_console() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_operator(OPERATOR).await;
    let op = app.browser();
    let r = op.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(location(&r), "/operator/login/two-step/setup");
    assert!(set_cookie(&r, "dialtone_operator").is_none());
    for path in [
        "/operator/tenants",
        "/operator/audit",
        "/operator/login/two-step",
    ] {
        let r = op.get(path).await;
        assert_eq!(location(&r), "/operator/login", "{path}");
    }
    let page = op
        .get("/operator/login/two-step/setup")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("must use two-step sign-in"), "{page}");

    let (secret, r) = op
        .set_up_app("/operator/login/two-step/setup", app.now())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r, "dialtone_operator").is_some());
    let body = r.text().await.unwrap();
    assert_eq!(recovery_codes_in(&body).len(), 10);
    assert!(body.contains("href=\"/operator/tenants\""));
    assert_eq!(op.get("/operator/tenants").await.status(), StatusCode::OK);

    // The next sign-in asks for the second step.
    let other = app.browser();
    let r = other.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(location(&r), "/operator/login/two-step");
    assert_eq!(
        location(&other.get("/operator/tenants").await),
        "/operator/login"
    );
    let r = other.operator_two_step("000000").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = other.operator_two_step(&app.fresh_totp(&secret)).await;
    assert_eq!(location(&r), "/operator/tenants");
    assert_eq!(
        other.get("/operator/tenants").await.status(),
        StatusCode::OK
    );
    // A customer's pending step cookie is not the operator console's, nor the other way.
    let r = other.two_step(&app.fresh_totp(&secret)).await;
    assert!(location(&r).starts_with("/login"));
}

#[tokio::test]
async fn a_tenant_admin_requires_it_of_admins_or_of_everyone() {
    let (app, admin) = spawn_tenant().await;
    let page = admin.get("/admin/users").await.text().await.unwrap();
    assert!(page.contains("href=\"/admin/two-step\""));
    let r = admin
        .post("/admin/two-step", &[("required", "sometimes")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let user = app.signed_in(USER).await;
    assert_eq!(
        user.get("/admin/two-step").await.status(),
        StatusCode::FORBIDDEN,
        "admins only"
    );

    let r = admin
        .post("/admin/two-step", &[("required", "admins")])
        .await;
    assert_eq!(location(&r), "/admin/two-step?done=saved");
    let events = app.audit_events("two_step.requirement_set").await;
    assert_eq!(events[0].detail.as_deref(), Some("required of: admins"));

    // The admin, at their next sign-in, must set up an app before anything else.
    let a = app.browser();
    let r = a.login(ADMIN, PASSWORD).await;
    assert_eq!(location(&r), "/login/two-step/setup");
    assert!(!session_set(&r));
    for path in ["/phone", "/admin/users", "/settings/two-step"] {
        assert!(location(&a.get(path).await).starts_with("/login"), "{path}");
    }
    // A user is not asked.
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );
    let (secret, r) = a.set_up_app("/login/two-step/setup", app.now()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(session_set(&r));
    assert!(r.text().await.unwrap().contains("href=\"/phone\""));
    assert_eq!(a.get("/admin/users").await.status(), StatusCode::OK);
    // Required of them: they cannot turn it off.
    let r = a
        .post(
            "/settings/two-step/remove",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.signed_in_with_app(ADMIN, &secret).await;

    // Everyone: the user too is sent to set one up.
    let r = a.post("/admin/two-step", &[("required", "everyone")]).await;
    assert_eq!(location(&r), "/admin/two-step?done=saved");
    let u = app.browser();
    assert_eq!(
        location(&u.login(USER, PASSWORD).await),
        "/login/two-step/setup"
    );
    assert!(location(&u.get("/phone").await).starts_with("/login"));
    // Setting up is open 15 minutes; past it, sign in again.
    app.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(
        location(&u.get("/login/two-step/setup").await),
        "/login?step=expired"
    );
}

#[tokio::test]
async fn a_required_setup_then_a_temporary_password_to_replace() {
    let (app, admin) = spawn_tenant().await;
    admin
        .post("/admin/two-step", &[("required", "everyone")])
        .await;
    let temporary = app
        .add_user_as("202-wickedsprockets", None, dialtone::domain::Role::User)
        .await
        .unwrap();
    let b = app.browser();
    let r = b.login("202-wickedsprockets", &temporary).await;
    assert_eq!(location(&r), "/login/two-step/setup");
    let (_, r) = b.set_up_app("/login/two-step/setup", app.now()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("href=\"/password/choose\""));
    assert_eq!(location(&b.get("/phone").await), "/password/choose");
    assert_eq!(location(&b.choose_password(NEW, NEW).await), "/phone");
}

#[tokio::test]
async fn an_admin_removes_a_users_second_factor_with_their_own_password() {
    let (app, admin) = spawn_tenant().await;
    app.with_app(USER).await;
    let page = admin.get("/admin/users/201").await.text().await.unwrap();
    assert!(page.contains("href=\"/admin/users/201/two-step\""));
    let page = admin
        .get("/admin/users/201/two-step")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<span class=\"badge badge-success\">on</span>"),
        "{page}"
    );

    let r = admin
        .post(
            "/admin/users/201/two-step/remove",
            &[("current_password", "Wrong-password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("aria-describedby=\"admin-password-error\""));
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/login/two-step"
    );

    let r = admin
        .post(
            "/admin/users/201/two-step/remove",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/admin/users/201/two-step?done=removed");
    let events = app.audit_events("two_step.removed").await;
    assert_eq!(events[0].actor.as_deref(), Some(ADMIN));
    assert_eq!(events[0].subject.as_deref(), Some(USER));
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert!(mail.subject.contains("Two-step sign-in was turned off"));
    assert!(mail.text.contains("removed by an administrator"));
    // The password alone signs in now.
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );
    // Again: nothing to remove.
    let r = admin
        .post(
            "/admin/users/201/two-step/remove",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Another tenant's admin cannot reach the user.
    app.add_user_as(
        "200-othertenant",
        Some(PASSWORD),
        dialtone::domain::Role::Admin,
    )
    .await;
    let stranger = app.signed_in("200-othertenant").await;
    assert_eq!(
        stranger.get("/admin/users/201/two-step").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_operator_removes_an_admins_second_factor_only_after_verifying_the_caller() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_operator(OPERATOR).await;
    let admin = app.signed_in(ADMIN).await;
    admin.set_security_question("blue bicycle", PASSWORD).await;
    let (_, r) = admin
        .set_up_app("/settings/two-step/setup", app.now())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.take_mail_about("A second factor was added").await;
    let op = app.signed_in_operator(OPERATOR).await;
    let path = format!(
        "/operator/tenants/{TENANT}/admins/{}",
        app.user_id(ADMIN).await
    );

    let r = op.post(&format!("{path}/two-step/remove"), &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "not before a verified call"
    );
    assert_eq!(
        location(&app.browser().login(ADMIN, PASSWORD).await),
        "/login/two-step"
    );
    assert_eq!(app.audit_count("two_step.removed").await, 0);

    op.verify_caller(&path, "Blue Bicycle").await;
    let r = op.post(&format!("{path}/two-step/remove"), &[]).await;
    assert_eq!(location(&r), format!("{path}?done=two-step-removed"));
    let page = op.get(&location(&r)).await.text().await.unwrap();
    assert!(page.contains("two-step sign-in was removed"), "{page}");
    let events = app.audit_events("two_step.removed").await;
    assert_eq!(events[0].actor.as_deref(), Some("operator:olivia"));
    assert_eq!(events[0].subject.as_deref(), Some(ADMIN));
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "200@example.com");
    // Said as it happened: by the provider's support, after a verified call.
    assert!(
        mail.text.contains("removed by Dialtone support"),
        "{}",
        mail.text
    );
    assert!(!mail.text.contains("administrator"), "{}", mail.text);
    assert_eq!(
        location(&app.browser().login(ADMIN, PASSWORD).await),
        "/phone"
    );

    // Past the 15 minutes of a verification, refused again.
    app.advance(Duration::from_secs(16 * 60));
    let r = op.post(&format!("{path}/two-step/remove"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_operator_signs_in_with_a_recovery_code_and_makes_new_ones_with_the_password() {
    let app = spawn_app().await;
    app.add_operator(OPERATOR).await;
    let op = app.browser();
    op.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    let (_, r) = op
        .set_up_app("/operator/login/two-step/setup", app.now())
        .await;
    let old = recovery_codes_in(&r.text().await.unwrap());

    let lost_phone = app.browser();
    lost_phone.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    let r = lost_phone.operator_two_step(&old[0]).await;
    assert_eq!(location(&r), "/operator/tenants");
    let page = lost_phone
        .get("/operator/two-step")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Unused recovery codes: <strong>9</strong>"),
        "{page}"
    );

    let r = lost_phone
        .post(
            "/operator/two-step/recovery-codes",
            &[("current_password", "Wrong-password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = lost_phone
        .post(
            "/operator/two-step/recovery-codes",
            &[("current_password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let new = recovery_codes_in(&r.text().await.unwrap());
    let events = app.audit_events("two_step.codes_regenerated").await;
    assert_eq!(events[0].actor.as_deref(), Some("operator:olivia"));

    let again = app.browser();
    again.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(
        again.operator_two_step(&old[1]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        location(&again.operator_two_step(&new[0]).await),
        "/operator/tenants"
    );
}

#[tokio::test]
async fn wrong_codes_lock_an_operator_like_wrong_passwords() {
    let app = spawn_app().await;
    app.add_operator(OPERATOR).await;
    drop(app.signed_in_operator(OPERATOR).await);
    let key = app.operator_app(OPERATOR).unwrap();
    let op = app.browser();
    op.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            op.operator_two_step("000000").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = op.operator_two_step(&app.fresh_totp(&key)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("for this name"));
    let r = app
        .browser()
        .operator_login(OPERATOR, OPERATOR_PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let failed = app.audit_events("two_step.failed").await;
    assert_eq!(failed.len(), 5);
    assert_eq!(failed[0].actor.as_deref(), Some("operator:olivia"));
}
