//! The provider's operator console: its own sign-in and sessions that never cross with the
//! customer portal's, tenants, the admins' security questions, and caller verification —
//! three tries per admin an hour, actions only for 15 minutes after a match, a reset link
//! only to the email on file, nothing secret on any page, every try and action audited.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use dialtone::domain::{NewPassword, OperatorName, PasswordContext, Role};
use reqwest::StatusCode;

const ADMIN: &str = "200-wickedsprockets";
const OPERATOR: &str = "olivia";
const OPERATOR_PASSWORD: &str = "Console-Lantern-77";
const ANSWER: &str = "Biscuit the Dog";

async fn add_operator(app: &TestApp, name: &str) {
    app.services
        .accounts
        .create_operator(
            &OperatorName::parse(name).unwrap(),
            &NewPassword::parse(OPERATOR_PASSWORD, &PasswordContext::default()).unwrap(),
            "test",
        )
        .await
        .unwrap();
}

async fn operator_login(app: &TestApp, name: &str) -> Browser {
    let op = app.browser();
    let r = op
        .post(
            "/operator/login",
            &[("username", name), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "operator sign-in");
    assert_eq!(location(&r), "/operator/tenants");
    op
}

/// Admin 200 (email 200@example.com), user 201, operator olivia signed in.
async fn console() -> (TestApp, Browser) {
    let app = spawn_app().await;
    app.add_user_as(ADMIN, Some(PASSWORD), Role::Admin).await;
    app.add_user("201-wickedsprockets", PASSWORD).await;
    add_operator(&app, OPERATOR).await;
    let op = operator_login(&app, OPERATOR).await;
    (app, op)
}

async fn admin_id(app: &TestApp, extension: &str) -> i64 {
    app.services
        .accounts
        .store()
        .user_by_username(TENANT, extension)
        .await
        .unwrap()
        .unwrap()
        .id
        .0
}

async fn caller_path(app: &TestApp) -> String {
    format!(
        "/operator/tenants/{TENANT}/admins/{}",
        admin_id(app, "200").await
    )
}

/// The admin sets their security question in Settings (first suggested question).
async fn set_question(app: &TestApp, answer: &str) -> Browser {
    let admin = app.browser();
    admin.login_ok(ADMIN, PASSWORD).await;
    let r = admin
        .post(
            "/settings/security-question",
            &[
                ("choice", "0"),
                ("answer", answer),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings?saved=question");
    admin
}

async fn verify(op: &Browser, path: &str, answer: &str) -> reqwest::Response {
    op.post(&format!("{path}/verify"), &[("answer", answer)])
        .await
}

#[tokio::test]
async fn operators_sign_in_and_out_with_a_cookie_of_their_own() {
    let app = spawn_app().await;
    app.add_user_as(ADMIN, Some(PASSWORD), Role::Admin).await;
    add_operator(&app, OPERATOR).await;
    let op = app.browser();

    let r = op.get("/operator/tenants").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/operator/login");

    let r = op
        .post(
            "/operator/login",
            &[("username", OPERATOR), ("password", "Not-the-password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("do not match"));

    let r = op
        .post(
            "/operator/login",
            &[("username", OPERATOR), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
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
    add_operator(&app, OPERATOR).await;
    let op = app.browser();
    for _ in 0..5 {
        let r = op
            .post(
                "/operator/login",
                &[("username", OPERATOR), ("password", "Wrong-password-123")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = op
        .post(
            "/operator/login",
            &[("username", OPERATOR), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.text().await.unwrap().contains("minutes"));

    app.advance(Duration::from_secs(16 * 60));
    operator_login(&app, OPERATOR).await;
    let events = app
        .services
        .accounts
        .store()
        .audit_events(None, Some("signin.locked"), 10)
        .await
        .unwrap();
    assert_eq!(events[0].actor.as_deref(), Some("operator:olivia"));
}

#[tokio::test]
async fn operator_and_customer_sessions_never_cross() {
    let (app, op) = console().await;
    let user = app.browser();
    user.login_ok("201-wickedsprockets", PASSWORD).await;
    let admin = app.browser();
    admin.login_ok(ADMIN, PASSWORD).await;

    // Customer sessions on operator routes: 403, never the console.
    let path = caller_path(&app).await;
    for b in [&user, &admin] {
        for route in ["/operator/tenants", "/operator/audit", path.as_str()] {
            let r = b.get(route).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{route}");
        }
        let r = b
            .post(&format!("{path}/verify"), &[("answer", ANSWER)])
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    // The operator's browser never sends its cookie to customer pages…
    let r = op.get("/phone").await;
    assert_eq!(location(&r), "/login?next=%2Fphone");
    // …and a hand-made request with it is refused.
    let token = {
        let r = app
            .browser()
            .post(
                "/operator/login",
                &[("username", OPERATOR), ("password", OPERATOR_PASSWORD)],
            )
            .await;
        let c = set_cookie(&r, "dialtone_operator").unwrap();
        c.split(';')
            .next()
            .unwrap()
            .split('=')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for route in ["/phone", "/settings", "/admin/users"] {
        let r = raw
            .get(app.url(route))
            .header("cookie", format!("dialtone_operator={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{route}");
    }
    // An operator token in the customer cookie is no session at all, and the other way.
    let r = raw
        .get(app.url("/phone"))
        .header("cookie", format!("dialtone_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"));
    let customer_token = {
        let b = app.browser();
        let r = b.login(ADMIN, PASSWORD).await;
        let c = set_cookie(&r, "dialtone_session").unwrap();
        c.split(';')
            .next()
            .unwrap()
            .split('=')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let r = raw
        .get(app.url("/operator/tenants"))
        .header("cookie", format!("dialtone_operator={customer_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/operator/login");
}

#[tokio::test]
async fn the_security_question_needs_the_password_and_keeps_only_a_hash() {
    let (app, _) = console().await;
    let admin = app.browser();
    admin.login_ok(ADMIN, PASSWORD).await;
    let store = app.services.accounts.store();
    let id = dialtone::store::UserId(admin_id(&app, "200").await);

    let r = admin
        .post(
            "/settings/security-question",
            &[
                ("choice", "0"),
                ("answer", ANSWER),
                ("current_password", "Wrong-password-123"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("current password is not right"));
    assert!(!body.contains(ANSWER), "the answer is never echoed");
    assert!(store.security_question(id).await.unwrap().is_none());

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
    assert!(store.security_question(id).await.unwrap().is_none());

    let admin = set_question(&app, ANSWER).await;
    let stored = store.security_question(id).await.unwrap().unwrap();
    assert_eq!(stored.question, "What was the name of your first pet?");
    assert!(stored.answer_hash.starts_with("$argon2id$"));
    assert!(!stored.answer_hash.to_lowercase().contains("biscuit"));
    let body = admin.get("/settings").await.text().await.unwrap();
    assert!(body.contains("What was the name of your first pet?"));
    assert!(!body.to_lowercase().contains("biscuit"));
    assert_eq!(app.audit_count("security_question.set").await, 1);

    // Only admins have one.
    let user = app.browser();
    user.login_ok("201-wickedsprockets", PASSWORD).await;
    let body = user.get("/settings").await.text().await.unwrap();
    assert!(!body.contains("Security question"));
    let r = user
        .post(
            "/settings/security-question",
            &[
                ("choice", "0"),
                ("answer", ANSWER),
                ("current_password", PASSWORD),
            ],
        )
        .await;
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

    let r = verify(&op, &path, "Pepper").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("2 tries left"));

    let r = verify(&op, &path, "  biscuit-THE   dog!! ").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = op.get(&location(&r)).await.text().await.unwrap();
    assert!(page.contains("answer matched"));

    let r = op.post(&format!("{path}/reveal"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"revealed-username\">200-wickedsprockets<"));
    assert!(page.contains("id=\"revealed-client-id\">wickedsprockets<"));
    assert_eq!(app.audit_count("caller.identity_revealed").await, 1);
}

#[tokio::test]
async fn three_tries_per_admin_an_hour_across_operators() {
    let (app, op) = console().await;
    add_operator(&app, "oscar").await;
    let other = operator_login(&app, "oscar").await;
    set_question(&app, ANSWER).await;
    let path = caller_path(&app).await;

    for (b, left) in [(&op, "2 tries"), (&other, "1 try"), (&op, "0 tries")] {
        let r = verify(b, &path, "Wrong guess").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains(left), "{left}");
    }
    // The right answer no longer counts: call back later.
    for b in [&op, &other] {
        let r = verify(b, &path, ANSWER).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.text().await.unwrap().contains("call back later"));
    }
    let r = op.post(&format!("{path}/reveal"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("caller.refused").await, 2);

    app.advance(Duration::from_secs(61 * 60));
    let r = verify(&op, &path, ANSWER).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
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
        verify(&op, &path, ANSWER).await.status(),
        StatusCode::SEE_OTHER
    );
    // Another operator's match is not this operator's.
    add_operator(&app, "oscar").await;
    let other = operator_login(&app, "oscar").await;
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
    let records = app
        .services
        .accounts
        .store()
        .mail_records(None, 10)
        .await
        .unwrap();
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
        verify(&op, &path, ANSWER).await.status(),
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
    let token = links[0].split("token=").nth(1).unwrap().to_owned();
    assert!(!after.contains(&token), "the operator never sees the token");
    // The admin's sessions ended; the link works for them.
    assert_eq!(app.sessions_of(ADMIN).await, 0);
    let r = admin.get("/phone").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app.browser().get(&path_of(&links[0])).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_admin_without_email_or_question_cannot_be_helped_that_way() {
    let (app, op) = console().await;
    let path = caller_path(&app).await;
    let page = op.get(&path).await.text().await.unwrap();
    assert!(page.contains("has not set a security question"));
    let r = verify(&op, &path, ANSWER).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // A user who is not an admin is not on the console at all.
    let user_path = format!(
        "/operator/tenants/{TENANT}/admins/{}",
        admin_id(&app, "201").await
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

    let r = op
        .post(
            "/operator/tenants",
            &[
                ("code", "globex"),
                ("name", "Globex"),
                ("sip_domain", "sip.globex.example"),
                ("admin_extension", "7"),
                ("admin_name", "Hank"),
                ("admin_email", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let temporary = page
        .split("id=\"temporary-password\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    let r = app.browser().login("7-globex", &temporary).await;
    assert_eq!(location(&r), "/password/choose");
    // Shown once: the tenant page does not show it again.
    let page = op
        .get("/operator/tenants/globex")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&temporary));
    assert!(page.contains("no email"));
    assert!(page.contains("none set"));

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
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let (_, total) = app
        .services
        .accounts
        .store()
        .list_tenants(None, 100, 0)
        .await
        .unwrap();
    assert_eq!(total, 3);
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
    let r = verify(&op, &path, "Wrong guess").await;
    seen.push(r.text().await.unwrap());
    let r = verify(&op, &path, ANSWER).await;
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
    let token = mails[0].links()[0]
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let hash = app
        .services
        .accounts
        .store()
        .security_question(dialtone::store::UserId(admin_id(&app, "200").await))
        .await
        .unwrap()
        .unwrap()
        .answer_hash;
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
    let admin = app.browser();
    admin.login_ok(ADMIN, PASSWORD).await;
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
    let store = app.services.accounts.store();
    let tenant = store.tenant_by_code(TENANT).await.unwrap().unwrap();
    let tenant_signins = store
        .audit_events(Some(tenant.id), Some("signin.ok"), 100)
        .await
        .unwrap();
    assert!(tenant_signins
        .iter()
        .all(|e| e.actor.as_deref() != Some("operator:olivia")));
    let all_signins = store
        .audit_events(None, Some("signin.ok"), 100)
        .await
        .unwrap();
    assert!(all_signins
        .iter()
        .any(|e| e.actor.as_deref() == Some("operator:olivia")));
}

/// A `dialtone` process serving the demo, killed when dropped.
struct Demo {
    child: Child,
    base: String,
    output: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dialtone_cmd(dir: &std::path::Path, db: &Option<String>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.env("DIALTONE_DATA_DIR", dir).current_dir(dir);
    if let Some(url) = db {
        cmd.env("DIALTONE_DATABASE_URL", url);
    }
    cmd
}

fn start_demo(dir: &std::path::Path, db: &Option<String>) -> Demo {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = dialtone_cmd(dir, db)
        .arg("demo")
        .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
        .env("DIALTONE_PUBLIC_URL", &base)
        .env("DIALTONE_MAIL_POLL", "100ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut output = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let last = line.starts_with("Operators:");
        output.push(line);
        if last {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Demo {
        child,
        base,
        output,
    }
}

#[tokio::test]
async fn an_operator_from_the_cli_verifies_the_demo_admin_and_sends_a_reset_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = match std::env::var("DIALTONE_TEST_DATABASE_URL") {
        Ok(admin) => Some(fresh_postgres_database(&admin).await),
        Err(_) => None,
    };
    let mut add = dialtone_cmd(dir.path(), &db)
        .args(["operator", "add", "olga", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(OPERATOR_PASSWORD.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());

    let demo = start_demo(dir.path(), &db);
    let answer_line = demo
        .output
        .iter()
        .find(|l| l.contains("security question"))
        .expect("demo prints the admin's security answer");
    let answer = answer_line.rsplit("answer: ").next().unwrap().to_owned();

    let op = Browser {
        base: demo.base.clone(),
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let mut ready = false;
    for _ in 0..100 {
        if op.get("/healthz").await.status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the demo answers");
    let r = op
        .post(
            "/operator/login",
            &[("username", "olga"), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/operator/tenants");
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
    let r = verify(&op, &admin_link, &answer.to_uppercase()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = op.post(&format!("{admin_link}/reset-link"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let mail_dir = dir.path().join("mail");
    let mut found = None;
    for _ in 0..200 {
        let files: Vec<_> = std::fs::read_dir(&mail_dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(f) = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "eml"))
        {
            found = Some(Mail::parse(&std::fs::read(f).unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = found.expect("the reset mail is written");
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

    let op = operator_login(&app, OPERATOR).await;
    for _ in 0..3 {
        app.advance(Duration::from_secs(3 * 3600 + 50 * 60));
        assert_eq!(op.get("/operator/tenants").await.status(), StatusCode::OK);
    }
    app.advance(Duration::from_secs(31 * 60));
    let r = op.get("/operator/tenants").await;
    assert_eq!(location(&r), "/operator/login", "past the 12-hour cap");
}
