//! Admin → API tokens: a tenant admin makes (shown once), lists (name, created, last used)
//! and revokes the tokens their company's own tools use on the JSON API.

use crate::web::params::{Path, Query};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::clock::utc;
use crate::services::api_tokens::ApiTokenError;
use crate::services::tenant_admin::Admin;
use crate::web::extract::{Page, ValidForm};
use crate::web::forms::{NameFields, NoFields};
use crate::web::render::{html_adjusted, Chrome};
use crate::web::respond::DoneQuery;
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/api-tokens", get(tokens_page).post(create_token))
        .route("/admin/api-tokens/{name}/revoke", post(revoke_token))
}

struct TokenView {
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "admin/api_tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tenant_code: String,
    tokens: Vec<TokenView>,
    new_token: Option<String>,
    new_name: String,
    notice: Option<&'static str>,
    error: Option<String>,
    name: String,
}

async fn render(
    page: &Page<Admin>,
    status: StatusCode,
    fill: impl FnOnce(&mut TokensPage),
) -> Result<Response, WebError> {
    let admin = &page.who;
    let tokens = page.state.services.api_tokens.tenant_tokens(admin).await?;
    let shown = TokensPage {
        chrome: Chrome::signed_in(page.csrf.clone(), admin.session(), "admin"),
        tenant_code: admin.session().user.tenant_code.to_string(),
        tokens: tokens
            .into_iter()
            .map(|t| TokenView {
                name: t.name,
                created: format!("{} UTC", utc(t.created_at)),
                last_used: t
                    .last_used_at
                    .map_or_else(|| "never".to_owned(), |at| format!("{} UTC", utc(at))),
            })
            .collect(),
        new_token: None,
        new_name: String::new(),
        notice: None,
        error: None,
        name: String::new(),
    };
    Ok(html_adjusted(status, shown, fill))
}

async fn tokens_page(
    page: Page<Admin>,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = (done.done == "revoked").then_some("The token was revoked.");
    render(&page, StatusCode::OK, |p| p.notice = notice).await
}

async fn create_token(
    page: Page<Admin>,
    ValidForm(form): ValidForm<NameFields>,
) -> Result<Response, WebError> {
    let name = form.name.trim().to_owned();
    let api_tokens = &page.state.services.api_tokens;
    match api_tokens.add_tenant_token(&page.who, &name).await {
        Ok(token) => {
            render(&page, StatusCode::OK, |p| {
                p.new_token = Some(token);
                p.new_name = name;
            })
            .await
        }
        Err(e @ (ApiTokenError::Exists(_) | ApiTokenError::BadName)) => {
            let message = e.to_string();
            render(&page, StatusCode::UNPROCESSABLE_ENTITY, |p| {
                p.error = Some(message);
                p.name = crate::web::respond::clip(&name, 64);
            })
            .await
        }
        Err(ApiTokenError::Unexpected(e)) => Err(e.into()),
    }
}

async fn revoke_token(
    page: Page<Admin>,
    Path(name): Path<String>,
    ValidForm(_): ValidForm<NoFields>,
) -> Result<Response, WebError> {
    let api_tokens = &page.state.services.api_tokens;
    if !api_tokens.revoke_tenant_token(&page.who, &name).await? {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/admin/api-tokens?done=revoked").into_response())
}
