//! Telemetry: the log subscriber (`text` for people, `json` for a log shipper) and the
//! Prometheus metrics every part of the portal reports to.
//!
//! Metrics go through the `metrics` facade into one process-wide Prometheus recorder,
//! installed on first use; `GET /metrics` on the internal listener renders it. Labels
//! carry outcomes, routes (the matched pattern, never the raw URL) and status codes only:
//! never a username, an address or anything a client typed.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Label;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How log lines are written (`DIALTONE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    Text,
    /// One JSON object per line: time, level, target, message, and the request's fields.
    Json,
}

impl LogFormat {
    pub fn parse(raw: &str) -> Option<LogFormat> {
        match raw.trim() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Starts the log subscriber on standard error; `filter` is used unless `RUST_LOG` is set.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: under systemd or in a file, the escape
    // codes would end up in the journal as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The request span's fields (request id, route) go into each line of the request,
        // flattened next to the event's own, so a shipper can index them directly.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Latency buckets, in seconds: a cached page takes about a millisecond, a sign-in with
/// argon2id a few hundred, anything past ten is a problem.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed on first use. `None` only when another recorder
/// was installed first (then this process's metrics are that recorder's business).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "dialtone_sign_ins_total",
        "Customer sign-in attempts by outcome"
    );
    describe_counter!(
        "dialtone_lockouts_total",
        "Usernames locked after too many failed sign-ins"
    );
    describe_counter!(
        "dialtone_hashing_shed_total",
        "Password hashes refused at once because the pool and its queue were full"
    );
    describe_gauge!(
        "dialtone_hashing_in_use",
        "Password hashes running on the pool now"
    );
    describe_gauge!(
        "dialtone_hashing_queued",
        "Password hashes admitted and waiting for a hashing thread"
    );
    describe_gauge!("dialtone_outbox_depth", "Mail queued and not yet sent");
    describe_gauge!(
        "dialtone_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest queued mail (0 when the queue is empty)"
    );
    describe_counter!(
        "dialtone_pbx_lookups_total",
        "SIP credential lookups by the phone system, by outcome"
    );
    describe_histogram!(
        "dialtone_pbx_lookup_duration_seconds",
        Unit::Seconds,
        "Time to answer a SIP credential lookup"
    );
    describe_counter!(
        "dialtone_http_requests_total",
        "HTTP requests by listener, route pattern and status"
    );
    describe_histogram!(
        "dialtone_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by listener, route pattern and status"
    );
}

/// The outcomes a sign-in is counted under.
#[derive(Debug, Clone, Copy)]
pub enum SignInOutcome {
    Ok,
    WrongPassword,
    Locked,
    SlowedDown,
    Busy,
    TemporaryExpired,
    Suspended,
    Error,
}

impl SignInOutcome {
    fn as_str(self) -> &'static str {
        match self {
            SignInOutcome::Ok => "ok",
            SignInOutcome::WrongPassword => "wrong_password",
            SignInOutcome::Locked => "locked",
            SignInOutcome::SlowedDown => "slowed_down",
            SignInOutcome::Busy => "busy",
            SignInOutcome::TemporaryExpired => "temporary_expired",
            SignInOutcome::Suspended => "suspended",
            SignInOutcome::Error => "error",
        }
    }
}

pub fn sign_in(outcome: SignInOutcome) {
    metrics::counter!("dialtone_sign_ins_total", "outcome" => outcome.as_str()).increment(1);
}

pub fn lockout() {
    metrics::counter!("dialtone_lockouts_total").increment(1);
}

pub fn hashing_shed() {
    metrics::counter!("dialtone_hashing_shed_total").increment(1);
}

/// `outcome`: `found`, `not_found`, `unauthorized`, `bad_request` or `error`.
pub fn pbx_lookup(outcome: &'static str, took: Duration) {
    metrics::counter!("dialtone_pbx_lookups_total", "outcome" => outcome).increment(1);
    metrics::histogram!("dialtone_pbx_lookup_duration_seconds", "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// One answered HTTP request; `route` is the matched pattern or `unmatched`.
pub fn http_request(listener: &'static str, route: &str, status: u16, took: Duration) {
    let labels = vec![
        Label::new("listener", listener),
        Label::new("route", route.to_owned()),
        Label::new("status", status.to_string()),
    ];
    metrics::counter!("dialtone_http_requests_total", labels.clone()).increment(1);
    metrics::histogram!("dialtone_http_request_duration_seconds", labels)
        .record(took.as_secs_f64());
}

/// The levels sampled when `/metrics` is read.
pub struct Levels {
    pub hashing_in_use: usize,
    pub hashing_queued: usize,
    pub outbox_depth: i64,
    pub outbox_oldest_age: Duration,
}

pub fn set_levels(l: &Levels) {
    metrics::gauge!("dialtone_hashing_in_use").set(l.hashing_in_use as f64);
    metrics::gauge!("dialtone_hashing_queued").set(l.hashing_queued as f64);
    metrics::gauge!("dialtone_outbox_depth").set(l.outbox_depth as f64);
    metrics::gauge!("dialtone_outbox_oldest_age_seconds").set(l.outbox_oldest_age.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("JSON5"), None);
    }

    #[test]
    fn recorded_series_are_rendered_with_the_prefix_and_no_personal_labels() {
        let handle = metrics_handle().expect("the recorder installs in a test binary");
        sign_in(SignInOutcome::WrongPassword);
        http_request("public", "/login", 200, Duration::from_millis(3));
        let text = handle.render();
        assert!(
            text.contains("dialtone_sign_ins_total{outcome=\"wrong_password\"}"),
            "{text}"
        );
        assert!(text.contains(
            "dialtone_http_request_duration_seconds_bucket{listener=\"public\",route=\"/login\",status=\"200\",le=\"0.005\"}"
        ), "{text}");
    }
}
