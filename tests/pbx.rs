//! The phone system takes its credentials from Dialtone.
//!
//! First the internal listener's credential lookup and the PBX token commands, as a SIP
//! server and a provider's engineer see them. Then the end-to-end suite: a real Kamailio
//! running the shipped configuration (`contrib/kamailio/kamailio.cfg`) and real SIP phones
//! (pjsua2) registering and calling through it. Those tests skip with a printed reason
//! when Kamailio or pjsua2 is missing, unless `DIALTONE_TEST_REQUIRE_KAMAILIO` is set (CI
//! sets it); they run one at a time, each with its own Kamailio on free ports.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::kamailio::{self, Kamailio, Phone, Ports};
use common::{spawn_app, spawn_app_with, Browser, TestApp, PASSWORD, TENANT};
use dialtone::domain::Role;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

const USER: &str = "201-wickedsprockets";
const DOMAIN: &str = "wickedsprockets.sip.localhost";

/// End-to-end tests share the machine's two cores with Kamailio and the phones: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn md5_hex(s: &str) -> String {
    use md5::Md5;
    hex::encode(Md5::digest(s.as_bytes()))
}

async fn lookup(app: &TestApp, token: Option<&str>, query: &str) -> reqwest::Response {
    let internal = app.internal.expect("the internal listener is on");
    let mut r =
        reqwest::Client::new().get(format!("http://{internal}/pbx/v1/sip-credentials?{query}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.expect("the internal listener answers")
}

async fn json(r: reqwest::Response) -> serde_json::Value {
    serde_json::from_str(&r.text().await.unwrap()).expect("a JSON body")
}

async fn sip_secret(app: &TestApp, username: &str) -> String {
    app.phone_secrets_of(username)
        .await
        .0
        .expect("every user has a SIP secret")
}

/// Signs in and reads the SIP secret the Phone tab reveals, as a person would.
async fn revealed_secret(app: &TestApp, username: &str) -> (Browser, String) {
    let b = app.browser();
    b.login_ok(username, PASSWORD).await;
    let page = b.post("/phone/sip/reveal", &[]).await.text().await.unwrap();
    let at = page
        .find("id=\"sip-secret\">")
        .expect("the revealed secret")
        + "id=\"sip-secret\">".len();
    let secret = page[at..].split('<').next().unwrap().trim().to_owned();
    assert!(!secret.contains("hidden"), "the secret is revealed");
    (b, secret)
}

async fn app_with_token() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let token = app
        .portal
        .pbx
        .add_token("kamailio", &common::test_actor())
        .await
        .unwrap();
    (app, token)
}

// ---- the credential lookup ---------------------------------------------------------------

#[tokio::test]
async fn the_credential_lookup_gives_a_pbx_token_both_digests_of_the_secret() {
    let (app, token) = app_with_token().await;
    let secret = sip_secret(&app, USER).await;

    let r = lookup(&app, Some(&token), &format!("user=201&domain={DOMAIN}")).await;

    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    let material = format!("201:{DOMAIN}:{secret}");
    assert_eq!(body["user"], "201");
    assert_eq!(body["domain"], DOMAIN);
    assert_eq!(body["ha1"], md5_hex(&material));
    assert_eq!(
        body["ha1_sha256"],
        hex::encode(Sha256::digest(material.as_bytes()))
    );
    assert!(
        !body.to_string().contains(&secret),
        "the clear secret never leaves"
    );

    // A SIP server may send the domain in any case.
    let r = lookup(
        &app,
        Some(&token),
        "user=201&domain=WickedSprockets.SIP.localhost",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["ha1"], md5_hex(&material));
}

#[tokio::test]
async fn the_credential_lookup_refuses_a_missing_wrong_or_revoked_token() {
    let (app, token) = app_with_token().await;
    let q = format!("user=201&domain={DOMAIN}");
    for bad in [None, Some("not-a-token"), Some(&token[..42])] {
        let r = lookup(&app, bad, &q).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert!(!r.text().await.unwrap().contains("ha1"));
    }
    let other = app
        .portal
        .pbx
        .add_token("other", &common::test_actor())
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .get(format!(
            "http://{}/pbx/v1/sip-credentials?{q}",
            app.internal.unwrap()
        ))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "only a bearer token");

    assert!(app
        .portal
        .pbx
        .revoke_token("kamailio", &common::test_actor())
        .await
        .unwrap());

    assert_eq!(
        lookup(&app, Some(&token), &q).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        lookup(&app, Some(&other), &q).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_extension_or_domain_is_not_found() {
    let (app, token) = app_with_token().await;
    app.add_user("201-othercorp", PASSWORD).await;
    app.add_user("202-wickedsprockets", PASSWORD).await;
    for q in [
        format!("user=299&domain={DOMAIN}"),
        "user=201&domain=nobody.example.com".to_owned(),
        // 202 exists in the other tenant only, and is looked up only at its own domain.
        "user=202&domain=othercorp.sip.localhost".to_owned(),
    ] {
        let r = lookup(&app, Some(&token), &q).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{q}");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn bad_input_to_the_internal_routes_gets_a_clear_4xx() {
    let (app, token) = app_with_token().await;
    let huge = "9".repeat(20_000);
    let long_domain = format!("user=201&domain={}", "a".repeat(5_000));
    let huge_user = format!("user={huge}&domain={DOMAIN}");
    for q in [
        "",
        "user=201",
        "domain=wickedsprockets.sip.localhost",
        "user=&domain=wickedsprockets.sip.localhost",
        "user=alice&domain=wickedsprockets.sip.localhost",
        "user=201%00&domain=wickedsprockets.sip.localhost",
        "user=201&user=202&domain=wickedsprockets.sip.localhost",
        "user=201&domain=wicked%20sprockets",
        "user=201&domain=%E2%98%8E.example",
        "user=%ff%fe&domain=x",
        long_domain.as_str(),
        huge_user.as_str(),
    ] {
        let r = lookup(&app, Some(&token), q).await;
        let status = r.status();
        assert!(
            status.is_client_error(),
            "{} gave {status}",
            &q[..q.len().min(60)]
        );
        assert_ne!(status, StatusCode::NOT_FOUND, "bad input is not 'unknown'");
        let body = r.text().await.unwrap();
        if status == StatusCode::BAD_REQUEST {
            assert!(
                body.contains("\"error\""),
                "a JSON error naming the problem: {body}"
            );
        }
    }
    let internal = app.internal.unwrap();
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = client
            .request(
                method.clone(),
                format!("http://{internal}/pbx/v1/sip-credentials?user=201&domain={DOMAIN}"),
            )
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    let r = client
        .get(format!("http://{internal}/pbx/v1/nothing"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nothing_internal_is_served_on_the_public_listener() {
    let (app, token) = app_with_token().await;
    let r = reqwest::Client::new()
        .get(app.url(&format!("/pbx/v1/sip-credentials?user=201&domain={DOMAIN}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("ha1"));
}

#[tokio::test]
async fn the_internal_listener_can_be_turned_off() {
    let app = spawn_app_with(&[("internal_listen", "off")]).await;
    assert_eq!(app.internal, None);
}

#[tokio::test]
async fn a_new_secret_is_answered_by_the_next_lookup() {
    let (app, token) = app_with_token().await;
    let q = format!("user=201&domain={DOMAIN}");
    let before = json(lookup(&app, Some(&token), &q).await).await;

    let (b, _) = revealed_secret(&app, USER).await;
    let r = b.post("/phone/sip/regenerate", &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let after = json(lookup(&app, Some(&token), &q).await).await;
    let secret = sip_secret(&app, USER).await;
    assert_ne!(after["ha1"], before["ha1"]);
    assert_eq!(after["ha1"], md5_hex(&format!("201:{DOMAIN}:{secret}")));
}

#[tokio::test]
async fn a_user_made_before_sip_secrets_existed_gets_one_at_start() {
    let (app, token) = app_with_token().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.portal.settings.database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET sip_secret = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let app = app.restart_with(&[]).await;

    let r = lookup(&app, Some(&token), &format!("user=201&domain={DOMAIN}")).await;
    assert_eq!(r.status(), StatusCode::OK, "the user can register at once");
    sip_secret(&app, USER).await;
}

#[tokio::test]
async fn two_tenants_cannot_share_a_sip_domain_whatever_its_case() {
    let app = spawn_app().await;
    let provisioning = &app.portal.services.provisioning;
    let code = |c: &str| dialtone::domain::TenantCode::parse(c).unwrap();
    let name = dialtone::domain::DisplayName::parse("Acme").unwrap();
    let domain = |d: &str| dialtone::domain::SipDomain::parse(d).unwrap();
    provisioning
        .create_tenant(
            &code("acme"),
            &name,
            Some(&domain("sip.acme.example")),
            &common::test_actor(),
        )
        .await
        .unwrap();

    let again = provisioning
        .create_tenant(
            &code("acme2"),
            &name,
            Some(&domain("SIP.Acme.Example")),
            &common::test_actor(),
        )
        .await;

    assert!(
        matches!(
            again,
            Err(dialtone::services::provisioning::TenantError::SipDomainTaken(_))
        ),
        "{again:?}"
    );
    assert!(app
        .portal
        .store
        .tenant_by_code(&code("acme2"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_phone_tab_says_when_registered_devices_cannot_be_read_and_still_works() {
    let closed = kamailio::free_port();
    let app = spawn_app_with(&[("kamailio_rpc", &format!("http://127.0.0.1:{closed}/RPC"))]).await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    b.login_ok(USER, PASSWORD).await;

    let r = b.get("/phone").await;

    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("The phone system did not answer"),
        "the page says so"
    );
    assert!(page.contains(DOMAIN), "and shows the rest");

    let unconnected = spawn_app().await;
    unconnected.add_user(USER, PASSWORD).await;
    let b = unconnected.browser();
    b.login_ok(USER, PASSWORD).await;
    let page = b.get("/phone").await.text().await.unwrap();
    assert!(page.contains("has not connected the phone system"));
}

// ---- the PBX token commands ---------------------------------------------------------------

fn dialtone(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dialtone"))
        .args(args)
        .env("DIALTONE_DATA_DIR", app.data_dir.path())
        .env("DIALTONE_DATABASE_URL", &app.portal.settings.database_url)
        .env("DIALTONE_INTERNAL_LISTEN", "off")
        .current_dir(app.data_dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("dialtone runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn pbx_tokens_are_made_listed_and_revoked_from_the_command_line() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let q = format!("user=201&domain={DOMAIN}");

    let out = dialtone(&app, &["pbx", "token", "add", "kamailio-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let token = printed
        .lines()
        .map(str::trim)
        .find(|l| dialtone::auth::token::looks_like_token(l))
        .expect("the token is printed")
        .to_owned();
    app.advance(Duration::from_secs(2));
    assert_eq!(
        lookup(&app, Some(&token), &q).await.status(),
        StatusCode::OK
    );

    let out = dialtone(&app, &["pbx", "token", "add", "kamailio-1"]);
    assert!(!out.status.success(), "a name is used once");
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = dialtone(&app, &["pbx", "token", "list"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("kamailio-1"));
    assert!(
        !text(&out.stdout).contains(&token),
        "the token is shown once only"
    );

    let out = dialtone(&app, &["pbx", "token", "revoke", "kamailio-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    app.advance(Duration::from_secs(2));
    assert_eq!(
        lookup(&app, Some(&token), &q).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let out = dialtone(&app, &["pbx", "token", "revoke", "kamailio-1"]);
    assert!(!out.status.success(), "nothing left to revoke");
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "one line: {}",
        text(&out.stderr)
    );
    assert_eq!(app.audit_count("pbx_token.added").await, 1);
    assert_eq!(app.audit_count("pbx_token.revoked").await, 1);
}

#[tokio::test]
async fn tenant_add_refuses_a_sip_domain_another_tenant_has() {
    let app = spawn_app().await;
    let out = dialtone(
        &app,
        &[
            "tenant",
            "add",
            "acme",
            "--name",
            "Acme",
            "--sip-domain",
            "sip.acme.example",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = dialtone(
        &app,
        &[
            "tenant",
            "add",
            "acme2",
            "--name",
            "Acme 2",
            "--sip-domain",
            "SIP.ACME.example",
        ],
    );

    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("SIP domain") && err.contains("already"),
        "{err}"
    );
}

// ---- end to end: Kamailio and real phones ------------------------------------------------

/// Dialtone (told Kamailio's JSON-RPC address), a PBX token, and Kamailio asking Dialtone.
struct Pbx {
    app: TestApp,
    kamailio: Kamailio,
    token: String,
}

async fn pbx(test: &str) -> Option<(Pbx, tokio::sync::MutexGuard<'static, ()>)> {
    pbx_with(test, &[]).await
}

/// [`pbx`] with settings of the shipped configuration replaced (`extra`).
async fn pbx_with(
    test: &str,
    extra: &[(&str, &str)],
) -> Option<(Pbx, tokio::sync::MutexGuard<'static, ()>)> {
    if !kamailio::ready(test) {
        return None;
    }
    let turn = ONE_AT_A_TIME.lock().await;
    let ports = Ports::pick();
    let app = spawn_app_with(&[("kamailio_rpc", &ports.rpc_url())]).await;
    app.add_user(USER, PASSWORD).await;
    let token = app
        .portal
        .pbx
        .add_token("kamailio", &common::test_actor())
        .await
        .unwrap();
    let kamailio = Kamailio::start(ports, app.internal.unwrap(), &token, extra).await;
    Some((
        Pbx {
            app,
            kamailio,
            token,
        },
        turn,
    ))
}

/// After a change Kamailio is told of: extension 201's registration is gone within
/// `within`, and `phone` is then refused (403) with `secret`.
async fn registration_ends_and_is_refused(
    p: &Pbx,
    phone: &mut Phone,
    secret: &str,
    within: Duration,
) {
    let aor = format!("201@{DOMAIN}");
    assert_eq!(
        p.kamailio.contacts_left_after(&aor, within).await,
        0,
        "the registration is gone within {within:?}"
    );
    assert_eq!(
        phone.register("201", DOMAIN, secret).await,
        403,
        "then the phone is refused, not told to retry later"
    );
}

#[tokio::test]
async fn a_phone_registers_with_the_secret_the_phone_tab_reveals_and_only_with_it() {
    let Some((p, _turn)) = pbx("a_phone_registers_with_the_secret_the_phone_tab_reveals").await
    else {
        return;
    };
    p.app.add_user("201-othercorp", PASSWORD).await;
    let (_, secret) = revealed_secret(&p.app, USER).await;
    let (_, others) = revealed_secret(&p.app, "201-othercorp").await;
    let mut phone = Phone::start(&p.kamailio, "Sprocket Desk Phone 1.0").await;

    assert_eq!(
        phone.register("201", DOMAIN, "Wrong-Secret-123").await,
        403,
        "a wrong secret"
    );
    assert_eq!(
        phone.register("201", DOMAIN, &others).await,
        403,
        "another tenant's secret"
    );
    assert_eq!(
        phone.register("299", DOMAIN, &secret).await,
        403,
        "an unknown extension"
    );
    assert_eq!(p.kamailio.contacts(&format!("201@{DOMAIN}")).await, 0);

    assert_eq!(phone.register("201", DOMAIN, &secret).await, 200);
    assert_eq!(p.kamailio.contacts(&format!("201@{DOMAIN}")).await, 1);

    // The Phone tab lists the registered phone, and so does the admin's page of the user.
    let (b, _) = revealed_secret(&p.app, USER).await;
    let tab = b.get("/phone").await.text().await.unwrap();
    assert!(tab.contains("Registered devices"));
    assert!(
        tab.contains("Sprocket Desk Phone 1.0"),
        "the phone's user agent is listed"
    );
    assert!(tab.contains("127.0.0.1"), "and where it is");
    p.app
        .add_user_as("200-wickedsprockets", Some(PASSWORD), Role::Admin)
        .await;
    let admin = p.app.browser();
    admin.login_ok("200-wickedsprockets", PASSWORD).await;
    let page = admin.get("/admin/users/201").await.text().await.unwrap();
    assert!(page.contains("Sprocket Desk Phone 1.0"));
}

#[tokio::test]
async fn an_address_that_keeps_failing_authentication_is_banned() {
    let test = "an_address_that_keeps_failing_authentication_is_banned";
    let Some((p, _turn)) = pbx_with(test, &[("BAN_AFTER_FAILURES", "3")]).await else {
        return;
    };
    p.app.add_user("202-wickedsprockets", PASSWORD).await;
    let (_, secret) = revealed_secret(&p.app, "202-wickedsprockets").await;
    let mut phone = Phone::start(&p.kamailio, "Scanner 0.1").await;
    for _ in 0..2 {
        assert_eq!(phone.register("201", DOMAIN, "Guess-123456").await, 403);
    }
    assert!(!p.kamailio.banned("127.0.0.1").await, "not yet");
    assert_eq!(phone.register("201", DOMAIN, "Guess-654321").await, 403);
    assert!(p.kamailio.banned("127.0.0.1").await, "banned at the third");
    // Banned: even the right secret of another extension gets no answer and registers
    // nothing.
    let mut other = Phone::start(&p.kamailio, "Sprocket Desk Phone 1.0").await;
    other.send_register("202", DOMAIN, &secret).await;
    // An answered registration takes milliseconds here; give it far longer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(p.kamailio.contacts(&format!("202@{DOMAIN}")).await, 0);
}

#[tokio::test]
async fn a_new_sip_secret_refuses_the_old_one_within_a_second_and_ends_its_registration() {
    let Some((p, _turn)) = pbx("a_new_sip_secret_refuses_the_old_one").await else {
        return;
    };
    let (b, old) = revealed_secret(&p.app, USER).await;
    let mut phone = Phone::start(&p.kamailio, "Old Phone").await;
    assert_eq!(phone.register("201", DOMAIN, &old).await, 200);
    let aor = format!("201@{DOMAIN}");
    assert!(
        p.kamailio.cached_ha1(&aor).await.is_some(),
        "Kamailio cached the HA1"
    );

    let r = b.post("/phone/sip/regenerate", &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    registration_ends_and_is_refused(&p, &mut phone, &old, Duration::from_secs(1)).await;
    let new = revealed_secret(&p.app, USER).await.1;
    assert_ne!(new, old);
    let mut reprogrammed = Phone::start(&p.kamailio, "Reprogrammed Phone").await;
    assert_eq!(reprogrammed.register("201", DOMAIN, &new).await, 200);
}

#[tokio::test]
async fn a_deleted_users_phone_is_refused() {
    let Some((p, _turn)) = pbx("a_deleted_users_phone_is_refused").await else {
        return;
    };
    p.app
        .add_user_as("200-wickedsprockets", Some(PASSWORD), Role::Admin)
        .await;
    let (_, secret) = revealed_secret(&p.app, USER).await;
    let mut phone = Phone::start(&p.kamailio, "Doomed Phone").await;
    assert_eq!(phone.register("201", DOMAIN, &secret).await, 200);
    let admin = p.app.browser();
    admin.login_ok("200-wickedsprockets", PASSWORD).await;

    let r = admin.post("/admin/users/201/delete", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    registration_ends_and_is_refused(&p, &mut phone, &secret, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_revoked_pbx_token_gets_401_and_phones_are_told_to_retry_later() {
    let Some((p, _turn)) = pbx("a_revoked_pbx_token_gets_401").await else {
        return;
    };
    let (_, secret) = revealed_secret(&p.app, USER).await;

    assert!(p
        .app
        .portal
        .pbx
        .revoke_token("kamailio", &common::test_actor())
        .await
        .unwrap());

    let r = lookup(&p.app, Some(&p.token), &format!("user=201&domain={DOMAIN}")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut phone = Phone::start(&p.kamailio, "Phone").await;
    assert_eq!(
        phone.register("201", DOMAIN, &secret).await,
        503,
        "Kamailio cannot check it"
    );
}

#[tokio::test]
async fn with_dialtone_stopped_kamailio_answers_503_and_a_cached_phone_still_registers() {
    let Some((p, _turn)) = pbx("with_dialtone_stopped_kamailio_answers_503").await else {
        return;
    };
    p.app.add_user("202-wickedsprockets", PASSWORD).await;
    let (_, cached) = revealed_secret(&p.app, USER).await;
    let (_, uncached) = revealed_secret(&p.app, "202-wickedsprockets").await;
    let mut phone = Phone::start(&p.kamailio, "Cached Phone").await;
    assert_eq!(phone.register("201", DOMAIN, &cached).await, 200);

    // Dialtone goes away (its internal listener with it).
    let Pbx { app, kamailio, .. } = p;
    let _app = app.restart_with(&[("internal_listen", "off")]).await;

    let mut other = Phone::start(&kamailio, "Uncached Phone").await;
    assert_eq!(other.register("202", DOMAIN, &uncached).await, 503);
    let mut again = Phone::start(&kamailio, "Cached Phone").await;
    assert_eq!(
        again.register("201", DOMAIN, "Wrong-Secret-123").await,
        503,
        "a wrong secret cannot be checked against Dialtone just now"
    );
    assert_eq!(
        again.register("201", DOMAIN, &cached).await,
        200,
        "the cached HA1 still works, a wrong try before it notwithstanding"
    );
}

#[tokio::test]
async fn a_suspended_tenants_phone_is_refused_and_registers_again_on_resume() {
    let Some((p, _turn)) = pbx("a_suspended_tenants_phone_is_refused").await else {
        return;
    };
    let (_, secret) = revealed_secret(&p.app, USER).await;
    let mut phone = Phone::start(&p.kamailio, "Office Phone").await;
    assert_eq!(phone.register("201", DOMAIN, &secret).await, 200);
    let billing = p.app.provider_api().await;

    billing
        .act(&format!("/tenants/{TENANT}/suspend"))
        .await
        .body
        .get("suspended")
        .expect("the tenant as suspended");
    registration_ends_and_is_refused(&p, &mut phone, &secret, Duration::from_secs(2)).await;
    billing.act(&format!("/tenants/{TENANT}/resume")).await;
    assert_eq!(phone.register("201", DOMAIN, &secret).await, 200);
}

#[tokio::test]
async fn one_extension_number_in_two_tenants_registers_separately() {
    let Some((p, _turn)) = pbx("one_extension_number_in_two_tenants").await else {
        return;
    };
    p.app.add_user("201-othercorp", PASSWORD).await;
    let other_domain = "othercorp.sip.localhost";
    let (_, ours) = revealed_secret(&p.app, USER).await;
    let (_, theirs) = revealed_secret(&p.app, "201-othercorp").await;
    let mut a = Phone::start(&p.kamailio, "Phone A").await;
    let mut b = Phone::start(&p.kamailio, "Phone B").await;

    assert_eq!(a.register("201", DOMAIN, &ours).await, 200);
    assert_eq!(b.register("201", other_domain, &theirs).await, 200);

    assert_eq!(p.kamailio.contacts(&format!("201@{DOMAIN}")).await, 1);
    assert_eq!(p.kamailio.contacts(&format!("201@{other_domain}")).await, 1);
    assert_eq!(
        b.register("201", other_domain, &ours).await,
        403,
        "secrets do not cross tenants"
    );
}

#[tokio::test]
async fn a_call_from_one_registered_phone_to_another_completes() {
    let Some((p, _turn)) = pbx("a_call_from_one_registered_phone_to_another_completes").await
    else {
        return;
    };
    p.app.add_user("202-wickedsprockets", PASSWORD).await;
    let (_, caller_secret) = revealed_secret(&p.app, USER).await;
    let (_, callee_secret) = revealed_secret(&p.app, "202-wickedsprockets").await;
    let mut caller = Phone::start(&p.kamailio, "Caller").await;
    let mut callee = Phone::start(&p.kamailio, "Callee").await;
    assert_eq!(caller.register("201", DOMAIN, &caller_secret).await, 200);
    assert_eq!(callee.register("202", DOMAIN, &callee_secret).await, 200);

    let answered = caller.call("202").await;

    assert_eq!(
        answered["state"], "confirmed",
        "the call is answered: {answered}"
    );
    assert_eq!(callee.wait_for("incoming").await["event"], "incoming");
    let ended = caller.hang_up().await;
    assert_eq!(ended["state"], "ended");
}

#[tokio::test]
async fn a_change_made_while_kamailio_is_down_reaches_it_when_it_is_back() {
    let Some((p, _turn)) = pbx("a_change_made_while_kamailio_is_down").await else {
        return;
    };
    let Pbx {
        app,
        kamailio,
        token,
    } = p;
    let ports = kamailio.ports;
    drop(kamailio);
    let (b, _) = revealed_secret(&app, USER).await;

    let r = b.post("/phone/sip/regenerate", &[("confirm", "yes")]).await;

    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the page does not wait for Kamailio"
    );
    let store = &app.portal.store;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        store.pbx_queue_depth().await.unwrap(),
        1,
        "the notice waits in the queue"
    );

    let _kamailio = Kamailio::start(ports, app.internal.unwrap(), &token, &[]).await;
    app.advance(Duration::from_secs(60));
    let back = Instant::now();
    while store.pbx_queue_depth().await.unwrap() > 0 && back.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.pbx_queue_depth().await.unwrap(),
        0,
        "delivered once Kamailio is back"
    );
}
