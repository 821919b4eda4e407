//! The portal in a real browser (headless Chromium through chromedriver): signing in,
//! the lockout, recovery by mail, changing the password and PIN, the SIP secret, an
//! admin's temporary password, the theme, signing out and the phone-sized menu — with
//! the sign-in, reset and change-password paths driven by the keyboard alone, an
//! accessibility audit of every page visited, and screenshots under target/screenshots/.
//! Skipped with a printed reason when chromedriver or Chromium is missing, unless
//! `DIALTONE_TEST_REQUIRE_BROWSER` is set (CI sets it).

mod common;
mod webdriver;

use std::time::Duration;

use common::*;
use dialtone::domain::Role;
use fantoccini::key::Key;
use webdriver::Chrome;

async fn browser(app: &TestApp) -> Option<Chrome> {
    Chrome::start(&app.base).await
}

/// Signs in with the keyboard alone, from a freshly opened sign-in page.
async fn keyboard_sign_in(c: &Chrome, username: &str, password: &str) {
    c.goto("/login").await;
    c.tab_to("input#username").await;
    c.keys(username).await;
    c.tab_to("input#password").await;
    c.keys(password).await;
    c.press(Key::Enter).await;
}

/// Signs in with the mouse and form filling.
async fn sign_in(c: &Chrome, username: &str, password: &str) {
    c.goto("/login").await;
    c.fill("#username", username).await;
    c.fill("#password", password).await;
    c.click("form.form button[type=submit]").await;
}

#[tokio::test]
async fn signing_in_with_the_keyboard_lands_on_phone() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    c.goto("/login").await;
    c.audit().await;
    keyboard_sign_in(&c, USER, PASSWORD).await;
    c.wait_path("/phone").await;
    assert_eq!(c.text("h1").await, "Phone");
    assert!(c.text("main").await.contains(USER));
    c.audit().await;
    c.close().await;
}

#[tokio::test]
async fn five_wrong_passwords_then_the_lock_message_with_minutes_left() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    for _ in 0..5 {
        sign_in(&c, USER, "Wrong-Password-1").await;
        c.wait_text("[role=alert]", "do not match").await;
        // The message is tied to the fields it is about.
        for field in ["#username", "#password"] {
            let described = c.find(field).await.attr("aria-describedby").await.unwrap();
            assert!(
                described.unwrap_or_default().contains("form-error"),
                "{field} should name the sign-in error"
            );
        }
        c.audit().await;
    }
    // Even the right password is refused now, with the time left in minutes.
    sign_in(&c, USER, PASSWORD).await;
    c.wait_text("#form-error", "Try again in 15 minutes").await;
    assert_eq!(c.path().await, "/login");
    c.audit().await;

    app.advance(Duration::from_secs(10 * 60));
    sign_in(&c, USER, PASSWORD).await;
    c.wait_text("#form-error", "Try again in 5 minutes").await;

    app.advance(Duration::from_secs(5 * 60));
    sign_in(&c, USER, PASSWORD).await;
    c.wait_path("/phone").await;
    c.close().await;
}

#[tokio::test]
async fn forgot_then_the_mailed_link_then_a_new_password_with_the_keyboard_alone() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    c.goto("/login").await;
    c.tab_to("a[Forgot password?]").await;
    c.press(Key::Enter).await;
    c.wait_path("/password/forgot").await;
    c.audit().await;
    c.tab_to("input#identifier").await;
    c.keys(USER).await;
    c.press(Key::Enter).await;
    c.wait_text("h1", "Check your email").await;
    c.audit().await;

    let mail = app.wait_for_mail(1).await;
    let link = mail[0].links().pop().expect("a reset link in the mail");
    c.goto(&path_of(&link)).await;
    c.wait_text("h1", "Choose a new password").await;
    c.audit().await;

    // A mistake first: the confirmation does not match, and the error is tied to its field.
    c.tab_to("input#email").await;
    c.keys("201@example.com").await;
    c.tab_to("input#new_password").await;
    c.keys(NEW).await;
    c.tab_to("input#confirm_password").await;
    c.keys("Gearbox-Sunday-78").await;
    c.press(Key::Enter).await;
    c.wait_text("#confirm-password-error", "match").await;
    assert_eq!(
        c.find("#confirm_password")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    c.audit().await;

    c.tab_to("input#email").await;
    if c.find("#email")
        .await
        .prop("value")
        .await
        .unwrap()
        .as_deref()
        != Some("201@example.com")
    {
        c.keys("201@example.com").await;
    }
    c.tab_to("input#new_password").await;
    c.keys(NEW).await;
    c.tab_to("input#confirm_password").await;
    c.keys(NEW).await;
    c.press(Key::Enter).await;
    c.wait_path("/login").await;
    c.audit().await;

    keyboard_sign_in(&c, USER, NEW).await;
    c.wait_path("/phone").await;
    c.close().await;
}

#[tokio::test]
async fn changing_the_password_in_settings_with_the_keyboard_keeps_you_signed_in() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    keyboard_sign_in(&c, USER, PASSWORD).await;
    c.wait_path("/phone").await;
    c.tab_to("a[Settings]").await;
    c.press(Key::Enter).await;
    c.wait_path("/settings").await;
    c.audit().await;

    // A wrong current password: the error is on that field and announced.
    c.tab_to("input#current_password").await;
    c.keys("Wrong-Password-1").await;
    c.tab_to("input#new_password").await;
    c.keys(NEW).await;
    c.tab_to("input#confirm_password").await;
    c.keys(NEW).await;
    c.press(Key::Enter).await;
    c.wait_text("#current-password-error", "").await;
    assert_eq!(
        c.find("#current_password")
            .await
            .attr("aria-describedby")
            .await
            .unwrap()
            .as_deref(),
        Some("current-password-error")
    );
    c.audit().await;

    c.tab_to("input#current_password").await;
    c.keys(PASSWORD).await;
    c.tab_to("input#new_password").await;
    c.keys(NEW).await;
    c.tab_to("input#confirm_password").await;
    c.keys(NEW).await;
    c.press(Key::Enter).await;
    c.wait_text("[role=status]", "Your password was changed")
        .await;
    c.audit().await;

    // Still signed in.
    c.goto("/phone").await;
    c.wait_path("/phone").await;
    assert_eq!(app.sessions_of(USER).await, 1);
    c.close().await;
}

#[tokio::test]
async fn revealing_the_sip_secret_and_changing_the_pin() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    sign_in(&c, USER, PASSWORD).await;
    c.wait_path("/phone").await;
    let hidden = c.text("#sip-secret").await;
    assert!(hidden.contains("hidden"), "{hidden}");
    assert!(c.text("main").await.contains("not set yet"));
    c.click("form[action='/phone/sip/reveal'] button").await;
    c.wait_path("/phone/sip/reveal").await;
    let shown = c.text("#sip-secret").await;
    assert!(
        shown.len() >= 22 && shown.chars().all(|ch| ch.is_ascii_alphanumeric()),
        "{shown:?}"
    );
    c.audit().await;

    c.goto("/settings").await;
    c.fill("#new_pin", "1111").await;
    c.fill("#confirm_pin", "1111").await;
    c.click("form[action='/settings/pin'] button").await;
    c.wait_text("#new-pin-error", "").await;
    c.audit().await;
    c.fill("#new_pin", "80417").await;
    c.fill("#confirm_pin", "80417").await;
    c.click("form[action='/settings/pin'] button").await;
    c.wait_text("[role=status]", "Your voicemail PIN was changed")
        .await;

    c.goto("/phone").await;
    c.wait_text("main", "Voicemail PIN").await;
    assert!(!c.text("main").await.contains("not set yet"));
    c.close().await;
}

#[tokio::test]
async fn an_admin_sets_a_temporary_password_and_the_user_must_change_it() {
    let app = spawn_app().await;
    app.add_admin().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    sign_in(&c, ADMIN, PASSWORD).await;
    c.wait_path("/phone").await;
    c.click("nav.tabs a[href='/admin/users']").await;
    c.wait_path("/admin/users").await;
    c.audit().await;
    c.click("a[href='/admin/users/201']").await;
    c.wait_path("/admin/users/201").await;
    c.audit().await;
    // A mistake in the edit form is marked on its field and announced.
    c.fill("#name", " ").await;
    c.click("form[action='/admin/users/201'] button[type=submit]")
        .await;
    c.wait_text("#name-error", "").await;
    c.audit().await;
    c.goto("/admin/users/201").await;
    // Deleting takes a second, deliberate click: the button shows once asked for.
    let delete_shown = "return String(document.querySelector(\"form[action='/admin/users/201/delete'] button\").checkVisibility())";
    assert_eq!(c.js(delete_shown).await, "false");
    c.click("details:has(form[action='/admin/users/201/delete']) > summary")
        .await;
    assert_eq!(c.js(delete_shown).await, "true");
    c.audit().await;
    c.click("form[action='/admin/users/201/reset-password'] input[value=temporary] ~ button")
        .await;
    let temporary = c.text("#temporary-password").await;
    assert!(!temporary.is_empty());
    c.audit().await;

    c.client.delete_all_cookies().await.unwrap();
    sign_in(&c, USER, &temporary).await;
    c.wait_path("/password/choose").await;
    c.audit().await;
    // Nothing else until the password is changed.
    c.goto("/phone").await;
    c.wait_path("/password/choose").await;
    c.tab_to("input#new_password").await;
    c.keys(NEW).await;
    c.tab_to("input#confirm_password").await;
    c.keys(NEW).await;
    c.press(Key::Enter).await;
    c.wait_path("/phone").await;

    c.client.delete_all_cookies().await.unwrap();
    sign_in(&c, USER, NEW).await;
    c.wait_path("/phone").await;
    c.close().await;
}

/// Installed before any page parses: records, in order, each change of `data-theme` on
/// <html> and the arrival of the stylesheet and of <body>, so a test can tell whether the
/// theme was set before anything could be painted.
const THEME_LOG: &str = r#"
window.__themeLog = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (r.type === 'attributes') {
      window.__themeLog.push('theme:' + r.target.getAttribute('data-theme') + ':' + r.oldValue);
    } else {
      for (const n of r.addedNodes) {
        if (n.nodeName === 'BODY') window.__themeLog.push('body');
        if (n.nodeName === 'LINK' && n.rel === 'stylesheet') window.__themeLog.push('stylesheet');
      }
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-theme'], attributeOldValue: true });
"#;

/// The log of the page as loaded; asserts the stored theme was the first one set, before
/// the stylesheet and the body.
async fn assert_theme_set_first(c: &Chrome, theme: &str) {
    let log = c.js_value("return window.__themeLog").await;
    let log: Vec<String> = serde_json::from_value(log).unwrap();
    let first_theme = log.iter().position(|e| e.starts_with("theme:"));
    let stylesheet = log.iter().position(|e| e == "stylesheet");
    let body = log.iter().position(|e| e == "body");
    let (Some(t), Some(s), Some(b)) = (first_theme, stylesheet, body) else {
        panic!("incomplete log {log:?}");
    };
    assert!(
        t < s && t < b,
        "the theme was set after the page began: {log:?}"
    );
    // Set once, straight to the stored value (null: no attribute before it).
    assert_eq!(log[t], format!("theme:{theme}:null"), "{log:?}");
    assert_eq!(
        log.iter().filter(|e| e.starts_with("theme:")).count(),
        1,
        "{log:?}"
    );
}

#[tokio::test]
async fn the_theme_icon_cycles_survives_a_reload_and_is_set_before_first_paint() {
    let app = spawn_app().await;
    let Some(c) = browser(&app).await else { return };
    c.on_new_document(THEME_LOG).await;

    c.goto("/login").await;
    assert_theme_set_first(&c, "system").await;
    let toggle = "#theme-toggle";
    assert_eq!(
        c.find(toggle)
            .await
            .attr("aria-label")
            .await
            .unwrap()
            .as_deref(),
        Some("Theme: system")
    );
    let background = || c.js("return getComputedStyle(document.body).backgroundColor");
    let system_bg = background().await;

    for (theme, bg) in [
        ("dark", "rgb(15, 20, 26)"),
        ("light", "rgb(244, 246, 249)"),
        ("system", system_bg.as_str()),
    ] {
        c.click(toggle).await;
        assert_eq!(
            c.js("return document.documentElement.dataset.theme").await,
            theme
        );
        assert_eq!(
            c.find(toggle).await.attr("aria-label").await.unwrap(),
            Some(format!("Theme: {theme}"))
        );
        assert_eq!(background().await, bg);
        assert_eq!(
            c.js("return localStorage.getItem('dialtone-theme')").await,
            theme
        );
        c.client.refresh().await.unwrap();
        c.wait_path("/login").await;
        assert_theme_set_first(&c, theme).await;
        assert_eq!(background().await, bg, "{theme} after a reload");
        assert_eq!(
            c.find(toggle).await.attr("aria-label").await.unwrap(),
            Some(format!("Theme: {theme}"))
        );
    }
    // The toggle works from the keyboard too.
    c.tab_to("button#theme-toggle").await;
    c.press(Key::Enter).await;
    assert_eq!(
        c.js("return document.documentElement.dataset.theme").await,
        "dark"
    );
    c.close().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    app.add_user(USER, PASSWORD).await;
    let Some(c) = browser(&app).await else { return };

    sign_in(&c, USER, PASSWORD).await;
    c.wait_path("/phone").await;
    c.click("button[aria-label='Sign out']").await;
    c.wait_path("/login").await;
    assert_eq!(app.sessions_of(USER).await, 0);
    c.goto("/settings").await;
    c.wait_path("/login").await;
    c.close().await;
}

#[tokio::test]
async fn at_phone_size_the_menu_holds_the_tabs_and_no_page_scrolls_sideways() {
    let app = spawn_app().await;
    app.add_admin().await;
    let Some(c) = browser(&app).await else { return };
    c.set_size(360, 740).await;
    let width = c.js("return String(window.innerWidth)").await;
    assert_eq!(width, "360");

    for path in ["/login", "/password/forgot"] {
        c.goto(path).await;
        c.assert_fits_width().await;
    }
    sign_in(&c, ADMIN, PASSWORD).await;
    c.wait_path("/phone").await;
    for path in [
        "/phone",
        "/settings",
        "/admin/users",
        "/admin/users/200",
        "/admin/audit",
    ] {
        c.goto(path).await;
        c.wait_path(path).await;
        c.assert_fits_width().await;
        c.audit().await;
    }

    c.goto("/phone").await;
    assert!(!c.find("nav.tabs").await.is_displayed().await.unwrap());
    let toggle = c.find("#menu-toggle").await;
    assert!(toggle.is_displayed().await.unwrap());
    assert_eq!(
        toggle.attr("aria-expanded").await.unwrap().as_deref(),
        Some("false")
    );
    let panel = c.find("#main-menu").await;
    assert!(!panel.is_displayed().await.unwrap());

    toggle.click().await.unwrap();
    assert!(panel.is_displayed().await.unwrap());
    assert_eq!(
        toggle.attr("aria-expanded").await.unwrap().as_deref(),
        Some("true")
    );
    c.assert_fits_width().await;
    c.screenshot("phone-menu-360-light").await;
    // Escape closes it and gives focus back to the toggle.
    c.press(Key::Escape).await;
    assert!(!panel.is_displayed().await.unwrap());
    assert!(c.focused().await.starts_with("summary#menu-toggle"));
    // Enter opens it from the keyboard; its links lead on.
    c.press(Key::Enter).await;
    assert!(panel.is_displayed().await.unwrap());
    c.click("#main-menu a[href='/settings']").await;
    c.wait_path("/settings").await;

    c.click("#menu-toggle").await;
    c.click("#main-menu .menu-signout").await;
    c.wait_path("/login").await;
    c.close().await;
}

/// The pages a provider sees before installing, in both themes, at desktop size and
/// at phone size, saved as target/screenshots/NAME-THEME.png.
#[tokio::test]
async fn screenshots_of_the_pages_in_both_themes() {
    let app = spawn_app().await;
    app.add_person(
        ADMIN,
        "Dana Whitfield",
        Some("dana@wickedsprockets.example"),
        Role::Admin,
        Some(PASSWORD),
    )
    .await;
    for (user, name, email) in [
        (USER, "Sam Okafor", Some("sam@wickedsprockets.example")),
        (
            "202-wickedsprockets",
            "Priya Natarajan",
            Some("priya@wickedsprockets.example"),
        ),
        ("203-wickedsprockets", "Front Desk", None),
        (
            "204-wickedsprockets",
            "Lee Marchetti",
            Some("lee@wickedsprockets.example"),
        ),
    ] {
        app.add_person(user, name, email, Role::User, Some(PASSWORD))
            .await;
    }
    let Some(c) = browser(&app).await else { return };

    let pages = [
        ("login", "/login"),
        ("phone", "/phone"),
        ("settings", "/settings"),
        ("admin-users", "/admin/users"),
    ];
    for theme in ["light", "dark"] {
        c.set_viewport(1280, 800).await;
        c.client.delete_all_cookies().await.unwrap();
        c.goto("/login").await;
        c.set_theme(theme).await;
        c.audit_contrast().await;
        c.screenshot(&format!("{}-{theme}", pages[0].0)).await;
        // Error states are part of the palette too.
        sign_in(&c, ADMIN, "Wrong-Password-1").await;
        c.wait_text("[role=alert]", "do not match").await;
        c.audit_contrast().await;
        c.goto("/password/forgot").await;
        c.audit_contrast().await;

        sign_in(&c, ADMIN, PASSWORD).await;
        c.wait_path("/phone").await;
        for (name, path) in &pages[1..] {
            c.goto(path).await;
            c.wait_path(path).await;
            c.audit().await;
            c.audit_contrast().await;
            let file = c.screenshot(&format!("{name}-{theme}")).await;
            assert!(std::fs::metadata(file).unwrap().len() > 1000);
        }
        c.goto("/admin/users/203").await;
        c.audit_contrast().await;
        c.goto("/admin/audit").await;
        c.audit_contrast().await;
        c.goto("/settings").await;
        c.fill("#new_pin", "1234").await;
        c.click("form[action='/settings/pin'] button").await;
        c.wait_text("#new-pin-error", "").await;
        c.audit_contrast().await;

        c.set_viewport(360, 740).await;
        c.goto("/phone").await;
        c.wait_path("/phone").await;
        c.assert_fits_width().await;
        c.screenshot(&format!("phone-360-{theme}")).await;
    }
    c.close().await;
}

/// The operator console in the browser: sign-in with the keyboard, the tenant list, a
/// caller verified by the answer the admin set in Settings, every page audited in both
/// themes and at phone width, and screenshots of the console.
#[tokio::test]
async fn the_operator_console_verifies_a_caller_and_passes_the_page_audits() {
    let app = spawn_app().await;
    app.add_person(
        ADMIN,
        "Dana Whitfield",
        Some("dana@wickedsprockets.example"),
        Role::Admin,
        Some(PASSWORD),
    )
    .await;
    app.add_operator(OPERATOR).await;
    let Some(c) = browser(&app).await else { return };

    // The admin sets a security question; a wrong password is tied to its field.
    sign_in(&c, ADMIN, PASSWORD).await;
    c.wait_path("/phone").await;
    c.goto("/settings").await;
    c.click("input[name=choice][value='1']").await;
    c.fill("#answer", "Elm Street").await;
    c.fill("#question-current-password", "Wrong-Password-1")
        .await;
    c.click("form[action='/settings/security-question'] button")
        .await;
    c.wait_text("#question-password-error", "not right").await;
    c.audit().await;
    c.fill("#answer", "Elm Street").await;
    c.fill("#question-current-password", PASSWORD).await;
    c.click("form[action='/settings/security-question'] button")
        .await;
    c.wait_text("#current-question", "What street did you grow up on?")
        .await;
    c.audit().await;
    c.client.delete_all_cookies().await.unwrap();

    // The operator (whose authenticator app was set up before) signs in with the
    // keyboard alone: the password, then the app's code.
    drop(app.signed_in_operator(OPERATOR).await);
    let key = app.operator_app(OPERATOR).unwrap();
    c.goto("/operator/login").await;
    c.audit().await;
    c.tab_to("input#username").await;
    c.keys(OPERATOR).await;
    c.tab_to("input#password").await;
    c.keys(OPERATOR_PASSWORD).await;
    c.press(Key::Enter).await;
    c.wait_path("/operator/login/two-step").await;
    c.audit().await;
    c.tab_to("input#code").await;
    c.keys(&app.fresh_totp(&key)).await;
    c.press(Key::Enter).await;
    c.wait_path("/operator/tenants").await;
    assert!(c.text("main").await.contains("wickedsprockets"));

    c.goto("/operator/tenants/wickedsprockets").await;
    c.audit().await;
    c.click("td a.link").await;
    c.wait_text("#security-question", "What street did you grow up on?")
        .await;
    let caller = c.path().await;
    c.fill("#answer", "oak avenue").await;
    c.click("form[action$='/verify'] button").await;
    c.wait_text("#answer-error", "2 tries left").await;
    c.audit().await;
    c.fill("#answer", "ELM street.").await;
    c.click("form[action$='/verify'] button").await;
    c.wait_text("[role=status]", "answer matched").await;
    c.click("form[action$='/reveal'] button").await;
    c.wait_text("#revealed-username", ADMIN).await;
    assert_eq!(c.text("#revealed-client-id").await, "wickedsprockets");
    assert!(!c.text("main").await.to_lowercase().contains("elm street"));

    for theme in ["light", "dark"] {
        c.set_viewport(1280, 800).await;
        c.set_theme(theme).await;
        for path in [
            "/operator/tenants",
            "/operator/tenants/wickedsprockets",
            caller.as_str(),
            "/operator/audit",
        ] {
            c.goto(path).await;
            c.audit().await;
            c.audit_contrast().await;
        }
        c.goto(&caller).await;
        c.screenshot(&format!("operator-caller-{theme}")).await;
        c.set_viewport(360, 740).await;
        for path in ["/operator/tenants", caller.as_str(), "/operator/audit"] {
            c.goto(path).await;
            c.assert_fits_width().await;
        }
    }
    c.close().await;
}

/// Two-step sign-in in the browser: setting up an authenticator app in Settings (the QR
/// code and the key, confirmed with a code computed here from the key shown), then a
/// sign-in with the keyboard alone — password, a wrong code tied to its field, the right
/// one — every page audited, and screenshots of the setup page and the second step.
#[tokio::test]
async fn signing_in_with_an_authenticator_code_with_the_keyboard_alone() {
    let app = spawn_app().await;
    app.add_person(
        ADMIN,
        "Dana Whitfield",
        Some("dana@wickedsprockets.example"),
        Role::Admin,
        Some(PASSWORD),
    )
    .await;
    let Some(c) = browser(&app).await else { return };

    sign_in(&c, ADMIN, PASSWORD).await;
    c.wait_path("/phone").await;
    c.goto("/settings").await;
    c.click("a[href='/settings/two-step']").await;
    c.wait_path("/settings/two-step").await;
    c.audit().await;
    c.click("a[href='/settings/two-step/setup']").await;
    c.wait_path("/settings/two-step/setup").await;
    for theme in ["dark", "light"] {
        c.set_theme(theme).await;
        c.audit().await;
        c.audit_contrast().await;
        c.screenshot(&format!("two-step-setup-{theme}")).await;
    }
    let key = c.text("#totp-secret").await.replace(' ', "");
    c.fill("#code", "000000").await;
    c.click("form.form button[type=submit]").await;
    c.wait_text("#code-error", "does not match").await;
    c.audit().await;
    assert_eq!(c.text("#totp-secret").await.replace(' ', ""), key);
    c.fill("#code", &totp_code(&key, app.now())).await;
    c.click("form.form button[type=submit]").await;
    c.wait_text("#recovery-codes", "-").await;
    c.audit().await;
    // The pages around it: Settings with the app on, the tenant rule, a user's page.
    for path in [
        "/settings/two-step",
        "/admin/two-step",
        "/admin/users/200/two-step",
    ] {
        c.goto(path).await;
        c.audit().await;
        c.audit_contrast().await;
    }
    c.goto("/admin/two-step").await;
    c.click("input[name=required][value=admins]").await;
    c.click("form[action='/admin/two-step'] button").await;
    c.wait_text("[role=status]", "Saved").await;
    c.goto("/admin/users/200/two-step").await;
    c.fill("#admin-password", "Wrong-Password-1").await;
    c.click("form[action$='/two-step/remove'] button").await;
    c.wait_text("#admin-password-error", "not right").await;
    c.audit().await;
    c.client.delete_all_cookies().await.unwrap();

    // The keyboard alone: password, then a wrong code, then the right one.
    keyboard_sign_in(&c, ADMIN, PASSWORD).await;
    c.wait_path("/login/two-step").await;
    c.audit().await;
    for theme in ["dark", "light"] {
        c.set_theme(theme).await;
        c.audit_contrast().await;
        c.screenshot(&format!("two-step-{theme}")).await;
    }
    c.tab_to("input#code").await;
    c.keys("123 456").await;
    c.press(Key::Enter).await;
    c.wait_text("#code-error", "not right").await;
    let described = c
        .find("#code")
        .await
        .attr("aria-describedby")
        .await
        .unwrap();
    assert!(described.unwrap_or_default().contains("code-error"));
    c.audit().await;
    c.tab_to("input#code").await;
    c.keys(&app.fresh_totp(&key)).await;
    c.press(Key::Enter).await;
    c.wait_path("/phone").await;
    assert!(c.text("main").await.contains(ADMIN));
    c.close().await;
}
