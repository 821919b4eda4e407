//! A real Kamailio running the shipped configuration (`contrib/kamailio/kamailio.cfg`) on
//! free ports of 127.0.0.1, and real SIP phones (pjsua2, `tests/sip/ua.py`) to register
//! with it. Each is killed when dropped; every wait is bounded.
//!
//! When Kamailio, its modules or pjsua2 are missing, [`missing`] says what; tests skip
//! with that reason unless `DIALTONE_TEST_REQUIRE_KAMAILIO` is set (CI sets it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
];
const MODULES: &[&str] = &[
    "http_client.so",
    "htable.so",
    "jansson.so",
    "jsonrpcs.so",
    "xhttp.so",
    "nathelper.so",
    "websocket.so",
    "auth_ephemeral.so",
];

/// The secret the test Kamailio shares with Dialtone for the softphone's credentials.
pub const EPHEMERAL_SECRET: &str = "test-ephemeral-secret-0123456789abcdef";

fn kamailio_binary() -> Option<PathBuf> {
    ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// What is missing to run the end-to-end suite, if anything.
pub fn missing() -> Option<String> {
    if kamailio_binary().is_none() {
        return Some("kamailio is not installed (apt-get install kamailio)".into());
    }
    let dir = MODULE_DIRS.iter().map(Path::new).find(|d| d.is_dir());
    let Some(dir) = dir else {
        return Some("Kamailio's module directory was not found".into());
    };
    if let Some(m) = MODULES.iter().find(|m| !dir.join(m).exists()) {
        return Some(format!(
            "Kamailio module {m} is missing (apt-get install kamailio-extra-modules kamailio-json-modules \
             kamailio-websocket-modules kamailio-autheph-modules)"
        ));
    }
    let pjsua = std::process::Command::new("python3")
        .args(["-c", "import pjsua2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !pjsua.is_ok_and(|s| s.success()) {
        return Some("python3 cannot import pjsua2 (pip install pjsua2-python)".into());
    }
    None
}

/// Whether to run: true when everything is there; otherwise prints why the test is skipped
/// and returns false — or fails, when `DIALTONE_TEST_REQUIRE_KAMAILIO` is set.
pub fn ready(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) if std::env::var_os("DIALTONE_TEST_REQUIRE_KAMAILIO").is_some() => {
            panic!("{test}: {why}, and DIALTONE_TEST_REQUIRE_KAMAILIO is set")
        }
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

pub use super::free_port;

/// The ports a Kamailio will use, chosen before Dialtone starts (Dialtone is told the
/// JSON-RPC address at start-up).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub sip: u16,
    pub rpc: u16,
    /// SIP over WebSocket, for the softphone.
    pub ws: u16,
}

impl Ports {
    pub fn pick() -> Ports {
        let sip = free_port();
        let mut rpc = free_port();
        while rpc == sip {
            rpc = free_port();
        }
        let mut ws = free_port();
        while ws == sip || ws == rpc {
            ws = free_port();
        }
        Ports { sip, rpc, ws }
    }

    /// What Dialtone's `sip_ws_url` names.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws)
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.rpc)
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip))
    }
}

/// A running Kamailio; killed (its whole process group) when dropped.
pub struct Kamailio {
    pub ports: Ports,
    child: Child,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// The shipped configuration with the settings at its top replaced.
pub fn configuration(settings: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/kamailio/kamailio.cfg");
    let mut cfg = std::fs::read_to_string(path).expect("contrib/kamailio/kamailio.cfg");
    for (name, value) in settings {
        let prefix = format!("#!substdef \"!{name}!");
        let line = cfg
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("the shipped configuration names no setting {name}"))
            .to_owned();
        cfg = cfg.replace(&line, &format!("#!substdef \"!{name}!{value}!g\""));
    }
    cfg
}

impl Kamailio {
    /// Starts Kamailio on `ports`, asking Dialtone's internal listener at `dialtone` with
    /// `token`; `extra` replaces more settings (like the ban threshold).
    pub async fn start(
        ports: Ports,
        dialtone: SocketAddr,
        token: &str,
        extra: &[(&str, &str)],
    ) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("http://{dialtone}");
        let sip = ports.sip.to_string();
        let rpc = ports.rpc.to_string();
        let ws = ports.ws.to_string();
        let mut settings = vec![
            ("SIP_PORT", sip.as_str()),
            ("RPC_PORT", rpc.as_str()),
            ("WS_PORT", ws.as_str()),
            ("EPHEMERAL_SECRET", EPHEMERAL_SECRET),
            ("DIALTONE_URL", url.as_str()),
            ("DIALTONE_TOKEN", token),
            ("WORKERS", "2"),
        ];
        settings.extend_from_slice(extra);
        let cfg = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg, configuration(&settings)).unwrap();
        let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
        let child = Command::new(kamailio_binary().expect("kamailio"))
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("kamailio starts");
        let k = Kamailio {
            ports,
            child,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        for _ in 0..200 {
            if k.try_rpc("core.version", serde_json::json!([]))
                .await
                .is_some()
            {
                return k;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Kamailio did not start; its log:\n{}", k.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    async fn try_rpc(&self, method: &str, params: Value) -> Option<Value> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        let r = self
            .http
            .post(self.ports.rpc_url())
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        serde_json::from_str(&r.text().await.ok()?).ok()
    }

    /// A JSON-RPC call; the whole answer (`result` or `error`).
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .await
            .unwrap_or_else(|| panic!("Kamailio's JSON-RPC did not answer {method}"))
    }

    /// How many contacts are registered for `EXT@DOMAIN`.
    pub async fn contacts(&self, aor: &str) -> usize {
        let answer = self
            .rpc("ul.lookup", serde_json::json!(["location", aor]))
            .await;
        answer["result"]["Contacts"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    }

    /// The contacts registered for `aor` once none are left, or when `within` has passed,
    /// whichever comes first (a change reaches Kamailio just after it commits).
    pub async fn contacts_left_after(&self, aor: &str, within: Duration) -> usize {
        let started = std::time::Instant::now();
        loop {
            let left = self.contacts(aor).await;
            if left == 0 || started.elapsed() >= within {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The HA1 cached for `EXT@DOMAIN`, if any.
    pub async fn cached_ha1(&self, aor: &str) -> Option<String> {
        let answer = self
            .rpc("htable.get", serde_json::json!(["ha1", aor]))
            .await;
        answer["result"]["item"]["value"]
            .as_str()
            .map(str::to_owned)
    }

    /// Whether Kamailio has banned the source address `addr` (it ignores it for a while).
    pub async fn banned(&self, addr: &str) -> bool {
        let answer = self
            .rpc("htable.get", serde_json::json!(["ban", addr]))
            .await;
        !answer["result"]["item"]["value"].is_null()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("Kamailio's log:\n{}", self.log());
        }
        // Kamailio forks its workers into the group it leads: end them all.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// A SIP phone (pjsua2) at 127.0.0.1, sending everything through one Kamailio.
pub struct Phone {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Phone {
    pub async fn start(kamailio: &Kamailio, user_agent: &str) -> Phone {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip/ua.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--proxy")
            .arg(kamailio.ports.sip_addr().to_string())
            .arg("--user-agent")
            .arg(user_agent)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the SIP phone");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut phone = Phone {
            child,
            stdin,
            lines,
        };
        let ready = phone.next_event().await;
        assert_eq!(ready["event"], "ready", "the phone starts: {ready}");
        phone
    }

    async fn send(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("the phone takes commands");
        self.stdin.flush().await.unwrap();
    }

    /// The phone's next event, waiting at most 15 seconds.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(15), self.lines.next_line())
                .await
                .expect("the phone answers within 15 s")
                .expect("the phone's output")
                .expect("the phone is running");
            // pjlib prints a banner of its own before the driver's first word.
            eprintln!("phone: {line}");
            if let Ok(event) = serde_json::from_str(&line) {
                return event;
            }
        }
    }

    /// The next event of `kind`, skipping others.
    pub async fn wait_for(&mut self, kind: &str) -> Value {
        loop {
            let e = self.next_event().await;
            assert_ne!(e["event"], "error", "the phone failed: {e}");
            if e["event"] == kind {
                return e;
            }
        }
    }

    /// Sends a registration of `ext` at `domain` with `secret`, without waiting for an
    /// answer (there may be none).
    pub async fn send_register(&mut self, ext: &str, domain: &str, secret: &str) {
        self.send(&format!("register {ext} {domain} {secret}"))
            .await;
    }

    /// Registers `ext` at `domain` with `secret`; the final SIP status code.
    pub async fn register(&mut self, ext: &str, domain: &str, secret: &str) -> u64 {
        self.send(&format!("register {ext} {domain} {secret}"))
            .await;
        self.wait_for("registration").await["code"]
            .as_u64()
            .unwrap()
    }

    /// Registers `ext` at `domain` authenticating as `auth_user` with `password` (the
    /// softphone's ephemeral credential); the final SIP status code.
    pub async fn register_as(
        &mut self,
        ext: &str,
        domain: &str,
        auth_user: &str,
        password: &str,
    ) -> u64 {
        self.send(&format!("register {ext} {domain} {password} {auth_user}"))
            .await;
        self.wait_for("registration").await["code"]
            .as_u64()
            .unwrap()
    }

    /// Calls `ext` in the phone's own domain; the event that ends the attempt's first
    /// stage (answered: `confirmed`; refused: `ended` with a code).
    pub async fn call(&mut self, ext: &str) -> Value {
        self.send(&format!("call {ext}")).await;
        self.wait_for("call").await
    }

    pub async fn hang_up(&mut self) -> Value {
        self.send("hangup").await;
        self.wait_for("call").await
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}
