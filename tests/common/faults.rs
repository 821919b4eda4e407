//! Fault injection for the campaign: the real `dialtone serve` started and killed with
//! SIGKILL, a client whose steps may fail (its server can die under it), and the checks
//! made after each crash. Everything talks to 127.0.0.1 only and waits a bounded time.

use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::StatusCode;

use super::{csrf_in, Cli};

/// A `dialtone serve` process; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Cli {
    /// Starts `dialtone serve` on a free port (internal listener off, mail written to the
    /// data directory's `mail/`) and waits, at most 60 s, until it answers `/healthz`.
    pub async fn serve(&self, extra_env: &[(&str, &str)]) -> Server {
        let port = super::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = self.command();
        cmd.arg("serve")
            .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
            .env("DIALTONE_PUBLIC_URL", &base)
            .env("DIALTONE_INTERNAL_LISTEN", "off")
            .env("DIALTONE_MAIL_POLL", "100ms")
            .env("DIALTONE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("dialtone serve starts");
        let server = Server { child, base };
        let probe = FallibleBrowser::at(&server.base);
        for _ in 0..600 {
            if matches!(probe.status("/healthz").await, Ok(StatusCode::OK)) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("dialtone serve did not answer /healthz within 60 s");
    }
}

impl Cli {
    /// Another `dialtone serve` node on the same database with a data directory of its own
    /// (`dir`: its mail goes to `dir/mail`) and this one's secret key file, as a second
    /// machine behind the load balancer would run.
    pub async fn serve_another_node(
        &self,
        dir: &std::path::Path,
        extra_env: &[(&str, &str)],
    ) -> Server {
        let dir = dir.display().to_string();
        let key = self.dir.path().join("secret.key").display().to_string();
        let mut env = vec![
            ("DIALTONE_DATA_DIR", dir.as_str()),
            ("DIALTONE_SECRET_KEY_FILE", key.as_str()),
        ];
        env.extend_from_slice(extra_env);
        self.serve(&env).await
    }
}

/// The one number `sql` answers on the PostgreSQL database at `url`.
pub async fn postgres_number(url: &str, sql: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::postgres::PgConnection::connect(url)
        .await
        .expect("the database answers");
    let n = sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .expect("the query runs")
        .get::<i64, _>(0);
    let _ = conn.close().await;
    n
}

impl Server {
    /// SIGKILL: no shutdown code runs, as in a power cut or the OOM killer.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a deploy, `systemctl stop`), then waits at most `limit` for the exit;
    /// whether it exited by itself, with success.
    pub async fn terminate(&mut self, limit: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status();
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Every answer some [`FallibleBrowser`]s received: which server (its base URL), what was
/// asked, and the status — for "no 5xx from this node, ever".
#[derive(Clone, Default)]
pub struct AnswerLog(Arc<Mutex<Vec<(String, String, StatusCode)>>>);

impl AnswerLog {
    fn record(&self, base: &str, what: String, status: StatusCode) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((base.to_owned(), what, status));
    }

    /// The 5xx answers `base` gave, as `METHOD PATH → STATUS`.
    pub fn server_errors_from(&self, base: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(b, _, s)| b == base && s.is_server_error())
            .map(|(_, what, s)| format!("{what} → {s}"))
            .collect()
    }

    /// How many answers `base` gave.
    pub fn answers_from(&self, base: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(b, _, _)| b == base)
            .count()
    }
}

/// A cookie-jar client whose every step returns the transport error instead of panicking:
/// the server may be killed between any two bytes.
pub struct FallibleBrowser {
    base: String,
    client: reqwest::Client,
    /// Sent as `X-Forwarded-For`, for a server that trusts 127.0.0.1 as its load balancer:
    /// each simulated person then has an address of their own (never connected to).
    forwarded_for: Option<IpAddr>,
    log: Option<AnswerLog>,
}

impl FallibleBrowser {
    pub fn at(base: &str) -> FallibleBrowser {
        FallibleBrowser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            forwarded_for: None,
            log: None,
        }
    }

    /// A new browser at `base`, behind the load balancer as the person at `addr`, whose
    /// every answer goes to `log`.
    pub fn behind_balancer(base: &str, addr: IpAddr, log: &AnswerLog) -> FallibleBrowser {
        FallibleBrowser {
            forwarded_for: Some(addr),
            log: Some(log.clone()),
            ..FallibleBrowser::at(base)
        }
    }

    /// The same browser (cookie jar, address, log) talking to another node — as a load
    /// balancer sends it elsewhere once its node is gone. Cookies do not depend on the port.
    pub fn moved_to(&self, base: &str) -> FallibleBrowser {
        FallibleBrowser {
            base: base.to_owned(),
            client: self.client.clone(),
            forwarded_for: self.forwarded_for,
            log: self.log.clone(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: String,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let request = match self.forwarded_for {
            Some(addr) => request.header("x-forwarded-for", addr.to_string()),
            None => request,
        };
        let r = request.send().await?;
        if let Some(log) = &self.log {
            log.record(&self.base, what, r.status());
        }
        Ok(r)
    }

    pub async fn status(&self, path: &str) -> Result<StatusCode, reqwest::Error> {
        Ok(self.get(path).await?.0)
    }

    /// GETs `path`: the status and the page.
    pub async fn get(&self, path: &str) -> Result<(StatusCode, String), reqwest::Error> {
        let r = self
            .send(
                self.client.get(format!("{}{path}", self.base)),
                format!("GET {path}"),
            )
            .await?;
        let status = r.status();
        Ok((status, r.text().await?))
    }

    async fn post(
        &self,
        path: &str,
        form_page: &str,
        fields: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let (_, page) = self.get(form_page).await?;
        let token = csrf_in(&page).unwrap_or_default();
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        self.send(
            self.client.post(format!("{}{path}", self.base)).form(&all),
            format!("POST {path}"),
        )
        .await
    }

    /// Signs in; the status of the answer (303 in, 401 wrong, 429 locked).
    pub async fn sign_in_status(
        &self,
        username: &str,
        password: &str,
    ) -> Result<StatusCode, reqwest::Error> {
        let r = self
            .post(
                "/login",
                "/login",
                &[("username", username), ("password", password)],
            )
            .await?;
        Ok(r.status())
    }

    /// Signs in; the whole answer.
    pub async fn sign_in_response(
        &self,
        username: &str,
        password: &str,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.post(
            "/login",
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// Asks for a reset link for `identifier`; the status of the answer.
    pub async fn forgot_password(&self, identifier: &str) -> Result<StatusCode, reqwest::Error> {
        let r = self
            .post(
                "/password/forgot",
                "/password/forgot",
                &[("identifier", identifier)],
            )
            .await?;
        Ok(r.status())
    }

    /// Signs in; `Ok(true)` when the portal accepted the password.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<bool, reqwest::Error> {
        let r = self
            .post(
                "/login",
                "/login",
                &[("username", username), ("password", password)],
            )
            .await?;
        Ok(r.status() == StatusCode::SEE_OTHER)
    }

    /// Changes the signed-in user's password; `Ok(true)` when the portal said it is done.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<bool, reqwest::Error> {
        let r = self
            .post(
                "/settings/password",
                "/settings",
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("confirm_password", new),
                ],
            )
            .await?;
        let done = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.contains("saved=password"));
        Ok(done)
    }
}

/// `PRAGMA integrity_check` of the SQLite database in `cli`'s data directory, as a
/// restarted server would open it (the write-ahead log is replayed first): `ok` or the
/// problems found. `None` on PostgreSQL runs.
pub async fn sqlite_integrity(cli: &Cli) -> Option<String> {
    if cli.database_url.is_some() {
        return None;
    }
    Some(sqlite_file_integrity(&cli.dir.path().join("dialtone.db")).await)
}

/// `PRAGMA integrity_check` of the SQLite file at `path`.
pub async fn sqlite_file_integrity(path: &std::path::Path) -> String {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the database file opens");
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("integrity_check runs");
    let _ = conn.close().await;
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many rows a table of the SQLite file at `path` holds.
pub async fn sqlite_file_rows(path: &std::path::Path, table: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the database file opens");
    let n = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get::<i64, _>(0);
    let _ = conn.close().await;
    n
}

impl super::TestApp {
    /// Renames the sessions table away, so any request that starts a session fails inside the
    /// portal: the way to see the opaque 500 page.
    pub async fn break_sessions_table(&self) {
        let db = self.raw_database().await;
        sqlx::query("ALTER TABLE sessions RENAME TO sessions_gone")
            .execute(&db)
            .await
            .expect("rename sessions");
        db.close().await;
    }

    /// The internal listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let at = self.internal.expect("the internal listener is on");
        let r = super::plain_client()
            .get(format!("http://{at}/metrics"))
            .send()
            .await
            .expect("metrics answer");
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.expect("text")
    }
}

/// The value of the series written exactly as `series` (name and labels) in `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A TCP proxy on 127.0.0.1 between the portal and its PostgreSQL, which the test can cut
/// (every connection through it dropped, new ones refused: the port is closed) and restore
/// (the same port listens again), as when the database host goes away and comes back.
pub struct DatabaseProxy {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DatabaseProxy {
    /// Starts forwarding a free port to the host and port of `url`.
    pub async fn start(url: &str) -> DatabaseProxy {
        let parsed = url::Url::parse(url).expect("database url");
        let upstream = format!(
            "{}:{}",
            parsed.host_str().expect("a host"),
            parsed.port().unwrap_or(5432)
        );
        let port = super::free_port();
        let (cut, watching) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(forward(port, upstream, watching));
        // Listening before anyone connects.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        DatabaseProxy { port, cut, task }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).expect("database url");
        u.set_host(Some("127.0.0.1")).expect("host");
        u.set_port(Some(self.port)).expect("port");
        u.to_string()
    }

    /// Drops every connection and refuses new ones until [`DatabaseProxy::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `port` while not cut, forwarding each connection to `upstream` until it
/// ends or the cut comes; while cut, nothing listens.
async fn forward(port: u16, upstream: String, mut cut: tokio::sync::watch::Receiver<bool>) {
    loop {
        if cut.wait_for(|c| !*c).await.is_err() {
            return;
        }
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let mut stop = cut.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut down, _)) = accepted else { continue };
                    let upstream = upstream.clone();
                    let mut cut = cut.clone();
                    tokio::spawn(async move {
                        let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                            _ = cut.wait_for(|c| *c) => {}
                        }
                    });
                }
                _ = stop.wait_for(|c| *c) => break,
            }
        }
        // Dropping the listener closes the port: new connections are refused.
    }
}
