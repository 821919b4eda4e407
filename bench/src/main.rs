//! The Dialtone benchmark: builds and starts a release server on 127.0.0.1 with a fresh
//! database, seeds it, loads it phase by phase and prints a table of ratios measured in
//! the same run. Every phase stops by itself (a duration and a request cap); the server
//! is killed at the end, also on error. See BENCHMARKS.md for what each figure means.
//!
//! `cargo run --release -p dialtone-bench` (SQLite in a temporary directory), or with
//! `DIALTONE_DATABASE_URL=postgres://…` to run on a fresh PostgreSQL database that is
//! created beside the one named and dropped afterwards.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dialtone::app::Portal;
use dialtone::clock::SystemClock;
use dialtone::config::Layers;
use dialtone::domain::{DisplayName, NewPassword, PasswordContext, TenantCode};
use dialtone::services::tenants::ProviderActor;
use rand::Rng;
use sqlx::Connection;
use tokio::process::{Child, Command};

const TENANT: &str = "benchco";
/// Every seeded user's password.
const PASSWORD: &str = "Bench-Horse-Battery-42";
/// Seeded users are `{FIRST_EXTENSION + i}-benchco`.
const FIRST_EXTENSION: u64 = 1000;
const SMALL_USERS: u64 = 1_000;
/// The page size of the JSON API's users list the benchmark asks for.
const API_PAGE: u32 = 100;
/// Override with `BENCH_LARGE_USERS` for a quicker run (the table says which was used);
/// `BENCH_ONLY=lookups` measures only the SIP credential lookup rows, `BENCH_ONLY=flood`
/// only the signed-in pages idle, under the sign-in flood, beside its control and beside
/// its hashing alone.
const LARGE_USERS: u64 = 1_000_000;
/// Flood usernames: random extensions far above the seeded range (unknown users, each
/// name tried about once: "many usernames").
const FLOOD_EXTENSIONS: std::ops::Range<u64> = 10_000_000..99_999_999;

const SESSION_COOKIE: &str = "dialtone_session";
const CSRF_COOKIE: &str = "dialtone_csrf";
const DEVICE_COOKIE: &str = "dialtone_device";

fn main() -> std::process::ExitCode {
    // `dialtone-bench flood …`: one of the attacker's processes (see `flood_processes`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(FLOOD_MODE) {
        return flood_process(&args[1..]);
    }
    if args.first().map(String::as_str) == Some(HASH_MODE) {
        return hashing_process(&args[1..]);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

// ---- the run ---------------------------------------------------------------------------

async fn run() -> anyhow::Result<()> {
    let root = workspace_root();
    let server_bin = build_server(&root)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let large_users = match std::env::var("BENCH_LARGE_USERS") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .context("BENCH_LARGE_USERS must be a number")?
            .max(SMALL_USERS),
        Err(_) => LARGE_USERS,
    };
    let data = tempfile::Builder::new()
        .prefix("dialtone-bench-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let database = Database::fresh(data.path()).await?;
    // On Ctrl-C the measuring future is dropped, which kills the server (kill_on_drop),
    // and the database is still dropped below.
    let outcome = tokio::select! {
        outcome = measure(
            &server_bin,
            data.path(),
            database.url(),
            cores,
            large_users,
            database.label(),
        ) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    database.drop_it().await;
    let report = outcome?;
    println!("{report}");
    Ok(())
}

/// The first argument that makes the bench binary one of the flood's processes.
const FLOOD_MODE: &str = "flood";
/// `dialtone-bench hash SECONDS THREADS`: argon2id verifies on `THREADS` threads at the
/// hashing threads' priority, for `SECONDS`; prints how many (see `hashing_alone`).
const HASH_MODE: &str = "hash";
/// How many processes the flood comes from.
const FLOOD_PROCESSES: usize = 4;
/// How many of the flood's attempts may be open at once, over all its processes: enough
/// that answers the server holds before shedding (about a second each) do not slow the
/// flood below its rate.
const FLOOD_IN_FLIGHT: usize = 2048;

/// Starts the flood: `FLOOD_PROCESSES` copies of this binary at nice 10, sharing `rate`
/// wrong sign-ins a second for `duration` (from `addresses` addresses, 0 = the bench's
/// own). The task resolves to what they saw together and how many sends they skipped
/// because too many were in flight.
fn flood_processes(
    base: &str,
    csrf: &Csrf,
    rate: f64,
    duration: Duration,
    addresses: usize,
    kind: FloodKind,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<(Outcome, u64)>>> {
    let mut children = Vec::new();
    for _ in 0..FLOOD_PROCESSES {
        children.push(child_process(
            FLOOD_MODE,
            &[
                base.to_owned(),
                csrf.cookie.clone(),
                csrf.token.clone(),
                (rate / FLOOD_PROCESSES as f64).to_string(),
                (FLOOD_IN_FLIGHT / FLOOD_PROCESSES).to_string(),
                duration.as_secs_f64().to_string(),
                addresses.to_string(),
                kind.arg().to_owned(),
            ],
        )?);
    }
    Ok(tokio::spawn(async move {
        let mut total = Outcome::default();
        let mut skipped = 0;
        for child in children {
            let out = child.wait_with_output().await?;
            if !out.status.success() {
                bail!("a flood process failed ({})", out.status);
            }
            let (o, s) = parse_flood_report(&String::from_utf8_lossy(&out.stdout))?;
            total.elapsed = total.elapsed.max(o.elapsed);
            total.merge(o);
            skipped += s;
        }
        Ok((total, skipped))
    }))
}

/// This benchmark's binary again, as a child process in `mode` with `args` (its report on
/// its standard output), killed if dropped.
fn child_process(mode: &str, args: &[String]) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe().context("cannot find the bench binary")?;
    Command::new(&exe)
        .arg(mode)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start a {mode} process"))
}

/// What the flood's processes send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FloodKind {
    /// Wrong passwords for random unknown usernames.
    SignIns,
    /// The static asset, at the same pace: the control, what the load generator and the
    /// HTTP exchange alone cost the pages beside them.
    StaticAsset,
}

impl FloodKind {
    fn arg(self) -> &'static str {
        match self {
            FloodKind::SignIns => "sign-ins",
            FloodKind::StaticAsset => "static",
        }
    }

    fn parse(arg: &str) -> anyhow::Result<FloodKind> {
        match arg {
            "sign-ins" => Ok(FloodKind::SignIns),
            "static" => Ok(FloodKind::StaticAsset),
            other => bail!("flood: unknown kind {other}"),
        }
    }
}

/// One flood process: `base csrf_cookie csrf_token rate in_flight seconds addresses kind`.
/// Prints what it saw: `status N` lines, `failed N`, `skipped N`, `elapsed SECONDS`.
fn flood_process(args: &[String]) -> std::process::ExitCode {
    lower_priority();
    let run = || -> anyhow::Result<()> {
        let [base, cookie, token, rate, in_flight, secs, addresses, kind] = args else {
            bail!(
                "flood: expected base, csrf cookie and token, rate, in flight, seconds, addresses, kind"
            );
        };
        let kind = FloodKind::parse(kind)?;
        let csrf = Csrf {
            cookie: cookie.clone(),
            token: token.clone(),
        };
        let (rate, in_flight): (f64, usize) = (rate.parse()?, in_flight.parse()?);
        let (secs, addresses): (f64, usize) = (secs.parse()?, addresses.parse()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (out, skipped) = runtime.block_on(flood(
            base.clone(),
            csrf,
            rate,
            in_flight,
            Duration::from_secs_f64(secs),
            addresses,
            kind,
        ))?;
        for (status, n) in &out.statuses {
            println!("status {status} {n}");
        }
        println!("failed {}", out.failed);
        println!("skipped {skipped}");
        println!("elapsed {}", out.elapsed.as_secs_f64());
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench flood: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One thread per core verifying argon2id passwords at the priority of the server's
/// hashing threads (`SCHED_IDLE`), on reused memory as they do, for a while: the work a
/// flood makes the server do, without the flood.
fn hashing_process(args: &[String]) -> std::process::ExitCode {
    use dialtone::auth::hashing::{hash_now, lower_priority, verify_with, Scratch};
    let run = || -> anyhow::Result<u64> {
        let [secs, threads] = args else {
            bail!("hash: expected seconds and threads");
        };
        let (secs, threads): (f64, usize) = (secs.parse()?, threads.parse()?);
        let hash = hash_now(PASSWORD).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let verified = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        lower_priority();
                        let mut scratch = Scratch::new();
                        let mut n = 0u64;
                        while Instant::now() < until {
                            verify_with(&mut scratch, &hash, PASSWORD);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        Ok(verified)
    };
    match run() {
        Ok(n) => {
            println!("{n}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench hash: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Signed-in pages beside [`hashing_process`] for `secs`: what the cores' being busy with
/// idle-priority hashing costs the pages, with no request of the flood's. Returns the
/// pages and the verifies per second.
async fn pages_beside_hashing_alone(
    cores: usize,
    pages: (usize, f64),
    make: MakeRequest,
) -> anyhow::Result<(Outcome, f64)> {
    let secs = 10.0;
    let child = child_process(HASH_MODE, &[secs.to_string(), cores.to_string()])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = paced(pages.0, pages.1, Duration::from_secs(8), 200, make).await;
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("the hashing process failed ({})", out.status);
    }
    let verified: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok((seen, verified / secs))
}

fn parse_flood_report(report: &str) -> anyhow::Result<(Outcome, u64)> {
    let mut out = Outcome::default();
    let mut skipped = 0;
    for line in report.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["status", status, n] => {
                *out.statuses.entry(status.parse()?).or_default() += n.parse::<u64>()?;
            }
            ["failed", n] => out.failed += n.parse::<u64>()?,
            ["skipped", n] => skipped += n.parse::<u64>()?,
            ["elapsed", secs] => out.elapsed = Duration::from_secs_f64(secs.parse()?),
            _ => bail!("a flood process printed an unexpected line: {line}"),
        }
    }
    Ok((out, skipped))
}

/// Nice 10 for the calling thread (the flood generator's), best effort.
fn lower_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `cargo build --release --bin dialtone`, so the server measured is the current source.
fn build_server(root: &Path) -> anyhow::Result<PathBuf> {
    progress("building the release server (cargo build --release --bin dialtone)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--release", "--bin", "dialtone"])
        .current_dir(root);
    // `cargo run` sets CARGO_PKG_* and friends for the bench; passed on, they would make
    // build scripts rerun and the next `cargo run` rebuild everything again.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if name.starts_with("CARGO_") && !matches!(name, "CARGO_HOME" | "CARGO_TARGET_DIR") {
                command.env_remove(name);
            }
        }
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("the release build of the server failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("dialtone");
    if !bin.exists() {
        bail!("no server binary at {}", bin.display());
    }
    Ok(bin)
}

/// A fresh database: SQLite in the temporary directory, or a new PostgreSQL database on
/// the server `DIALTONE_DATABASE_URL` names (created now, dropped at the end).
enum Database {
    Sqlite(String),
    Postgres {
        admin: String,
        url: String,
        name: String,
    },
}

impl Database {
    async fn fresh(dir: &Path) -> anyhow::Result<Database> {
        match std::env::var("DIALTONE_DATABASE_URL") {
            Ok(admin) if admin.starts_with("postgres") => {
                let name = format!(
                    "dialtone_bench_{}_{}",
                    std::process::id(),
                    rand::thread_rng().gen_range(1000..9999)
                );
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .context("cannot reach the PostgreSQL server in DIALTONE_DATABASE_URL")?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .context("cannot create the benchmark database")?;
                let _ = conn.close().await;
                let mut url = url::Url::parse(&admin).context("DIALTONE_DATABASE_URL")?;
                url.set_path(&name);
                progress(format!("fresh PostgreSQL database {name}"));
                Ok(Database::Postgres {
                    admin,
                    url: url.to_string(),
                    name,
                })
            }
            Ok(other) if !other.is_empty() && !other.starts_with("sqlite") => {
                bail!("DIALTONE_DATABASE_URL must be postgres://… (or unset for SQLite)")
            }
            _ => Ok(Database::Sqlite(format!(
                "sqlite://{}?mode=rwc",
                dir.join("dialtone.db").display()
            ))),
        }
    }

    fn url(&self) -> &str {
        match self {
            Database::Sqlite(url) => url,
            Database::Postgres { url, .. } => url,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite",
            Database::Postgres { .. } => "PostgreSQL",
        }
    }

    async fn drop_it(&self) {
        if let Database::Postgres { admin, name, .. } = self {
            match sqlx::PgConnection::connect(admin).await {
                Ok(mut conn) => {
                    if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&mut conn)
                        .await
                    {
                        progress(format!("could not drop {name}: {e}"));
                    }
                    let _ = conn.close().await;
                }
                Err(e) => progress(format!("could not drop {name}: {e}")),
            }
        }
    }
}

fn settings(data_dir: &Path, db: &str, base: &str) -> anyhow::Result<dialtone::config::Settings> {
    let mut layers = Layers::default();
    layers.set("data_dir", data_dir.display().to_string());
    layers.set("database_url", db);
    layers.set("public_url", base);
    Ok(layers.resolve()?)
}

/// Grows the directory from the first `SMALL_USERS` to `large_users`; how long it took.
async fn grow_directory(
    data_dir: &Path,
    db: &str,
    base: &str,
    large_users: u64,
) -> anyhow::Result<Duration> {
    progress(format!("seeding up to {large_users} users"));
    seed(
        data_dir,
        db,
        base,
        FIRST_EXTENSION + SMALL_USERS..FIRST_EXTENSION + large_users,
        false,
    )
    .await
}

/// Seeds `extensions` into the tenant (created on the first call) through the library's
/// bulk path: one argon2id hash shared by every user, rows inserted by the thousand.
async fn seed(
    data_dir: &Path,
    db: &str,
    base: &str,
    extensions: std::ops::Range<u64>,
    create_tenant: bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let portal = Portal::open(settings(data_dir, db, base)?, Arc::new(SystemClock)).await?;
    let code = TenantCode::parse(TENANT)?;
    if create_tenant {
        portal
            .services
            .provisioning
            .create_tenant(
                &code,
                &DisplayName::parse("Bench Co")?,
                None,
                &dialtone::audit::Actor::new("bench", None),
            )
            .await?;
    }
    let password = NewPassword::parse(PASSWORD, &PasswordContext::default())
        .map_err(|_| anyhow::anyhow!("the bench password is refused by the policy"))?;
    portal
        .services
        .bulk
        .seed_users(
            &code,
            extensions,
            &DisplayName::parse("Bench User")?,
            &password,
        )
        .await?;
    portal.store.close().await;
    Ok(started.elapsed())
}

struct Server {
    child: Child,
    pid: u32,
    base: String,
    /// The internal listener, where the SIP server looks up credentials.
    internal: String,
}

impl Server {
    async fn start(bin: &Path, data_dir: &Path, db: &str, port: u16) -> anyhow::Result<Server> {
        let base = format!("http://127.0.0.1:{port}");
        let internal_port = free_port()?;
        let internal = format!("http://127.0.0.1:{internal_port}");
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("DIALTONE_DATA_DIR", data_dir)
            .env("DIALTONE_DATABASE_URL", db)
            .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "DIALTONE_INTERNAL_LISTEN",
                format!("127.0.0.1:{internal_port}"),
            )
            .env("DIALTONE_PUBLIC_URL", &base)
            .env("DIALTONE_MAIL", "log")
            .env("DIALTONE_LOG", "warn")
            // Every client of the benchmark is 127.0.0.1: the per-address slow-down would
            // otherwise stop the flood (and then everyone) after 20 failures, measuring
            // the throttle instead of the hashing pool. Per-username lockout stays on.
            .env("DIALTONE_ADDRESS_ATTEMPTS", "1000000000")
            // The sweep's clients each come from their own address, as people at a
            // provider's customers do: the benchmark is the proxy that says which.
            .env("DIALTONE_TRUSTED_PROXIES", "127.0.0.1")
            // The API's per-token rate limit would otherwise measure the limit, not the API.
            .env("DIALTONE_API_RATE_LIMIT", "1000000000")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd.spawn().context("cannot start the server")?;
        let pid = child.id().context("the server exited at once")?;
        let server = Server {
            child,
            pid,
            base,
            internal,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /healthz within 60 s (see {})",
                    data_dir.join("server.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> (u64, u64) {
        let [rss, hwm] = self.status_kib(["VmRSS:", "VmHWM:"]);
        (rss, hwm)
    }

    /// Fields of the server's `/proc/PID/status`, in KiB (0 where missing).
    fn status_kib<const N: usize>(&self, names: [&str; N]) -> [u64; N] {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        names.map(|name| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

// ---- HTTP helpers ---------------------------------------------------------------------

fn client(conns: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn cookie_value(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (n, value) = first.split_once('=')?;
            (n.trim() == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// A CSRF cookie and its form token, as a browser gets them from the sign-in page.
#[derive(Clone)]
struct Csrf {
    cookie: String,
    token: String,
}

async fn csrf(client: &reqwest::Client, base: &str) -> anyhow::Result<Csrf> {
    let resp = client.get(format!("{base}/login")).send().await?;
    let cookie = cookie_value(&resp, CSRF_COOKIE).context("no CSRF cookie on /login")?;
    let body = resp.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).context("no CSRF token on /login")? + marker.len();
    let end = body[start..].find('"').context("unterminated CSRF token")? + start;
    Ok(Csrf {
        cookie,
        token: body[start..end].to_owned(),
    })
}

fn sign_in_request(
    client: &reqwest::Client,
    base: &str,
    csrf: &Csrf,
    username: &str,
    password: &str,
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &csrf.token)
        .append_pair("username", username)
        .append_pair("password", password)
        .finish();
    client
        .post(format!("{base}/login"))
        .header(
            reqwest::header::COOKIE,
            format!("{CSRF_COOKIE}={}", csrf.cookie),
        )
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
}

fn page_request(
    client: &reqwest::Client,
    base: &str,
    csrf: &Csrf,
    session: &str,
) -> reqwest::RequestBuilder {
    client.get(format!("{base}/phone")).header(
        reqwest::header::COOKIE,
        format!("{CSRF_COOKIE}={}; {SESSION_COOKIE}={session}", csrf.cookie),
    )
}

fn username(n: u64) -> String {
    format!("{n}-{TENANT}")
}

// ---- load phases ----------------------------------------------------------------------

/// What one phase saw.
#[derive(Default)]
struct Outcome {
    /// Latencies of the responses with the expected status, in microseconds.
    latencies: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no response (connection errors, client timeout).
    failed: u64,
    elapsed: Duration,
    /// Session cookies handed out (sign-in phases).
    sessions: Vec<String>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.failed += other.failed;
        self.sessions.extend(other.sessions);
    }

    fn ok(&self) -> u64 {
        self.latencies.len() as u64
    }

    fn rate(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        Duration::from_micros(self.latencies[i])
    }

    fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    fn statuses_text(&self) -> String {
        let mut s = String::new();
        for (code, n) in &self.statuses {
            let _ = write!(s, "{code}×{n} ");
        }
        if self.failed > 0 {
            let _ = write!(s, "no-response×{}", self.failed);
        }
        s.trim_end().to_owned()
    }
}

/// What a phase's task asks for its `n`-th request.
type MakeRequest = Arc<dyn Fn(usize, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// `conns` tasks, each sending its next request as soon as the last is answered, until
/// `duration` has passed or `cap` requests were sent.
async fn closed_loop(
    conns: usize,
    duration: Duration,
    cap: u64,
    expect: u16,
    capture_session: bool,
    make: MakeRequest,
) -> Outcome {
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let sent = sent.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut k = 0;
            while started.elapsed() < duration && sent.fetch_add(1, Ordering::Relaxed) < cap {
                let t = Instant::now();
                match make(i, k).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        if capture_session {
                            out.sessions.extend(cookie_value(&resp, SESSION_COOKIE));
                        }
                        let _ = resp.bytes().await;
                        if status == expect {
                            out.latencies.push(t.elapsed().as_micros() as u64);
                        }
                        *out.statuses.entry(status).or_default() += 1;
                    }
                    Err(_) => out.failed += 1,
                }
                k += 1;
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(out) = t.await {
            total.merge(out);
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// `conns` tasks each sending at a fixed pace (`rate` per second in all) for `duration`.
/// The pace leaves each connection far more time than a response takes, so a latency is
/// measured from the moment its request is sent.
async fn paced(
    conns: usize,
    rate: f64,
    duration: Duration,
    expect: u16,
    make: MakeRequest,
) -> Outcome {
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let make = make.clone();
        // Spread the tasks' first requests over one interval.
        let offset = interval.mul_f64(i as f64 / conns as f64);
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut k: u64 = 0;
            loop {
                let due = started + offset + interval.mul_f64(k as f64);
                if due.duration_since(started) >= duration {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let t = Instant::now();
                match make(i, k).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        if status == expect {
                            out.latencies.push(t.elapsed().as_micros() as u64);
                        }
                        *out.statuses.entry(status).or_default() += 1;
                    }
                    Err(_) => out.failed += 1,
                }
                k += 1;
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(out) = t.await {
            total.merge(out);
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Wrong-password sign-ins for random unknown usernames at `rate` per second for
/// `duration`, at most `in_flight` at once (an attempt due while that many are open is
/// skipped and counted as such).
/// Wrong passwords for random unknown usernames at `rate` a second, at most `in_flight`
/// open at once; from the benchmark's own address, or spread over `addresses` others
/// (through the trusted-proxy header) when that is not zero.
async fn flood(
    base: String,
    csrf: Csrf,
    rate: f64,
    in_flight: usize,
    duration: Duration,
    addresses: usize,
    kind: FloodKind,
) -> anyhow::Result<(Outcome, u64)> {
    let client = client(in_flight)?;
    let results = Arc::new(Mutex::new(Outcome::default()));
    let open = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut skipped = 0;
    let mut tasks = Vec::new();
    let mut k: u64 = 0;
    loop {
        let due = started + interval.mul_f64(k as f64);
        if due.duration_since(started) >= duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        k += 1;
        let Ok(permit) = open.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let n = rand::thread_rng().gen_range(FLOOD_EXTENSIONS);
        let mut request = match kind {
            FloodKind::SignIns => {
                sign_in_request(&client, &base, &csrf, &username(n), "Wrong-Guess-123")
            }
            FloodKind::StaticAsset => client.get(format!("{base}/static/app.css")),
        };
        if addresses > 0 {
            let a = k as usize % addresses;
            request = request.header(
                "x-forwarded-for",
                format!("172.16.{}.{}", a / 250, a % 250 + 1),
            );
        }
        let results = results.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let status = match request.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    Some(status)
                }
                Err(_) => None,
            };
            drop(permit);
            let mut r = match results.lock() {
                Ok(r) => r,
                Err(poisoned) => poisoned.into_inner(),
            };
            match status {
                Some(status) => {
                    r.latencies.push(t.elapsed().as_micros() as u64);
                    *r.statuses.entry(status).or_default() += 1;
                }
                None => r.failed += 1,
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut out = match Arc::try_unwrap(results) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => {
            let mut guard = match shared.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            std::mem::take(&mut *guard)
        }
    };
    out.elapsed = started.elapsed();
    Ok((out, skipped))
}

/// Bare argon2id verify time on this machine: the median of `n` verifies on one thread,
/// with the server's own code and parameters — (the argon2 crate's verify, which
/// allocates its 19 MiB each time; the server's verify on reused memory).
async fn bare_verify_time(n: usize) -> anyhow::Result<(Duration, Duration)> {
    use dialtone::auth::hashing::{hash_now, verify_now, verify_with, Scratch};
    tokio::task::spawn_blocking(move || {
        let hash = hash_now(PASSWORD).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        let median = |verify: &mut dyn FnMut() -> bool| -> anyhow::Result<Duration> {
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                if !verify() {
                    bail!("argon2id verify did not match");
                }
                times.push(t.elapsed());
            }
            times.sort_unstable();
            Ok(times[times.len() / 2])
        };
        let allocating = median(&mut || verify_now(&hash, PASSWORD))?;
        let mut scratch = Scratch::new();
        let reused = median(&mut || verify_with(&mut scratch, &hash, PASSWORD))?;
        Ok((allocating, reused))
    })
    .await?
}

/// Bare verifies per second with one thread per core verifying at once (each on its own
/// reused memory, as the server's pool does): the machine's real hashing capacity, memory
/// bandwidth shared between the cores included.
async fn bare_parallel_rate(cores: usize, per_thread: usize) -> anyhow::Result<f64> {
    use dialtone::auth::hashing::{hash_now, verify_with, Scratch};
    let hash = Arc::new(hash_now(PASSWORD).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                let hash = hash.clone();
                std::thread::spawn(move || {
                    let mut scratch = Scratch::new();
                    (0..per_thread)
                        .filter(|_| verify_with(&mut scratch, &hash, PASSWORD))
                        .count()
                })
            })
            .collect();
        let mut done = 0;
        for t in threads {
            done += t
                .join()
                .map_err(|_| anyhow::anyhow!("a verify thread panicked"))?;
        }
        Ok(done as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}

/// Sign-in and page p50 with one client at a time, users drawn from `users` seeded ones.
async fn scale_probe(
    client: &reqwest::Client,
    base: &str,
    csrf: &Csrf,
    users: u64,
    sign_ins: usize,
    pages: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut signin = Outcome::default();
    let mut sessions = Vec::new();
    for _ in 0..sign_ins {
        let n = FIRST_EXTENSION + rand::thread_rng().gen_range(0..users);
        let t = Instant::now();
        let resp = sign_in_request(client, base, csrf, &username(n), PASSWORD)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let session = cookie_value(&resp, SESSION_COOKIE);
        let _ = resp.bytes().await;
        if status != 303 {
            bail!("a sign-in of {} answered {status}", username(n));
        }
        signin.latencies.push(t.elapsed().as_micros() as u64);
        sessions.extend(session);
    }
    if sessions.is_empty() {
        bail!("no session cookie came back from sign-in");
    }
    let mut page = Outcome::default();
    for k in 0..pages {
        let t = Instant::now();
        let resp = page_request(client, base, csrf, &sessions[k % sessions.len()])
            .send()
            .await?;
        let status = resp.status().as_u16();
        let _ = resp.bytes().await;
        if status != 200 {
            bail!("/phone answered {status}");
        }
        page.latencies.push(t.elapsed().as_micros() as u64);
    }
    Ok((signin.percentile(50.0), page.percentile(50.0)))
}

/// `conns` clients, each from its own address (`X-Forwarded-For`, with the benchmark as
/// the trusted proxy), signing in again and again as a fresh browser would: GET the form
/// (a new CSRF cookie), POST it. Latency is the POST's.
async fn fresh_browser_sign_ins(
    base: &str,
    conns: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let http = client(conns)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (http, base) = (http.clone(), base.to_owned());
        let address = format!(
            "10.{}.{}.{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            (i & 255) + 1
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut k = 0u64;
            while started.elapsed() < duration {
                let n = FIRST_EXTENSION + (i as u64 * 7919 + k * 31) % SMALL_USERS;
                k += 1;
                let form = http
                    .get(format!("{base}/login"))
                    .header("x-forwarded-for", &address)
                    .send()
                    .await;
                let Ok(form) = form else {
                    out.failed += 1;
                    continue;
                };
                let Some(cookie) = cookie_value(&form, CSRF_COOKIE) else {
                    out.failed += 1;
                    continue;
                };
                let Ok(body) = form.text().await else {
                    out.failed += 1;
                    continue;
                };
                let marker = "name=\"csrf_token\" value=\"";
                let Some(token) = body.find(marker).and_then(|at| {
                    let rest = &body[at + marker.len()..];
                    rest.find('"').map(|end| rest[..end].to_owned())
                }) else {
                    out.failed += 1;
                    continue;
                };
                let csrf = Csrf { cookie, token };
                let t = Instant::now();
                let sent = sign_in_request(&http, &base, &csrf, &username(n), PASSWORD)
                    .header("x-forwarded-for", &address)
                    .send()
                    .await;
                match sent {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        if status == 303 {
                            out.latencies.push(t.elapsed().as_micros() as u64);
                        }
                        *out.statuses.entry(status).or_default() += 1;
                    }
                    Err(_) => out.failed += 1,
                }
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(out) = t.await {
            total.merge(out);
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One sign-in as a fresh browser from `address`: GET the form, POST it. The POST's
/// status and latency, or `None` when no answer came.
async fn fresh_sign_in(
    http: &reqwest::Client,
    base: &str,
    address: &str,
    user: &str,
) -> Option<(u16, Duration)> {
    let (status, took, _) = fresh_sign_in_with(http, base, address, user, None).await?;
    Some((status, took))
}

/// [`fresh_sign_in`] by a browser that may carry a device cookie from an earlier sign-in;
/// also returns the device cookie the answer sets.
async fn fresh_sign_in_with(
    http: &reqwest::Client,
    base: &str,
    address: &str,
    user: &str,
    device: Option<&str>,
) -> Option<(u16, Duration, Option<String>)> {
    let form = http
        .get(format!("{base}/login"))
        .header("x-forwarded-for", address)
        .send()
        .await
        .ok()?;
    let cookie = cookie_value(&form, CSRF_COOKIE)?;
    let body = form.text().await.ok()?;
    let marker = "name=\"csrf_token\" value=\"";
    let rest = &body[body.find(marker)? + marker.len()..];
    let token = rest[..rest.find('"')?].to_owned();
    let csrf = Csrf { cookie, token };
    let t = Instant::now();
    let mut request =
        sign_in_request(http, base, &csrf, user, PASSWORD).header("x-forwarded-for", address);
    if let Some(device) = device {
        request = request.header(reqwest::header::COOKIE, format!("{DEVICE_COOKIE}={device}"));
    }
    let resp = request.send().await.ok()?;
    let status = resp.status().as_u16();
    let set_device = cookie_value(&resp, DEVICE_COOKIE);
    let _ = resp.bytes().await;
    Some((status, t.elapsed(), set_device))
}

/// Sign-ins arriving at random (Poisson) at `rate` a second for `duration`, each a fresh
/// browser from its own address; the outcome counts how many were shed.
async fn open_loop_sign_ins(base: &str, rate: f64, duration: Duration) -> anyhow::Result<Outcome> {
    let http = client(256)?;
    let results = Arc::new(Mutex::new(Outcome::default()));
    let started = Instant::now();
    let mut at = Duration::ZERO;
    let mut tasks = Vec::new();
    let mut k: u64 = 0;
    loop {
        let u: f64 = rand::thread_rng().gen_range(f64::EPSILON..1.0);
        at += Duration::from_secs_f64(-u.ln() / rate);
        if at >= duration {
            break;
        }
        tokio::time::sleep_until((started + at).into()).await;
        k += 1;
        let (http, base, results) = (http.clone(), base.to_owned(), results.clone());
        let address = format!(
            "10.{}.{}.{}",
            100 + (k >> 16) % 100,
            (k >> 8) & 255,
            (k & 255) + 1
        );
        let user = username(FIRST_EXTENSION + k % SMALL_USERS);
        tasks.push(tokio::spawn(async move {
            let answer = fresh_sign_in(&http, &base, &address, &user).await;
            let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
            match answer {
                Some((status, took)) => {
                    if status == 303 {
                        r.latencies.push(took.as_micros() as u64);
                    }
                    *r.statuses.entry(status).or_default() += 1;
                }
                None => r.failed += 1,
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut out = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    out.elapsed = started.elapsed();
    Ok(out)
}

/// One person signing in every quarter second from their own address for `duration`,
/// while whatever else runs; each time a fresh browser, carrying `device` (a device cookie
/// from an earlier sign-in) when given.
async fn legitimate_user(
    base: &str,
    duration: Duration,
    user: &str,
    address: &str,
    device: Option<String>,
) -> anyhow::Result<Outcome> {
    let http = client(2)?;
    let started = Instant::now();
    let mut out = Outcome::default();
    while started.elapsed() < duration {
        let tick = Instant::now();
        match fresh_sign_in_with(&http, base, address, user, device.as_deref()).await {
            Some((status, took, _)) => {
                if status == 303 {
                    out.latencies.push(took.as_micros() as u64);
                }
                *out.statuses.entry(status).or_default() += 1;
            }
            None => out.failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(250).saturating_sub(tick.elapsed())).await;
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

/// The tokens the load needs: the SIP server's (PBX) and a billing system's (JSON API).
struct Tokens {
    pbx: String,
    api: String,
}

async fn tokens(data_dir: &Path, db: &str, base: &str) -> anyhow::Result<Tokens> {
    let portal = Portal::open(settings(data_dir, db, base)?, Arc::new(SystemClock)).await?;
    let pbx = portal
        .pbx
        .add_token("bench", &dialtone::audit::Actor::new("bench", None))
        .await?;
    let api = portal
        .services
        .api_tokens
        .add_provider_token(&ProviderActor::cli(), "bench")
        .await?;
    portal.store.close().await;
    Ok(Tokens { pbx, api })
}

/// A billing system's view: `conns` keep-alive clients asking the JSON API for the first
/// page of 100 users of the bench tenant, for 5 s.
async fn api_user_pages(server: &Server, token: &str, conns: usize) -> anyhow::Result<Outcome> {
    let http = client(conns)?;
    let make: MakeRequest = {
        let (base, token) = (server.base.clone(), token.to_owned());
        Arc::new(move |_, _| {
            http.get(format!(
                "{base}/api/v1/tenants/{TENANT}/users?limit={API_PAGE}"
            ))
            .bearer_auth(&token)
        })
    };
    let out = closed_loop(conns, Duration::from_secs(5), 1_000_000, 200, false, make).await;
    if out.count(200) == 0 {
        bail!("no API user page answered 200 ({})", out.statuses_text());
    }
    Ok(out)
}

/// Paced page loads (`pages`: clients and rate) for 8 s while the flood's processes send
/// `kind` at `rate` for 10 s (starting a second earlier): what the pages saw, and what the
/// flood saw with the sends it skipped.
async fn pages_beside_flood(
    base: &str,
    csrf: &Csrf,
    rate: f64,
    kind: FloodKind,
    pages: (usize, f64),
    make: MakeRequest,
) -> anyhow::Result<(Outcome, (Outcome, u64))> {
    let flood_task = flood_processes(base, csrf, rate, Duration::from_secs(10), 0, kind)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = paced(pages.0, pages.1, Duration::from_secs(8), 200, make).await;
    Ok((seen, flood_task.await??))
}

/// Signed-in page loads at a steady pace, idle, under a flood of wrong sign-ins at 5× the
/// hash-bound `limit` from processes of their own, beside the control (the same
/// processes asking for the static asset) and beside the flood's hashing alone (the same
/// argon2id work at the same priority in another process, with no request); their rows. Returns the server's peak memory
/// after the flood.
async fn pages_under_flood(
    server: &Server,
    http: &reqwest::Client,
    csrf0: &Csrf,
    sessions: &Arc<Vec<String>>,
    limit: f64,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<u64> {
    let base = server.base.clone();
    let page_conns = 8;
    let page_rate = 1000.0;
    let flood_rate = (limit * 5.0).max(50.0);
    let make: MakeRequest = {
        let (http, base, c, s) = (http.clone(), base.clone(), csrf0.clone(), sessions.clone());
        Arc::new(move |i, _| page_request(&http, &base, &c, &s[(i + 100) % s.len()]))
    };
    progress(format!("idle page latency: {page_rate}/s for 8 s"));
    let mut idle = paced(
        page_conns,
        page_rate,
        Duration::from_secs(8),
        200,
        make.clone(),
    )
    .await;
    progress(format!(
        "page latency under a flood of {flood_rate:.0} wrong sign-ins/s for 10 s"
    ));
    // The attacker would bring its own machines; here they share ours, so the flood runs in
    // processes of its own at nice 10, as a separate load test would.
    let (mut busy, (flood_out, skipped)) = pages_beside_flood(
        &base,
        csrf0,
        flood_rate,
        FloodKind::SignIns,
        (page_conns, page_rate),
        make.clone(),
    )
    .await?;
    let (_, flood_hwm) = server.memory();
    // The control: the same processes at the same pace asking for the static asset, so
    // what the load generator and the HTTP exchange alone cost the pages is measured
    // beside what the sign-ins cost.
    progress(format!(
        "page latency beside {flood_rate:.0} static-asset requests/s from the same processes, 10 s"
    ));
    let (mut control, (control_out, _)) = pages_beside_flood(
        &base,
        csrf0,
        flood_rate,
        FloodKind::StaticAsset,
        (page_conns, page_rate),
        make.clone(),
    )
    .await?;
    // The other half of the flood: its hashing alone, the same work at the same priority
    // in a process of its own, with no request. The flood's failing checks hold every
    // hashing worker but one, so that many threads.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = cores.saturating_sub(1).max(1);
    progress(format!(
        "page latency beside {threads} threads hashing at idle priority in another process, 10 s"
    ));
    let (mut hashing, hash_rate) =
        pages_beside_hashing_alone(threads, (page_conns, page_rate), make).await?;
    // The whole tail of each page row, to see where a p99 sits in it.
    let mut tails = Vec::new();
    for (name, o) in [
        ("idle", &mut idle),
        ("under the flood", &mut busy),
        ("beside the control", &mut control),
        ("beside the hashing alone", &mut hashing),
    ] {
        let ps: Vec<String> = [90.0, 95.0, 98.0, 99.0, 99.5, 99.9, 100.0]
            .iter()
            .map(|p| format!("p{p} {}", ms(o.percentile(*p))))
            .collect();
        tails.push(format!("{name}: {}", ps.join(", ")));
    }
    notes.push(format!(
        "Signed-in page latency, the tail: {}.",
        tails.join("; ")
    ));
    let idle_p99 = idle.percentile(99.0);
    let busy_p99 = busy.percentile(99.0);
    let slowdown = busy_p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9);
    let other_5xx: u64 = flood_out
        .statuses
        .iter()
        .filter(|(s, _)| **s >= 500 && **s != 503)
        .map(|(_, n)| n)
        .sum::<u64>()
        + busy
            .statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum::<u64>();
    let hashed = flood_out.count(401) as f64 / flood_out.elapsed.as_secs_f64();
    rows.push(row(
        format!("signed-in page p99, {page_rate:.0}/s paced, idle"),
        format!("p50 {}, p99 {}", ms(idle.percentile(50.0)), ms(idle_p99)),
        "",
        "",
    ));
    rows.push(row(
        format!(
            "… same under the flood ({}; pages {})",
            flood_out.statuses_text(),
            busy.statuses_text()
        ),
        format!(
            "p50 {}, p99 {} = **{slowdown:.2}×** idle; flood hashed {hashed:.0}/s = {:.2} of the limit",
            ms(busy.percentile(50.0)),
            ms(busy_p99),
            hashed / limit
        ),
        "≤ 2×, shed by 503/429, no other 5xx",
        verdict(
            slowdown <= 2.0
                && other_5xx == 0
                && busy.count(200) == busy.statuses.values().sum::<u64>()
                && busy.failed == 0
        ),
    ));
    rows.push(beside_row(
        format!(
            "… same beside the control: the flood's processes asking for the static asset instead ({}; pages {})",
            control_out.statuses_text(),
            control.statuses_text()
        ),
        &mut control,
        (idle_p99, busy_p99),
        "the sign-ins' own share",
    ));
    rows.push(beside_row(
        format!(
            "… same beside the flood's hashing alone: {threads} of {cores} cores verifying at idle priority in another process, {hash_rate:.0}/s, no requests (pages {})",
            hashing.statuses_text()
        ),
        &mut hashing,
        (idle_p99, busy_p99),
        "the flood's requests' own share",
    ));
    if skipped > 0 {
        notes.push(format!(
            "The flood skipped {skipped} attempts that were due while {FLOOD_IN_FLIGHT} were already open."
        ));
    }
    Ok(flood_hwm)
}

/// A page row measured beside part of the flood: its p99 against idle, and the flood's p99
/// against it (`share`: what the rest of the flood adds).
fn beside_row(
    what: String,
    pages: &mut Outcome,
    (idle_p99, flood_p99): (Duration, Duration),
    share: &str,
) -> Row {
    let p99 = pages.percentile(99.0);
    row(
        what,
        format!(
            "p50 {}, p99 {} = **{:.2}×** idle; {share}: flood p99 = **{:.2}×** this",
            ms(pages.percentile(50.0)),
            ms(p99),
            p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9),
            flood_p99.as_secs_f64() / p99.as_secs_f64().max(1e-9)
        ),
        "",
        "",
    )
}

/// Sign-ins with the right password for `conns` clients, each with a browser's CSRF
/// cookie and token of its own, each signing in as the seeded users in turn.
async fn sign_in_clients(
    http: &reqwest::Client,
    base: &str,
    conns: usize,
) -> anyhow::Result<MakeRequest> {
    let mut csrfs = Vec::new();
    for _ in 0..conns {
        csrfs.push(csrf(http, base).await?);
    }
    let (http, base) = (http.clone(), base.to_owned());
    Ok(Arc::new(move |i, k| {
        let n = FIRST_EXTENSION + (i as u64 * 7919 + k * 31) % SMALL_USERS;
        sign_in_request(&http, &base, &csrfs[i], &username(n), PASSWORD)
    }))
}

/// `BENCH_ONLY=flood`: only the rows of signed-in page latency, idle, under the sign-in
/// flood, beside its control and beside its hashing alone, for a quick look at what the
/// flood costs the pages.
async fn flood_only(server: &Server, rows: &mut Vec<Row>) -> anyhow::Result<Vec<String>> {
    let base = server.base.clone();
    let http = client(64)?;
    let csrf0 = csrf(&http, &base).await?;
    let (verify, _) = bare_verify_time(15).await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let limit = cores as f64 / verify.as_secs_f64();
    progress("signing in sessions for the page clients");
    let conns = cores * 3;
    let make = sign_in_clients(&http, &base, conns).await?;
    let mut signins = closed_loop(conns, Duration::from_secs(3), 200, 303, true, make).await;
    let sessions = Arc::new(std::mem::take(&mut signins.sessions));
    if sessions.is_empty() {
        bail!("no session from the sign-ins ({})", signins.statuses_text());
    }
    let mut notes =
        vec!["BENCH_ONLY=flood: only the page rows beside the flood were measured.".to_owned()];
    pages_under_flood(server, &http, &csrf0, &sessions, limit, rows, &mut notes).await?;
    Ok(notes)
}

/// `BENCH_ONLY=lookups`: only the rows of the credential lookup (and the static asset they
/// are compared with), for a quick look at the SIP server's hot path.
async fn lookups_only(
    server: &Server,
    tokens: &Tokens,
    data_dir: &Path,
    db: &str,
    large_users: u64,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Vec<String>> {
    let conns = 16;
    let http = client(conns)?;
    let base = server.base.clone();
    let make: MakeRequest = {
        let (http, base) = (http.clone(), base.clone());
        Arc::new(move |_, _| http.get(format!("{base}/static/app.css")))
    };
    let static_out = closed_loop(conns, Duration::from_secs(5), 1_000_000, 200, false, make).await;
    rows.extend(lookup_rows(server, &tokens.pbx, SMALL_USERS, static_out.rate()).await?);
    grow_directory(data_dir, db, &base, large_users).await?;
    rows.extend(lookup_rows(server, &tokens.pbx, large_users, static_out.rate()).await?);
    Ok(vec![
        "BENCH_ONLY=lookups: only the lookup rows were measured.".to_owned(),
    ])
}

/// How many lookups a second the paced phase offers: the target rate.
const LOOKUP_RATE: f64 = 20_000.0;
/// Connections of the paced phase: each sends one lookup every 3.2 ms at the target rate,
/// far more time than an answer takes, as a SIP server's many workers each ask for one
/// registration at a time.
const PACED_LOOKUP_CONNS: usize = 64;

/// The credential lookup's two rows for `users` users: the most it answers with 16
/// keep-alive clients asking back to back (its latency is then mostly the queue of those
/// clients), and its latency when lookups arrive at the target rate, paced, as phones'
/// registrations arrive at a SIP server.
async fn lookup_rows(
    server: &Server,
    token: &str,
    users: u64,
    static_rate: f64,
) -> anyhow::Result<[Row; 2]> {
    let conns = 16;
    progress(format!(
        "SIP credential lookups, {users} users: {conns} clients, 5 s"
    ));
    let mut most = credential_lookups(server, token, conns, users, None).await?;
    let (most_p50, most_p99) = (most.percentile(50.0), most.percentile(99.0));
    progress(format!(
        "SIP credential lookups, {users} users: {LOOKUP_RATE} a second, paced, 5 s"
    ));
    let mut at_rate =
        credential_lookups(server, token, PACED_LOOKUP_CONNS, users, Some(LOOKUP_RATE)).await?;
    let p99 = at_rate.percentile(99.0);
    Ok([
        row(
            format!(
                "SIP credential lookups, {conns} keep-alive clients back to back, {users} users ({})",
                most.statuses_text()
            ),
            format!(
                "**{:.0}/s** = {:.0} % of the static asset; p50 {}, p99 {}",
                most.rate(),
                most.rate() / static_rate.max(1e-9) * 100.0,
                ms(most_p50),
                ms(most_p99)
            ),
            "≥ 20,000/s",
            verdict(most.rate() >= LOOKUP_RATE),
        ),
        row(
            format!(
                "… paced at {LOOKUP_RATE:.0}/s over {PACED_LOOKUP_CONNS} keep-alive clients, {users} users ({})",
                at_rate.statuses_text()
            ),
            format!(
                "{:.0}/s answered; p50 {}, **p99 {}**",
                at_rate.rate(),
                ms(at_rate.percentile(50.0)),
                ms(p99)
            ),
            "≥ 20,000/s answered, p99 < 2 ms",
            // 2 % below the pace is the timer's slack, not the server falling behind.
            verdict(at_rate.rate() >= LOOKUP_RATE * 0.98 && p99 < Duration::from_millis(2)),
        ),
    ])
}

/// The SIP server's view: `conns` keep-alive clients looking up the credential of a
/// random extension among `users` on the internal listener, for 5 s, back to back or at
/// `rate` a second in all. The first look at an extension may reach the database; every
/// later one within the cache's freshness is answered from memory, as a registering
/// phone's would be.
async fn credential_lookups(
    server: &Server,
    token: &str,
    conns: usize,
    users: u64,
    rate: Option<f64>,
) -> anyhow::Result<Outcome> {
    let http = client(conns)?;
    let host = url::Url::parse(&server.base)?
        .host_str()
        .unwrap_or("localhost")
        .to_owned();
    let domain = format!("{TENANT}.sip.{host}");
    let make: MakeRequest = {
        let (internal, token) = (server.internal.clone(), token.to_owned());
        Arc::new(move |_, _| {
            let n = FIRST_EXTENSION + rand::thread_rng().gen_range(0..users);
            http.get(format!(
                "{internal}/pbx/v1/sip-credentials?user={n}&domain={domain}"
            ))
            .bearer_auth(&token)
        })
    };
    let out = match rate {
        None => closed_loop(conns, Duration::from_secs(5), 10_000_000, 200, false, make).await,
        Some(rate) => paced(conns, rate, Duration::from_secs(5), 200, make).await,
    };
    if out.count(200) == 0 {
        bail!(
            "no credential lookup answered 200 ({})",
            out.statuses_text()
        );
    }
    Ok(out)
}

// ---- measuring and reporting ----------------------------------------------------------

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB RAM", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {mem}")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Row {
    figure: String,
    value: String,
    target: String,
    result: String,
}

fn row(figure: impl Into<String>, value: impl Into<String>, target: &str, result: &str) -> Row {
    Row {
        figure: figure.into(),
        value: value.into(),
        target: target.to_owned(),
        result: result.to_owned(),
    }
}

async fn measure(
    bin: &Path,
    data_dir: &Path,
    db: &str,
    cores: usize,
    large_users: u64,
    label: &str,
) -> anyhow::Result<String> {
    let load_before = loadavg();
    let run_started = Instant::now();
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut rows = Vec::new();

    progress(format!("seeding {SMALL_USERS} users ({label})"));
    seed(
        data_dir,
        db,
        &base,
        FIRST_EXTENSION..FIRST_EXTENSION + SMALL_USERS,
        true,
    )
    .await?;

    let tokens = tokens(data_dir, db, &base).await?;
    progress("starting the server");
    let server = Server::start(bin, data_dir, db, port).await?;
    let result = phases(
        &server,
        &tokens,
        data_dir,
        db,
        cores,
        large_users,
        &mut rows,
    )
    .await;
    let (rss, hwm) = server.memory();
    let [anon, file] = server.status_kib(["RssAnon:", "RssFile:"]);
    server.stop().await;
    let notes = result?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nDialtone benchmark — {label}, {cores} cores ({}), load average before {load_before}, after {}; run took {:.0} s\n",
        machine(),
        loadavg(),
        run_started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "| figure | measured | target | |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.figure, r.value, r.target, r.result
        );
    }
    let _ = writeln!(
        out,
        "\nServer memory at the end: VmRSS {}, VmHWM {}. Of VmRSS, {} is the server's own \
         (RssAnon) and {} is files mapped into it (RssFile: the binary and, on SQLite, the \
         database file, counted once for each connection that maps it; these pages are the \
         operating system's cache of the file, shared and given back under pressure).",
        mib(rss),
        mib(hwm),
        mib(anon),
        mib(file)
    );
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn phases(
    server: &Server,
    tokens: &Tokens,
    data_dir: &Path,
    db: &str,
    cores: usize,
    large_users: u64,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Vec<String>> {
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("lookups") => {
            return lookups_only(server, tokens, data_dir, db, large_users, rows).await;
        }
        Ok("flood") => return flood_only(server, rows).await,
        _ => {}
    }
    let base = server.base.clone();
    let mut notes = Vec::new();
    let http = client(64)?;
    let csrf0 = csrf(&http, &base).await?;

    // Idle memory: after start-up and one sign-in and page load, nothing else running.
    let (signin_warm, page_warm) = scale_probe(&http, &base, &csrf0, SMALL_USERS, 3, 50).await?;
    let _ = (signin_warm, page_warm);
    let (_, idle_hwm) = server.memory();

    // 1. argon2id on this machine.
    progress("timing bare argon2id verify");
    let (verify, reused) = bare_verify_time(15).await?;
    let limit = cores as f64 / verify.as_secs_f64();
    let reused_limit = cores as f64 / reused.as_secs_f64();
    rows.push(row(
        "bare argon2id verify, median of 15 on one thread (the argon2 crate's verify)",
        ms(verify),
        "",
        "",
    ));
    rows.push(row(
        format!("hash-bound limit = {cores} cores ÷ verify"),
        format!("{limit:.1} sign-ins/s"),
        "",
        "",
    ));
    let parallel = bare_parallel_rate(cores, 30).await?;
    rows.push(row(
        "… the server's verify on reused memory, one thread; and bare on all cores at once",
        format!(
            "{} ({reused_limit:.1}/s over {cores} cores); all cores at once {parallel:.1}/s",
            ms(reused)
        ),
        "",
        "",
    ));

    // 2. Sign-in throughput: enough clients to fill every hashing worker and its queue.
    let conns = cores * 3;
    progress(format!("sign-in throughput: {conns} clients, 10 s"));
    let make = sign_in_clients(&http, &base, conns).await?;
    let mut signins = closed_loop(conns, Duration::from_secs(10), 5_000, 303, true, make).await;
    let fraction = signins.rate() / limit;
    rows.push(row(
        format!("sign-ins/s, {conns} clients ({})", signins.statuses_text()),
        format!(
            "{:.1}/s = **{fraction:.2}** of the limit; {:.2} of {cores} ÷ reused-memory verify; {:.2} of all cores at once (p50 {})",
            signins.rate(),
            signins.rate() / reused_limit,
            signins.rate() / parallel,
            ms(signins.percentile(50.0))
        ),
        "≥ 0.95",
        verdict(fraction >= 0.95),
    ));
    // 2b. A concurrency sweep: each sign-in a fresh browser (GET the form, POST it), each
    // client from its own address.
    for conns in [1usize, 6, 16, 64, 256] {
        progress(format!("sign-in sweep: {conns} fresh-browser clients, 8 s"));
        let mut out = fresh_browser_sign_ins(&base, conns, Duration::from_secs(8)).await?;
        let fraction = out.rate() / limit;
        let shed = out.count(503);
        let p99 = out.percentile(99.0);
        let target = match conns {
            1 => "",
            6 | 16 => "≥ 0.9 of the limit, no 503",
            64 => "≥ 0.9, no 503, p99 ≤ 2 s",
            _ => "≥ 0.9 of the limit",
        };
        let met = match conns {
            1 => true,
            6 | 16 => fraction >= 0.9 && shed == 0,
            64 => fraction >= 0.9 && shed == 0 && p99 <= Duration::from_secs(2),
            _ => fraction >= 0.9,
        };
        rows.push(row(
            format!(
                "sign-in sweep, {conns} fresh-browser clients ({})",
                out.statuses_text()
            ),
            format!(
                "{:.1}/s = **{fraction:.2}** of the limit; p50 {}, p99 {}; {shed} shed",
                out.rate(),
                ms(out.percentile(50.0)),
                ms(p99)
            ),
            target,
            if target.is_empty() { "" } else { verdict(met) },
        ));
    }
    // 2c. Open loop: sign-ins arriving at random at 50 % and 90 % of the limit.
    for share in [0.5, 0.9] {
        let rate = limit * share;
        progress(format!("open-loop sign-ins at {rate:.0}/s for 10 s"));
        let out = open_loop_sign_ins(&base, rate, Duration::from_secs(10)).await?;
        let total = out.statuses.values().sum::<u64>() + out.failed;
        let shed = out.count(503) as f64 / (total.max(1)) as f64;
        rows.push(row(
            format!(
                "open-loop sign-ins at {:.0} % of the limit ({})",
                share * 100.0,
                out.statuses_text()
            ),
            format!("**{:.2} %** shed", shed * 100.0),
            if share > 0.8 { "≤ 1 % shed" } else { "" },
            if share > 0.8 {
                verdict(shed <= 0.01)
            } else {
                ""
            },
        ));
    }

    // 2d. Two real users, each from their own address, during a flood from 200 others at
    // 5× the limit: one with a fresh browser every time, one whose browsers carry the
    // device cookie of an earlier sign-in (taken before the flood).
    let returning = username(FIRST_EXTENSION + 2);
    let device = match fresh_sign_in_with(&http, &base, "10.254.0.2", &returning, None).await {
        Some((303, _, Some(device))) => device,
        other => bail!(
            "the returning user's first sign-in set no device cookie ({:?})",
            other.map(|(status, _, _)| status)
        ),
    };
    progress("two legitimate users during a flood from 200 addresses, 10 s");
    let flood_task = flood_processes(
        &base,
        &csrf0,
        limit * 5.0,
        Duration::from_secs(10),
        200,
        FloodKind::SignIns,
    )?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first_timer = username(FIRST_EXTENSION + 1);
    let stranger = legitimate_user(
        &base,
        Duration::from_secs(8),
        &first_timer,
        "10.254.0.1",
        None,
    );
    let known = legitimate_user(
        &base,
        Duration::from_secs(8),
        &returning,
        "10.254.0.2",
        Some(device),
    );
    let (stranger, known) = tokio::join!(stranger, known);
    let (flood_out, _) = flood_task.await??;
    for (mut user, with_device, target) in [(stranger?, false, 0.9), (known?, true, 0.99)] {
        let attempts = user.statuses.values().sum::<u64>() + user.failed;
        let success = user.count(303) as f64 / attempts.max(1) as f64;
        let p99 = user.percentile(99.0);
        rows.push(row(
            format!(
                "a user's sign-ins, {}, during a flood at 5× the limit from 200 addresses (user {}; flood {})",
                if with_device { "with a device cookie" } else { "a fresh browser each time" },
                user.statuses_text(),
                flood_out.statuses_text()
            ),
            format!("**{:.0} %** succeed, p99 {}", success * 100.0, ms(p99)),
            if with_device {
                "≥ 99 %, p99 ≤ 2 s"
            } else {
                "≥ 90 %, p99 ≤ 2 s"
            },
            verdict(success >= target && p99 <= Duration::from_secs(2)),
        ));
    }

    let sessions = Arc::new(std::mem::take(&mut signins.sessions));
    if sessions.len() < 16 {
        bail!(
            "too few sessions from the sign-in phase ({})",
            sessions.len()
        );
    }

    // 3. Signed-in page vs a static asset, keep-alive, same clients.
    let conns = 16;
    progress(format!("static asset throughput: {conns} clients, 5 s"));
    let make: MakeRequest = {
        let (http, base, c) = (http.clone(), base.clone(), csrf0.clone());
        Arc::new(move |_, _| {
            http.get(format!("{base}/static/app.css")).header(
                reqwest::header::COOKIE,
                format!("{CSRF_COOKIE}={}", c.cookie),
            )
        })
    };
    let static_out = closed_loop(conns, Duration::from_secs(5), 1_000_000, 200, false, make).await;
    progress(format!("signed-in page throughput: {conns} clients, 5 s"));
    let make: MakeRequest = {
        let (http, base, c, s) = (http.clone(), base.clone(), csrf0.clone(), sessions.clone());
        Arc::new(move |i, _| page_request(&http, &base, &c, &s[i % s.len()]))
    };
    let mut pages = closed_loop(conns, Duration::from_secs(5), 1_000_000, 200, false, make).await;
    let page_ratio = pages.rate() / static_out.rate().max(1e-9);
    rows.push(row(
        format!("static asset /static/app.css, {conns} clients"),
        format!(
            "{:.0} req/s ({})",
            static_out.rate(),
            static_out.statuses_text()
        ),
        "",
        "",
    ));
    rows.extend(lookup_rows(server, &tokens.pbx, SMALL_USERS, static_out.rate()).await?);
    progress(format!(
        "JSON API, pages of {API_PAGE} users: {conns} clients, 5 s"
    ));
    let mut api = api_user_pages(server, &tokens.api, conns).await?;
    rows.push(row(
        format!(
            "JSON API GET /api/v1/tenants/{{code}}/users?limit={API_PAGE}, {conns} keep-alive clients, one provider token ({})",
            api.statuses_text()
        ),
        format!(
            "{:.0} pages/s = {:.0} % of the static asset; p50 {}, p99 {}",
            api.rate(),
            api.rate() / static_out.rate().max(1e-9) * 100.0,
            ms(api.percentile(50.0)),
            ms(api.percentile(99.0))
        ),
        "",
        "",
    ));
    rows.push(row(
        format!(
            "signed-in GET /phone, {conns} clients ({})",
            pages.statuses_text()
        ),
        format!(
            "{:.0} req/s = **{:.0} %** of static; p50 {}, p99 {}",
            pages.rate(),
            page_ratio * 100.0,
            ms(pages.percentile(50.0)),
            ms(pages.percentile(99.0))
        ),
        "≥ 50 %",
        verdict(page_ratio >= 0.5),
    ));

    // 4. Signed-in page loads at a steady pace, idle and under a sign-in flood.
    let flood_hwm =
        pages_under_flood(server, &http, &csrf0, &sessions, limit, rows, &mut notes).await?;
    rows.push(row(
        "peak resident memory (VmHWM), idle",
        mib(idle_hwm),
        "≤ 60 MiB",
        verdict(idle_hwm <= 60 * 1024),
    ));
    rows.push(row(
        "peak resident memory (VmHWM), after the flood",
        mib(flood_hwm),
        "≤ 150 MiB",
        verdict(flood_hwm <= 150 * 1024),
    ));

    // 5. Scale: one client at a time, 1,000 users, then the directory grown to `large`.
    progress("scale probe with 1,000 users");
    let (s_small, p_small) = scale_probe(&http, &base, &csrf0, SMALL_USERS, 100, 3000).await?;
    let seed_time = grow_directory(data_dir, db, &base, large_users).await?;
    rows.push(row(
        format!(
            "seeding {} more users (bulk, one precomputed hash)",
            large_users - SMALL_USERS
        ),
        format!("{:.1} s", seed_time.as_secs_f64()),
        "",
        "",
    ));
    progress(format!("scale probe with {large_users} users"));
    let (s_large, p_large) = scale_probe(&http, &base, &csrf0, large_users, 100, 3000).await?;
    rows.extend(lookup_rows(server, &tokens.pbx, large_users, static_out.rate()).await?);
    let s_ratio = s_large.as_secs_f64() / s_small.as_secs_f64().max(1e-9);
    let p_ratio = p_large.as_secs_f64() / p_small.as_secs_f64().max(1e-9);
    rows.push(row(
        format!("sign-in p50, 1 client: {SMALL_USERS} → {large_users} users"),
        format!("{} → {} = **{s_ratio:.2}×**", ms(s_small), ms(s_large)),
        "at most 20 % slower",
        verdict(s_ratio <= 1.2),
    ));
    rows.push(row(
        format!("signed-in page p50, 1 client: {SMALL_USERS} → {large_users} users"),
        format!("{} → {} = **{p_ratio:.2}×**", ms(p_small), ms(p_large)),
        "at most 20 % slower",
        verdict(p_ratio <= 1.2),
    ));
    Ok(notes)
}
