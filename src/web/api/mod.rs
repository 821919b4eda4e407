//! The JSON API under `/api/v1`: bearer tokens, JSON in and out, errors as
//! `application/problem+json` (RFC 9457), cursor-paged lists, `Idempotency-Key` on the
//! POSTs that create. One more thin layer over the same services as the pages: parse,
//! call one service, render. The OpenAPI description ([`openapi`]) is generated from the
//! handlers and types here.

mod body;
mod openapi;
mod problem;
mod tenants;
mod types;
mod users;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::extract::{bearer, client_of};
use super::respond::machine_headers;
use super::AppState;
use crate::domain::TenantCode;
use crate::services::api_tokens::{ApiActor, ApiAuthError, Replay};
use crate::services::tenant_admin::{AdminError, ApiAdmin};
use crate::services::tenants::ProviderActor;
use crate::services::Unexpected;
use problem::Fields;
pub use problem::Problem;
use types::PageQuery;

/// Largest request body read; every request of the API fits many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Items per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The API's router, to be nested at `/api/v1`.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route(
            "/tenants",
            get(tenants::list_tenants).post(tenants::create_tenant),
        )
        .route(
            "/tenants/{code}",
            get(tenants::get_tenant)
                .patch(tenants::update_tenant)
                .delete(tenants::delete_tenant),
        )
        .route("/tenants/{code}/suspend", post(tenants::suspend_tenant))
        .route("/tenants/{code}/resume", post(tenants::resume_tenant))
        .route("/tenants/{code}/audit", get(users::audit_log))
        .route(
            "/tenants/{code}/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/tenants/{code}/users/{extension}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .route(
            "/tenants/{code}/users/{extension}/reset-password",
            post(users::reset_password),
        )
        .route(
            "/tenants/{code}/users/{extension}/unlock",
            post(users::unlock_user),
        )
        .route(
            "/tenants/{code}/users/{extension}/sign-out",
            post(users::sign_out_user),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    machine_headers(routes)
}

async fn not_found() -> Problem {
    Problem::not_found()
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "This resource does not answer that method; see /api/v1/openapi.json.",
    )
}

/// What every operation works with: the app state and the actor behind the request's
/// bearer token (see [`ApiTokens::authenticate`]); without a valid token nothing else of
/// the request is read.
///
/// [`ApiTokens::authenticate`]: crate::services::api_tokens::ApiTokens::authenticate
#[derive(Clone)]
pub struct ApiAuth {
    state: AppState,
    actor: ApiActor,
}

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(Problem::unauthorized());
        };
        let addr = client_of(parts, state).addr;
        let reads = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        match state
            .services
            .api_tokens
            .authenticate(token, addr, reads)
            .await
        {
            Ok(actor) => Ok(ApiAuth {
                state: state.clone(),
                actor,
            }),
            Err(ApiAuthError::Invalid) => Err(Problem::unauthorized()),
            Err(ApiAuthError::Suspended) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "tenant-suspended",
                "Tenant suspended",
                "This token's tenant is suspended. Please contact your provider.",
            )),
            Err(ApiAuthError::RateLimited { retry_after }) => {
                Err(Problem::rate_limited(
                    retry_after.as_secs().max(1),
                    "This token has made too many requests this minute; retry after the time given in Retry-After.",
                ))
            }
            Err(ApiAuthError::Unexpected(e)) => Err(Problem::unexpected(&e)),
        }
    }
}

/// The provider's powers of this actor; a tenant token is answered as if nothing were
/// there.
fn provider(actor: &ApiActor) -> Result<ProviderActor, Problem> {
    actor.provider().ok_or_else(Problem::not_found)
}

/// A provider token's request, proven before its body is read: a tenant token finds
/// nothing on a provider's route (404) whatever body it sends, never a 422 that tells the
/// route is there.
pub struct ProviderApi {
    api: ApiAuth,
    by: ProviderActor,
}

impl FromRequestParts<AppState> for ProviderApi {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let api = ApiAuth::from_request_parts(parts, state).await?;
        let by = provider(&api.actor)?;
        Ok(ProviderApi { api, by })
    }
}

/// A tenant code from the path; one that cannot be a code names nothing.
fn tenant_code(raw: &str) -> Result<TenantCode, Problem> {
    TenantCode::canonical(raw).ok_or_else(Problem::not_found)
}

fn admin_error(e: AdminError) -> Problem {
    match e {
        AdminError::NotFound => Problem::not_found(),
        AdminError::Unexpected(e) => Problem::unexpected(&e),
    }
}

/// The proof that this actor reaches tenant `code`, or 404.
async fn tenant_scope(api: &ApiAuth, raw: &str) -> Result<ApiAdmin, Problem> {
    let code = tenant_code(raw)?;
    let tokens = &api.state.services.api_tokens;
    match tokens.tenant_scope(&api.actor, &code).await {
        Ok(Some(scope)) => Ok(scope),
        Ok(None) => Err(Problem::not_found()),
        Err(e) => Err(Problem::unexpected(&e)),
    }
}

/// `limit` and `cursor` of a list, parsed; bad values are 422.
fn page_query<C>(
    raw: Option<&str>,
    cursor: impl FnOnce(&str) -> Option<C>,
) -> Result<(i64, Option<C>), Problem> {
    let q: PageQuery = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| Problem::field("query", "The query string could not be read."))?;
    let mut fields = Fields::default();
    let limit = match q.limit.as_deref() {
        None => Some(DEFAULT_LIMIT),
        Some(l) => fields.check(
            "limit",
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or(()),
            |()| format!("limit must be a whole number from 1 to {}.", MAX_LIMIT),
        ),
    };
    let cursor = match q.cursor.as_deref() {
        None => None,
        Some(c) => fields.check("cursor", cursor(c).ok_or(()), |()| {
            "cursor must be the next_cursor of a previous page.".to_owned()
        }),
    };
    fields.finish()?;
    Ok((i64::from(limit.unwrap_or(DEFAULT_LIMIT)), cursor))
}

/// One page of a list read with one row more than `limit` (to know whether another page
/// follows): its first `limit` items, and the cursor of the next page if there is one.
fn page<R, T>(rows: &[R], limit: i64, cursor: impl Fn(&T) -> String) -> (Vec<T>, Option<String>)
where
    T: for<'r> From<&'r R>,
{
    let more = rows.len() as i64 > limit;
    let items: Vec<T> = rows.iter().take(limit as usize).map(T::from).collect();
    let next_cursor = more.then(|| items.last().map(cursor)).flatten();
    (items, next_cursor)
}

/// A JSON answer.
pub struct Json {
    status: StatusCode,
    body: String,
}

impl Json {
    pub fn new<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Json, Problem> {
        serde_json::to_string(value)
            .map(|body| Json { status, body })
            .map_err(|e| Problem::unexpected(&anyhow::Error::new(e).into()))
    }

    pub fn ok<T: serde::Serialize>(value: &T) -> Result<Json, Problem> {
        Json::new(StatusCode::OK, value)
    }
}

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        // A replayed first answer may have been a problem.
        let content_type = if self.status.is_client_error() {
            problem::CONTENT_TYPE
        } else {
            "application/json"
        };
        (
            self.status,
            [(header::CONTENT_TYPE, content_type)],
            self.body,
        )
            .into_response()
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub struct IdempotencyKey(Option<String>);

impl FromRequestParts<AppState> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-idempotency-key",
                    "Bad Idempotency-Key",
                    "An Idempotency-Key is 1 to 255 visible ASCII characters.",
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// Runs a creating request once per `Idempotency-Key`: a retry with the same key and
/// body gets the first answer again (waiting for it while the first still runs); the same
/// key with another body is refused (422). The request runs to its end, and its answer is
/// kept, even when its client goes away meanwhile. A refusal that changed nothing (the
/// hashing queue full) lets the key go, so a retry runs afresh; after any other fault the
/// key stays claimed until it is let go as abandoned.
async fn once(
    api: &ApiAuth,
    key: IdempotencyKey,
    uri: &OriginalUri,
    raw: &[u8],
    run: impl std::future::Future<Output = Result<Json, Problem>> + Send + 'static,
) -> Result<Json, Problem> {
    let Some(key) = key.0 else { return run.await };
    let mut request = format!("POST {}\n", uri.0.path()).into_bytes();
    request.extend_from_slice(raw);
    let (tokens, actor) = (&api.state.services.api_tokens, &api.actor);
    let claim = match tokens.replay(actor, &key, &request).await {
        Ok(Replay::New(claim)) => claim,
        Ok(Replay::Same { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return Ok(Json { status, body });
        }
        Ok(Replay::Mismatch) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was used with another request in the last 24 hours; use a new key.",
            ))
        }
        Ok(Replay::InProgress) => return Err(Problem::in_progress()),
        Err(e) => return Err(Problem::unexpected(&e)),
    };
    let (tokens, actor) = (tokens.clone(), actor.clone());
    let task = tokio::spawn(async move {
        let answer = run.await;
        let kept = match &answer {
            Ok(json) => Some((json.status, json.body.clone())),
            Err(problem) if !problem.status().is_server_error() => {
                Some((problem.status(), problem.body()))
            }
            Err(_) => None,
        };
        let saved = match kept {
            Some((status, body)) => {
                let kept = tokens
                    .remember(&actor, &claim, status.as_u16(), &body)
                    .await;
                if let Ok(false) = kept {
                    tracing::warn!(
                        "an Idempotency-Key claim was let go as abandoned before its answer"
                    );
                }
                kept.map(|_| ())
            }
            None if matches!(&answer, Err(p) if p.changed_nothing()) => {
                tokens.release(&actor, &claim).await
            }
            None => Ok(()),
        };
        // The work is done either way: its answer goes to this client even if a retry
        // will not find it.
        if let Err(e) = saved {
            tracing::warn!(error = %e, "could not keep the answer under an Idempotency-Key");
        }
        answer
    });
    match task.await {
        Ok(answer) => answer,
        Err(_) => Err(Problem::unexpected(&Unexpected::invariant(
            "a request under an Idempotency-Key did not finish",
        ))),
    }
}
