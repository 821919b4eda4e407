//! A browser on the portal: a cookie jar, no automatic redirects, and one helper per
//! endpoint the suites use; and what the suites read off a response.

use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};

use super::TestApp;

/// One browser: a cookie jar, no automatic redirects.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

/// A client with no cookie jar that follows no redirects, for requests made by hand.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

impl Browser {
    /// A new browser (an empty cookie jar) pointed at `base`.
    pub fn at(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    /// A new browser that introduces itself with `user_agent`.
    pub fn with_user_agent(base: &str, user_agent: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .user_agent(user_agent)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    /// The same browser (cookie jar) talking to another node.
    pub fn on(&self, node: &TestApp) -> Browser {
        Browser {
            base: node.base.clone(),
            client: self.client.clone(),
        }
    }

    /// A client that sends this session cookie to `node`, whatever it is told.
    pub fn holding_session(token: &str, node: &TestApp) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            format!("dialtone_session={token}").parse().unwrap(),
        );
        Browser {
            base: node.base.clone(),
            client: reqwest::Client::builder()
                .default_headers(headers)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("GET")
    }

    /// The CSRF token this browser's forms carry (read from a page, as a browser would).
    pub async fn csrf(&self) -> String {
        // Signed-in browsers are sent on from the sign-in page; every page has a form.
        let mut r = self.get("/login").await;
        for _ in 0..3 {
            if r.status() != StatusCode::SEE_OTHER {
                break;
            }
            r = self.get(&location(&r)).await;
        }
        let body = r.text().await.unwrap();
        csrf_in(&body).expect("the page carries a csrf token")
    }

    /// Posts a form with this browser's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_raw(path, &all).await
    }

    /// Posts exactly the given fields.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(format!("{}{}", self.base, path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/login", &[("username", username), ("password", password)])
            .await
    }

    pub async fn login_ok(&self, username: &str, password: &str) {
        let r = self.login(username, password).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "sign-in as {username} should succeed"
        );
    }

    pub async fn logout(&self) -> Response {
        self.post("/logout", &[]).await
    }

    pub async fn change_password(&self, current: &str, new: &str, confirm: &str) -> Response {
        self.post(
            "/settings/password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", confirm),
            ],
        )
        .await
    }

    /// As an admin, sets a temporary password for extension `ext` of the admin's tenant;
    /// the password the page shows once.
    pub async fn admin_temporary_password(&self, ext: &str) -> String {
        let path = format!("/admin/users/{ext}/reset-password");
        let r = self.post(&path, &[("method", "temporary")]).await;
        temporary_password_in(&r.text().await.unwrap())
    }

    /// Chooses a new password in place of a temporary one.
    pub async fn choose_password(&self, new: &str, confirm: &str) -> Response {
        self.post(
            "/password/choose",
            &[("new_password", new), ("confirm_password", confirm)],
        )
        .await
    }

    pub async fn change_pin(&self, new: &str, confirm: &str) -> Response {
        self.post(
            "/settings/pin",
            &[("new_pin", new), ("confirm_pin", confirm)],
        )
        .await
    }

    /// Sets the first suggested security question with `answer`.
    pub async fn set_security_question(&self, answer: &str, current_password: &str) -> Response {
        self.post(
            "/settings/security-question",
            &[
                ("choice", "0"),
                ("answer", answer),
                ("current_password", current_password),
            ],
        )
        .await
    }

    /// Asks for a reset link for a username or email address.
    pub async fn forgot_password(&self, identifier: &str) -> Response {
        self.post(
            "/password/forgot",
            &[("identifier", identifier), ("action", "reset")],
        )
        .await
    }

    /// Submits the reset form of a mailed link, with the new password typed twice.
    pub async fn reset_password(&self, token: &str, email: &str, new: &str) -> Response {
        self.post(
            "/password/reset",
            &[
                ("token", token),
                ("email", email),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await
    }

    /// An admin adds a user to their tenant.
    pub async fn admin_create_user(
        &self,
        extension: &str,
        name: &str,
        email: &str,
        role: &str,
    ) -> Response {
        self.post(
            "/admin/users",
            &[
                ("extension", extension),
                ("name", name),
                ("email", email),
                ("role", role),
            ],
        )
        .await
    }

    pub async fn operator_login(&self, name: &str, password: &str) -> Response {
        self.post(
            "/operator/login",
            &[("username", name), ("password", password)],
        )
        .await
    }

    /// An operator checks a caller's answer to the admin's security question; `admin` is
    /// the admin's page on the console.
    pub async fn verify_caller(&self, admin: &str, answer: &str) -> Response {
        self.post(&format!("{admin}/verify"), &[("answer", answer)])
            .await
    }

    /// "Your sessions" as Settings lists them.
    pub async fn own_sessions(&self) -> Vec<ListedSession> {
        let r = self.get("/settings").await;
        assert_eq!(r.status(), StatusCode::OK, "the Settings page");
        sessions_in(&r.text().await.unwrap())
    }

    /// "End" on the session listed as `id` (whatever a form may carry there).
    pub async fn end_session(&self, id: &str) -> Response {
        self.post(&format!("/settings/sessions/{id}/end"), &[])
            .await
    }

    /// "End all other sessions".
    pub async fn end_other_sessions(&self) -> Response {
        self.post("/settings/sessions/end-others", &[]).await
    }
}

/// One row of "Your sessions".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSession {
    /// What the page names the session by in its forms.
    pub id: String,
    pub device: String,
    pub address: String,
    pub signed_in: String,
    pub last_seen: String,
    /// Marked "this browser".
    pub current: bool,
}

/// The rows of "Your sessions" in a Settings page.
pub fn sessions_in(body: &str) -> Vec<ListedSession> {
    let text_of = |cell: &str| {
        // The text of a table cell, tags dropped and whitespace folded.
        let mut out = String::new();
        let mut in_tag = false;
        for c in cell.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    body.split("<tr class=\"session\" data-session=\"")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").expect("the row ends")];
            let id = row[..row.find('"').expect("the id ends")].to_owned();
            let cells: Vec<String> = row
                .split("<td")
                .skip(1)
                .map(|c| text_of(&c[c.find('>').expect("a cell") + 1..]))
                .collect();
            let device = cells[0].trim_end_matches("this browser").trim().to_owned();
            ListedSession {
                id,
                current: cells[0].ends_with("this browser"),
                device,
                address: cells[1].clone(),
                signed_in: cells[2].clone(),
                last_seen: cells[3].clone(),
            }
        })
        .collect()
}

pub fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let rest = &body[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The `Set-Cookie` value for `name`, if the response sets it.
pub fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value in a `Set-Cookie` line (`name=VALUE; …`).
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// The temporary password a page shows once.
pub fn temporary_password_in(body: &str) -> String {
    let at = body
        .find("id=\"temporary-password\">")
        .expect("a temporary password is shown")
        + "id=\"temporary-password\">".len();
    body[at..body[at..].find('<').unwrap() + at].to_owned()
}
