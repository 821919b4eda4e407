//! The Phone tab, where sign-in lands: the extension, and the SIP credentials a desk phone
//! or softphone registers with — the secret hidden until revealed (recent sign-in needed,
//! audited), and regenerated on request.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::with_retry_after;
use crate::accounts::phone::PhoneError;
use crate::accounts::SessionUser;
use crate::web::extract::{ClientInfo, CsrfToken, CurrentUser, ValidForm};
use crate::web::render::{html, Chrome};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/phone", get(phone_page))
        .route("/phone/sip/reveal", post(reveal_sip_secret))
        .route("/phone/sip/regenerate", post(regenerate_sip_secret))
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
    devices: super::devices::DevicesView,
}

async fn page(state: &AppState, su: &SessionUser, csrf: String) -> Result<PhonePage, WebError> {
    let view = state.accounts.phone_view(su).await?;
    Ok(PhonePage {
        chrome: Chrome::signed_in(csrf, su, "phone"),
        name: su.user.name.clone(),
        username: su.user.username(),
        extension: su.user.extension.clone(),
        tenant_name: su.user.tenant_name.clone(),
        tenant_code: su.user.tenant_code.clone(),
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
        devices: super::devices::registered(&state.pbx, &su.user.extension, &su.user.sip_domain)
            .await,
    })
}

#[derive(Deserialize)]
struct PhoneQuery {
    #[serde(default)]
    done: String,
}

async fn phone_page(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    CsrfToken(csrf): CsrfToken,
    axum::extract::Query(q): axum::extract::Query<PhoneQuery>,
) -> Result<Response, WebError> {
    let mut p = page(&state, &su, csrf).await?;
    if q.done == "regenerated" {
        p.notice = Some("A new SIP secret was made. Reprogram every phone with it; the old one no longer works.");
    }
    Ok(html(StatusCode::OK, &p))
}

#[derive(Deserialize)]
struct RevealFields {
    #[serde(default)]
    password: String,
}

async fn reveal_sip_secret(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    ClientInfo(client): ClientInfo,
    CsrfToken(csrf): CsrfToken,
    ValidForm(form): ValidForm<RevealFields>,
) -> Result<Response, WebError> {
    let outcome = state
        .accounts
        .reveal_sip_secret(&su, Some(form.password.as_str()), client)
        .await;
    let mut p = page(&state, &su, csrf).await?;
    let (status, retry) = match outcome {
        Ok(secret) => {
            p.secret = Some(secret);
            (StatusCode::OK, None)
        }
        Err(PhoneError::PasswordNeeded) => {
            p.error =
                Some("To reveal the SIP secret, confirm your portal password first.".to_owned());
            (StatusCode::UNAUTHORIZED, None)
        }
        Err(PhoneError::WrongPassword) => {
            p.error = Some("That password is not right. The SIP secret stays hidden.".to_owned());
            (StatusCode::UNAUTHORIZED, None)
        }
        Err(PhoneError::Locked { retry_after }) => {
            let m = retry_after.as_secs().div_ceil(60).max(1);
            p.error = Some(format!(
                "Too many wrong passwords. Try again in {m} minute{}.",
                if m == 1 { "" } else { "s" }
            ));
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after.as_secs()))
        }
        Err(PhoneError::Busy) => {
            p.error =
                Some("The portal is very busy right now. Please try again in a moment.".to_owned());
            (StatusCode::SERVICE_UNAVAILABLE, Some(2))
        }
        Err(PhoneError::Pin { .. }) => return Err(WebError::BadRequest),
        Err(PhoneError::Unexpected(e)) => return Err(e.into()),
    };
    let response = html(status, &p);
    Ok(match retry {
        Some(s) => with_retry_after(response, s),
        None => response,
    })
}

#[derive(Deserialize)]
struct RegenerateFields {
    #[serde(default)]
    confirm: String,
}

async fn regenerate_sip_secret(
    State(state): State<AppState>,
    CurrentUser(su): CurrentUser,
    CsrfToken(csrf): CsrfToken,
    ValidForm(form): ValidForm<RegenerateFields>,
) -> Result<Response, WebError> {
    if form.confirm != "yes" {
        let mut p = page(&state, &su, csrf).await?;
        p.error = Some(
            "Tick the box to confirm that every phone on this extension must be reprogrammed."
                .to_owned(),
        );
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &p));
    }
    state.accounts.regenerate_sip_secret(&su).await?;
    Ok(Redirect::to("/phone?done=regenerated").into_response())
}
