//! Extractors and the CSRF middleware: the browser's CSRF cookie, the guard that refuses a
//! form without its token before anything else, forms that must carry it, the client's
//! address, and the signed-in user.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::de::DeserializeOwned;

use super::{AppState, WebError};
use crate::auth::{csrf, token};
use crate::services::operator_console::OperatorSession;
use crate::services::sessions::Device;
use crate::services::tenant_admin::Admin;
use crate::services::{Client, SessionUser};

/// The browser's CSRF cookie value, put in place by [`csrf_cookie`] for every request.
#[derive(Debug, Clone)]
pub struct CsrfCookie(pub String);

/// Keeps the cookies of a `Cookie` header that holds a pair this portal could never have
/// set (bytes outside printable ASCII, as another site on the same host may leave): the
/// cookie parser would otherwise drop the whole header, and with it the browser's session
/// and CSRF cookies. Every cookie this portal sets is printable ASCII, so nothing of its
/// own is lost.
pub async fn readable_cookies(mut req: Request, next: Next) -> Response {
    let cookies = req.headers().get_all(header::COOKIE);
    if cookies.iter().any(|v| v.to_str().is_err()) {
        let kept: Vec<String> = cookies
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .filter(|pair| pair.iter().all(|b| (0x20..0x7f).contains(b)))
            .filter_map(|pair| std::str::from_utf8(pair).ok())
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(str::to_owned)
            .collect();
        let headers = req.headers_mut();
        headers.remove(header::COOKIE);
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            if !kept.is_empty() {
                headers.insert(header::COOKIE, v);
            }
        }
    }
    next.run(req).await
}

/// Gives every browser a CSRF cookie (set on the response when it had none) — except on a
/// response a shared cache may keep (`Cache-Control: public`, the static files), which
/// could otherwise hand one browser's cookie to many.
pub async fn csrf_cookie(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let existing = jar
        .get(state.cookies.csrf)
        .map(|c| c.value().to_owned())
        .filter(|v| token::looks_like_token(v));
    let (value, fresh) = match existing {
        Some(v) => (v, false),
        None => (token::random_token(), true),
    };
    req.extensions_mut().insert(CsrfCookie(value.clone()));
    let mut response = next.run(req).await;
    if fresh && !publicly_cacheable(&response) {
        // Lax, not Strict (as every cookie here): a reset link opened from webmail must not
        // replace the cookie that the forms in other tabs carry tokens for. The token is
        // an HMAC, so the cookie alone forges nothing.
        let cookie = lax_cookie(&state, state.cookies.csrf, "/", value);
        if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn publicly_cacheable(response: &Response) -> bool {
    response
        .headers()
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("public"))
}

/// Refuses a form posted to a page without this browser's CSRF token before anything else
/// about the request is looked at — who is signed in included, so a signed-out browser's
/// form without one is 403 too, not sent to sign in. A route layer of the pages: a path's
/// wrong method is still 405, an unknown path 404. [`ValidForm`] checks the same again, so
/// a handler never reads a form that has not passed.
pub async fn csrf_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match checked_form(Request::from_parts(parts.clone(), body), &state).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(e) => e.into_response(),
    }
}

/// The body of a url-encoded form whose `csrf_token` matches the browser's CSRF cookie;
/// else 403 without a valid token, 413 over the size limit, 400 unreadable.
async fn checked_form(req: Request, state: &AppState) -> Result<Bytes, WebError> {
    let cookie = req.extensions().get::<CsrfCookie>().cloned();
    // Every form of the portal is sent URL-encoded; another encoding (a multipart
    // body) cannot be read, which is not the same as a form without its token.
    let encoded_otherwise = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        media_type(&String::from_utf8_lossy(v.as_bytes())) != "application/x-www-form-urlencoded"
    });
    if encoded_otherwise {
        return Err(WebError::BadRequest);
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge
        } else {
            WebError::BadRequest
        }
    })?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
    let submitted = pairs
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    match cookie {
        Some(c) if csrf::verify(&state.key, &c.0, submitted) => Ok(bytes),
        _ => Err(WebError::Forbidden),
    }
}

/// A url-encoded form whose `csrf_token` matched; anything else is refused before the
/// handler runs (403 without a valid token, 413 over the size limit, 400 unreadable).
pub struct ValidForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ValidForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = checked_form(req, state).await?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        Ok(ValidForm(form))
    }
}

/// The media type of a `Content-Type` value, lowercased and without its parameters:
/// `application/json` for `Application/JSON; charset=utf-8`.
pub(super) fn media_type(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default();
    essence.trim().to_ascii_lowercase()
}

/// The connecting client, for throttling and the audit log. Behind a trusted load balancer
/// (`DIALTONE_TRUSTED_PROXIES`) it is the right-most `X-Forwarded-For` address that is not
/// itself a trusted proxy; otherwise the TCP peer. Anything a client could forge is ignored.
pub(super) fn client_of(parts: &Parts, state: &AppState) -> Client {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let trusted = &state.settings.trusted_proxies;
    let addr = match peer {
        Some(p) if trusted.contains(&p) => forwarded_client(&parts.headers, trusted).or(Some(p)),
        peer => peer,
    };
    let device = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(Device::from_user_agent)
        .unwrap_or_default();
    Client { addr, device }
}

fn forwarded_client(
    headers: &axum::http::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let chain: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    chain.into_iter().rev().find(|a| !trusted.contains(a))
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The live session of the request, if any (a sliding timer is advanced on the way).
pub async fn session_of(parts: &Parts, state: &AppState) -> Result<Option<SessionUser>, WebError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(state.cookies.session) else {
        return Ok(None);
    };
    Ok(state.services.sessions.authenticate(cookie.value()).await?)
}

/// What a page's handler works with: the app state, the visitor `V` admits, the token this
/// browser's forms must carry, and the client. `V` answers for anyone it does not admit
/// before anything else is read.
pub struct Page<V> {
    pub state: AppState,
    pub who: V,
    pub csrf: String,
    pub client: Client,
}

impl<V: Visitor + Send> FromRequestParts<AppState> for Page<V> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let who = V::admit(parts, state).await?;
        let Some(cookie) = parts.extensions.get::<CsrfCookie>() else {
            return Err(WebError::Forbidden.into_response());
        };
        Ok(Page {
            state: state.clone(),
            who,
            csrf: csrf::form_token(&state.key, &cookie.0),
            client: client_of(parts, state),
        })
    }
}

/// Who a page is for, as the request's cookies say; anyone else gets the answer that fits
/// (sent to sign in, 403, or on to choose a new password).
pub trait Visitor: Sized {
    fn admit(
        parts: &Parts,
        state: &AppState,
    ) -> impl std::future::Future<Output = Result<Self, Response>> + Send;
}

/// Anyone at all: the pages before sign-in.
pub struct Anyone;

impl Visitor for Anyone {
    async fn admit(_: &Parts, _: &AppState) -> Result<Self, Response> {
        Ok(Anyone)
    }
}

/// A signed-in user who may use the portal (no temporary password pending).
impl Visitor for SessionUser {
    async fn admit(parts: &Parts, state: &AppState) -> Result<Self, Response> {
        let AnySession(su) = AnySession::admit(parts, state).await?;
        if su.user.password_temporary {
            return Err(Redirect::to("/password/choose").into_response());
        }
        Ok(su)
    }
}

/// A signed-in user, even one who must still replace a temporary password.
pub struct AnySession(pub SessionUser);

impl Visitor for AnySession {
    async fn admit(parts: &Parts, state: &AppState) -> Result<Self, Response> {
        match session_of(parts, state)
            .await
            .map_err(IntoResponse::into_response)?
        {
            None => Err(no_session(parts, state).await),
            Some(su) => Ok(AnySession(su)),
        }
    }
}

/// A signed-in tenant admin; anyone else signed in gets 403.
impl Visitor for Admin {
    async fn admit(parts: &Parts, state: &AppState) -> Result<Self, Response> {
        let su = SessionUser::admit(parts, state).await?;
        let addr = client_of(parts, state).addr;
        Admin::of(su, addr).ok_or_else(|| WebError::NotAllowed.into_response())
    }
}

/// A signed-in operator. A customer portal session gets 403 (the consoles never cross);
/// anyone else is sent to the operator sign-in.
impl Visitor for OperatorSession {
    async fn admit(parts: &Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(os) = operator_session_of(parts, state)
            .await
            .map_err(IntoResponse::into_response)?
        {
            return Ok(os);
        }
        match session_of(parts, state).await {
            Ok(Some(_)) => Err(WebError::WrongConsole.into_response()),
            Ok(None) => Err(Redirect::to("/operator/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The live operator session of the request, if any (its idle timer slides).
pub async fn operator_session_of(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<OperatorSession>, WebError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(state.cookies.operator) else {
        return Ok(None);
    };
    Ok(state
        .services
        .operator_console
        .authenticate(cookie.value())
        .await?)
}

/// A customer page without a customer session: an operator is refused outright (the
/// consoles never cross); anyone else is sent to sign in.
async fn no_session(parts: &Parts, state: &AppState) -> Response {
    match operator_session_of(parts, state).await {
        Ok(Some(_)) => WebError::WrongConsole.into_response(),
        Ok(None) => to_sign_in(parts).into_response(),
        Err(e) => e.into_response(),
    }
}

/// 303 to the sign-in page, keeping where the user was going for a page load.
fn to_sign_in(parts: &Parts) -> Redirect {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if parts.method == Method::GET && safe_next(next).is_some() && next != "/" {
        let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
        Redirect::to(&format!("/login?{query}"))
    } else {
        Redirect::to("/login")
    }
}

/// `next` is followed only when it is a path on this site: starts with one `/`, not
/// `//` or `/\` (which browsers treat as another host), no control characters.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 512
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

/// Where to go after signing in, as a form or query gave it: `next` when it is safe to
/// follow, otherwise empty (the default page).
pub fn next_to_follow(next: &str) -> String {
    safe_next(next).unwrap_or("").to_owned()
}

/// The session cookie for `token`, or its removal when `token` is `None`.
pub fn session_cookie(state: &AppState, token: Option<String>) -> Cookie<'static> {
    scoped_session_cookie(state, state.cookies.session, "/", token)
}

/// The operator console's session cookie, sent only to `/operator`.
pub fn operator_cookie(state: &AppState, token: Option<String>) -> Cookie<'static> {
    scoped_session_cookie(state, state.cookies.operator, "/operator", token)
}

fn scoped_session_cookie(
    state: &AppState,
    name: &'static str,
    path: &'static str,
    token: Option<String>,
) -> Cookie<'static> {
    let value = token.map(|t| (t, state.settings.session_max));
    lasting_cookie(state, name, path, value)
}

/// An HTTP-only, `SameSite=Lax` cookie (secure when the portal is served over HTTPS).
fn lax_cookie(
    state: &AppState,
    name: &'static str,
    path: &'static str,
    value: String,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookies.secure)
        .path(path)
        .build()
}

/// A [`lax_cookie`] kept for `lifetime` (`Some((value, lifetime))`), or its removal.
fn lasting_cookie(
    state: &AppState,
    name: &'static str,
    path: &'static str,
    value: Option<(String, std::time::Duration)>,
) -> Cookie<'static> {
    let removing = value.is_none();
    let (value, lifetime) = value.unwrap_or_default();
    let mut cookie = lax_cookie(state, name, path, value);
    if removing {
        cookie.make_removal();
    } else if let Ok(max) = time_duration(lifetime) {
        cookie.set_max_age(max);
    }
    cookie
}

/// The device cookie that marks this browser as trusted for the account it signed in to
/// (see `services::trusted_devices`), kept a year from the last sign-in.
pub fn device_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let lifetime = crate::services::trusted_devices::DEVICE_COOKIE_LIFETIME;
    lasting_cookie(state, state.cookies.device, "/", Some((value, lifetime)))
}

/// The cookie of a sign-in waiting for its second step (`Some((value, lifetime))`), or its
/// removal: the customer portal's at `/`, the operator console's at `/operator`.
pub fn pending_cookie(
    state: &AppState,
    console: crate::services::two_step::Console,
    value: Option<(String, std::time::Duration)>,
) -> Cookie<'static> {
    use crate::services::two_step::Console;
    let (name, path) = match console {
        Console::Portal => (state.cookies.pending, "/"),
        Console::Operator => (state.cookies.operator_pending, "/operator"),
    };
    lasting_cookie(state, name, path, value)
}

/// On to the second step (or a required setup) of a sign-in: the pending step's cookie
/// set, and a 303 to `to`.
pub fn to_pending_step(
    state: &AppState,
    jar: CookieJar,
    console: crate::services::two_step::Console,
    step: crate::services::two_step::PendingStep,
    to: &str,
) -> Response {
    let jar = jar.add(pending_cookie(
        state,
        console,
        Some((step.token, step.lifetime)),
    ));
    (jar, Redirect::to(to)).into_response()
}

/// The cookies of a customer signed in (session, trusted device) and where they go: to
/// choose a new password when theirs was temporary, else to `next`, else the Phone page.
pub fn user_signed_in(
    state: &AppState,
    jar: CookieJar,
    si: crate::services::sign_in::SignedIn,
    next: &str,
) -> (CookieJar, String) {
    let target = if si.must_change_password {
        "/password/choose"
    } else if next.is_empty() {
        "/phone"
    } else {
        next
    };
    let jar = jar
        .add(session_cookie(state, Some(si.token)))
        .add(device_cookie(state, si.device_cookie));
    (jar, target.to_owned())
}

fn time_duration(
    d: std::time::Duration,
) -> Result<cookie::time::Duration, std::num::TryFromIntError> {
    Ok(cookie::time::Duration::seconds(i64::try_from(d.as_secs())?))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_site_paths_are_followed() {
        assert_eq!(safe_next("/settings"), Some("/settings"));
        assert_eq!(safe_next("/phone?x=1"), Some("/phone?x=1"));
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
