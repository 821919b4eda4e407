//! The JSON API as its clients see it: a bearer-token client with one helper per verb, and
//! the fixtures that make tokens (provider tokens as the CLI does; tenant tokens through the
//! admin's API tokens page).

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use super::{Browser, TestApp};

/// An answer of the API: status, headers, and the body as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts this is an RFC 9457 problem with `status`, and returns it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert!(self.body["type"].is_string());
        &self.body
    }

    /// The fields a 422 names.
    pub fn invalid_fields(&self) -> Vec<String> {
        self.problem(422);
        self.body["errors"]
            .as_array()
            .expect("an errors list")
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A client of the JSON API holding one token.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(app: &TestApp, token: Option<&str>) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("{}/api/v1", app.base),
            token: token.map(str::to_owned),
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn send(r: reqwest::RequestBuilder) -> Answer {
        let response = r.send().await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body, got {text:?}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        Api::send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        Api::send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: Value) -> Answer {
        Api::send(
            self.request(reqwest::Method::POST, path)
                .header("Idempotency-Key", key)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// A POST of an action that takes no body.
    pub async fn act(&self, path: &str) -> Answer {
        Api::send(self.request(reqwest::Method::POST, path)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        Api::send(
            self.request(reqwest::Method::PATCH, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        Api::send(self.request(reqwest::Method::DELETE, path)).await
    }
}

impl TestApp {
    /// A provider API token, made as `dialtone api-token add NAME` makes it.
    pub async fn provider_token(&self, name: &str) -> String {
        self.services()
            .api_tokens
            .add_provider_token(&dialtone::services::tenants::ProviderActor::cli(), name)
            .await
            .expect("a provider token")
    }

    /// A client of the API with a new provider token.
    pub async fn provider_api(&self) -> Api {
        let token = self.provider_token("billing").await;
        Api::new(self, Some(&token))
    }

    /// The SIP credential lookup's status for `extension` at `domain` (with a PBX token).
    pub async fn sip_lookup_status(&self, extension: &str, domain: &str) -> u16 {
        let token = self
            .portal
            .pbx
            .add_token(
                &format!(
                    "k{}",
                    dialtone::auth::token::random_token()[..8].replace(['-', '_'], "x")
                ),
                &super::test_actor(),
            )
            .await
            .expect("a PBX token");
        let internal = self.internal.expect("the internal listener is on");
        reqwest::Client::new()
            .get(format!(
                "http://{internal}/pbx/v1/sip-credentials?user={extension}&domain={domain}"
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the internal listener answers")
            .status()
            .as_u16()
    }

    /// Notices waiting for the SIP server.
    pub async fn pbx_queue_depth(&self) -> i64 {
        self.portal.store.pbx_queue_depth().await.unwrap()
    }
}

/// Makes a tenant token on the admin's API tokens page and reads it off the page.
pub async fn tenant_token_via_page(admin: &Browser, name: &str) -> String {
    let page = admin
        .post("/admin/api-tokens", &[("name", name)])
        .await
        .text()
        .await
        .unwrap();
    let at = page
        .find("id=\"new-token\">")
        .expect("the new token is shown")
        + "id=\"new-token\">".len();
    page[at..].split('<').next().unwrap().trim().to_owned()
}
