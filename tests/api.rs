//! The JSON API through the real server: provider and tenant tokens, tenants and users,
//! suspension, idempotent retries and every error shape.

mod common;

use common::*;
use serde_json::json;

async fn with_tenant() -> (TestApp, Api) {
    with_tenant_and(&[]).await
}

async fn with_tenant_and(settings: &[(&str, &str)]) -> (TestApp, Api) {
    let app = spawn_app_with(settings).await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    let api = app.provider_api().await;
    (app, api)
}

fn new_tenant(code: &str) -> serde_json::Value {
    json!({"code": code, "name": "Acme Ltd", "admin": {"extension": "100", "name": "Ada Admin", "email": "ada@example.com"}})
}

#[tokio::test]
async fn without_a_valid_token_every_route_is_401_problem() {
    let app = spawn_app().await;
    for api in [
        Api::new(&app, None),
        Api::new(&app, Some("not-a-token")),
        Api::new(&app, Some(&"a".repeat(43))),
    ] {
        let a = api.get("/tenants").await;
        a.problem(401);
        assert_eq!(a.headers["www-authenticate"], "Bearer");
        api.post("/tenants", new_tenant("acme")).await.problem(401);
    }
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn a_provider_creates_a_tenant_whose_admin_signs_in_with_the_temporary_password() {
    let app = spawn_app().await;
    let api = app.provider_api().await;
    let made = api.post("/tenants", new_tenant("acme")).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(made.body["tenant"]["code"], "acme");
    assert_eq!(made.body["tenant"]["suspended"], false);
    assert_eq!(made.body["admin"]["username"], "100-acme");
    assert_eq!(made.body["admin"]["role"], "admin");
    let password = made.body["temporary_password"].as_str().unwrap().to_owned();
    let b = app.browser();
    let r = b.login("100-acme", &password).await;
    assert_eq!(location(&r), "/password/choose");
    api.post("/tenants", new_tenant("acme")).await.problem(409);
    let got = api.get("/tenants/acme").await;
    assert_eq!(got.body["name"], "Acme Ltd");
    let events = app.tenant_audit_events("acme", "tenant.created").await;
    assert_eq!(events[0].actor.as_deref(), Some("api:billing"));
}

#[tokio::test]
async fn users_are_created_listed_paged_changed_and_deleted_with_the_pages_rules() {
    let (app, api) = with_tenant().await;
    let base = format!("/tenants/{TENANT}/users");
    for ext in ["202", "203", "1000"] {
        let a = api
            .post(
                &base,
                json!({"extension": ext, "name": "Sam", "email": "shared@example.com"}),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        assert!(a.body["temporary_password"].as_str().unwrap().len() >= 16);
    }
    api.post(&base, json!({"extension": "202", "name": "Dup"}))
        .await
        .problem(409);
    let first = api.get(&format!("{base}?limit=2")).await;
    let exts: Vec<_> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["extension"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exts, ["200", "201"]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = api.get(&format!("{base}?limit=10&cursor={cursor}")).await;
    let exts: Vec<_> = rest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["extension"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exts, ["202", "203", "1000"]);
    assert!(rest.body["next_cursor"].is_null());

    let changed = api
        .patch(
            &format!("{base}/202"),
            json!({"name": "Samantha", "role": "admin", "email": null}),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["name"], "Samantha");
    assert_eq!(changed.body["role"], "admin");
    assert!(changed.body["email"].is_null());
    // What a PATCH leaves out stays as it was.
    let renamed = api
        .patch(&format!("{base}/1000"), json!({"name": "Sam Renamed"}))
        .await;
    assert_eq!(renamed.body["name"], "Sam Renamed");
    assert_eq!(renamed.body["email"], "shared@example.com");
    assert_eq!(renamed.body["role"], "user");
    // The last-admin rule: 200 and 202 are admins; demote 202, then 200 cannot be demoted.
    api.patch(&format!("{base}/202"), json!({"role": "user"}))
        .await;
    api.patch(&format!("{base}/200"), json!({"role": "user"}))
        .await
        .problem(409);
    api.delete(&format!("{base}/200")).await.problem(409);
    assert_eq!(api.delete(&format!("{base}/203")).await.status, 204);
    api.get(&format!("{base}/203")).await.problem(404);
    assert_eq!(app.user_count(TENANT).await, 4);
}

#[tokio::test]
async fn password_resets_unlock_and_sign_out_end_sessions_as_the_pages_do() {
    let (app, api) = with_tenant().await;
    let user = app.signed_in(USER).await;
    let base = format!("/tenants/{TENANT}/users/201");
    let reset = api
        .post(
            &format!("{base}/reset-password"),
            json!({"method": "temporary"}),
        )
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    let temporary = reset.body["temporary_password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(location(&user.get("/phone").await), "/login?next=%2Fphone");
    let b = app.browser();
    assert_eq!(
        location(&b.login(USER, &temporary).await),
        "/password/choose"
    );
    let link = api
        .post(&format!("{base}/reset-password"), json!({"method": "link"}))
        .await;
    assert_eq!(link.status, 200);
    assert!(link.body.get("temporary_password").is_none());
    // Links count against the user's mail limit: three per 15 minutes.
    for _ in 0..2 {
        let again = api
            .post(&format!("{base}/reset-password"), json!({"method": "link"}))
            .await;
        assert_eq!(again.status, 200);
    }
    let limited = api
        .post(&format!("{base}/reset-password"), json!({"method": "link"}))
        .await;
    limited.problem(429);
    assert_eq!(limited.headers["retry-after"], "900");
    api.post(
        &format!("{base}/reset-password"),
        json!({"method": "carrier-pigeon"}),
    )
    .await
    .invalid_fields();
    let out = api.act(&format!("{base}/sign-out")).await;
    assert_eq!(out.status, 200);
    app.lock_from_elsewhere(USER).await;
    assert_eq!(api.get(&base).await.body["locked"], true);
    let unlocked = api.act(&format!("{base}/unlock")).await;
    assert_eq!(unlocked.body["locked"], false);
    let audit = api.get(&format!("/tenants/{TENANT}/audit?limit=3")).await;
    assert_eq!(audit.body["items"][0]["kind"], "user.unlocked");
    assert_eq!(audit.body["items"][0]["actor"], "api:billing");
    assert_eq!(audit.body["items"][0]["client_addr"], "127.0.0.1");
    assert!(audit.body["next_cursor"].is_string());
}

#[tokio::test]
async fn a_tenant_token_reaches_its_own_tenant_and_users_only() {
    let (app, provider) = with_tenant().await;
    provider.post("/tenants", new_tenant("acme")).await;
    let admin = app.signed_in(ADMIN).await;
    let token = tenant_token_via_page(&admin, "crm-sync").await;
    let page = admin.get("/admin/api-tokens").await.text().await.unwrap();
    assert!(
        page.contains("crm-sync") && !page.contains(&token),
        "shown once"
    );
    let api = Api::new(&app, Some(&token));
    assert_eq!(
        api.get(&format!("/tenants/{TENANT}/users")).await.status,
        200
    );
    api.get("/tenants/acme/users").await.problem(404);
    api.get("/tenants/acme/users/100").await.problem(404);
    api.delete("/tenants/acme/users/100").await.problem(404);
    api.get("/tenants").await.problem(404);
    // It reads its own tenant (the SIP domain its phones register at), and no other.
    let own = api.get(&format!("/tenants/{TENANT}")).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["code"], TENANT);
    assert!(own.body["sip_domain"].is_string());
    api.get("/tenants/acme").await.problem(404);
    api.patch(&format!("/tenants/{TENANT}"), json!({"name": "Renamed"}))
        .await
        .problem(404);
    api.delete(&format!("/tenants/{TENANT}")).await.problem(404);
    api.act(&format!("/tenants/{TENANT}/suspend"))
        .await
        .problem(404);
    api.post("/tenants", new_tenant("evil")).await.problem(404);
    // A body that would not pass tells it nothing either: the token is checked first.
    api.post("/tenants", json!({"code": 7})).await.problem(404);
    api.patch(&format!("/tenants/{TENANT}"), json!({"name": 7}))
        .await
        .problem(404);
    let made = api
        .post(
            &format!("/tenants/{TENANT}/users"),
            json!({"extension": "300", "name": "Via Token"}),
        )
        .await;
    assert_eq!(made.status, 201);
    assert_eq!(
        app.tenant_audit_events(TENANT, "user.created").await[0]
            .actor
            .as_deref(),
        Some("api:crm-sync")
    );
    // Its reads are audited in its tenant too, folded into one event with a count (the
    // six GETs above, those that found nothing included).
    let reads = app.tenant_audit_events(TENANT, "api.read").await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].actor.as_deref(), Some("api:crm-sync"));
    assert_eq!(reads[0].client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(reads[0].repeats, 6);
    // A HEAD is a read too.
    let head = api.request(reqwest::Method::HEAD, &format!("/tenants/{TENANT}/users"));
    assert_eq!(Api::send(head).await.status, 200);
    let reads = app.tenant_audit_events(TENANT, "api.read").await;
    assert_eq!((reads.len(), reads[0].repeats), (1, 7), "{reads:?}");
    let page = admin.get("/admin/api-tokens").await.text().await.unwrap();
    assert!(!page.contains("never"), "last used is shown");
    admin.post("/admin/api-tokens/crm-sync/revoke", &[]).await;
    api.get(&format!("/tenants/{TENANT}/users"))
        .await
        .problem(401);
}

#[tokio::test]
async fn suspension_ends_sessions_refuses_sign_in_and_sip_lookups_and_resume_restores() {
    // A SIP server that does not answer keeps the notices queued (retried later), so the
    // queue shows them however soon the notifier polls.
    let closed = kamailio::free_port();
    let rpc = format!("http://127.0.0.1:{closed}/RPC");
    let (app, api) = with_tenant_and(&[("kamailio_rpc", &rpc)]).await;
    let user = app.signed_in(USER).await;
    let domain = format!("{TENANT}.sip.localhost");
    assert_eq!(app.sip_lookup_status("201", &domain).await, 200);
    let before = app.pbx_queue_depth().await;
    let s = api.act(&format!("/tenants/{TENANT}/suspend")).await;
    assert_eq!(s.body["suspended"], true);
    assert_eq!(
        app.pbx_queue_depth().await - before,
        2,
        "Kamailio is told of both users"
    );
    assert_eq!(location(&user.get("/phone").await), "/login?next=%2Fphone");
    let r = app.browser().login(USER, PASSWORD).await;
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("suspended. Please contact your provider"));
    assert_eq!(app.sip_lookup_status("201", &domain).await, 403);
    assert_eq!(app.user_count(TENANT).await, 2, "nothing deleted");
    let r = api.act(&format!("/tenants/{TENANT}/resume")).await;
    assert_eq!(r.body["suspended"], false);
    assert_eq!(app.sip_lookup_status("201", &domain).await, 200);
    app.browser().login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn a_hashing_queue_at_its_bound_is_a_503_that_changes_nothing() {
    // One hashing worker and no room to wait: creations at once find the queue full.
    let app = spawn_app_with(&[("hash_workers", "1"), ("signin_queue_wait", "1ms")]).await;
    let api = app.provider_api().await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..8 {
        let api = api.clone();
        calls.spawn(async move {
            let code = format!("busy{i}");
            let answer = api
                .post_with_key("/tenants", &code, new_tenant(&code))
                .await;
            (answer, code)
        });
    }
    let mut busy = Vec::new();
    while let Some(done) = calls.join_next().await {
        let (answer, code) = done.unwrap();
        match answer.status.as_u16() {
            201 => assert_eq!(app.user_count(&code).await, 1, "{code} has its admin"),
            503 => {
                busy.push(code.clone());
                assert_eq!(answer.body["title"], "Very busy");
                assert!(answer.headers.contains_key("retry-after"));
                api.get(&format!("/tenants/{code}")).await.problem(404);
            }
            other => panic!("{code}: {other} {:?}", answer.body),
        }
    }
    assert!(!busy.is_empty(), "the queue was at its bound");
    // With the queue free again, a retry under the same Idempotency-Key runs afresh.
    for code in busy {
        let made = api
            .post_with_key("/tenants", &code, new_tenant(&code))
            .await;
        assert_eq!(made.status, 201, "{:?}", made.body);
    }
}

#[tokio::test]
async fn a_new_account_does_not_inherit_the_lock_of_its_name() {
    let (app, api) = with_tenant().await;
    let base = format!("/tenants/{TENANT}/users");
    // A user deleted while strangers have them locked; their extension goes to someone new.
    app.lock_from_elsewhere(USER).await;
    assert_eq!(api.delete(&format!("{base}/201")).await.status, 204);
    // And a name of nobody, guessed at before anyone had it.
    let never = format!("205-{TENANT}");
    app.lock_from_elsewhere(&never).await;
    for ext in ["201", "205"] {
        let made = api
            .post(&base, json!({"extension": ext, "name": "New Starter"}))
            .await;
        assert_eq!(made.status, 201, "{:?}", made.body);
        assert_eq!(made.body["user"]["locked"], false);
        let password = made.body["temporary_password"].as_str().unwrap();
        let username = format!("{ext}-{TENANT}");
        let r = app.browser().login(&username, password).await;
        assert_eq!(location(&r), "/password/choose", "{username} signs in");
    }
}

#[tokio::test]
async fn tenants_are_renamed_moved_listed_and_deleted() {
    let (app, api) = with_tenant().await;
    api.post("/tenants", new_tenant("acme")).await;
    let r = api
        .patch(
            "/tenants/acme",
            json!({"name": "Acme Two", "sip_domain": "voice.acme.example"}),
        )
        .await;
    assert_eq!(r.body["name"], "Acme Two");
    assert_eq!(r.body["sip_domain"], "voice.acme.example");
    api.patch(
        "/tenants/acme",
        json!({"sip_domain": format!("{TENANT}.sip.localhost")}),
    )
    .await
    .problem(409);
    // All or nothing: a new name beside a taken domain is not kept either.
    api.patch(
        "/tenants/acme",
        json!({"name": "Half Done", "sip_domain": format!("{TENANT}.sip.localhost")}),
    )
    .await
    .problem(409);
    assert_eq!(api.get("/tenants/acme").await.body["name"], "Acme Two");
    assert_eq!(
        api.patch("/tenants/acme", json!({"sip_domain": "bad domain"}))
            .await
            .invalid_fields(),
        ["sip_domain"]
    );
    let list = api.get("/tenants?limit=1").await;
    assert_eq!(list.body["items"][0]["code"], "acme");
    let next = list.body["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/tenants?cursor={next}")).await.body["items"][0]["code"],
        TENANT
    );
    assert_eq!(api.delete("/tenants/acme").await.status, 204);
    api.get("/tenants/acme").await.problem(404);
    assert_eq!(app.tenant_count().await, 1);
    assert_eq!(app.audit_count("tenant.deleted").await, 1);
}

#[tokio::test]
async fn an_idempotent_retry_gets_the_first_answer_and_another_body_is_422() {
    let (app, api) = with_tenant().await;
    let path = format!("/tenants/{TENANT}/users");
    let body = json!({"extension": "250", "name": "Once"});
    let first = api.post_with_key(&path, "k-1", body.clone()).await;
    let again = api.post_with_key(&path, "k-1", body).await;
    assert_eq!(first.status, 201);
    assert_eq!(again.status, 201);
    assert_eq!(first.body, again.body);
    api.post_with_key(&path, "k-1", json!({"extension": "251", "name": "Other"}))
        .await
        .problem(422);
    assert_eq!(app.user_count(TENANT).await, 3);
    app.advance(std::time::Duration::from_secs(25 * 3600));
    api.post_with_key(&path, "k-1", json!({"extension": "250", "name": "Once"}))
        .await
        .problem(409);
    // A retry sent while the first request is still running (hashing the new user's
    // password) waits for it and gets the same answer, not a 409.
    let body = json!({"extension": "260", "name": "Twice At Once"});
    let (a, b) = tokio::join!(
        api.post_with_key(&path, "k-2", body.clone()),
        api.post_with_key(&path, "k-2", body)
    );
    assert_eq!(
        (a.status.as_u16(), b.status.as_u16()),
        (201, 201),
        "{:?} {:?}",
        a.body,
        b.body
    );
    assert_eq!(a.body, b.body);
    assert_eq!(app.user_count(TENANT).await, 4);
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx_problem_and_change_nothing() {
    let (app, api) = with_tenant().await;
    let path = format!("/tenants/{TENANT}/users");
    let send = |r: reqwest::RequestBuilder| Api::send(r);
    send(
        api.request(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .body("{\"extension\":"),
    )
    .await
    .problem(400);
    send(
        api.request(reqwest::Method::POST, &path)
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await
    .problem(415);
    send(
        api.request(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .body(format!("{{\"name\":\"{}\"}}", "x".repeat(100_000))),
    )
    .await
    .problem(413);
    send(api.request(reqwest::Method::PUT, &path))
        .await
        .problem(405);
    api.post(
        &path,
        json!({"extension": "260", "name": "A", "admin": true}),
    )
    .await
    .problem(422);
    let fields = api
        .post(
            &path,
            json!({"extension": "12ab", "name": "", "email": "nope"}),
        )
        .await
        .invalid_fields();
    assert_eq!(fields, ["extension", "name", "email"]);
    api.get(&format!("{path}?limit=0")).await.problem(422);
    api.get(&format!("{path}?limit=abc&cursor=x"))
        .await
        .invalid_fields();
    api.get("/nowhere").await.problem(404);
    api.get("/tenants/NOT%20A%20CODE/users").await.problem(404);
    api.post_with_key(
        &path,
        "bad key with spaces",
        json!({"extension": "261", "name": "B"}),
    )
    .await
    .problem(400);
    assert_eq!(app.user_count(TENANT).await, 2);
}

#[tokio::test]
async fn a_body_or_an_address_of_the_wrong_shape_is_named_in_the_apis_own_words() {
    let (app, api) = with_tenant().await;
    let users = format!("/tenants/{TENANT}/users");
    let post_raw = |body: &'static str| {
        Api::send(
            api.request(reqwest::Method::POST, &users)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    for (body, field) in [
        ("null", "body"),
        ("[]", "body"),
        (r#"{"extension": 5, "name": "A"}"#, "extension"),
        (r#"{"name": "A"}"#, "extension"),
        (r#"{"extension": "262", "name": "A", "extra": 1}"#, "extra"),
        (
            r#"{"extension": "262", "extension": "263", "name": "A"}"#,
            "extension",
        ),
    ] {
        let answer = post_raw(body).await;
        assert_eq!(answer.invalid_fields(), [field], "{body}");
        // serde's own words name Rust types; none of them reaches the client.
        let text = answer.body.to_string();
        assert!(
            !text.contains("struct") && !text.contains("expected") && !text.contains('`'),
            "{text}"
        );
    }
    let reset = api
        .post(
            &format!("{users}/201/reset-password"),
            json!({"method": "sms"}),
        )
        .await;
    assert_eq!(reset.invalid_fields(), ["method"]);
    assert_eq!(
        reset.body["errors"][0]["message"],
        "must be link or temporary"
    );

    for path in [format!("{users}/%ff"), "/tenants/%ff".to_owned()] {
        api.get(&path).await.problem(400);
    }
    api.act(&format!("{users}/%ff/unlock")).await.problem(400);
    assert_eq!(app.user_count(TENANT).await, 2);
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after_until_the_next_minute() {
    let app = spawn_app_with(&[("api_rate_limit", "3")]).await;
    let api = app.provider_api().await;
    for _ in 0..3 {
        assert_eq!(api.get("/tenants").await.status, 200);
    }
    let limited = api.get("/tenants").await;
    limited.problem(429);
    assert!(limited.headers.contains_key("retry-after"));
    app.advance(std::time::Duration::from_secs(61));
    assert_eq!(api.get("/tenants").await.status, 200);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_bearer_scheme() {
    let app = spawn_app().await;
    let doc = Api::new(&app, None).get("/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/tenants",
        "/api/v1/tenants/{code}",
        "/api/v1/tenants/{code}/suspend",
        "/api/v1/tenants/{code}/resume",
        "/api/v1/tenants/{code}/users",
        "/api/v1/tenants/{code}/users/{extension}",
        "/api/v1/tenants/{code}/users/{extension}/reset-password",
        "/api/v1/tenants/{code}/users/{extension}/unlock",
        "/api/v1/tenants/{code}/users/{extension}/sign-out",
        "/api/v1/tenants/{code}/audit",
    ] {
        assert!(paths.contains_key(p), "{p} is described");
    }
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
