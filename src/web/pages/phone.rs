//! The Phone tab, where sign-in lands: the softphone (when the provider set one up) and
//! its short-lived credential, the extension, and the SIP credentials a desk phone or
//! softphone app registers with — the secret hidden until revealed (recent sign-in
//! needed, audited), and regenerated on request.

use askama::Template;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use serde::Deserialize;

use crate::services::phone::RevealError;
use crate::services::softphone::CredentialError;
use crate::services::SessionUser;
use crate::web::extract::{Page, ValidForm};
use crate::web::forms::{NoFields, SipSecretFields};
use crate::web::render::{html, Chrome};
use crate::web::respond::{back_to, maybe_retry_after, refused_in_session, DoneQuery};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/phone", get(phone_page))
        .route("/phone/sip/reveal", post(reveal_sip_secret))
        .route("/phone/sip/regenerate", post(regenerate_sip_secret))
        .route("/phone/softphone/credential", post(softphone_credential))
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage {
    chrome: Chrome,
    name: String,
    username: String,
    extension: String,
    tenant_name: String,
    tenant_code: String,
    role: String,
    sip_username: String,
    sip_domain: String,
    has_pin: bool,
    reveal_ready: bool,
    /// Only on the response to a successful reveal.
    secret: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// Why the password typed to reveal the secret was refused, at its field.
    reveal_error: Option<String>,
    /// The confirmation box of a new SIP secret was not ticked, at the box.
    regenerate_error: Option<&'static str>,
    devices: crate::web::devices::DevicesView,
    /// The softphone is configured: its card and script are on the page.
    softphone: bool,
}

async fn phone(page: &Page<SessionUser>) -> Result<PhonePage, WebError> {
    let (state, su) = (&page.state, &page.who);
    let view = state.services.phone.view(su).await?;
    Ok(PhonePage {
        chrome: Chrome::signed_in(page.csrf.clone(), su, "phone"),
        name: su.user.name.clone(),
        username: su.user.username().to_string(),
        extension: su.user.extension.to_string(),
        tenant_name: su.user.tenant_name.clone(),
        tenant_code: su.user.tenant_code.to_string(),
        role: if su.user.is_admin() {
            "Administrator"
        } else {
            "User"
        }
        .to_owned(),
        sip_username: view.sip_username,
        sip_domain: view.sip_domain,
        has_pin: view.has_pin,
        reveal_ready: view.reveal_ready,
        secret: None,
        notice: None,
        error: None,
        reveal_error: None,
        regenerate_error: None,
        devices: crate::web::devices::registered(
            &state.pbx,
            &su.user.extension,
            &su.user.sip_domain,
        )
        .await,
        softphone: state.services.softphone.ws_url().is_some(),
    })
}

async fn phone_page(
    page: Page<SessionUser>,
    crate::web::params::Query(q): crate::web::params::Query<DoneQuery>,
) -> Result<Response, WebError> {
    let mut p = phone(&page).await?;
    if q.done == "regenerated" {
        p.notice = Some("A new SIP secret was made. Reprogram every phone with it; the old one no longer works.");
    }
    Ok(with_softphone_policy(&page.state, html(StatusCode::OK, &p)))
}

/// The Phone tab's own headers when the softphone is on it: the microphone for this
/// origin (every other page denies it) and a connection to the configured WebSocket
/// origin. Everything else of the site-wide policy stays.
fn with_softphone_policy(state: &AppState, mut response: Response) -> Response {
    let Some(url) = state.services.softphone.ws_url() else {
        return response;
    };
    let csp = format!(
        "{}; connect-src 'self' {}",
        crate::web::CONTENT_SECURITY_POLICY,
        url.origin().ascii_serialization()
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(self), geolocation=()"),
    );
    response
}

/// A short-lived SIP credential for the softphone (JSON, `no-store`); 404 when the
/// provider has not set the softphone up.
async fn softphone_credential(
    page: Page<SessionUser>,
    ValidForm(_): ValidForm<NoFields>,
) -> Result<Response, WebError> {
    let softphone = &page.state.services.softphone;
    match softphone.credential(&page.who, page.client).await {
        Ok(credential) => {
            Ok(([(header::CACHE_CONTROL, "no-store")], Json(credential)).into_response())
        }
        Err(CredentialError::NotConfigured) => Err(WebError::NotFound),
        Err(CredentialError::Unexpected(e)) => Err(e.into()),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RevealFields {
    password: String,
}

async fn reveal_sip_secret(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<RevealFields>,
) -> Result<Response, WebError> {
    let outcome = page
        .state
        .services
        .phone
        .reveal_sip_secret(&page.who, Some(form.password.as_str()), page.client)
        .await;
    let mut p = phone(&page).await?;
    let (status, retry) = match outcome {
        Ok(secret) => {
            p.secret = Some(secret);
            (StatusCode::OK, None)
        }
        Err(RevealError::PasswordNeeded) => {
            p.reveal_error =
                Some("To reveal the SIP secret, confirm your portal password first.".to_owned());
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(RevealError::Refused(r)) => {
            let shown = refused_in_session(
                r,
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "That password is not right. The SIP secret stays hidden.",
                ),
            );
            p.reveal_error = Some(shown.message);
            (shown.status, shown.retry_after)
        }
        Err(RevealError::Unexpected(e)) => return Err(e.into()),
    };
    Ok(with_softphone_policy(
        &page.state,
        maybe_retry_after(html(status, &p), retry),
    ))
}

async fn regenerate_sip_secret(
    page: Page<SessionUser>,
    ValidForm(form): ValidForm<SipSecretFields>,
) -> Result<Response, WebError> {
    if let Some(message) = form.unconfirmed() {
        let mut p = phone(&page).await?;
        p.regenerate_error = Some(message);
        return Ok(with_softphone_policy(
            &page.state,
            html(StatusCode::UNPROCESSABLE_ENTITY, &p),
        ));
    }
    let phone = &page.state.services.phone;
    phone.regenerate_sip_secret(&page.who, &page.client).await?;
    Ok(back_to("/phone", "regenerated"))
}
