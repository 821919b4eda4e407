//! The Phone tab's softphone.
//!
//! First what the portal answers: the credential endpoint (CSRF, `no-store`, signed-in
//! users only, the `auth_ephemeral` format, never past the session, audited once per
//! sign-in) and the page's headers. Then against a real Kamailio running the shipped
//! configuration: a minted credential registers its own extension and no other, an
//! expired one is refused. Then in headless Chromium with a fake microphone: 201 registers
//! by itself, 200 calls 201 who answers, 200 hangs up, and signing out ends the
//! registration. Kamailio and browser tests skip with a printed reason when those are
//! missing, unless `DIALTONE_TEST_REQUIRE_KAMAILIO` / `DIALTONE_TEST_REQUIRE_BROWSER` is
//! set (CI sets both).

mod common;
mod webdriver;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::kamailio::{self, Kamailio, Phone, Ports, EPHEMERAL_SECRET};
use common::{spawn_app, spawn_app_with, Browser, TestApp, ADMIN, PASSWORD, USER};
use dialtone::clock::Timestamp;
use dialtone::domain::Role;
use dialtone::services::softphone::{ephemeral_password, ephemeral_username};
use reqwest::StatusCode;
use serde_json::Value;
use webdriver::{Chrome, FAKE_MEDIA};

const DOMAIN: &str = "wickedsprockets.sip.localhost";
const CREDENTIAL: &str = "/phone/softphone/credential";

/// Kamailio and the browsers share the machine's two cores: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A portal with the softphone configured for a registrar at `ws_url`; the directory
/// holds the secret file and must outlive the app.
async fn app_with_softphone(ws_url: &str) -> (TestApp, tempfile::TempDir) {
    app_with_softphone_and(ws_url, &[]).await
}

/// The same, with `extra` settings.
async fn app_with_softphone_and(
    ws_url: &str,
    extra: &[(&str, &str)],
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ephemeral.secret");
    std::fs::write(&file, format!("{EPHEMERAL_SECRET}\n")).unwrap();
    let file = file.display().to_string();
    let mut settings = vec![
        ("sip_ws_url", ws_url),
        ("sip_ephemeral_secret_file", file.as_str()),
    ];
    settings.extend_from_slice(extra);
    let app = spawn_app_with(&settings).await;
    // Kamailio reads the real time: keep the portal's pinned clock from lagging it.
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let pinned = app.portal.clock.now().0;
    if real > pinned {
        app.advance(Duration::from_secs((real - pinned) as u64));
    }
    app.add_user(USER, PASSWORD).await;
    app.add_person(ADMIN, "Dana Whitfield", None, Role::Admin, Some(PASSWORD))
        .await;
    app.add_person(
        "202-wickedsprockets",
        "Priya Natarajan",
        None,
        Role::User,
        Some(PASSWORD),
    )
    .await;
    (app, dir)
}

async fn credential(b: &Browser) -> Value {
    let r = b.post(CREDENTIAL, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    serde_json::from_str(&r.text().await.unwrap()).expect("a JSON credential")
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

// ---- the portal ---------------------------------------------------------------------------

#[tokio::test]
async fn without_the_settings_the_phone_tab_says_the_provider_has_not_set_it_up() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;

    let r = b.get("/phone").await;
    assert!(header(&r, "permissions-policy").contains("microphone=()"));
    let page = r.text().await.unwrap();
    assert!(page.contains("data-softphone-state=\"unconfigured\""));
    assert!(page.contains("has not set up the softphone"));
    assert!(!page.contains("softphone.js"), "nothing of it loads");

    let r = b.post(CREDENTIAL, &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.audit_count("softphone.credential").await, 0);
}

#[tokio::test]
async fn a_signed_in_user_gets_a_short_lived_credential_in_the_auth_ephemeral_form() {
    let (app, _dir) = app_with_softphone("wss://sip.example.com:8443/ws").await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;
    let now = app.portal.clock.now().0;

    let r = b.post(CREDENTIAL, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert!(header(&r, "content-type").starts_with("application/json"));
    let body = r.text().await.unwrap();
    let c: Value = serde_json::from_str(&body).unwrap();

    let expires = c["expires_at"].as_i64().unwrap();
    assert_eq!(expires, now + 3600, "an hour, well inside the session");
    assert_eq!(c["expires_in"], 3600);
    let username = format!("{expires}:201@{DOMAIN}");
    assert_eq!(c["username"], username.as_str());
    assert_eq!(c["uri"], format!("sip:201@{DOMAIN}").as_str());
    assert_eq!(c["ws_url"], "wss://sip.example.com:8443/ws");
    assert_eq!(
        c["password"],
        ephemeral_password(EPHEMERAL_SECRET.as_bytes(), &username).as_str()
    );
    let sip_secret = app.phone_secrets_of(USER).await.0.unwrap();
    assert!(
        !body.contains(&sip_secret),
        "the long-lived SIP secret never reaches the browser"
    );
}

#[tokio::test]
async fn the_credential_needs_a_session_a_csrf_token_and_no_pending_temporary_password() {
    let (app, _dir) = app_with_softphone("ws://127.0.0.1:1").await;

    let anonymous = app.browser();
    let r = anonymous.post(CREDENTIAL, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), "/login");

    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;
    let r = b.post_raw(CREDENTIAL, &[("csrf_token", "forged")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().contains("password"));

    let temporary = app
        .add_user_as("203-wickedsprockets", None, Role::User)
        .await
        .expect("a temporary password");
    let t = app.browser();
    t.login("203-wickedsprockets", &temporary).await;
    let r = t.post(CREDENTIAL, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), "/password/choose");
    assert_eq!(app.audit_count("softphone.credential").await, 0);
}

#[tokio::test]
async fn the_credential_never_outlives_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, EPHEMERAL_SECRET).unwrap();
    let file = file.display().to_string();
    let app = spawn_app_with(&[
        ("sip_ws_url", "wss://sip.example.com"),
        ("sip_ephemeral_secret_file", file.as_str()),
        ("session_idle", "2h"),
        ("session_max", "2h"),
    ])
    .await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;
    let signed_in = app.portal.clock.now().0;

    app.advance(Duration::from_secs(100 * 60));
    let c = credential(&b).await;
    assert_eq!(
        c["expires_at"].as_i64().unwrap(),
        signed_in + 2 * 3600,
        "cut to the session's cap"
    );
    assert_eq!(c["expires_in"], 20 * 60);
}

#[tokio::test]
async fn the_first_credential_of_a_sign_in_is_audited_and_refreshes_are_not() {
    let (app, _dir) = app_with_softphone("wss://sip.example.com").await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;
    credential(&b).await;
    app.advance(Duration::from_secs(50 * 60));
    credential(&b).await;
    credential(&b).await;
    let events = app
        .tenant_audit_events("wickedsprockets", "softphone.credential")
        .await;
    assert_eq!(events.len(), 1, "once for this sign-in");
    assert_eq!(events[0].actor.as_deref(), Some(USER));

    let again = app.browser();
    again.login_ok(USER, PASSWORD).await;
    credential(&again).await;
    credential(&b).await;
    assert_eq!(
        app.audit_count("softphone.credential").await,
        2,
        "a new sign-in is audited again"
    );
}

#[tokio::test]
async fn the_phone_tab_allows_the_microphone_and_the_registrar_and_nothing_else_does() {
    let (app, _dir) = app_with_softphone("wss://sip.example.com:8443/ws").await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;

    let r = b.get("/phone").await;
    let csp = header(&r, "content-security-policy");
    assert!(
        csp.contains("connect-src 'self' wss://sip.example.com:8443"),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(header(&r, "permissions-policy").contains("microphone=(self)"));
    let page = r.text().await.unwrap();
    assert!(page.contains("data-softphone-state=\"connecting\""));
    assert!(page.contains("<script src=\"/static/softphone.js\""));
    assert!(page.contains("<label for=\"softphone-number\">Number</label>"));
    for button in [">Call<", ">Answer<", ">Hang up<", ">Mute<"] {
        assert!(page.contains(button), "{button}");
    }

    let r = b.get("/settings").await;
    assert!(header(&r, "permissions-policy").contains("microphone=()"));
    assert!(!header(&r, "content-security-policy").contains("wss:"));

    let r = b.get("/static/softphone.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "content-type").starts_with("text/javascript"));
    assert!(r.text().await.unwrap().contains("softphoneState"));
}

// ---- against Kamailio -------------------------------------------------------------------------

async fn kamailio_for(app: &TestApp, ports: Ports) -> Kamailio {
    kamailio_with(app, ports, &[]).await
}

/// The same with `extra` settings of the configuration.
async fn kamailio_with(app: &TestApp, ports: Ports, extra: &[(&str, &str)]) -> Kamailio {
    let token = app
        .portal
        .pbx
        .add_token("kamailio", &common::test_actor())
        .await
        .unwrap();
    Kamailio::start(
        ports,
        app.internal.expect("internal listener"),
        &token,
        extra,
    )
    .await
}

#[tokio::test]
async fn kamailio_takes_a_minted_credential_for_its_own_extension_only() {
    if !kamailio::ready("kamailio_takes_a_minted_credential_for_its_own_extension_only") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let ports = Ports::pick();
    let (app, _dir) = app_with_softphone(&ports.ws_url()).await;
    let k = kamailio_for(&app, ports).await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;
    let c = credential(&b).await;
    let (user, password) = (
        c["username"].as_str().unwrap(),
        c["password"].as_str().unwrap(),
    );

    let mut phone = Phone::start(&k, "Credential Check").await;
    assert_eq!(
        phone.register_as("202", DOMAIN, user, password).await,
        403,
        "201's credential does not register 202"
    );
    assert_eq!(k.contacts(&format!("202@{DOMAIN}")).await, 0);
    assert_eq!(
        phone.register_as("201", DOMAIN, user, password).await,
        200,
        "Kamailio computes the same password"
    );
    assert_eq!(k.contacts(&format!("201@{DOMAIN}")).await, 1);
}

#[tokio::test]
async fn a_minted_credential_stops_working_when_its_user_is_deleted() {
    if !kamailio::ready("a_minted_credential_stops_working_when_its_user_is_deleted") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let ports = Ports::pick();
    let (app, _dir) =
        app_with_softphone_and(&ports.ws_url(), &[("kamailio_rpc", &ports.rpc_url())]).await;
    // One failed authentication bans an address: the deleted user's open tab must not be
    // counted as one, or an office behind one address would be banned for it.
    let k = kamailio_with(&app, ports, &[("BAN_AFTER_FAILURES", "1")]).await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;
    let c = credential(&b).await;
    let (user, password) = (
        c["username"].as_str().unwrap(),
        c["password"].as_str().unwrap(),
    );
    let aor = format!("201@{DOMAIN}");
    let mut phone = Phone::start(&k, "Browser Tab").await;
    assert_eq!(phone.register_as("201", DOMAIN, user, password).await, 200);

    let admin = app.browser();
    admin.login_ok(ADMIN, PASSWORD).await;
    let r = admin.post("/admin/users/201/delete", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        k.contacts_left_after(&aor, Duration::from_secs(2)).await,
        0,
        "the registration is gone"
    );
    assert_eq!(
        phone.register_as("201", DOMAIN, user, password).await,
        403,
        "the credential, though not expired, registers nothing for a deleted user"
    );
    assert_eq!(k.contacts(&aor).await, 0);
    let colleague = app.browser();
    colleague.login_ok("202-wickedsprockets", PASSWORD).await;
    let c = credential(&colleague).await;
    let mut desk = Phone::start(&k, "Colleague's Tab").await;
    assert_eq!(
        desk.register_as(
            "202",
            DOMAIN,
            c["username"].as_str().unwrap(),
            c["password"].as_str().unwrap()
        )
        .await,
        200,
        "the office's address is not banned"
    );
}

#[tokio::test]
async fn kamailio_refuses_an_expired_or_forged_credential() {
    if !kamailio::ready("kamailio_refuses_an_expired_or_forged_credential") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let ports = Ports::pick();
    let (app, _dir) = app_with_softphone(&ports.ws_url()).await;
    let k = kamailio_for(&app, ports).await;
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let aor = format!("201@{DOMAIN}");

    let expired = ephemeral_username(Timestamp(real - 60), &aor);
    let mut phone = Phone::start(&k, "Expired").await;
    let right_password = ephemeral_password(EPHEMERAL_SECRET.as_bytes(), &expired);
    assert_eq!(
        phone
            .register_as("201", DOMAIN, &expired, &right_password)
            .await,
        403
    );
    let valid = ephemeral_username(Timestamp(real + 600), &aor);
    let forged = ephemeral_password(b"not-the-shared-secret-at-all", &valid);
    assert_eq!(phone.register_as("201", DOMAIN, &valid, &forged).await, 403);
    assert_eq!(k.contacts(&aor).await, 0);
}

// ---- in the browser ---------------------------------------------------------------------------

async fn sign_in(c: &Chrome, username: &str) {
    c.goto("/login").await;
    c.fill("#username", username).await;
    c.fill("#password", PASSWORD).await;
    c.click("form.form button[type=submit]").await;
    c.wait_path("/phone").await;
}

/// Waits (bounded) until the softphone says `state`.
async fn wait_state(c: &Chrome, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = c
            .js("const e = document.getElementById('softphone'); return e ? e.dataset.softphoneState : 'none'")
            .await;
        if now == state {
            return;
        }
        if Instant::now() > deadline {
            let status = c.js("return document.getElementById('softphone-status').textContent + ' / ' + document.getElementById('softphone-error').textContent").await;
            panic!("the softphone is {now}, not {state}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until Kamailio holds `n` contacts for `aor`.
async fn wait_contacts(k: &Kamailio, aor: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.contacts(aor).await != n {
        assert!(Instant::now() < deadline, "{aor} never had {n} contacts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click_button(c: &Chrome, text: &str) {
    let id = match text {
        "Call" => "#softphone-call",
        "Answer" => "#softphone-answer",
        "Hang up" => "#softphone-hangup",
        _ => panic!("no button {text}"),
    };
    assert_eq!(c.text(id).await, text, "the button reads {text}");
    c.click(id).await;
}

#[tokio::test]
async fn two_browsers_register_by_themselves_call_answer_and_hang_up() {
    if !kamailio::ready("two_browsers_register_by_themselves_call_answer_and_hang_up") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let ports = Ports::pick();
    let (app, _dir) = app_with_softphone(&ports.ws_url()).await;
    let k = kamailio_for(&app, ports).await;
    let Some(callee) = Chrome::start_with(&app.base, FAKE_MEDIA).await else {
        return;
    };
    sign_in(&callee, USER).await;
    wait_state(&callee, "registered").await;
    wait_contacts(&k, &format!("201@{DOMAIN}"), 1).await;
    callee.audit().await;

    let caller = callee.another(FAKE_MEDIA).await;
    sign_in(&caller, ADMIN).await;
    wait_state(&caller, "registered").await;

    caller.fill("#softphone-number", "201").await;
    click_button(&caller, "Call").await;
    wait_state(&callee, "ringing").await;
    assert!(callee.text("#softphone-incoming").await.contains("200"));
    click_button(&callee, "Answer").await;
    wait_state(&callee, "in-call").await;
    wait_state(&caller, "in-call").await;
    callee.audit().await;

    click_button(&caller, "Hang up").await;
    wait_state(&caller, "registered").await;
    wait_state(&callee, "registered").await;
    caller.close().await;
    callee.close().await;
}

#[tokio::test]
async fn the_softphone_is_readable_keyboard_operable_and_signing_out_ends_its_registration() {
    if !kamailio::ready("signing_out_ends_the_registration") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let ports = Ports::pick();
    let (app, _dir) = app_with_softphone(&ports.ws_url()).await;
    let k = kamailio_for(&app, ports).await;
    let Some(c) = Chrome::start_with(&app.base, FAKE_MEDIA).await else {
        return;
    };
    sign_in(&c, USER).await;
    wait_state(&c, "registered").await;
    let aor = format!("201@{DOMAIN}");
    wait_contacts(&k, &aor, 1).await;

    // Readable in both themes and at phone width, operable from the keyboard.
    for theme in ["light", "dark"] {
        c.set_viewport(1280, 800).await;
        c.set_theme(theme).await;
        wait_state(&c, "registered").await;
        c.audit().await;
        c.audit_contrast().await;
        c.screenshot(&format!("softphone-{theme}")).await;
        c.set_viewport(360, 740).await;
        c.assert_fits_width().await;
        c.js("document.getElementById('softphone').scrollIntoView(); return ''")
            .await;
        c.screenshot(&format!("softphone-360-{theme}")).await;
    }
    c.set_viewport(1280, 800).await;
    c.tab_to("input#softphone-number").await;
    c.keys("202").await;
    c.tab_to("button#softphone-call").await;
    assert_eq!(
        c.js("return document.getElementById('softphone-number').value")
            .await,
        "202"
    );

    c.click("form.signout-form button").await;
    c.wait_path("/login").await;
    wait_contacts(&k, &aor, 0).await;
    c.close().await;
}
