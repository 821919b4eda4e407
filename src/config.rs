//! Settings: defaults → `dialtone.toml` → `DIALTONE_*` environment → command-line flags.
//! A bad value or an unknown key stops start-up with a message naming it; secrets are
//! redacted from `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

/// Every key that may be set, as written in `dialtone.toml`; the environment name is
/// `DIALTONE_` followed by the key in capitals.
pub const KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "listen",
    "public_url",
    "mail",
    "mail_from",
    "provider_name",
    "secret_key_file",
    "session_idle",
    "session_max",
    "lockout_attempts",
    "lockout_window",
    "lockout_duration",
    "address_attempts",
    "reset_ttl",
    "signin_queue_wait",
    "mail_poll",
    "hash_workers",
    "trusted_proxies",
    "log",
    "log_format",
    "internal_listen",
    "kamailio_rpc",
    "sip_ws_url",
    "sip_ephemeral_secret_file",
    "api_rate_limit",
    "audit_retention",
];

/// The most hashing threads one server starts: each hashes with its own 19 MiB, and more
/// than there are cores only take turns.
const MAX_HASH_WORKERS: u32 = 256;

/// Environment variables with the prefix that are not settings but are still expected.
const ENV_NOT_SETTINGS: &[&str] = &["DIALTONE_CONFIG"];

/// A setting that could not be used, naming it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn bad(key: &str, why: impl fmt::Display) -> Self {
        ConfigError(format!(
            "{key} (DIALTONE_{}) {why}",
            key.to_ascii_uppercase()
        ))
    }
}

/// Where mail goes.
#[derive(Clone, PartialEq, Eq)]
pub enum MailSetting {
    /// Each message one `.eml` file in `DATA_DIR/mail/`.
    File,
    /// Each message written to the log (without secrets).
    Log,
    /// An SMTP relay, `smtp://user:pass@host:port`.
    Smtp(Url),
}

impl fmt::Debug for MailSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailSetting::File => f.write_str("file"),
            MailSetting::Log => f.write_str("log"),
            MailSetting::Smtp(url) => write!(f, "{}", redact_url(url)),
        }
    }
}

fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("REDACTED"));
    }
    shown.to_string()
}

/// The running configuration, fully parsed and checked.
#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub mail: MailSetting,
    pub mail_from: String,
    pub provider_name: String,
    pub secret_key_file: PathBuf,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub lockout_attempts: u32,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    /// Failed sign-ins from one client address, across usernames, before it is slowed.
    pub address_attempts: u32,
    /// JSON API requests one token may make per minute.
    pub api_rate_limit: u32,
    pub reset_ttl: Duration,
    /// How long a sign-in may wait for a hashing worker before it is shed with 503: the
    /// queue holds this much hashing work at the measured time of one hash.
    pub signin_queue_wait: Duration,
    /// How often the mail worker looks for due messages when nothing woke it.
    pub mail_poll: Duration,
    /// Threads that hash passwords at once; 0 means one per core.
    pub hash_workers: usize,
    /// Load balancers whose `X-Forwarded-For` is believed for the client's address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub log: String,
    /// `text` (default) or `json`: one JSON object per log line.
    pub log_format: crate::telemetry::LogFormat,
    /// The internal listener (PBX credential lookup); `None` when set to `off`.
    pub internal_listen: Option<SocketAddr>,
    /// Kamailio's JSON-RPC URL, told when a SIP secret changes; `None` when unset.
    pub kamailio_rpc: Option<Url>,
    /// How long audit events are kept before they are purged.
    pub audit_retention: Duration,
    /// The Phone tab's softphone; `None` unless both of its settings are given.
    pub softphone: Option<SoftphoneSetting>,
}

/// Where the softphone registers and the secret Kamailio's `auth_ephemeral` shares
/// (`sip_ws_url`, `sip_ephemeral_secret_file`).
#[derive(Clone)]
pub struct SoftphoneSetting {
    /// The SIP-over-WebSocket address, `wss://…` (or `ws://…`).
    pub ws_url: Url,
    /// The shared secret, read from the file at start-up.
    pub secret: secrecy::SecretString,
}

impl fmt::Debug for SoftphoneSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftphoneSetting")
            .field("ws_url", &self.ws_url.as_str())
            .field("secret", &"REDACTED")
            .finish()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let db = Url::parse(&self.database_url)
            .map(|u| redact_url(&u))
            .unwrap_or_else(|_| "<unparsable>".to_owned());
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("database_url", &db)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url.as_str())
            .field("mail", &self.mail)
            .field("mail_from", &self.mail_from)
            .field("session_idle", &self.session_idle)
            .field("session_max", &self.session_max)
            .field("lockout_attempts", &self.lockout_attempts)
            .field("lockout_window", &self.lockout_window)
            .field("lockout_duration", &self.lockout_duration)
            .field("reset_ttl", &self.reset_ttl)
            .field("signin_queue_wait", &self.signin_queue_wait)
            .field("audit_retention", &self.audit_retention)
            .finish_non_exhaustive()
    }
}

/// Raw values by key, before parsing; later layers overwrite earlier ones.
#[derive(Debug, Default, Clone)]
pub struct Layers(BTreeMap<String, String>);

impl Layers {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_owned(), value.into());
    }

    /// Reads a `dialtone.toml`; unknown keys and non-scalar values are errors.
    pub fn add_toml(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            // Where and what only: the parser's own text quotes the line, which may hold
            // a secret (a mail URL's password) and would go to the log.
            let at = e.span().map_or(String::new(), |span| {
                let before = &text.as_bytes()[..span.start.min(text.len())];
                let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
                format!(" at line {line}, column {column}")
            });
            let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            ConfigError(format!("{} is not valid TOML{at}: {what}", path.display()))
        })?;
        for (key, value) in table {
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError(format!(
                    "unknown key `{key}` in {}",
                    path.display()
                )));
            }
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(ConfigError::bad(
                        &key,
                        format!("must be a string or a number, not {}", other.type_str()),
                    ))
                }
            };
            self.set(&key, value);
        }
        Ok(())
    }

    /// Reads `DIALTONE_*` variables; an unknown one is an error (a typo must not be ignored).
    pub fn add_env(
        &mut self,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("DIALTONE_") else {
                continue;
            };
            if ENV_NOT_SETTINGS.contains(&name.as_str()) || rest.starts_with("TEST_") {
                continue;
            }
            let key = rest.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError(format!("unknown setting {name}")));
            }
            self.set(&key, value);
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Parses every value, applying defaults for the rest.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let data_dir = PathBuf::from(self.get("data_dir").unwrap_or("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::bad("data_dir", "must not be empty"));
        }
        let database_url = match self.get("database_url") {
            Some(url) => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"))
                {
                    return Err(ConfigError::bad(
                        "database_url",
                        "must start with sqlite:// or postgres://",
                    ));
                }
                url.to_owned()
            }
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("dialtone.db").display()
            ),
        };
        let listen = self
            .get("listen")
            .unwrap_or("127.0.0.1:8080")
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::bad("listen", "must be an address like 127.0.0.1:8080"))?;
        let public_url = Url::parse(self.get("public_url").unwrap_or("http://localhost:8080"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ConfigError::bad("public_url", "must be an http:// or https:// URL"))?;
        let mail = match self.get("mail").unwrap_or("file") {
            "file" => MailSetting::File,
            "log" => MailSetting::Log,
            other => match Url::parse(other) {
                Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.host().is_some() => {
                    MailSetting::Smtp(url)
                }
                _ => {
                    return Err(ConfigError::bad(
                        "mail",
                        "must be file, log or smtp://user:pass@host:port",
                    ))
                }
            },
        };
        let mail_from = self
            .get("mail_from")
            .unwrap_or("Dialtone <no-reply@localhost>")
            .to_owned();
        if mail_from.trim().is_empty() || mail_from.chars().any(char::is_control) {
            return Err(ConfigError::bad("mail_from", "must be a mail address"));
        }
        let provider_name = self.get("provider_name").unwrap_or("Dialtone").to_owned();
        let secret_key_file = self
            .get("secret_key_file")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("secret.key"));

        let session_idle = self.seconds("session_idle", "4h")?;
        let session_max = self.seconds("session_max", "12h")?;
        if session_max < session_idle {
            return Err(ConfigError::bad(
                "session_max",
                "must not be shorter than session_idle",
            ));
        }
        let settings = Settings {
            data_dir,
            database_url,
            listen,
            public_url,
            mail,
            mail_from,
            provider_name,
            secret_key_file,
            session_idle,
            session_max,
            lockout_attempts: self.count("lockout_attempts", 5)?,
            lockout_window: self.seconds("lockout_window", "15m")?,
            lockout_duration: self.seconds("lockout_duration", "15m")?,
            address_attempts: self.count("address_attempts", 20)?,
            api_rate_limit: self.count("api_rate_limit", 600)?,
            reset_ttl: self.seconds("reset_ttl", "1h")?,
            signin_queue_wait: self.duration("signin_queue_wait", "2s")?,
            mail_poll: self.duration("mail_poll", "5s")?,
            hash_workers: match self.count("hash_workers", 0)? {
                n if n > MAX_HASH_WORKERS => {
                    return Err(ConfigError::bad(
                        "hash_workers",
                        format!("must be at most {MAX_HASH_WORKERS} (one per core is enough; 0 for one per core)"),
                    ))
                }
                n => n as usize,
            },
            trusted_proxies: self
                .get("trusted_proxies")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse().map_err(|_| {
                        ConfigError::bad("trusted_proxies", format!("`{p}` is not an IP address"))
                    })
                })
                .collect::<Result<_, _>>()?,
            log: {
                let filter = self.get("log").unwrap_or("info");
                if tracing_subscriber::EnvFilter::try_new(filter).is_err() {
                    return Err(ConfigError::bad(
                        "log",
                        "must be a log filter like info, warn or dialtone=debug,info",
                    ));
                }
                filter.to_owned()
            },
            log_format: {
                let raw = self.get("log_format").unwrap_or("text");
                crate::telemetry::LogFormat::parse(raw)
                    .ok_or_else(|| ConfigError::bad("log_format", "must be text or json"))?
            },
            internal_listen: match self.get("internal_listen").unwrap_or("127.0.0.1:8081") {
                "off" => None,
                a => Some(a.parse().map_err(|_| {
                    ConfigError::bad(
                        "internal_listen",
                        "must be an address like 127.0.0.1:8081 or off",
                    )
                })?),
            },
            kamailio_rpc: self
                .get("kamailio_rpc")
                .map(|u| {
                    Url::parse(u)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                        .ok_or_else(|| ConfigError::bad("kamailio_rpc", "must be an http:// or https:// URL, like http://10.0.0.5:5071/RPC"))
                })
                .transpose()?,
            softphone: self.softphone()?,
            audit_retention: self.seconds("audit_retention", "400d")?,
        };
        Ok(settings)
    }

    /// Both softphone settings or neither; the secret file is read now, so a missing or
    /// weak one stops start-up.
    fn softphone(&self) -> Result<Option<SoftphoneSetting>, ConfigError> {
        let (url, file) = match (
            self.get("sip_ws_url"),
            self.get("sip_ephemeral_secret_file"),
        ) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(ConfigError::bad(
                    "sip_ephemeral_secret_file",
                    "must be set when sip_ws_url is",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::bad(
                    "sip_ws_url",
                    "must be set when sip_ephemeral_secret_file is",
                ))
            }
            (Some(url), Some(file)) => (url, file),
        };
        let ws_url = Url::parse(url.trim())
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "ws" | "wss")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.fragment().is_none()
            })
            .ok_or_else(|| {
                ConfigError::bad(
                    "sip_ws_url",
                    "must be a wss:// (or ws://) URL without credentials",
                )
            })?;
        let raw = std::fs::read_to_string(file).map_err(|e| {
            ConfigError::bad(
                "sip_ephemeral_secret_file",
                format!("cannot be read ({file}: {})", e.kind()),
            )
        })?;
        let secret = raw.trim();
        let usable = secret.len() >= 16
            && secret.len() <= 256
            && secret
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'!' | b'\\'));
        if !usable {
            return Err(ConfigError::bad(
                "sip_ephemeral_secret_file",
                "must hold one secret of 16 to 256 visible ASCII characters without \" ! or \\ \
                 (for example the output of `openssl rand -hex 32`)",
            ));
        }
        Ok(Some(SoftphoneSetting {
            ws_url,
            secret: secrecy::SecretString::from(secret.to_owned()),
        }))
    }

    fn duration(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        let raw = self.get(key).unwrap_or(default);
        let d = humantime::parse_duration(raw.trim()).map_err(|_| {
            ConfigError::bad(key, format!("`{raw}` is not a duration like 3s, 15m or 4h"))
        })?;
        if d.is_zero() {
            return Err(ConfigError::bad(key, "must be longer than zero"));
        }
        Ok(d)
    }

    /// A duration compared with stored timestamps, which are kept to the second: a part
    /// of a second counts as a whole one (`900ms` is 1 s, never no time at all).
    fn seconds(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        let d = self.duration(key, default)?;
        Ok(Duration::from_secs(
            d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)),
        ))
    }

    fn count(&self, key: &str, default: u32) -> Result<u32, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if n > 0 || key == "hash_workers" => Ok(n),
                _ => Err(ConfigError::bad(
                    key,
                    format!("`{raw}` must be a positive whole number"),
                )),
            },
        }
    }
}

impl Settings {
    /// Defaults with everything under `data_dir`, for unit tests.
    #[cfg(test)]
    pub(crate) fn with_data_dir(data_dir: &Path) -> Result<Settings, ConfigError> {
        let mut layers = Layers::default();
        layers.set("data_dir", data_dir.display().to_string());
        layers.resolve()
    }

    /// Whether cookies must be `Secure` and `__Host-` prefixed.
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Layers::default().resolve().unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url.as_str(), "http://localhost:8080/");
        assert_eq!(s.session_idle, Duration::from_secs(4 * 3600));
        assert_eq!(s.session_max, Duration::from_secs(12 * 3600));
        assert_eq!(s.lockout_attempts, 5);
        assert_eq!(s.lockout_window, Duration::from_secs(15 * 60));
        assert_eq!(s.reset_ttl, Duration::from_secs(3600));
        assert!(s.database_url.starts_with("sqlite://"));
        assert_eq!(s.mail, MailSetting::File);
    }

    #[test]
    fn the_environment_overrides_defaults_and_durations_take_seconds() {
        let mut l = Layers::default();
        l.add_env(env(&[("DIALTONE_SESSION_IDLE", "3s"), ("PATH", "/bin")]))
            .unwrap();
        assert_eq!(l.resolve().unwrap().session_idle, Duration::from_secs(3));
    }

    #[test]
    fn an_unknown_environment_setting_stops_start_up_naming_it() {
        let err = Layers::default()
            .add_env(env(&[("DIALTONE_SESION_IDLE", "4h")]))
            .unwrap_err();
        assert!(err.to_string().contains("DIALTONE_SESION_IDLE"));
    }

    #[test]
    fn bad_values_are_named() {
        for (key, value) in [
            ("session_idle", "0s"),
            ("session_idle", "soon"),
            ("lockout_attempts", "0"),
            ("lockout_attempts", "-3"),
            ("listen", "everywhere"),
            ("public_url", "ftp://x"),
            ("mail", "carrier-pigeon"),
            ("hash_workers", "100000"),
            ("log", "bad[[["),
        ] {
            let mut l = Layers::default();
            l.set(key, value);
            let err = l.resolve().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn a_part_of_a_second_counts_as_a_whole_one_where_times_are_kept_to_the_second() {
        let mut l = Layers::default();
        l.set("lockout_window", "900ms");
        l.set("reset_ttl", "1m 500ms");
        l.set("signin_queue_wait", "1500ms");
        let s = l.resolve().unwrap();
        assert_eq!(s.lockout_window, Duration::from_secs(1));
        assert_eq!(s.reset_ttl, Duration::from_secs(61));
        assert_eq!(s.signin_queue_wait, Duration::from_millis(1500));
    }

    #[test]
    fn a_session_cap_shorter_than_the_idle_time_is_refused() {
        let mut l = Layers::default();
        l.set("session_idle", "4h");
        l.set("session_max", "1h");
        assert!(l.resolve().unwrap_err().to_string().contains("session_max"));
    }

    #[test]
    fn an_unknown_toml_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialtone.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlockout_attempts = 7\nsesion_idle = \"4h\"\n",
        )
        .unwrap();
        let err = Layers::default().add_toml(&path).unwrap_err().to_string();
        assert!(err.contains("sesion_idle"), "{err}");
    }

    #[test]
    fn a_toml_syntax_error_says_where_without_quoting_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialtone.toml");
        let text =
            "listen = \"127.0.0.1:9000\"\nmail = \"smtp://billing:S3cretPass@mail.example:587\n";
        std::fs::write(&path, text).unwrap();
        let err = Layers::default().add_toml(&path).unwrap_err().to_string();
        assert!(err.contains("at line 2"), "{err}");
        assert!(!err.contains("S3cretPass") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn toml_numbers_and_strings_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialtone.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlockout_attempts = 7\n").unwrap();
        let mut l = Layers::default();
        l.add_toml(&path).unwrap();
        let s = l.resolve().unwrap();
        assert_eq!(s.lockout_attempts, 7);
        assert_eq!(s.listen.port(), 9000);
    }

    #[test]
    fn the_softphone_needs_both_settings_a_websocket_url_and_a_readable_secret() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("secret");
        std::fs::write(&good, "0123456789abcdef0123456789abcdef\n").unwrap();
        let weak = dir.path().join("weak");
        std::fs::write(&weak, "short").unwrap();
        let good = good.display().to_string();
        let weak = weak.display().to_string();
        let missing = dir.path().join("missing").display().to_string();

        assert!(Layers::default().resolve().unwrap().softphone.is_none());
        let mut l = Layers::default();
        l.set("sip_ws_url", "wss://sip.example.com:8443/ws");
        l.set("sip_ephemeral_secret_file", good.as_str());
        let s = l.resolve().unwrap().softphone.unwrap();
        assert_eq!(s.ws_url.as_str(), "wss://sip.example.com:8443/ws");
        assert!(!format!("{s:?}").contains("0123456789abcdef"));

        for (url, file, named) in [
            (
                Some("https://sip.example.com"),
                Some(good.as_str()),
                "sip_ws_url",
            ),
            (Some("wss://"), Some(good.as_str()), "sip_ws_url"),
            (
                Some("wss://u:p@sip.example.com"),
                Some(good.as_str()),
                "sip_ws_url",
            ),
            (
                Some("wss://sip.example.com"),
                None,
                "sip_ephemeral_secret_file",
            ),
            (None, Some(good.as_str()), "sip_ws_url"),
            (
                Some("wss://sip.example.com"),
                Some(missing.as_str()),
                "sip_ephemeral_secret_file",
            ),
            (
                Some("wss://sip.example.com"),
                Some(weak.as_str()),
                "sip_ephemeral_secret_file",
            ),
        ] {
            let mut l = Layers::default();
            if let Some(u) = url {
                l.set("sip_ws_url", u);
            }
            if let Some(f) = file {
                l.set("sip_ephemeral_secret_file", f);
            }
            let err = l.resolve().unwrap_err().to_string();
            assert!(err.contains(named), "{url:?} {file:?}: {err}");
            assert!(!err.contains("short"), "the secret is never shown: {err}");
        }
    }

    #[test]
    fn debug_output_hides_passwords() {
        let mut l = Layers::default();
        l.set("mail", "smtp://relay:hunter2@mail.example.com:587");
        l.set("database_url", "postgres://dial:s3cret@db/dialtone");
        let shown = format!("{:?}", l.resolve().unwrap());
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
