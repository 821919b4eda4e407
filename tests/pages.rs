//! What every page carries: security headers, no-store, friendly 404s, the theme script,
//! the billing-portal note, health checks and static assets.

mod common;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn every_page_carries_the_security_headers_and_no_store() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    for path in ["/login", "/phone", "/settings", "/no/such/page"] {
        let r = b.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_get_a_friendly_404_page() {
    let app = spawn_app().await;
    let r = app.browser().get("/wp-admin.php").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body = r.text().await.unwrap();
    assert!(body.contains("Page not found"));
    assert!(body.contains("<html"));
}

#[tokio::test]
async fn a_form_address_opened_in_the_address_bar_gets_a_405_page_saying_what_to_do() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    // After a refused password change the address bar shows the form's address.
    let r = b.get("/settings/password").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<html") && body.contains("Not a page to open"),
        "{body}"
    );
}

#[tokio::test]
async fn the_sign_in_page_links_recovery_and_says_billing_is_separate() {
    let app = spawn_app().await;
    let body = app.browser().get("/login").await.text().await.unwrap();
    assert!(body.contains("Forgot password?"));
    assert!(body.contains("billing portal"));
    assert!(body.contains("name=\"username\""));
    assert!(body.contains("name=\"password\""));
    assert!(body.contains("name=\"csrf_token\""));
}

#[tokio::test]
async fn the_theme_script_loads_before_the_stylesheet_and_nothing_is_inline() {
    let app = spawn_app().await;
    let body = app.browser().get("/login").await.text().await.unwrap();
    let script = body
        .find("<script src=\"/static/theme.js\"></script>")
        .expect("theme script");
    let css = body.find("/static/app.css").expect("stylesheet");
    assert!(script < css, "the theme is applied before the first paint");
    assert!(!body.contains("<script>"), "no inline script (CSP)");
    assert!(!body.contains("style=\""), "no inline style (CSP)");
    assert!(body.contains("id=\"theme-toggle\""));
}

#[tokio::test]
async fn signed_in_pages_have_the_tabs_and_a_sign_out_form() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let body = b.get("/phone").await.text().await.unwrap();
    assert!(body.contains("href=\"/settings\""));
    assert!(body.contains("action=\"/logout\""));
    assert!(body.contains("aria-label=\"Sign out\""));
    assert!(
        body.contains("Sign Out"),
        "the narrow-screen menu has it too"
    );
}

#[tokio::test]
async fn static_assets_are_served_with_their_types() {
    let app = spawn_app().await;
    let b = app.browser();
    for (path, kind) in [
        ("/static/app.css", "text/css"),
        ("/static/theme.js", "text/javascript"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let r = b.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
    }
}

#[tokio::test]
async fn healthz_answers_when_the_database_does() {
    let app = spawn_app().await;
    let r = app.browser().get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_root_sends_visitors_to_the_phone_tab() {
    let app = spawn_app().await;
    let r = app.browser().get("/").await;
    assert_eq!(location(&r), "/phone");
}

#[tokio::test]
async fn a_signed_in_visit_to_the_sign_in_page_goes_to_the_phone_tab() {
    let app = spawn_app().await;
    let b = app.signed_in_user().await;
    let r = b.get("/login").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/phone");
}
