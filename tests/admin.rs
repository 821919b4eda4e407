//! Tenant administration: an admin manages their own tenant's users, and never anyone
//! else's; every action is audited with who did what to whom.

mod common;

use std::time::Duration;

use common::*;
use dialtone::domain::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn the_users_list_shows_status_and_is_searchable_and_paged() {
    let (app, b) = spawn_tenant().await;
    app.add_person(
        "202-wickedsprockets",
        "Nomail Person",
        None,
        Role::User,
        None,
    )
    .await;
    app.lock_from_elsewhere(USER).await;
    let body = b.get("/admin/users").await.text().await.unwrap();
    assert!(body.contains("no email — cannot self-reset"));
    assert!(body.contains("locked until"));
    assert!(body.contains("temporary password pending"));
    assert!(body.contains("201@example.com"));

    let found = b.get("/admin/users?q=nomail").await.text().await.unwrap();
    assert!(found.contains("Nomail Person") && !found.contains("201@example.com"));

    for ext in 300..360 {
        app.add_user(&format!("{ext}-wickedsprockets"), PASSWORD)
            .await;
    }
    let first = b.get("/admin/users").await.text().await.unwrap();
    assert!(first.contains("Page 1 of 2"));
    assert_eq!(first.matches("href=\"/admin/users/").count(), 50);
    let second = b.get("/admin/users?page=2").await.text().await.unwrap();
    assert_eq!(second.matches("href=\"/admin/users/").count(), 13);
    // A page past the end (an old link, a list that shrank) shows the last one.
    let past = b.get("/admin/users?page=99").await.text().await.unwrap();
    assert!(past.contains("Page 2 of 2"), "{past}");
    assert_eq!(past.matches("href=\"/admin/users/").count(), 13);
    let audit = b.get("/admin/audit?page=9999").await.text().await.unwrap();
    assert!(!audit.contains("Page 9999"), "{audit}");
}

#[tokio::test]
async fn an_admin_adds_a_user_who_must_change_the_temporary_password() {
    let (app, b) = spawn_tenant().await;
    let r = b
        .admin_create_user("210", "New Hire", "new@example.com", "user")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let temporary = temporary_password_in(&r.text().await.unwrap());
    assert!(temporary.chars().count() >= 16);

    let user = app.browser();
    let r = user.login("210-wickedsprockets", &temporary).await;
    assert_eq!(location(&r), "/password/choose");
    assert_eq!(user.get("/phone").await.status(), StatusCode::SEE_OTHER);

    let events = app.audit_events("user.created").await;
    let event = events
        .iter()
        .find(|e| e.subject.as_deref() == Some("210-wickedsprockets"))
        .unwrap();
    assert_eq!(event.actor.as_deref(), Some(ADMIN));
    let audit = b.get("/admin/audit").await.text().await.unwrap();
    assert!(!audit.contains(&temporary), "no secret in the audit log");
}

#[tokio::test]
async fn bad_input_names_each_problem_and_creates_nothing() {
    let (app, b) = spawn_tenant().await;
    let before = app.user_count(TENANT).await;

    // A taken extension is a form error like any other (DESIGN: form errors are 422).
    let r = b.admin_create_user("201", "Duplicate", "", "user").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Extension 201 already has a user"));

    let r = b.admin_create_user("12a", "", "not-an-email", "boss").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("The extension must be 1 to 10 digits."));
    assert!(body.contains("Enter a name"));
    assert!(body.contains("valid email address"));
    assert!(body.contains("The role must be"));
    assert!(body.contains("value=\"12a\""), "what was typed is kept");

    assert_eq!(app.user_count(TENANT).await, before);
}

#[tokio::test]
async fn an_admin_edits_a_user_but_cannot_rename_them() {
    let (app, b) = spawn_tenant().await;
    let page = b.get("/admin/users/201").await.text().await.unwrap();
    assert!(page.contains("username cannot be changed"));

    let r = b
        .post(
            "/admin/users/201",
            &[
                ("name", "Samantha Staff"),
                ("email", "sam@example.com"),
                ("role", "admin"),
                ("extension", "999"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let u = app.stored_user(USER).await.unwrap();
    assert_eq!(u.name, "Samantha Staff");
    assert_eq!(u.email.as_deref(), Some("sam@example.com"));
    assert!(u.is_admin());
    assert!(app.stored_user("999-wickedsprockets").await.is_none());

    let r = b
        .post(
            "/admin/users/201",
            &[("name", "Sam"), ("email", "bad@"), ("role", "user")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let u = app.stored_user(USER).await.unwrap();
    assert_eq!(u.name, "Samantha Staff", "nothing changed");
    assert_eq!(app.audit_count("user.updated").await, 1);
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions_and_keeps_their_history() {
    let (app, b) = spawn_tenant().await;
    let user = app.signed_in(USER).await;
    let r = b.post("/admin/users/201/delete", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/users?deleted=201");
    assert_eq!(user.get("/phone").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        b.get("/admin/users/201").await.status(),
        StatusCode::NOT_FOUND
    );
    let history = b
        .get(&format!("/admin/audit?user={USER}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(history.contains("signin.ok") && history.contains("user.deleted"));
}

#[tokio::test]
async fn the_last_admin_cannot_demote_or_delete_themselves() {
    let (app, b) = spawn_tenant().await;
    let r = b
        .post(
            "/admin/users/200",
            &[("name", "Ada"), ("email", ""), ("role", "user")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the form's role field"
    );
    assert!(r.text().await.unwrap().contains("only admin"));
    let r = b.post("/admin/users/200/delete", &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(app.stored_user(ADMIN).await.unwrap().is_admin());

    // With a second admin it is allowed.
    b.post(
        "/admin/users/201",
        &[
            ("name", "Sam"),
            ("email", "201@example.com"),
            ("role", "admin"),
        ],
    )
    .await;
    let r = b
        .post(
            "/admin/users/200",
            &[("name", "Ada"), ("email", ""), ("role", "user")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_reset_link_from_the_admin_reaches_the_email_on_file_and_ends_sessions() {
    let (app, b) = spawn_tenant().await;
    let user = app.signed_in(USER).await;
    let r = b
        .post("/admin/users/201/reset-password", &[("method", "link")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        user.get("/phone").await.status(),
        StatusCode::SEE_OTHER,
        "sessions ended"
    );
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(mail.to, "201@example.com");
    assert_eq!(mail.links().len(), 1);

    // The mail status shows it.
    for _ in 0..100 {
        let page = b.get("/admin/users/201").await.text().await.unwrap();
        if page.contains("badge-success\">sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = b.get("/admin/users/201").await.text().await.unwrap();
    assert!(
        page.contains("password reset") && page.contains("badge-success\">sent"),
        "{page}"
    );
}

#[tokio::test]
async fn the_admins_reset_links_count_against_the_users_mail_limit() {
    let (app, b) = spawn_tenant().await;
    for _ in 0..3 {
        let r = b
            .post("/admin/users/201/reset-password", &[("method", "link")])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    app.wait_for_mail(3).await;
    let user = app.signed_in(USER).await;
    let r = b
        .post("/admin/users/201/reset-password", &[("method", "link")])
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = r.text().await.unwrap();
    assert!(page.contains("already sent 3 reset emails"), "{page}");
    assert_eq!(
        user.get("/phone").await.status(),
        StatusCode::OK,
        "nothing changed: the session goes on"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mail_files().len(), 3, "no fourth link");
    assert_eq!(app.audit_count("reset.limited").await, 1);

    // The user's own requests have a budget of their own, and spending it (as a stranger
    // can) leaves the admin's.
    app.advance(Duration::from_secs(15 * 60 + 1));
    for _ in 0..4 {
        app.browser().forgot_password(USER).await;
    }
    app.wait_for_mail(6).await;
    let r = b
        .post("/admin/users/201/reset-password", &[("method", "link")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.wait_for_mail(7).await;
}

#[tokio::test]
async fn mail_to_an_address_shared_by_several_users_shows_on_each_of_their_pages() {
    let (app, b) = spawn_tenant().await;
    app.add_person(
        "202-wickedsprockets",
        "Shares Sam's Mailbox",
        Some("201@example.com"),
        Role::User,
        Some(PASSWORD),
    )
    .await;
    app.add_person(
        "203-wickedsprockets",
        "Own Mailbox",
        Some("203@example.com"),
        Role::User,
        Some(PASSWORD),
    )
    .await;
    app.browser().forgot_password("201@example.com").await;
    let mail = app.wait_for_mail(1).await.remove(0);
    assert_eq!(
        mail.links().len(),
        2,
        "one message, a link for each account"
    );
    for ext in ["201", "202"] {
        let page = b
            .get(&format!("/admin/users/{ext}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("password reset"), "{ext}: {page}");
    }
    let other = b.get("/admin/users/203").await.text().await.unwrap();
    assert!(other.contains("No mail sent to this user yet"), "{other}");

    // Another tenant's mail to an address never shows, whatever address the admin sets.
    for ext in ["100", "101"] {
        app.add_person(
            &format!("{ext}-acme"),
            "Acme Person",
            Some("front-desk@acme.example"),
            Role::User,
            Some(PASSWORD),
        )
        .await;
    }
    app.browser()
        .forgot_password("front-desk@acme.example")
        .await;
    app.wait_for_mail(2).await;
    b.post(
        "/admin/users/203",
        &[
            ("name", "Own Mailbox"),
            ("email", "front-desk@acme.example"),
            ("role", "user"),
        ],
    )
    .await;
    let other = b.get("/admin/users/203").await.text().await.unwrap();
    assert!(!other.contains("password reset"), "{other}");

    // With the address now on accounts of two tenants, each tenant's accounts get a
    // message of their own: this tenant's admin sees the one about their user, and it
    // names nothing of the other tenant's.
    app.browser()
        .forgot_password("front-desk@acme.example")
        .await;
    let mails = app.wait_for_mail(4).await;
    let ours = mails
        .iter()
        .find(|m| m.text.contains("203-wickedsprockets") && !m.links().is_empty())
        .expect("a message for this tenant's account");
    assert!(!ours.text.contains("-acme"), "{}", ours.text);
    assert_eq!(ours.links().len(), 1);
    let theirs = mails
        .iter()
        .filter(|m| m.text.contains("100-acme"))
        .collect::<Vec<_>>();
    assert_eq!(theirs.len(), 2, "the first request and this one");
    assert!(!theirs[1].text.contains("wickedsprockets"));
    let page = b.get("/admin/users/203").await.text().await.unwrap();
    assert_eq!(page.matches("password reset").count(), 1, "{page}");
}

#[tokio::test]
async fn a_user_without_email_cannot_be_sent_a_link() {
    let (app, b) = spawn_tenant().await;
    b.post(
        "/admin/users/201",
        &[("name", "Sam"), ("email", ""), ("role", "user")],
    )
    .await;
    let r = b
        .post("/admin/users/201/reset-password", &[("method", "link")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("no email on file"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The only mail is the notice to the address that was removed; no reset link.
    let mails = app.wait_for_mail(1).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].subject.contains("email address"),
        "{}",
        mails[0].subject
    );
    assert!(mails[0]
        .links()
        .iter()
        .all(|l| !l.contains("/password/reset")));
}

#[tokio::test]
async fn a_temporary_password_from_the_admin_forces_a_change_and_expires_after_72_hours() {
    let (app, b) = spawn_tenant().await;
    let user = app.signed_in(USER).await;
    let r = b
        .post(
            "/admin/users/201/reset-password",
            &[("method", "temporary")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let temporary = temporary_password_in(&r.text().await.unwrap());
    assert_eq!(
        user.get("/phone").await.status(),
        StatusCode::SEE_OTHER,
        "sessions ended"
    );
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let fresh = app.browser();
    assert_eq!(
        location(&fresh.login(USER, &temporary).await),
        "/password/choose"
    );

    // Signed in with it a minute before it runs out, and choosing after: refused, and the
    // page says why (not a bare form).
    app.advance(Duration::from_secs(72 * 3600 - 60));
    let late = app.browser();
    assert_eq!(
        location(&late.login(USER, &temporary).await),
        "/password/choose"
    );
    app.advance(Duration::from_secs(60));
    let r = late
        .choose_password("Chosen-Late-Pass-9", "Chosen-Late-Pass-9")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your temporary password has expired. Ask your administrator"));
    let r = app.browser().login(USER, &temporary).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("expired"));
    let events = app.audit_events("password.temporary_set").await;
    assert_eq!(events[0].actor.as_deref(), Some(ADMIN));
    assert_eq!(events[0].subject.as_deref(), Some(USER));
}

#[tokio::test]
async fn a_temporary_password_for_a_locked_out_user_works_at_once() {
    // The lock ends with the password the admin set, as with a completed reset: the user
    // who called because they were locked out is not sent back to wait 15 minutes.
    let (app, b) = spawn_tenant().await;
    app.lock_from_elsewhere(USER).await;
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let temporary = b.admin_temporary_password("201").await;
    assert_eq!(
        location(&app.browser().login(USER, &temporary).await),
        "/password/choose"
    );
}

#[tokio::test]
async fn an_admin_unlocks_a_user_and_signs_them_out_everywhere() {
    let (app, b) = spawn_tenant().await;
    let user = app.signed_in(USER).await;
    let attacker = app.browser();
    for _ in 0..5 {
        attacker.login(USER, "Wrong-Password-1").await;
    }
    assert_eq!(
        app.browser().login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        b.post("/admin/users/201/unlock", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    app.browser().login_ok(USER, PASSWORD).await;

    assert_eq!(
        b.post("/admin/users/201/sign-out", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(user.get("/phone").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.sessions_of(USER).await, 0);
    let audit = b
        .get("/admin/audit?kind=user.unlocked")
        .await
        .text()
        .await
        .unwrap();
    assert!(audit.contains(ADMIN) && audit.contains(USER));
}

#[tokio::test]
async fn admin_actions_and_a_users_own_changes_are_audited_with_the_address_they_came_from() {
    let (app, b) = spawn_tenant().await;
    let user = app.signed_in(USER).await;
    assert_eq!(
        b.post("/admin/users/201/unlock", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.post("/admin/users/201/sign-out", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let user = {
        drop(user);
        app.signed_in(USER).await
    };
    let regenerated = user
        .post("/phone/sip/regenerate", &[("confirm", "yes")])
        .await;
    assert_eq!(regenerated.status(), StatusCode::SEE_OTHER);
    let page = b.get("/admin/audit").await.text().await.unwrap();
    for kind in [
        "user.unlocked",
        "user.signed_out_everywhere",
        "sip.regenerated",
    ] {
        let rows: Vec<&str> = page
            .split("<tr>")
            .filter(|row| row.contains(&format!("<td class=\"mono\">{kind}</td>")))
            .collect();
        assert_eq!(rows.len(), 1, "{kind}: {page}");
        assert!(
            rows[0].contains(">127.0.0.1<"),
            "{kind} without the address: {}",
            rows[0]
        );
    }
}

#[tokio::test]
async fn the_user_page_shows_a_lock_in_the_users_own_browser_and_unlock_clears_it() {
    let (app, b) = spawn_tenant().await;
    // The user's own browser (it signed in before, so it holds a device cookie) locks
    // itself with wrong passwords; the username stays open to other browsers.
    let own = app.signed_in(USER).await;
    own.logout().await;
    for _ in 0..5 {
        own.login(USER, "Wrong-Password-1").await;
    }
    assert_eq!(
        own.login(USER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let page = b.get("/admin/users/201").await.text().await.unwrap();
    assert!(
        page.contains("locked in 1 of the user's own browsers"),
        "{page}"
    );
    assert!(!page.contains(">not locked<"), "{page}");

    assert_eq!(
        b.post("/admin/users/201/unlock", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let page = b.get("/admin/users/201").await.text().await.unwrap();
    assert!(!page.contains("own browsers"), "{page}");
    assert_eq!(
        location(&own.login(USER, PASSWORD).await),
        "/phone",
        "the browser gets in again"
    );
}

#[tokio::test]
async fn a_user_without_the_admin_role_gets_403_on_every_admin_route() {
    let (app, _) = spawn_tenant().await;
    let user = app.signed_in(USER).await;
    for path in ["/admin/users", "/admin/users/200", "/admin/audit"] {
        assert_eq!(
            user.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    for path in [
        "/admin/users",
        "/admin/users/200",
        "/admin/users/200/reset-password",
        "/admin/users/200/unlock",
        "/admin/users/200/sign-out",
        "/admin/users/200/delete",
    ] {
        let r = user
            .post(
                path,
                &[
                    ("method", "temporary"),
                    ("extension", "250"),
                    ("name", "X"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(app.stored_user(ADMIN).await.is_some());
    assert!(app.stored_user("250-wickedsprockets").await.is_none());
    let body = user.get("/phone").await.text().await.unwrap();
    assert!(
        !body.contains("href=\"/admin/users\""),
        "no Admin tab for users"
    );
}

#[tokio::test]
async fn another_tenants_users_look_exactly_like_users_that_do_not_exist() {
    let (app, b) = spawn_tenant().await;
    app.add_user("555-othercorp", PASSWORD).await;
    let victim = app.signed_in("555-othercorp").await;

    let missing = b.get("/admin/users/556").await;
    let missing_status = missing.status();
    let missing_body = missing.text().await.unwrap();
    let other = b.get("/admin/users/555").await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    assert_eq!(other.text().await.unwrap(), missing_body);

    for action in ["reset-password", "unlock", "sign-out", "delete"] {
        let r = b
            .post(
                &format!("/admin/users/555/{action}"),
                &[("method", "temporary")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let r = b
        .post(
            "/admin/users/555",
            &[("name", "Hijacked"), ("email", ""), ("role", "user")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for path in [
        "/admin/users/555-othercorp",
        "/admin/users/..%2F555",
        "/admin/users/%00",
    ] {
        assert_eq!(b.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }

    let u = app.stored_user("555-othercorp").await.unwrap();
    assert_eq!(u.name, "Sam Staff", "nothing changed");
    assert_eq!(
        victim.get("/phone").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    app.browser().login_ok("555-othercorp", PASSWORD).await;
    let listed = b.get("/admin/users?q=555").await.text().await.unwrap();
    assert!(
        !listed.contains("href=\"/admin/users/555\""),
        "the list only shows the admin's tenant"
    );
    assert!(listed.contains("Users (0)"));
    let audit = b.get("/admin/audit").await.text().await.unwrap();
    assert!(
        !audit.contains("othercorp"),
        "the audit log only shows the admin's tenant"
    );
}

#[tokio::test]
async fn the_audit_log_is_newest_first_and_filters_by_user_and_kind() {
    let (app, b) = spawn_tenant().await;
    app.browser().login(USER, "Wrong-Password-1").await;
    app.browser().login_ok(USER, PASSWORD).await;
    let all = b.get("/admin/audit").await.text().await.unwrap();
    let ok = all.find("signin.ok").unwrap();
    let failed = all.find("signin.failed").unwrap();
    assert!(ok < failed, "newest first");

    let only_failed = b
        .get("/admin/audit?kind=signin.failed")
        .await
        .text()
        .await
        .unwrap();
    assert!(only_failed.contains("1 event(s)"));
    let only_user = b
        .get(&format!("/admin/audit?user={USER}&kind=signin.ok"))
        .await
        .text()
        .await
        .unwrap();
    assert!(only_user.contains("1 event(s)"));
}

#[tokio::test]
async fn a_hashing_queue_at_its_bound_is_a_busy_page_that_creates_nobody() {
    // One hashing worker and no room to wait: new users at once find the queue full.
    let app = spawn_app_with(&[("hash_workers", "1"), ("signin_queue_wait", "1ms")]).await;
    app.add_admin().await;
    let admin = app.signed_in(ADMIN).await;
    // The token first, so the eight forms arrive together.
    let token = admin.csrf().await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (admin, token) = (admin.clone(), token.clone());
        calls.spawn(async move {
            let (extension, email) = (format!("3{i}"), format!("new{i}@example.com"));
            let fields = [
                ("extension", extension.as_str()),
                ("name", "New Hire"),
                ("email", email.as_str()),
                ("role", "user"),
                ("csrf_token", token.as_str()),
            ];
            let r = admin.post_raw("/admin/users", &fields).await;
            let (status, headers) = (r.status(), r.headers().clone());
            (extension, status, headers, r.text().await.unwrap())
        });
    }
    let (mut made, mut busy) = (0, 0);
    while let Some(done) = calls.join_next().await {
        let (extension, status, headers, page) = done.unwrap();
        match status {
            StatusCode::OK => {
                assert!(temporary_password_in(&page).chars().count() >= 16);
                made += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    page.contains("The portal is very busy right now"),
                    "{extension}: {page}"
                );
                assert!(headers.contains_key("retry-after"), "{extension}");
                assert!(!page.contains("Temporary password"), "{extension}");
                busy += 1;
            }
            other => panic!("{extension}: {other} {page}"),
        }
    }
    assert!(busy > 0, "the queue was at its bound");
    assert_eq!(
        app.user_count("wickedsprockets").await,
        1 + made,
        "only the admin and the users shown a password"
    );
}
