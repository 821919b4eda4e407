//! "Your sessions" in Settings: ending one of one's own sessions, or all the others. The
//! list itself is drawn by the Settings page; the rules are in `services::sessions`.

use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
use axum_extra::extract::CookieJar;

use crate::services::sessions::Ended;
use crate::services::SessionUser;
use crate::store::SessionId;
use crate::web::extract::{session_cookie, Page, ValidForm};
use crate::web::forms::NoFields;
use crate::web::params::Posted;
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/sessions/{id}/end", post(end_session))
        .route("/settings/sessions/end-others", post(end_other_sessions))
}

/// Ends one of the user's sessions; another user's (or an unknown) id is 404, and nothing
/// changes. Ending the asking session signs this browser out.
async fn end_session(
    page: Page<SessionUser>,
    jar: CookieJar,
    Posted(id, _): Posted<SessionId, NoFields>,
) -> Result<Response, WebError> {
    let state = &page.state;
    match state
        .services
        .sessions
        .end_own(&page.who, id, page.client)
        .await?
    {
        Ended::Other => Ok(Redirect::to("/settings?saved=session").into_response()),
        Ended::Current => {
            let jar = jar.add(session_cookie(state, None));
            Ok((jar, Redirect::to("/login")).into_response())
        }
        Ended::NotFound => Err(WebError::NotFound),
    }
}

async fn end_other_sessions(
    page: Page<SessionUser>,
    ValidForm(_): ValidForm<NoFields>,
) -> Result<Response, WebError> {
    let sessions = &page.state.services.sessions;
    sessions.end_others(&page.who, page.client).await?;
    Ok(Redirect::to("/settings?saved=sessions").into_response())
}
