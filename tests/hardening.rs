//! What an outside security review found, each gap tested through the real server so it
//! fails if the gap comes back.

mod common;

use common::*;
use dialtone::domain::Role;
use reqwest::StatusCode;

const PIN: &str = "4826";

/// What a wrong-current-password answer says, without the per-page CSRF token.
async fn answer_without_token(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body = r.text().await.unwrap();
    let token = csrf_in(&body).unwrap_or_default();
    (status, body.replace(&token, ""))
}

#[tokio::test]
async fn a_wrong_current_password_never_tells_whether_the_new_one_holds_the_pin() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    assert_eq!(b.change_pin(PIN, PIN).await.status(), StatusCode::SEE_OTHER);

    let with_pin = b
        .change_password("Not-The-Password-1", &format!("Gearbox{PIN}Sunday"), "x")
        .await;
    let without_pin = b
        .change_password("Not-The-Password-1", "Gearbox1357Sunday", "x")
        .await;
    let (status_with, body_with) = answer_without_token(with_pin).await;
    let (status_without, body_without) = answer_without_token(without_pin).await;

    assert_eq!(status_with, status_without);
    assert_eq!(body_with, body_without, "the two answers are the same page");
    assert!(!body_with.contains("voicemail PIN"), "{body_with}");
    assert!(body_with.contains("current password is not right"));
    assert_eq!(
        app.audit_count("signin.failed").await,
        2,
        "each wrong current password is counted and audited"
    );
}

#[tokio::test]
async fn a_reset_link_with_the_wrong_email_never_tells_whether_the_password_holds_the_pin() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    assert_eq!(b.change_pin(PIN, PIN).await.status(), StatusCode::SEE_OTHER);
    let anon = app.browser();
    anon.forgot_password(USER).await;
    let token = token_of(&app.wait_for_mail(1).await[0].links()[0]);

    let r = anon
        .reset_password(&token, "guess@example.com", &format!("Gearbox{PIN}Sunday"))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("not the email address on file"), "{body}");
    assert!(!body.contains("voicemail PIN"), "{body}");
}

#[tokio::test]
async fn the_current_password_cannot_be_kept_as_the_new_one_on_any_path() {
    let app = spawn_app().await;
    // Change: the current password again.
    let b = app.signed_in_user().await;
    let r = b.change_password(PASSWORD, PASSWORD, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("different from your current one"));

    // Choose: the temporary password itself.
    let temporary = app
        .add_user_as("210-wickedsprockets", None, Role::User)
        .await
        .unwrap();
    let newcomer = app.browser();
    newcomer.login("210-wickedsprockets", &temporary).await;
    let r = newcomer.choose_password(&temporary, &temporary).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("different from your current one"));
    assert_eq!(
        newcomer.get("/phone").await.status(),
        StatusCode::SEE_OTHER,
        "still only the choose page"
    );

    // Reset: the password the account has now.
    let anon = app.browser();
    anon.forgot_password(USER).await;
    let token = token_of(&app.wait_for_mail(1).await[0].links()[0]);
    let r = anon
        .reset_password(&token, "201@example.com", PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("different from your current one"));
    assert_eq!(
        anon.reset_password(&token, "201@example.com", NEW)
            .await
            .status(),
        StatusCode::SEE_OTHER,
        "the link still works for a new password"
    );
}

#[tokio::test]
async fn an_https_portal_sends_hsts_and_an_http_one_does_not() {
    let app = spawn_app_with(&[("public_url", "https://portal.example.test")]).await;
    let r = app.browser().get("/login").await;
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let plain = spawn_app().await;
    let r = plain.browser().get("/login").await;
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn static_files_set_no_cookie() {
    let app = spawn_app().await;
    for path in ["/static/app.css", "/static/theme.js", "/static/favicon.svg"] {
        let r = plain_client().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("public"));
        assert!(r.headers().get("set-cookie").is_none(), "{path}");
    }
    let r = plain_client().get(app.url("/login")).send().await.unwrap();
    assert!(r.headers().get("set-cookie").is_some(), "pages still do");
}

fn is_styled_400(status: StatusCode, body: &str) -> bool {
    status == StatusCode::BAD_REQUEST
        && body.contains("Request not understood")
        && !body.contains("deserialize")
        && !body.contains("Failed")
        && !body.contains("parse")
}

#[tokio::test]
async fn unreadable_paths_and_queries_get_the_styled_400_page() {
    let (app, admin) = spawn_tenant().await;
    for path in [
        "/admin/users?page=abc",
        "/admin/api-tokens?done=a&done=b",
        "/settings?page=1&page=2&saved=%FF",
    ] {
        let r = admin.get(path).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        if path.starts_with("/admin") {
            assert!(is_styled_400(status, &body), "{path}: {status} {body}");
        } else {
            assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        }
    }
    let r = admin.post("/admin/api-tokens/%FF/revoke", &[]).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(is_styled_400(status, &body), "revoke %FF: {status} {body}");
    // A form without its field is a form error like an empty one: 422, the form again.
    for fields in [&[][..], &[("name", "")][..]] {
        let r = admin.post("/admin/api-tokens", fields).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(r.text().await.unwrap().contains("name=\"name\""));
    }
    app.add_operator(OPERATOR).await;
    let op = app.signed_in_operator(OPERATOR).await;
    for path in [
        format!("/operator/tenants/{TENANT}/admins/abc"),
        "/operator/audit?page=x".to_owned(),
    ] {
        let r = op.get(&path).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(is_styled_400(status, &body), "{path}: {status} {body}");
    }
}

#[tokio::test]
async fn an_operator_action_on_a_tenant_code_with_a_line_break_redirects_to_the_canonical_code() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_operator(OPERATOR).await;
    let admin = app.signed_in(ADMIN).await;
    let r = admin.set_security_question("blue bicycle", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let op = app.signed_in_operator(OPERATOR).await;
    let id = app.user_id(ADMIN).await;
    let canonical = format!("/operator/tenants/{TENANT}/admins/{id}");
    let r = op.verify_caller(&canonical, "blue bicycle").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let r = op
        .post(
            &format!("/operator/tenants/{TENANT}%0A/admins/{id}/unlock"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{canonical}?done=unlocked"));
}

#[tokio::test]
async fn the_data_directory_and_every_file_in_it_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    // A data directory left open by an earlier version is closed at the next start.
    std::fs::set_permissions(app.data_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = app.restart_with(&[]).await;
    app.add_user(USER, PASSWORD).await;
    app.browser().forgot_password(USER).await;
    app.wait_for_mail(1).await;

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = app.data_dir.path();
    assert_eq!(mode(dir), 0o700, "data directory");
    assert_eq!(mode(&app.mail_dir()), 0o700, "mail directory");
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(!app.mail_files().is_empty());
    if !app.is_postgres() {
        for name in ["dialtone.db", "dialtone.db-wal", "dialtone.db-shm"] {
            assert!(
                files.iter().any(|f| f.ends_with(name)),
                "{name} in {files:?}"
            );
        }
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

#[tokio::test]
async fn waves_of_thirty_concurrent_wrong_sign_ins_from_one_address_reach_the_hash_at_most_twenty_times(
) {
    let app = spawn_app().await;
    let b = app.browser();
    let token = b.csrf().await;
    let mut statuses = Vec::new();
    for wave in 0..4 {
        let attempts = (0..30).map(|i| {
            let b = b.clone();
            let token = token.clone();
            tokio::spawn(async move {
                // A different unknown username each time: only the address limit applies.
                let username = format!("{}-wickedsprockets", 300 + wave * 30 + i);
                b.post_raw(
                    "/login",
                    &[
                        ("username", username.as_str()),
                        ("password", "Wrong-Password-1"),
                        ("csrf_token", &token),
                    ],
                )
                .await
                .status()
            })
        });
        for a in attempts.collect::<Vec<_>>() {
            statuses.push(a.await.unwrap());
        }
    }
    let checked = app.audit_count("signin.failed").await;
    assert!(checked <= 20, "{checked} password checks: {statuses:?}");
    assert!(statuses.iter().all(|s| [
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE
    ]
    .contains(s)));
}

async fn is_admin(app: &TestApp, username: &str) -> bool {
    app.stored_user(username).await.unwrap().role == Role::Admin
}

fn demote(extension: &str) -> [(&'static str, String); 3] {
    [
        ("name", format!("Admin {extension}")),
        ("email", format!("{extension}@example.com")),
        ("role", "user".to_owned()),
    ]
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_exactly_one_admin() {
    const OTHER: &str = "202-wickedsprockets";
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_user_as(OTHER, Some(PASSWORD), Role::Admin).await;
    let first = app.signed_in(ADMIN).await;
    let second = app.signed_in(OTHER).await;
    for round in 0..8 {
        let (a, b) = (first.clone(), second.clone());
        let one = tokio::spawn(async move {
            let f = demote("202");
            let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            a.post("/admin/users/202", &fields).await.status()
        });
        let two = tokio::spawn(async move {
            let f = demote("200");
            let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post("/admin/users/200", &fields).await.status()
        });
        let statuses = (one.await.unwrap(), two.await.unwrap());
        let admins = [is_admin(&app, ADMIN).await, is_admin(&app, OTHER).await];
        assert_eq!(
            admins.iter().filter(|a| **a).count(),
            1,
            "round {round}: {statuses:?}"
        );
        // The one left promotes the other back for the next round.
        let (keeper, other_ext) = if admins[0] {
            (&first, "202")
        } else {
            (&second, "200")
        };
        let r = keeper
            .post(
                &format!("/admin/users/{other_ext}"),
                &[
                    ("name", "Admin again"),
                    ("email", &format!("{other_ext}@example.com")),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "round {round}");
    }
}

#[tokio::test]
async fn an_admin_changing_an_email_tells_the_old_address_and_ends_its_reset_links() {
    let (app, admin) = spawn_tenant().await;
    let anon = app.browser();
    anon.forgot_password(USER).await;
    let token = token_of(&app.wait_for_mail(1).await[0].links()[0]);

    let r = admin
        .post(
            "/admin/users/201",
            &[
                ("name", "Sam Staff"),
                ("email", "someone-else@example.com"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let mails = app.wait_for_mail(2).await;
    let notice = mails
        .iter()
        .find(|m| m.subject.contains("email address"))
        .expect("a notice to the old address");
    assert_eq!(notice.to, "201@example.com");
    assert!(notice.text.contains(USER));
    let r = anon.get(&format!("/password/reset?token={token}")).await;
    assert_eq!(r.status(), StatusCode::GONE, "the old link is dead");
    let events = app.audit_events("user.updated").await;
    assert!(events.iter().any(|e| e
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("email changed"))));
}

#[tokio::test]
async fn the_provider_audit_log_masks_admin_usernames_until_the_caller_is_verified() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_operator(OPERATOR).await;
    let admin = app.signed_in(ADMIN).await;
    admin.set_security_question("blue bicycle", PASSWORD).await;
    let op = app.signed_in_operator(OPERATOR).await;
    let path = format!(
        "/operator/tenants/{TENANT}/admins/{}",
        app.user_id(ADMIN).await
    );
    op.verify_caller(&path, "red tricycle").await;

    let log = op.get("/operator/audit").await.text().await.unwrap();
    assert!(log.contains("caller.not_verified"), "{log}");
    assert!(!log.contains(ADMIN), "{log}");
    assert!(log.contains(&format!("-{TENANT}")));

    op.verify_caller(&path, "blue bicycle").await;
    let log = op.get("/operator/audit").await.text().await.unwrap();
    assert!(log.contains(ADMIN), "shown in full after verification");
    let other = {
        app.add_operator("oscar").await;
        app.signed_in_operator("oscar").await
    };
    let log = other.get("/operator/audit").await.text().await.unwrap();
    assert!(!log.contains(ADMIN), "not to another operator");
}

#[tokio::test]
async fn reset_mail_is_limited_over_a_fixed_window_that_a_trickle_cannot_keep_spent() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..3 {
        b.forgot_password(USER).await;
    }
    app.wait_for_queued(3).await;
    // Someone keeps asking every few minutes; nothing more is sent meanwhile.
    // (Each request is handled after the answer, so wait for its audit row.)
    for limited in 1..=3 {
        app.advance(std::time::Duration::from_secs(4 * 60));
        b.forgot_password(USER).await;
        let mut seen = 0;
        for _ in 0..200 {
            seen = app.audit_count("reset.limited").await;
            if seen >= limited {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(seen, limited);
    }
    // Fifteen minutes after the window began, the user's own request is mailed again.
    app.advance(std::time::Duration::from_secs(4 * 60));
    b.forgot_password(USER).await;
    assert_eq!(app.wait_for_queued(4).await.len(), 4);
}

#[tokio::test]
async fn audit_events_past_their_retention_are_purged() {
    let app = spawn_app_with(&[("audit_retention", "2h")]).await;
    app.add_user(USER, PASSWORD).await;
    app.browser().login(USER, "Wrong-Password-1").await;
    assert_eq!(app.audit_count("signin.failed").await, 1);
    app.advance(std::time::Duration::from_secs(3 * 3600));
    app.browser().login(USER, "Wrong-Password-2").await;
    // The sweeper runs at start: a restart purges what is past the retention.
    let app = app.restart_with(&[("audit_retention", "2h")]).await;
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = app.audit_count("signin.failed").await;
        if left == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(left, 1, "only the recent event stays");
}

#[tokio::test]
async fn a_hundred_and_twenty_refused_attempts_make_a_handful_of_audit_rows() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    for _ in 0..120 {
        b.login(USER, "Wrong-Password-1").await;
    }
    let rows = app.audit_count("signin.failed").await
        + app.audit_count("signin.locked").await
        + app.audit_count("signin.throttled").await;
    assert!(rows <= 10, "{rows} audit rows");
    assert_eq!(
        app.audit_repeats("signin.failed").await
            + app.audit_repeats("signin.locked").await
            + app.audit_repeats("signin.throttled").await,
        120,
        "every attempt is still counted"
    );
    // The address pause (5 minutes) passes before the admin signs in from it.
    app.advance(std::time::Duration::from_secs(6 * 60));
    app.add_admin().await;
    let admin = app.signed_in(ADMIN).await;
    let log = admin.get("/admin/audit").await.text().await.unwrap();
    assert!(log.contains("times, the last at"), "{log}");
}

#[tokio::test]
async fn a_user_locked_by_an_attackers_tries_still_signs_in_from_a_browser_that_signed_in_before() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let own = app.browser();
    own.login_ok(USER, PASSWORD).await;
    own.logout().await;

    let attacker = app.browser();
    for _ in 0..5 {
        attacker.login(USER, "Guess-Password-1").await;
    }
    assert_eq!(
        attacker.login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted browser is locked out"
    );
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "so is any fresh browser"
    );
    own.login_ok(USER, PASSWORD).await;
    own.logout().await;
    app.add_admin().await;
    let admin = app.signed_in(ADMIN).await;
    let page = admin.get("/admin/users/201").await.text().await.unwrap();
    assert!(page.contains("perhaps someone guessing"), "{page}");

    // Five failures in the trusted browser lock that browser too.
    for _ in 0..5 {
        assert_eq!(
            own.login(USER, "Own-Typo-Password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        own.login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // An admin's unlock clears both.
    assert!(app.unlock(USER).await);
    own.login_ok(USER, PASSWORD).await;
}

#[tokio::test]
async fn browsers_trusted_under_an_old_password_are_strangers_after_a_new_one() {
    // Someone who once knew the password (a phisher, a former colleague) signed in from
    // several browsers and kept their device cookies. After the password is changed those
    // cookies give no guesses of their own: the username's lock holds against them.
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let kept: Vec<Browser> = {
        let mut kept = Vec::new();
        for _ in 0..2 {
            let b = app.browser();
            b.login_ok(USER, PASSWORD).await;
            b.logout().await;
            kept.push(b);
        }
        kept
    };
    let user = app.signed_in(USER).await;
    assert_eq!(
        user.change_password(PASSWORD, NEW, NEW).await.status(),
        StatusCode::SEE_OTHER
    );
    app.lock_from_elsewhere(USER).await;
    for b in &kept {
        assert_eq!(
            b.login(USER, "Guess-Password-2").await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "an old cookie is counted as the username is"
        );
        assert_eq!(
            b.login(USER, NEW).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test]
async fn the_browser_a_password_is_changed_in_stays_trusted() {
    // The browser the user changed their password in (or chose their own in place of a
    // temporary one) is trusted under the new password: a lock others put on the name
    // does not keep the user out of it.
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let own = app.browser();
    own.login_ok(USER, PASSWORD).await;
    assert_eq!(
        own.change_password(PASSWORD, NEW, NEW).await.status(),
        StatusCode::SEE_OTHER
    );
    own.logout().await;

    let temporary = app
        .add_person(
            "202-wickedsprockets",
            "New Hire",
            Some("202@example.com"),
            Role::User,
            None,
        )
        .await
        .expect("a temporary password");
    let newcomer = app.browser();
    newcomer.login("202-wickedsprockets", &temporary).await;
    assert_eq!(
        newcomer.choose_password(PASSWORD, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    newcomer.logout().await;

    for (browser, name, password) in [
        (&own, USER, NEW),
        (&newcomer, "202-wickedsprockets", PASSWORD),
    ] {
        app.lock_from_elsewhere(name).await;
        assert_eq!(
            app.browser().login(name, password).await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{name} is locked for strangers"
        );
        browser.login_ok(name, password).await;
    }
}

#[tokio::test]
async fn a_cookie_another_site_left_with_bytes_outside_ascii_does_not_stop_a_sign_in() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let client = plain_client();
    let form = client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    let set_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    let csrf_cookie = set_cookie.split(';').next().unwrap().to_owned();
    let token = csrf_in(&form.text().await.unwrap()).unwrap();
    // A browser sends such a cookie's UTF-8 bytes as they are, beside this portal's own.
    let mut cookie = "theme=été; ".as_bytes().to_vec();
    cookie.extend_from_slice(csrf_cookie.as_bytes());
    let r = client
        .post(format!("{}/login", app.base))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(&cookie).unwrap(),
        )
        .form(&[
            ("username", USER),
            ("password", PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/phone");
}

#[tokio::test]
async fn a_form_sent_in_another_encoding_is_a_400_not_an_expired_form() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let b = app.browser();
    let token = b.csrf().await;
    let multipart = format!(
        "--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--x--\r\n"
    );
    let r = b
        .client
        .post(format!("{}/login", app.base))
        .header("content-type", "multipart/form-data; boundary=x")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Request not understood"));
    // The same browser's URL-encoded form still goes through.
    b.login_ok(USER, PASSWORD).await;
}
