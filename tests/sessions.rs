//! Sessions: the cookie, the sliding idle timer, the absolute cap, rotation and sign-out.

mod common;

use std::time::Duration;

use common::*;
use dialtone::auth::token::token_hash;
use reqwest::StatusCode;

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_only_its_hash_is_stored() {
    let app = spawn_app().await;
    let (_, cookie) = app.signed_in_user_and_cookie().await;
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http public URL");
    let token = cookie_value(&cookie);
    assert_eq!(token.len(), 43, "256 random bits, base64url");

    assert!(app.session_under(&token_hash(&token)).await.is_some());
    assert!(
        app.session_under(token.as_bytes()).await.is_none(),
        "the raw token is not a key"
    );
}

#[tokio::test]
async fn an_https_public_url_makes_the_cookie_host_prefixed_and_secure() {
    let app = spawn_app_with(&[("public_url", "https://portal.example.com")]).await;
    app.add_user(USER, PASSWORD).await;
    // A real browser would not send Secure cookies over http, so read the header directly.
    let client = plain_client();
    let first = client.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(&first, "__Host-dialtone_csrf").expect("csrf cookie");
    assert!(csrf_cookie.contains("Secure"));
    let token = csrf_in(&first.text().await.unwrap()).unwrap();
    let r = client
        .post(app.url("/login"))
        .header("cookie", csrf_cookie.split(';').next().unwrap())
        .form(&[
            ("username", USER),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    let session = set_cookie(&r, "__Host-dialtone_session").expect("host-prefixed session cookie");
    assert!(
        session.contains("Secure") && session.contains("HttpOnly") && session.contains("Path=/")
    );
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_with_next_kept() {
    let app = spawn_app().await;
    let r = app.browser().get("/settings").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fsettings");
}

#[tokio::test]
async fn the_idle_timer_slides_with_each_request() {
    let app = spawn_app().await;
    let (b, _) = app.signed_in_user_and_cookie().await;
    for _ in 0..3 {
        app.advance(3 * HOUR);
        assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    }
    // Nine hours in, still signed in thanks to the slide; four idle hours end it.
    app.advance(4 * HOUR);
    let r = b.get("/phone").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fphone");
}

#[tokio::test]
async fn four_idle_hours_end_a_session_to_the_second() {
    let app = spawn_app().await;
    let (b, _) = app.signed_in_user_and_cookie().await;
    app.advance(4 * HOUR - Duration::from_secs(1));
    assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    app.advance(4 * HOUR);
    assert_eq!(b.get("/phone").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_absolute_cap_ends_a_busy_session_after_twelve_hours() {
    let app = spawn_app().await;
    let (b, _) = app.signed_in_user_and_cookie().await;
    for _ in 0..11 {
        app.advance(HOUR);
        assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    }
    app.advance(HOUR);
    assert_eq!(b.get("/phone").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn configured_limits_in_seconds_apply() {
    let app = spawn_app_with(&[("session_idle", "30s"), ("session_max", "90s")]).await;
    let (b, _) = app.signed_in_user_and_cookie().await;
    app.advance(Duration::from_secs(29));
    assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    app.advance(Duration::from_secs(30));
    assert_eq!(b.get("/phone").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_slide_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (b, cookie) = app.signed_in_user_and_cookie().await;
    let hash = token_hash(&cookie_value(&cookie));
    let seen = || async { app.session_under(&hash).await.unwrap().last_seen_at };
    let start = seen().await;

    app.advance(Duration::from_secs(30));
    b.get("/phone").await;
    assert_eq!(seen().await, start, "no write within the minute");

    app.advance(MINUTE);
    b.get("/phone").await;
    assert_eq!(seen().await, start.plus(Duration::from_secs(90)));
}

#[tokio::test]
async fn every_sign_in_issues_a_fresh_session() {
    let app = spawn_app().await;
    let (b, first) = app.signed_in_user_and_cookie().await;
    let r = b.login(USER, PASSWORD).await;
    let second = set_cookie(&r, "dialtone_session").unwrap();
    assert_ne!(cookie_value(&first), cookie_value(&second));
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let (b, cookie) = app.signed_in_user_and_cookie().await;
    let token = cookie_value(&cookie);

    let r = b.logout().await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login");
    assert_eq!(app.sessions_of(USER).await, 0);
    assert_eq!(app.audit_count("signout").await, 1);

    // Replaying the old cookie does not bring the session back.
    let r = app
        .get_sending_cookie("/phone", &format!("dialtone_session={token}"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_out_is_post_only_and_needs_the_csrf_token() {
    let app = spawn_app().await;
    let (b, _) = app.signed_in_user_and_cookie().await;
    assert_ne!(b.get("/logout").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        b.post_raw("/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.get("/phone").await.status(),
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_before_anyone_is_sent_to_sign_in() {
    let app = spawn_app().await;
    let b = app.browser();
    let posts = [
        "/logout",
        "/settings/password",
        "/phone/sip/reveal",
        "/admin/users",
        "/admin/users/201/unlock",
        "/operator/tenants",
        "/operator/logout",
    ];
    for fields in [vec![], vec![("csrf_token", "forged")]] {
        for path in posts {
            let r = b.post_raw(path, &fields).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} with {fields:?}");
        }
    }
    // With this browser's own token, a signed-out form is sent to sign in, as a page is.
    let token = b.csrf().await;
    let r = b
        .post_raw("/settings/password", &[("csrf_token", &token)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[reqwest::header::LOCATION].to_str().unwrap();
    assert!(to.starts_with("/login"), "{to}");
    // A path's wrong method and an unknown path keep their answers.
    assert_eq!(
        b.post_raw("/phone", &[]).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        b.post_raw("/no/such/page", &[]).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_forged_session_cookie_is_just_signed_out() {
    let app = spawn_app().await;
    for value in ["x", "A".repeat(43).as_str(), "%00", &"B".repeat(5000)] {
        let r = app
            .get_sending_cookie("/phone", &format!("dialtone_session={value}"))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{value}");
    }
}

#[tokio::test]
async fn a_short_idle_time_still_slides() {
    let app = spawn_app_with(&[("session_idle", "30s"), ("session_max", "1h")]).await;
    let (b, _) = app.signed_in_user_and_cookie().await;
    for _ in 0..4 {
        app.advance(Duration::from_secs(20));
        assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    }
}

/// Loads `/phone` on `b` until it answers `want`, for at most five seconds of real time:
/// the other node hears of a change by a PostgreSQL notice, not at once.
async fn phone_answers(b: &Browser, want: StatusCode) -> bool {
    for _ in 0..100 {
        if b.get("/phone").await.status() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn an_admins_change_shows_on_the_users_next_page() {
    let app = spawn_app().await;
    app.add_admin().await;
    let (user, _) = app.signed_in_user_and_cookie().await;
    let page = user.get("/phone").await.text().await.unwrap();
    assert!(page.contains("Sam Staff") && !page.contains("Administrator"));
    assert_eq!(
        user.get("/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );

    let admin = app.signed_in(ADMIN).await;
    let r = admin
        .post(
            "/admin/users/201",
            &[
                ("name", "Samantha Staff"),
                ("email", "sam@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The pinned clock has not moved: only the change itself can make the page new.
    let page = user.get("/phone").await.text().await.unwrap();
    assert!(page.contains("Samantha Staff") && page.contains("Administrator"));
    assert_eq!(user.get("/admin/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sign_out_on_one_node_ends_the_session_on_every_node() {
    let app = spawn_app().await;
    let other = app.second_node().await;
    let (b, cookie) = app.signed_in_user_and_cookie().await;
    // An attacker who copied the cookie, using it on the other node.
    let stolen = Browser::holding_session(&cookie_value(&cookie), &other);
    assert_eq!(stolen.get("/phone").await.status(), StatusCode::OK);

    assert_eq!(b.logout().await.status(), StatusCode::SEE_OTHER);
    if app.is_postgres() {
        // Told at once: the clock stays where it is.
        assert!(phone_answers(&stolen, StatusCode::SEE_OTHER).await);
    } else {
        // One SQLite file has one node in production; a second one still notices
        // within the cache's freshness.
        app.advance(SESSION_CACHE_FRESH_FOR);
        assert_eq!(stolen.get("/phone").await.status(), StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn a_password_change_on_one_node_ends_other_sessions_on_every_node() {
    let app = spawn_app().await;
    let other = app.second_node().await;
    let (laptop, _) = app.signed_in_user_and_cookie().await;
    let desk = app.signed_in(USER).await;
    let desk_elsewhere = desk.on(&other);
    assert_eq!(desk_elsewhere.get("/phone").await.status(), StatusCode::OK);

    let r = laptop
        .change_password(PASSWORD, "Gear-Wednesday-97", "Gear-Wednesday-97")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the change is accepted");
    assert_eq!(laptop.get("/phone").await.status(), StatusCode::OK);
    if app.is_postgres() {
        assert!(phone_answers(&desk_elsewhere, StatusCode::SEE_OTHER).await);
    } else {
        app.advance(SESSION_CACHE_FRESH_FOR);
        assert_eq!(
            desk_elsewhere.get("/phone").await.status(),
            StatusCode::SEE_OTHER
        );
    }
}

// ---- Your sessions (Settings) -------------------------------------------------------------

const FIREFOX_ON_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI_ON_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// "2027-01-15 08:00" for `START` plus `d`, as the page writes times.
fn at(d: Duration) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(START.0 as u64) + d;
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s[..16].replace('T', " ")
}

/// A browser of `user_agent` signed in as `USER`; the session token it was given.
async fn sign_in_as(app: &TestApp, user_agent: &str) -> (Browser, String) {
    let b = Browser::with_user_agent(&app.base, user_agent);
    let r = b.login(USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
    let cookie = set_cookie(&r, "dialtone_session").expect("a session cookie");
    (b, cookie_value(&cookie))
}

/// The one listed session that is not `b`'s own.
async fn the_other_session(b: &Browser) -> ListedSession {
    let others: Vec<_> = b
        .own_sessions()
        .await
        .into_iter()
        .filter(|s| !s.current)
        .collect();
    assert_eq!(others.len(), 1, "{others:?}");
    others[0].clone()
}

#[tokio::test]
async fn your_sessions_lists_each_signed_in_browser_with_its_device_address_and_times() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_admin().await;
    let (laptop, laptop_token) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    app.advance(10 * MINUTE);
    let (phone, phone_token) = sign_in_as(&app, SAFARI_ON_IPHONE).await;
    // Someone else's session is not theirs to see.
    let _admin = app.signed_in(ADMIN).await;
    app.advance(5 * MINUTE);

    let r = laptop.get("/settings").await;
    let body = r.text().await.unwrap();
    let sessions = sessions_in(&body);
    assert_eq!(
        sessions
            .iter()
            .map(|s| (
                s.device.as_str(),
                s.address.as_str(),
                s.signed_in.clone(),
                s.last_seen.clone(),
                s.current
            ))
            .collect::<Vec<_>>(),
        vec![
            (
                "Firefox on Linux",
                "127.0.0.1",
                at(Duration::ZERO),
                at(15 * MINUTE),
                true
            ),
            (
                "Safari on iPhone",
                "127.0.0.1",
                at(10 * MINUTE),
                at(10 * MINUTE),
                false
            ),
        ],
        "this browser first, then the others; seen when last used"
    );
    // Named by an opaque id, never by the token or its stored hash.
    for token in [&laptop_token, &phone_token] {
        assert!(
            !body.contains(token.as_str()),
            "the page shows a session token"
        );
        let hash: String = dialtone::auth::token::token_hash(token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!body.contains(&hash[..16]), "the page shows a token's hash");
    }
    for s in &sessions {
        assert!(s.id.parse::<i64>().is_ok(), "an opaque row id: {s:?}");
    }
    assert_eq!(phone.own_sessions().await.len(), 2);
}

#[tokio::test]
async fn ending_a_session_signs_that_browser_out_and_keeps_this_one() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (laptop, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    let (phone, _) = sign_in_as(&app, SAFARI_ON_IPHONE).await;
    // The phone's session is in use (and so held in the session cache).
    assert_eq!(phone.get("/phone").await.status(), StatusCode::OK);

    let other = the_other_session(&laptop).await;
    assert_eq!(other.device, "Safari on iPhone");
    let r = laptop.end_session(&other.id).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings?saved=session");

    let r = phone.get("/phone").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the ended browser is signed out"
    );
    assert_eq!(location(&r), "/login?next=%2Fphone");
    assert_eq!(laptop.get("/phone").await.status(), StatusCode::OK);
    let page = laptop
        .get("/settings?saved=session")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("That session was ended"), "{page}");
    assert_eq!(sessions_in(&page).len(), 1);
    assert_eq!(app.sessions_of(USER).await, 1);
    assert!(
        app.audit_events("signout")
            .await
            .iter()
            .any(|e| e.detail.as_deref() == Some("another session, from Your sessions")),
        "audited"
    );
    // Ending it again: it is gone.
    assert_eq!(
        laptop.end_session(&other.id).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ending_this_session_from_the_list_signs_this_browser_out() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (laptop, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    let (phone, _) = sign_in_as(&app, SAFARI_ON_IPHONE).await;
    let mine = laptop
        .own_sessions()
        .await
        .into_iter()
        .find(|s| s.current)
        .expect("this browser is listed");
    let r = laptop.end_session(&mine.id).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login");
    assert_eq!(laptop.get("/phone").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/phone").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn ending_all_other_sessions_keeps_only_this_one() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (laptop, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    let (phone, _) = sign_in_as(&app, SAFARI_ON_IPHONE).await;
    let (desk, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    for b in [&phone, &desk] {
        assert_eq!(b.get("/phone").await.status(), StatusCode::OK);
    }
    assert_eq!(laptop.own_sessions().await.len(), 3);

    let r = laptop.end_other_sessions().await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings?saved=sessions");
    for b in [&phone, &desk] {
        assert_eq!(
            b.get("/phone").await.status(),
            StatusCode::SEE_OTHER,
            "an ended browser is signed out"
        );
    }
    assert_eq!(laptop.get("/phone").await.status(), StatusCode::OK);
    let listed = laptop.own_sessions().await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current);
    assert_eq!(app.sessions_of(USER).await, 1);
}

#[tokio::test]
async fn another_users_session_cannot_be_ended_and_nothing_changes() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    app.add_admin().await;
    let (user, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    let users_own = user.own_sessions().await;
    let admin = app.signed_in(ADMIN).await;

    for id in [
        users_own[0].id.as_str(),
        "abc",
        "-1",
        "0",
        "99999999999999999999",
        "1%20OR%201=1",
    ] {
        let r = admin.end_session(id).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "ending {id:?}");
    }
    assert_eq!(user.get("/phone").await.status(), StatusCode::OK);
    assert_eq!(user.own_sessions().await, users_own, "nothing changed");
    assert_eq!(app.sessions_of(USER).await, 1);
    assert_eq!(app.sessions_of(ADMIN).await, 1);
    // "All other sessions" of the admin reaches no one else's either.
    assert_eq!(
        admin.end_other_sessions().await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(user.get("/phone").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn ending_sessions_needs_the_csrf_token() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (laptop, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    let (phone, _) = sign_in_as(&app, SAFARI_ON_IPHONE).await;
    let other = the_other_session(&laptop).await;
    let end = format!("/settings/sessions/{}/end", other.id);
    for fields in [vec![], vec![("csrf_token", "forged")]] {
        for path in [end.as_str(), "/settings/sessions/end-others"] {
            let r = laptop.post_raw(path, &fields).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} with {fields:?}");
        }
    }
    assert_eq!(phone.get("/phone").await.status(), StatusCode::OK);
    assert_eq!(app.sessions_of(USER).await, 2);
}

#[tokio::test]
async fn a_password_change_keeps_this_browsers_device_on_its_new_session() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let (laptop, _) = sign_in_as(&app, FIREFOX_ON_LINUX).await;
    let (_phone, _) = sign_in_as(&app, SAFARI_ON_IPHONE).await;
    let r = laptop.change_password(PASSWORD, NEW, NEW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let listed = laptop.own_sessions().await;
    assert_eq!(listed.len(), 1, "the other sessions ended: {listed:?}");
    assert_eq!(listed[0].device, "Firefox on Linux");
    assert!(listed[0].current);
}
