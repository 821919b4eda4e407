//! The web layer: parses requests, calls the services, renders pages. It owns every
//! HTTP concern (cookies, CSRF, headers, status codes) and no business rule.

pub mod api;
mod devices;
mod error;
mod extract;
mod forms;
pub mod internal;
mod observe;
mod pages;
mod params;
mod render;
mod respond;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::key::SecretKey;
use crate::config::Settings;
use crate::services::Services;

pub use error::WebError;

/// Largest form body accepted; every form of the portal fits many times over.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Cookie names: `__Host-` prefixed and `Secure` when the public URL is https.
#[derive(Debug, Clone)]
pub struct CookieNames {
    pub session: &'static str,
    /// The operator console's session; scoped to `/operator`, so it never travels with
    /// customer pages (`__Secure-`, not `__Host-`, since that prefix demands `Path=/`).
    pub operator: &'static str,
    pub csrf: &'static str,
    /// The long-lived device cookie of a browser that signed in before.
    pub device: &'static str,
    /// A sign-in waiting for its second step (minutes), and the operator console's.
    pub pending: &'static str,
    pub operator_pending: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub fn for_settings(settings: &Settings) -> Self {
        if settings.https() {
            CookieNames {
                session: "__Host-dialtone_session",
                operator: "__Secure-dialtone_operator",
                csrf: "__Host-dialtone_csrf",
                device: "__Host-dialtone_device",
                pending: "__Host-dialtone_pending",
                operator_pending: "__Secure-dialtone_operator_pending",
                secure: true,
            }
        } else {
            CookieNames {
                session: "dialtone_session",
                operator: "dialtone_operator",
                csrf: "dialtone_csrf",
                device: "dialtone_device",
                pending: "dialtone_pending",
                operator_pending: "dialtone_operator_pending",
                secure: false,
            }
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub key: Arc<SecretKey>,
    pub cookies: CookieNames,
    pub settings: Arc<Settings>,
    /// The PBX link, for the registered devices shown on pages.
    pub pbx: crate::services::pbx::PbxLink,
}

/// The whole router, with the security headers every response carries.
pub fn router(state: AppState) -> Router {
    let https = state.settings.https();
    let pages = Router::new()
        .merge(pages::auth::router())
        .merge(pages::phone::router())
        .merge(pages::settings::router())
        .merge(pages::passkeys::router())
        .merge(pages::sessions::router())
        .merge(pages::recovery::router())
        .merge(pages::admin::router())
        .merge(pages::api_tokens::router())
        .merge(pages::operator::router())
        .merge(pages::two_step::router())
        .merge(pages::health::router())
        .merge(pages::assets::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::csrf_guard,
        ))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::csrf_cookie,
        ))
        .layer(axum::middleware::from_fn(extract::readable_cookies))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES));
    // The JSON API has no cookies, hence no CSRF cookie; its own body limit and errors.
    let router = Router::new()
        .nest("/api/v1", api::router())
        .merge(pages)
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(header_layer(header::CACHE_CONTROL, "no-store"))
        .layer(header_layer(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ));
    // Over https, browsers are told to never try plain http again (a year, subdomains too).
    let router = if https {
        router.layer(header_layer(header::STRICT_TRANSPORT_SECURITY, HSTS))
    } else {
        router
    };
    router
        .layer(axum::middleware::from_fn(observe::public))
        .with_state(state)
}

/// `Strict-Transport-Security` of an https portal.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
