//! Passkeys in Settings: the list, adding one (the two JSON requests around the browser's
//! `navigator.credentials.create()`), renaming, removing with the password, the CSRF
//! check, and — in headless Chromium with WebDriver's virtual authenticator — the whole
//! life of a passkey, including a sign-in check of the service with a real assertion.
//! The browser test is skipped with a printed reason when Chromium is missing, unless
//! `DIALTONE_TEST_REQUIRE_BROWSER` is set.

mod common;
mod webdriver;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use webdriver::Chrome;

const OTHER: &str = "202-wickedsprockets";

/// A credential the server can read as WebAuthn JSON but that proves nothing.
const FORGED: &str = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"attestationObject":"AAAA","clientDataJSON":"AAAA"},"extensions":{}}"#;

async fn start(b: &Browser, name: &str) -> reqwest::Response {
    b.post("/settings/passkeys/register/start", &[("name", name)])
        .await
}

async fn finish(b: &Browser, name: &str, response: &str) -> reqwest::Response {
    b.post(
        "/settings/passkeys/register/finish",
        &[("name", name), ("response", response)],
    )
    .await
}

async fn json(r: reqwest::Response) -> Value {
    serde_json::from_str(&r.text().await.unwrap()).expect("a JSON answer")
}

#[tokio::test]
async fn a_user_without_passkeys_sees_an_empty_list_reached_from_settings() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;

    let settings = b.get("/settings").await.text().await.unwrap();
    assert!(settings.contains("href=\"/settings/passkeys\""));

    let r = b.get("/settings/passkeys").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("You have no passkeys yet."));
    // Without JavaScript the page says what adding one needs; the form is hidden.
    assert!(page.contains("Adding a passkey needs JavaScript"));
    assert!(page.contains("id=\"passkey-add-form\" novalidate hidden"));
    assert!(page.contains("src=\"/static/passkeys.js\""));

    let script = b.get("/static/passkeys.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script
        .text()
        .await
        .unwrap()
        .contains("navigator.credentials.create"));
}

#[tokio::test]
async fn the_page_needs_a_session() {
    let app = spawn_app().await;
    let r = app.browser().get("/settings/passkeys").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fsettings%2Fpasskeys");
}

#[tokio::test]
async fn starting_answers_a_challenge_for_the_public_urls_host() {
    let app = spawn_app_with(&[("public_url", "http://portal.example.test:8080")]).await;
    let b = app.signed_in_user().await;

    let r = start(&b, "Work laptop").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let options = json(r).await;
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], "portal.example.test");
    assert_eq!(pk["user"]["name"], USER);
    assert!(pk["challenge"].as_str().unwrap().len() >= 22, "{pk}");
    // The user handle is random, not the username.
    let handle = pk["user"]["id"].as_str().unwrap();
    assert!(!handle.contains("wickedsprockets"));
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
}

#[tokio::test]
async fn a_bad_name_is_refused_before_the_authenticator_is_asked() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;

    for name in ["", "   ", &"x".repeat(61), "two\nlines"] {
        let r = start(&b, name).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let answer = json(r).await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("1 to 60 characters"),
            "{answer}"
        );
    }
    // The default public URL is http://localhost:8080: its host is the relying party.
    let r = start(&b, "Work laptop").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["publicKey"]["rp"]["id"], "localhost");
}

#[tokio::test]
async fn garbage_as_the_browsers_answer_is_a_clear_400_and_stores_nothing() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    assert_eq!(start(&b, "Work laptop").await.status(), StatusCode::OK);

    for garbage in ["", "not json", "{}", "[1,2]", "{\"id\": 5}"] {
        let r = finish(&b, "Work laptop", garbage).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{garbage:?}");
        let answer = json(r).await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("could not be read"),
            "{answer}"
        );
    }
    assert!(app.passkeys_of(USER).await.is_empty());
    assert_eq!(app.audit_count("passkey.added").await, 0);
}

#[tokio::test]
async fn a_forged_answer_is_refused_and_uses_up_the_challenge() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;

    // Nothing started: nothing to answer.
    let r = finish(&b, "Work laptop", FORGED).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(json(r).await["error"].as_str().unwrap().contains("ran out"));

    assert_eq!(start(&b, "Work laptop").await.status(), StatusCode::OK);
    let r = finish(&b, "Work laptop", FORGED).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json(r).await["error"]
        .as_str()
        .unwrap()
        .contains("could not be verified"));
    // The challenge was used up by that answer.
    let r = finish(&b, "Work laptop", FORGED).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(app.passkeys_of(USER).await.is_empty());
}

#[tokio::test]
async fn a_challenge_runs_out_after_five_minutes() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    assert_eq!(start(&b, "Work laptop").await.status(), StatusCode::OK);

    app.advance(Duration::from_secs(5 * 60));
    let r = finish(&b, "Work laptop", FORGED).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(json(r).await["error"].as_str().unwrap().contains("ran out"));

    // Within the five minutes it is still checked (and refused as forged).
    assert_eq!(start(&b, "Work laptop").await.status(), StatusCode::OK);
    app.advance(Duration::from_secs(5 * 60 - 1));
    let r = finish(&b, "Work laptop", FORGED).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn starting_to_add_a_passkey_after_fifteen_minutes_needs_the_password() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let page = b.get("/settings/passkeys").await.text().await.unwrap();
    assert!(!page.contains("id=\"passkey-password\""), "a fresh sign-in");
    app.advance(Duration::from_secs(16 * 60));
    let page = b.get("/settings/passkeys").await.text().await.unwrap();
    assert!(page.contains("id=\"passkey-password\""), "{page}");

    let r = start(&b, "Work laptop").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(json(r).await["error"]
        .as_str()
        .unwrap()
        .contains("confirm your portal password"));
    let start_with = "/settings/passkeys/register/start";
    let wrong = [
        ("name", "Work laptop"),
        ("current_password", "Wrong-Password-1"),
    ];
    let r = b.post(start_with, &wrong).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.audit_count("signin.failed").await, 1);
    let right = [("name", "Work laptop"), ("current_password", PASSWORD)];
    let r = b.post(start_with, &right).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(json(r).await["publicKey"]["challenge"].is_string());
    // The password typed counts as a fresh sign-in for the next 15 minutes.
    assert_eq!(start(&b, "Work laptop").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn passkeys_need_a_public_url_with_a_host_name() {
    let app = spawn_app_with(&[("public_url", "http://127.0.0.1:8080")]).await;
    let b = app.signed_in_user().await;
    let r = start(&b, "Work laptop").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(json(r).await["error"]
        .as_str()
        .unwrap()
        .contains("host name"));
}

#[tokio::test]
async fn the_list_shows_each_passkey_with_when_it_was_added_and_used() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    app.add_stored_passkey(USER, "Work laptop").await;
    app.advance(Duration::from_secs(3600));
    app.add_stored_passkey(USER, "Blue <key>").await;

    let page = b.get("/settings/passkeys").await.text().await.unwrap();
    assert!(!page.contains("You have no passkeys yet."));
    assert!(page.contains("Work laptop"));
    assert!(page.contains("Blue &#60;key&#62;") || page.contains("Blue &lt;key&gt;"));
    assert!(
        page.contains("2027-01-15 08:00 UTC"),
        "the first one's date"
    );
    assert!(
        page.contains("2027-01-15 09:00 UTC"),
        "the second one's date"
    );
    assert!(page.contains("Never"));
}

#[tokio::test]
async fn renaming_changes_the_name_and_a_bad_name_changes_nothing() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let id = app.add_stored_passkey(USER, "Work laptop").await;
    let path = format!("/settings/passkeys/{id}/rename");

    let r = b.post(&path, &[("name", "   ")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("1 to 60 characters"));
    assert!(page.contains(&format!("id=\"rename-{id}-error\"")));
    assert_eq!(app.passkeys_of(USER).await[0].name, "Work laptop");

    let r = b.post(&path, &[("name", "  Home desktop ")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings/passkeys?saved=renamed");
    assert_eq!(app.passkeys_of(USER).await[0].name, "Home desktop");
    let page = b.get(&location(&r)).await.text().await.unwrap();
    assert!(page.contains("Your passkey was renamed."));
    assert!(page.contains("Home desktop"));
    let events = app.audit_events("passkey.renamed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some(USER));
}

#[tokio::test]
async fn removing_needs_the_right_password() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let id = app.add_stored_passkey(USER, "Work laptop").await;
    let path = format!("/settings/passkeys/{id}/remove");

    for wrong in ["", "Wrong-Password-1"] {
        let r = b.post(&path, &[("current_password", wrong)]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{wrong:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains("Your current password is not right."));
        assert!(!page.contains(wrong) || wrong.is_empty(), "never echoed");
        assert_eq!(app.passkeys_of(USER).await.len(), 1);
    }
    // A wrong password counts toward the lockout like any other password check.
    assert!(app.audit_count("signin.failed").await >= 1);

    let r = b.post(&path, &[("current_password", PASSWORD)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings/passkeys?saved=removed");
    assert!(app.passkeys_of(USER).await.is_empty());
    let events = app.audit_events("passkey.removed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail.as_deref(), Some("Work laptop"));
    let page = b.get(&location(&r)).await.text().await.unwrap();
    assert!(page.contains("Your passkey was removed."));
    assert!(page.contains("You have no passkeys yet."));
}

#[tokio::test]
async fn another_users_passkey_cannot_be_renamed_or_removed() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_user(OTHER, PASSWORD).await;
    let theirs = app.add_stored_passkey(USER, "Work laptop").await;
    let other = app.signed_in(OTHER).await;

    let r = other
        .post(
            &format!("/settings/passkeys/{theirs}/rename"),
            &[("name", "Mine now")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = other
        .post(
            &format!("/settings/passkeys/{theirs}/remove"),
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Ids that are no passkey at all look the same.
    for id in ["999999", "abc", "-1"] {
        let r = other
            .post(
                &format!("/settings/passkeys/{id}/remove"),
                &[("current_password", PASSWORD)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }

    let kept = app.passkeys_of(USER).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].name, "Work laptop");
    let page = other.get("/settings/passkeys").await.text().await.unwrap();
    assert!(page.contains("You have no passkeys yet."));
}

#[tokio::test]
async fn every_passkey_post_without_the_csrf_token_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let id = app.add_stored_passkey(USER, "Work laptop").await;

    let rename = format!("/settings/passkeys/{id}/rename");
    let remove = format!("/settings/passkeys/{id}/remove");
    let posts: [(&str, Vec<(&str, &str)>); 4] = [
        ("/settings/passkeys/register/start", vec![("name", "Key")]),
        (
            "/settings/passkeys/register/finish",
            vec![("name", "Key"), ("response", FORGED)],
        ),
        (&rename, vec![("name", "Renamed")]),
        (&remove, vec![("current_password", PASSWORD)]),
    ];
    for (path, fields) in &posts {
        let r = b.post_raw(path, fields).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} without a token");
        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "forged"));
        let r = b.post_raw(path, &wrong).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{path} with a wrong token"
        );
    }
    let kept = app.passkeys_of(USER).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].name, "Work laptop");
    // And no challenge was made: a finish with a real token finds none pending.
    let r = finish(&b, "Key", FORGED).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_sign_in_challenge_needs_a_passkey() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    assert_eq!(
        app.passkey_sign_in_challenge(USER).await,
        Err("no passkey".to_owned())
    );
    // An answer that is not even WebAuthn JSON is refused, and audited.
    assert_eq!(
        app.finish_passkey_sign_in(USER, FORGED).await,
        Err(dialtone::services::passkeys::PasskeyRefusal::Unreadable)
    );
    assert_eq!(app.audit_count("passkey.rejected").await, 1);
}

#[tokio::test]
async fn a_user_with_a_passkey_gets_the_second_step_and_a_garbage_assertion_is_refused_and_counted()
{
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_stored_passkey(USER, "Work laptop").await;
    let b = app.browser();
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(
        location(&r),
        "/login/two-step",
        "a passkey is a second factor"
    );
    assert!(set_cookie(&r, "dialtone_session").is_none());
    let page = b.get("/login/two-step").await.text().await.unwrap();
    assert!(page.contains("id=\"use-passkey\""), "{page}");
    assert!(page.contains("/static/passkeys.js"));
    // A passkey only (no app, no recovery codes): no code form to type into.
    assert!(!page.contains("name=\"code\""), "{page}");
    // Without JavaScript the page says what to do.
    assert!(page.contains("Using a passkey needs JavaScript"));

    for round in 0..5 {
        let r = b
            .post(
                "/login/two-step/passkey/finish",
                &[("response", "not an assertion")],
            )
            .await;
        let status = r.status();
        assert!(set_cookie(&r, "dialtone_session").is_none(), "{round}");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{round}");
        assert!(json(r).await["error"]
            .as_str()
            .unwrap()
            .contains("could not be verified"));
        assert!(location(&b.get("/phone").await).starts_with("/login"));
    }
    assert_eq!(app.audit_count("two_step.failed").await, 5);
    assert_eq!(app.audit_count("passkey.rejected").await, 5);
    // Counted toward the same lockout as wrong passwords: now even the password is refused.
    let r = b
        .post(
            "/login/two-step/passkey/finish",
            &[("response", "not an assertion")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(app.audit_count("signin.ok").await, 0);
}

#[tokio::test]
async fn with_a_passkey_only_settings_says_two_step_sign_in_is_on_and_makes_recovery_codes() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let page = b.get("/settings/two-step").await.text().await.unwrap();
    assert!(page.contains("Signing in asks for your password only."));
    app.add_stored_passkey(USER, "Work laptop").await;
    let page = b.get("/settings/two-step").await.text().await.unwrap();
    assert!(page.contains("Signing in asks for one of your"), "{page}");
    assert!(!page.contains("Signing in asks for your password only."));
    assert!(
        !page.contains("/settings/two-step/remove"),
        "turning off removes an app, which there is none of"
    );
    let r = b
        .post(
            "/settings/two-step/recovery-codes",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(recovery_codes_in(&r.text().await.unwrap()).len(), 10);
}

#[tokio::test]
async fn an_admin_removing_a_users_second_factor_removes_their_passkeys() {
    let (app, admin) = spawn_tenant().await;
    app.add_stored_passkey(USER, "Work laptop").await;
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
    assert!(app.passkeys_of(USER).await.is_empty());
    assert_eq!(app.audit_count("two_step.removed").await, 1);
    assert_eq!(
        location(&app.browser().login(USER, PASSWORD).await),
        "/phone"
    );
}

#[tokio::test]
async fn the_second_steps_passkey_requests_need_a_pending_step_and_the_csrf_token() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_stored_passkey(USER, "Work laptop").await;
    let b = app.browser();
    // No pending step: start again.
    let r = b.post("/login/two-step/passkey/start", &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(json(r).await["redirect"], "/login?step=expired");
    assert_eq!(location(&b.login(USER, PASSWORD).await), "/login/two-step");
    for path in [
        "/login/two-step/passkey/start",
        "/login/two-step/passkey/finish",
    ] {
        let r = b.post_raw(path, &[("response", "x")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.audit_count("two_step.failed").await, 0);
}

// ---- In a real browser ------------------------------------------------------------

/// A portal on a known port whose public URL is `http://localhost:PORT`: WebAuthn needs
/// a host name (not 127.0.0.1) and a secure context, which localhost is.
async fn spawn_on_localhost() -> TestApp {
    let port = free_port();
    spawn_app_with(&[
        ("listen", &format!("127.0.0.1:{port}")),
        ("public_url", &format!("http://localhost:{port}")),
    ])
    .await
}

async fn sign_in(c: &Chrome, username: &str, password: &str) {
    c.goto("/login").await;
    c.fill("#username", username).await;
    c.fill("#password", password).await;
    c.click("form.form button[type=submit]").await;
    c.wait_path("/phone").await;
}

/// Runs the portal's own `DialtonePasskeys.get()` on the page with `options`; the JSON
/// the browser made, or `ERR:NAME`.
async fn assertion(c: &Chrome, options: &str) -> String {
    let v = c
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.DialtonePasskeys.get(JSON.parse(arguments[0]))
               .then(done, (e) => done('ERR:' + e.name));",
            vec![Value::String(options.to_owned())],
        )
        .await
        .expect("the script runs");
    v.as_str().expect("a string").to_owned()
}

#[tokio::test]
async fn a_passkey_is_added_named_used_renamed_and_removed_in_chromium() {
    let app = spawn_on_localhost().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = Chrome::start(&app.base.replace("127.0.0.1", "localhost")).await else {
        return;
    };
    let authenticator = c.add_virtual_authenticator().await;
    sign_in(&c, USER, PASSWORD).await;

    c.goto("/settings").await;
    c.click("#manage-passkeys").await;
    c.wait_path("/settings/passkeys").await;
    assert!(c.text("main").await.contains("You have no passkeys yet."));
    // With JavaScript on, the form shows and the "needs JavaScript" note does not.
    assert!(c
        .find("#passkey-add-form")
        .await
        .is_displayed()
        .await
        .unwrap());
    assert!(!c
        .find("#passkey-needs-js")
        .await
        .is_displayed()
        .await
        .unwrap());
    c.audit().await;

    // Add one, named. It is the first second factor: its recovery codes, shown once.
    c.fill("#passkey-name", "Work laptop").await;
    c.click("#passkey-add").await;
    c.wait_text("#passkey-codes [role=status]", "two-step sign-in is on")
        .await;
    let shown = c
        .js("return document.querySelectorAll('#recovery-codes li').length")
        .await;
    assert_eq!(shown, "10", "ten recovery codes shown");
    assert_eq!(app.audit_count("two_step.enabled").await, 1);
    c.audit().await;
    c.click("#codes-continue").await;
    c.wait_text("[role=status]", "Your passkey was added.")
        .await;
    assert!(
        !c.text("main").await.contains("shown only this once"),
        "the codes are not shown again"
    );
    assert_eq!(c.text(".passkey-name").await, "Work laptop");
    assert_eq!(c.text(".passkey-last-used").await, "Never");
    let held = c.authenticator_credentials(&authenticator).await;
    assert_eq!(held.len(), 1);
    let port = app.addr.port();
    assert_eq!(held[0]["rpId"], "localhost", "port {port}");
    let stored = app.passkeys_of(USER).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Work laptop");
    assert_eq!(
        held[0]["credentialId"]
            .as_str()
            .unwrap()
            .trim_end_matches('='),
        stored[0].credential_id,
        "the stored credential is the one the authenticator holds"
    );
    assert_eq!(app.audit_count("passkey.added").await, 1);
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert!(mail.text.contains("A passkey was added"), "{}", mail.text);
    c.audit().await;
    c.set_theme("light").await;
    c.audit_contrast().await;
    c.screenshot("passkeys-light").await;
    c.set_theme("dark").await;
    c.audit_contrast().await;
    c.screenshot("passkeys-dark").await;
    c.set_viewport(360, 740).await;
    c.assert_fits_width().await;
    c.set_size(1280, 800).await;

    // The same authenticator again: the browser refuses (it is excluded), nothing added.
    c.fill("#passkey-name", "Work laptop again").await;
    c.click("#passkey-add").await;
    c.wait_text("#passkey-error", "already holds a passkey")
        .await;
    assert_eq!(app.passkeys_of(USER).await.len(), 1);
    c.audit().await;

    // A sign-in check with a real assertion from the authenticator.
    let options = app.passkey_sign_in_challenge(USER).await.unwrap();
    let options_json: Value = serde_json::from_str(&options).unwrap();
    assert_eq!(options_json["publicKey"]["rpId"], "localhost");
    let answer = assertion(&c, &options).await;
    assert!(!answer.starts_with("ERR:"), "{answer}");
    app.advance(Duration::from_secs(60));
    assert_eq!(app.finish_passkey_sign_in(USER, &answer).await, Ok(()));
    assert_eq!(app.audit_count("passkey.used").await, 1);
    // The authenticator's signature counter moved on, and the stored credential with it.
    assert_ne!(app.passkeys_of(USER).await[0].passkey, stored[0].passkey);
    // The same answer again: its challenge is used up.
    assert_eq!(
        app.finish_passkey_sign_in(USER, &answer).await,
        Err(dialtone::services::passkeys::PasskeyRefusal::Expired)
    );
    // An answer with a forged signature proves nothing.
    let options = app.passkey_sign_in_challenge(USER).await.unwrap();
    let mut forged: Value = serde_json::from_str(&assertion(&c, &options).await).unwrap();
    let signature = forged["response"]["signature"].as_str().unwrap().to_owned();
    let flipped = if signature.as_bytes()[20] == b'A' {
        "B"
    } else {
        "A"
    };
    forged["response"]["signature"] =
        Value::String(format!("{}{flipped}{}", &signature[..20], &signature[21..]));
    assert_eq!(
        app.finish_passkey_sign_in(USER, &forged.to_string()).await,
        Err(dialtone::services::passkeys::PasskeyRefusal::Rejected)
    );
    assert_eq!(app.audit_count("passkey.rejected").await, 2);
    c.goto("/settings/passkeys").await;
    assert_eq!(
        c.text(".passkey-last-used").await,
        "2027-01-15 08:01 UTC",
        "the last use is shown"
    );

    // Rename it.
    c.click(".passkey-manage summary").await;
    let id = stored[0].id.0;
    c.fill(&format!("#rename-{id}"), "Blue key").await;
    c.click(".passkey-rename button[type=submit]").await;
    c.wait_text("[role=status]", "Your passkey was renamed.")
        .await;
    assert_eq!(c.text(".passkey-name").await, "Blue key");

    // Remove it: the wrong password first.
    c.click(".passkey-manage summary").await;
    c.fill(&format!("#remove-password-{id}"), "Wrong-Password-1")
        .await;
    c.click(".passkey-remove button[type=submit]").await;
    c.wait_text(
        &format!("#remove-password-{id}-error"),
        "Your current password is not right.",
    )
    .await;
    assert_eq!(app.passkeys_of(USER).await.len(), 1);
    c.audit().await;
    c.fill(&format!("#remove-password-{id}"), PASSWORD).await;
    c.click(".passkey-remove button[type=submit]").await;
    c.wait_text("[role=status]", "Your passkey was removed.")
        .await;
    assert!(c.text("main").await.contains("You have no passkeys yet."));
    assert!(app.passkeys_of(USER).await.is_empty());
    assert_eq!(
        app.passkey_sign_in_challenge(USER).await,
        Err("no passkey".to_owned())
    );
    c.close().await;
}

#[tokio::test]
async fn a_passkey_finishes_the_second_step_of_a_sign_in_in_chromium() {
    let app = spawn_on_localhost().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = Chrome::start(&app.base.replace("127.0.0.1", "localhost")).await else {
        return;
    };
    c.add_virtual_authenticator().await;
    sign_in(&c, USER, PASSWORD).await;
    c.goto("/settings/passkeys").await;
    c.fill("#passkey-name", "Work laptop").await;
    c.click("#passkey-add").await;
    c.wait_text("#passkey-codes [role=status]", "two-step sign-in is on")
        .await;
    c.click("#codes-continue").await;
    c.wait_text("[role=status]", "Your passkey was added.")
        .await;
    c.click("button[aria-label='Sign out']").await;
    c.wait_path("/login").await;

    // The password, then the second step with the passkey.
    c.fill("#username", USER).await;
    c.fill("#password", PASSWORD).await;
    c.click("form.form button[type=submit]").await;
    c.wait_path("/login/two-step").await;
    assert!(c.find("#use-passkey").await.is_displayed().await.unwrap());
    assert!(!c
        .find("#passkey-needs-js")
        .await
        .is_displayed()
        .await
        .unwrap());
    c.audit().await;
    c.screenshot("two-step-passkey").await;
    app.advance(Duration::from_secs(60));
    c.click("#use-passkey").await;
    c.wait_path("/phone").await;
    assert_eq!(app.sessions_of(USER).await, 1, "signed in");
    let ok = app.audit_events("signin.ok").await;
    assert!(
        ok.iter()
            .any(|e| e.detail.as_deref() == Some("second step: a passkey")),
        "{ok:?}"
    );
    assert_eq!(app.audit_count("passkey.used").await, 1);
    c.close().await;
}
