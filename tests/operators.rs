//! The provider's operator console: its own sign-in and sessions that never cross with the
//! customer portal's, tenants, the admins' security questions, and caller verification —
//! three tries per admin an hour, actions only for 15 minutes after a match, a reset link
//! only to the email on file, nothing secret on any page, every try and action audited.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

const ANSWER: &str = "Biscuit the Dog";

/// Admin 200 (email 200@example.com), user 201, operator olivia signed in.
async fn console() -> (TestApp, Browser) {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    app.add_operator(OPERATOR).await;
    let op = app.signed_in_operator(OPERATOR).await;
    (app, op)
}

/// The admin's page on the console.
async fn caller_path(app: &TestApp) -> String {
    format!(
        "/operator/tenants/{TENANT}/admins/{}",
        app.user_id(ADMIN).await
    )
}

/// The admin sets their security question in Settings (first suggested question).
async fn set_question(app: &TestApp, answer: &str) -> Browser {
    let admin = app.signed_in(ADMIN).await;
    let r = admin.set_security_question(answer, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings?saved=question");
    admin
}

#[tokio::test]
async fn operators_sign_in_and_out_with_a_cookie_of_their_own() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_operator(OPERATOR).await;
    let op = app.browser();

    let r = op.get("/operator/tenants").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/operator/login");

    let r = op.operator_login(OPERATOR, "Not-the-password-1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("do not match"));

    // The right password opens nothing yet: operators must set up a second factor first.
    let r = op.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/operator/login/two-step/setup");
    assert!(set_cookie(&r, "dialtone_operator").is_none());
    let (_, r) = op
        .set_up_app("/operator/login/two-step/setup", app.now())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r, "dialtone_operator").expect("operator cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("Path=/operator"), "{cookie}");
    assert!(
        set_cookie(&r, "dialtone_session").is_none(),
        "no customer session for an operator"
    );

    let body = op.get("/operator/tenants").await.text().await.unwrap();
    assert!(body.contains(TENANT), "the tenant list shows the tenant");
    assert!(
        body.contains(OPERATOR),
        "the console names who is signed in"
    );

    let r = op.post("/operator/logout", &[]).await;
    assert_eq!(location(&r), "/operator/login");
    let r = op.get("/operator/tenants").await;
    assert_eq!(location(&r), "/operator/login");
    assert_eq!(app.audit_count("signout").await, 1);
}

#[tokio::test]
async fn operator_sign_in_locks_after_five_wrong_passwords() {
    let app = spawn_app().await;
    app.add_operator(OPERATOR).await;
    let op = app.browser();
    for _ in 0..5 {
        let r = op.operator_login(OPERATOR, "Wrong-password-123").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = op.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.text().await.unwrap().contains("minutes"));

    app.advance(Duration::from_secs(16 * 60));
    app.signed_in_operator(OPERATOR).await;
    let events = app.audit_events("signin.locked").await;
    assert_eq!(events[0].actor.as_deref(), Some("operator:olivia"));
}

#[tokio::test]
async fn operator_and_customer_sessions_never_cross() {
    let (app, op) = console().await;
    let user = app.signed_in(USER).await;
    let admin = app.signed_in(ADMIN).await;

    // Customer sessions on operator routes: 403, never the console.
    let path = caller_path(&app).await;
    for b in [&user, &admin] {
        for route in ["/operator/tenants", "/operator/audit", path.as_str()] {
            let r = b.get(route).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{route}");
        }
        let r = b.verify_caller(&path, ANSWER).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    // The operator's browser never sends its cookie to customer pages…
    let r = op.get("/phone").await;
    assert_eq!(location(&r), "/login?next=%2Fphone");
    // …and a hand-made request with it is refused.
    let token = {
        let b = app.browser();
        b.operator_login(OPERATOR, OPERATOR_PASSWORD).await;
        let key = app
            .operator_app(OPERATOR)
            .expect("set up by the console fixture");
        let r = b.operator_two_step(&app.fresh_totp(&key)).await;
        cookie_value(&set_cookie(&r, "dialtone_operator").unwrap())
    };
    for route in ["/phone", "/settings", "/admin/users"] {
        let r = app
            .get_sending_cookie(route, &format!("dialtone_operator={token}"))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{route}");
    }
    // An operator token in the customer cookie is no session at all, and the other way.
    let r = app
        .get_sending_cookie("/phone", &format!("dialtone_session={token}"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"));
    let customer_token = {
        let b = app.browser();
        let r = b.login(ADMIN, PASSWORD).await;
        cookie_value(&set_cookie(&r, "dialtone_session").unwrap())
    };
    let r = app
        .get_sending_cookie(
            "/operator/tenants",
            &format!("dialtone_operator={customer_token}"),
        )
        .await;
    assert_eq!(location(&r), "/operator/login");
}

#[tokio::test]
async fn the_security_question_needs_the_password_and_keeps_only_a_hash() {
    let (app, _) = console().await;
    let admin = app.signed_in(ADMIN).await;

    let r = admin
        .set_security_question(ANSWER, "Wrong-password-123")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("current password is not right"));
    assert!(!body.contains(ANSWER), "the answer is never echoed");
    assert!(app.security_question_of(ADMIN).await.is_none());

    let r = admin
        .post(
            "/settings/security-question",
            &[
                ("choice", "custom"),
                ("custom_question", "Why?"),
                ("answer", "x"),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("10 to 150 characters"));
    assert!(body.contains("at least 3 letters or digits"));
    assert!(app.security_question_of(ADMIN).await.is_none());

    let admin = set_question(&app, ANSWER).await;
    let stored = app.security_question_of(ADMIN).await.unwrap();
    assert_eq!(stored.question, "What was the name of your first pet?");
    assert!(stored.answer_hash.starts_with("$argon2id$"));
    assert!(!stored.answer_hash.to_lowercase().contains("biscuit"));
    let body = admin.get("/settings").await.text().await.unwrap();
    assert!(body.contains("What was the name of your first pet?"));
    assert!(!body.to_lowercase().contains("biscuit"));
    assert_eq!(app.audit_count("security_question.set").await, 1);

    // Only admins have one.
    let user = app.signed_in(USER).await;
    let body = user.get("/settings").await.text().await.unwrap();
    assert!(!body.contains("Security question"));
    let r = user.set_security_question(ANSWER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_caller_is_verified_by_the_folded_answer_then_identified() {
    let (app, op) = console().await;
    set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;

    let page = op
        .get(&format!("/operator/tenants/{TENANT}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sam Staff"), "the admin is listed by name");
    let page = op.get(&path).await.text().await.unwrap();
    assert!(page.contains("What was the name of your first pet?"));
    assert!(page.contains("3 tries left"));

    let r = op.verify_caller(&path, "Pepper").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("2 tries left"));

    let r = op.verify_caller(&path, "  biscuit-THE   dog!! ").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = op.get(&location(&r)).await.text().await.unwrap();
    assert!(page.contains("answer matched"));

    let r = op.post(&format!("{path}/reveal"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("id=\"revealed-username\">{ADMIN}<")));
    assert!(page.contains("id=\"revealed-client-id\">wickedsprockets<"));
    assert_eq!(app.audit_count("caller.identity_revealed").await, 1);
}

#[tokio::test]
async fn three_tries_per_admin_an_hour_across_operators() {
    let (app, op) = console().await;
    app.add_operator("oscar").await;
    let other = app.signed_in_operator("oscar").await;
    set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;

    for (b, left) in [(&op, "2 tries"), (&other, "1 try"), (&op, "0 tries")] {
        let r = b.verify_caller(&path, "Wrong guess").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains(left), "{left}");
    }
    // The right answer no longer counts: call back later.
    for b in [&op, &other] {
        let r = b.verify_caller(&path, ANSWER).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.text().await.unwrap().contains("call back later"));
    }
    let r = op.post(&format!("{path}/reveal"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("caller.refused").await, 2);

    app.advance(Duration::from_secs(61 * 60));
    let r = op.verify_caller(&path, ANSWER).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_matched_answer_gives_the_admins_next_call_every_try_again() {
    let (app, op) = console().await;
    set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;
    for left in ["2 tries", "1 try"] {
        let r = op.verify_caller(&path, "Wrong guess").await;
        assert!(r.text().await.unwrap().contains(left), "{left}");
    }
    assert_eq!(
        op.verify_caller(&path, ANSWER).await.status(),
        StatusCode::SEE_OTHER
    );
    // The admin calls again later the same hour, and stumbles once.
    app.advance(Duration::from_secs(20 * 60));
    let r = op.verify_caller(&path, "Wrong guess").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("2 tries"));
    assert_eq!(
        op.verify_caller(&path, ANSWER).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn actions_are_refused_before_a_match_and_after_fifteen_minutes() {
    let (app, op) = console().await;
    set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;
    let actions = ["reveal", "reset-link", "unlock"];

    for action in actions {
        let r = op.post(&format!("{path}/{action}"), &[]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action} before a match");
        assert!(r.text().await.unwrap().contains("Verify the caller first"));
    }

    assert_eq!(
        op.verify_caller(&path, ANSWER).await.status(),
        StatusCode::SEE_OTHER
    );
    // Another operator's match is not this operator's.
    app.add_operator("oscar").await;
    let other = app.signed_in_operator("oscar").await;
    let r = other.post(&format!("{path}/reveal"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    app.advance(Duration::from_secs(14 * 60));
    let r = op.post(&format!("{path}/reveal"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "still inside the window");
    app.advance(Duration::from_secs(2 * 60));
    for action in actions {
        let r = op.post(&format!("{path}/{action}"), &[]).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{action} after the window"
        );
    }
    let records = app.mail_records().await;
    assert!(records.is_empty(), "no reset link was ever sent");
}

#[tokio::test]
async fn the_reset_link_goes_only_to_the_email_on_file_and_unlock_clears_the_lock() {
    let (app, op) = console().await;
    let admin = set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;
    // The admin locks themselves out.
    let locked = app.browser();
    for _ in 0..6 {
        locked.login(ADMIN, "Wrong-password-123").await;
    }
    assert_eq!(
        locked.login(ADMIN, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    assert_eq!(
        op.verify_caller(&path, ANSWER).await.status(),
        StatusCode::SEE_OTHER
    );
    let page = op.get(&path).await.text().await.unwrap();
    assert!(page.contains("locked"));

    let r = op.post(&format!("{path}/unlock"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    locked.login_ok(ADMIN, PASSWORD).await;

    let r = op.post(&format!("{path}/reset-link"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = op.get(&location(&r)).await.text().await.unwrap();
    assert!(after.contains("reset link was sent"));
    let mails = app.wait_for_mail(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "200@example.com");
    let links = mails[0].links();
    assert_eq!(links.len(), 1);
    let token = token_of(&links[0]);
    assert!(!after.contains(&token), "the operator never sees the token");
    // The admin's sessions ended; the link works for them.
    assert_eq!(app.sessions_of(ADMIN).await, 0);
    let r = admin.get("/phone").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app.browser().get(&path_of(&links[0])).await;
    assert_eq!(r.status(), StatusCode::OK);

    // The operator's links count against the admin's mail limit, three per 15 minutes.
    for _ in 0..2 {
        let r = op.post(&format!("{path}/reset-link"), &[]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let r = op.post(&format!("{path}/reset-link"), &[]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("already sent 3 reset emails"));
    app.wait_for_mail(3).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mail_files().len(), 3);
}

#[tokio::test]
async fn an_admin_without_email_or_question_cannot_be_helped_that_way() {
    let (app, op) = console().await;
    let path = caller_path(&app).await;
    let page = op.get(&path).await.text().await.unwrap();
    assert!(page.contains("has not set a security question"));
    let r = op.verify_caller(&path, ANSWER).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // A user who is not an admin is not on the console at all.
    let user_path = format!(
        "/operator/tenants/{TENANT}/admins/{}",
        app.user_id(USER).await
    );
    assert_eq!(op.get(&user_path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        op.get("/operator/tenants/nosuchtenant").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn operators_create_tenants_with_a_first_admin() {
    let (app, op) = console().await;
    let r = op
        .post(
            "/operator/tenants",
            &[
                ("code", "Acme"),
                ("name", "Acme Ltd"),
                ("sip_domain", ""),
                ("admin_extension", "100"),
                ("admin_name", "Ada Acme"),
                ("admin_email", "ada@acme.example"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("100-acme"));
    assert!(!page.contains("Temporary password"));
    let mails = app.wait_for_mail(1).await;
    assert_eq!(mails[0].to, "ada@acme.example");
    assert_eq!(mails[0].links().len(), 1);

    // Operators never see a password: without the first admin's email (for the link to
    // choose one) nothing is made.
    let globex = |email: &'static str| {
        [
            ("code", "globex"),
            ("name", "Globex"),
            ("sip_domain", "sip.globex.example"),
            ("admin_extension", "7"),
            ("admin_name", "Hank"),
            ("admin_email", email),
        ]
    };
    let r = op.post("/operator/tenants", &globex("")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"admin-email-error\""), "{page}");
    assert!(page.contains("nobody else ever sees it"), "{page}");
    assert!(!page.contains("Temporary password"));
    assert_eq!(app.tenant_count().await, 2);
    let r = op
        .post("/operator/tenants", &globex("hank@globex.example"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.text().await.unwrap().contains("Temporary password"));
    let page = op
        .get("/operator/tenants/globex")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Hank") && !page.contains("no email"),
        "{page}"
    );
    assert!(page.contains("none set"));

    // Another tenant on the same SIP domain (in other letter case) is a form error.
    let mut twin = globex("ada@twin.example");
    twin[0] = ("code", "twin");
    twin[2] = ("sip_domain", "SIP.Globex.Example");
    let r = op.post("/operator/tenants", &twin).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Another tenant already uses this SIP domain"));
    assert_eq!(app.tenant_count().await, 3);
    // A SIP domain that is not a host name is said beside its field, with the others'.
    twin[2] = ("sip_domain", "sip globex");
    twin[3] = ("admin_extension", "x7");
    let r = op.post("/operator/tenants", &twin).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Enter a host name like sip.example.com, or leave it empty."),
        "{page}"
    );
    assert!(
        page.contains("The extension must be 1 to 10 digits."),
        "{page}"
    );
    assert_eq!(app.tenant_count().await, 3);

    // Search by Client ID or name.
    let page = op
        .get("/operator/tenants?q=GLOB")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("globex") && !page.contains(">acme<"));
    let page = op
        .get("/operator/tenants?q=acme+ltd")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(">acme<") && !page.contains(">globex<"));

    // Bad input changes nothing.
    let r = op
        .post(
            "/operator/tenants",
            &[
                ("code", "-bad-"),
                ("name", ""),
                ("admin_extension", "x1"),
                ("admin_name", "Someone"),
                ("admin_email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("tenant code (Client ID) must be"));
    assert!(page.contains("extension must be"));
    assert!(page.contains("valid email address"));
    let r = op
        .post(
            "/operator/tenants",
            &[
                ("code", "acme"),
                ("name", "Acme again"),
                ("admin_extension", "1"),
                ("admin_name", "Someone"),
                ("admin_email", "someone@acme.example"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "a form error");
    assert_eq!(app.tenant_count().await, 3);
}

#[tokio::test]
async fn every_try_and_action_is_audited_for_the_provider_and_the_tenant_and_nothing_leaks() {
    let (app, op) = console().await;
    set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;
    let mut seen = Vec::new();
    for p in [
        "/operator/tenants",
        &format!("/operator/tenants/{TENANT}"),
        &path,
    ] {
        seen.push(op.get(p).await.text().await.unwrap());
    }
    let r = op.verify_caller(&path, "Wrong guess").await;
    seen.push(r.text().await.unwrap());
    let r = op.verify_caller(&path, ANSWER).await;
    seen.push(op.get(&location(&r)).await.text().await.unwrap());
    seen.push(
        op.post(&format!("{path}/reveal"), &[])
            .await
            .text()
            .await
            .unwrap(),
    );
    let r = op.post(&format!("{path}/reset-link"), &[]).await;
    seen.push(op.get(&location(&r)).await.text().await.unwrap());
    let r = op.post(&format!("{path}/unlock"), &[]).await;
    seen.push(op.get(&location(&r)).await.text().await.unwrap());
    let provider_log = op.get("/operator/audit").await.text().await.unwrap();
    seen.push(provider_log.clone());

    let mails = app.wait_for_mail(1).await;
    let token = token_of(&mails[0].links()[0]);
    let hash = app.security_question_of(ADMIN).await.unwrap().answer_hash;
    for page in &seen {
        let lower = page.to_lowercase();
        for secret in [
            "biscuit",
            &PASSWORD.to_lowercase(),
            &token.to_lowercase(),
            "$argon2",
        ] {
            assert!(!lower.contains(secret), "an operator page shows {secret}");
        }
        assert!(!page.contains(&hash));
    }

    for kind in [
        "caller.not_verified",
        "caller.verified",
        "caller.identity_revealed",
        "reset.requested",
        "user.unlocked",
    ] {
        assert!(provider_log.contains(kind), "provider log lacks {kind}");
    }
    assert!(provider_log.contains("operator:olivia"));
    assert!(provider_log.contains("signin.ok"));

    // The tenant's own log has the same events, with the operator's name.
    let admin = app.signed_in(ADMIN).await;
    let tenant_log = admin.get("/admin/audit").await.text().await.unwrap();
    for kind in [
        "caller.not_verified",
        "caller.verified",
        "caller.identity_revealed",
        "reset.requested",
        "user.unlocked",
    ] {
        assert!(tenant_log.contains(kind), "tenant log lacks {kind}");
    }
    assert!(tenant_log.contains("operator:olivia"));
    // Operator sign-ins are the provider's business, not the tenant's.
    let tenant_signins = app.tenant_audit_events(TENANT, "signin.ok").await;
    assert!(tenant_signins
        .iter()
        .all(|e| e.actor.as_deref() != Some("operator:olivia")));
    let all_signins = app.audit_events("signin.ok").await;
    assert!(all_signins
        .iter()
        .any(|e| e.actor.as_deref() == Some("operator:olivia")));
}

#[tokio::test]
async fn an_operator_from_the_cli_verifies_the_demo_admin_and_sends_a_reset_link() {
    let cli = Cli::new().await;
    let add = cli.run(
        &["operator", "add", "olga", "--password-stdin"],
        Some(OPERATOR_PASSWORD),
    );
    assert!(add.status.success());

    let demo = cli.start_demo();
    let answer_line = demo
        .output
        .iter()
        .find(|l| l.contains("security question"))
        .expect("demo prints the admin's security answer");
    let answer = answer_line.rsplit("answer: ").next().unwrap().to_owned();

    let op = demo.browser().await;
    // The demo runs on the wall clock; the operator sets up the app operators must have.
    let now = dialtone::clock::Clock::now(&dialtone::clock::SystemClock);
    op.operator_sign_in_with_app("olga", OPERATOR_PASSWORD, None, now)
        .await;
    let page = op
        .get("/operator/tenants/wickedsprockets")
        .await
        .text()
        .await
        .unwrap();
    let admin_link = page
        .split("href=\"")
        .find(|s| s.starts_with("/operator/tenants/wickedsprockets/admins/"))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = op.verify_caller(&admin_link, &answer.to_uppercase()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = op.post(&format!("{admin_link}/reset-link"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let mail = cli.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "ada@wickedsprockets.example");
    assert_eq!(mail.links().len(), 1);
}

#[tokio::test]
async fn operator_sessions_slide_for_four_idle_hours_and_end_at_twelve() {
    let (app, op) = console().await;
    for _ in 0..2 {
        app.advance(Duration::from_secs(3 * 3600 + 59 * 60));
        assert_eq!(op.get("/operator/tenants").await.status(), StatusCode::OK);
    }
    app.advance(Duration::from_secs(4 * 3600 + 60));
    let r = op.get("/operator/tenants").await;
    assert_eq!(location(&r), "/operator/login", "idle for over 4 hours");

    let op = app.signed_in_operator(OPERATOR).await;
    for _ in 0..3 {
        app.advance(Duration::from_secs(3 * 3600 + 50 * 60));
        assert_eq!(op.get("/operator/tenants").await.status(), StatusCode::OK);
    }
    app.advance(Duration::from_secs(31 * 60));
    let r = op.get("/operator/tenants").await;
    assert_eq!(location(&r), "/operator/login", "past the 12-hour cap");
}
