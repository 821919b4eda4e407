//! Fuzzing on the stable toolchain (proptest): the parsers of usernames, extensions,
//! tenant codes, emails, passwords, PINs, durations and the CSRF token get arbitrary
//! text, and the running portal gets arbitrary form bodies and cookies. Nothing may
//! panic; a parser that accepts gives back what it accepted; the portal answers every
//! request with a page, never a 5xx or a framework's error text.
//!
//! The committed corpus (`tests/fuzz/corpus.txt`, one input a line, `\n` `\r` `\t` `\0`
//! `\\` escaped) runs first, then random cases: `DIALTONE_FUZZ_CASES` for the parsers
//! (default 4000 each) and a tenth of it for the HTTP cases.

mod common;

use common::*;
use dialtone::auth::csrf;
use dialtone::auth::key::SecretKey;
use dialtone::config::Layers;
use dialtone::domain::{
    Email, Extension, NewPassword, OperatorName, PasswordContext, Pin, TenantCode, Username,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> u32 {
    std::env::var("DIALTONE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4000)
}

fn corpus() -> Vec<String> {
    include_str!("fuzz/corpus.txt")
        .lines()
        .map(|l| {
            let mut out = String::new();
            let mut chars = l.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('0') => out.push('\0'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            }
            out
        })
        .collect()
}

/// Text a fuzzer would send: any Unicode, or strings close to the valid shapes.
fn input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-zA-Z@.\\- _%+]{0,40}",
        "[0-9]{1,12}-[a-z][a-z0-9\\-]{0,34}",
        "[a-z0-9.+]{1,20}@[a-z0-9\\-.]{1,20}",
        "[0-9]{0,12}[smhd ]{0,3}[0-9]{0,4}[a-z]{0,3}",
        proptest::sample::select(corpus()),
    ]
}

/// Runs `check` on every corpus line and then on `cases()` random inputs.
fn fuzz(name: &str, check: impl Fn(&str) -> Result<(), TestCaseError>) {
    for line in corpus() {
        check(&line).unwrap_or_else(|e| panic!("{name}: corpus input {line:?}: {e}"));
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input(), |s| check(&s))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let n = u64::from(cases()) + corpus().len() as u64;
    eprintln!("fuzz {name}: {n} inputs");
}

#[test]
fn usernames_extensions_tenant_codes_and_operator_names_parse_without_panic_and_round_trip() {
    fuzz("usernames", |s| {
        if let Ok(u) = Username::parse(s) {
            prop_assert_eq!(
                Username::parse(&u.to_string()).ok().map(|v| v.to_string()),
                Some(u.to_string())
            );
            prop_assert!(u.to_string().is_ascii());
        }
        if let Ok(e) = Extension::parse(s) {
            prop_assert!(e.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
        if let Ok(t) = TenantCode::parse(s) {
            prop_assert_eq!(
                TenantCode::parse(t.as_str()).ok().map(|v| v.to_string()),
                Some(t.to_string())
            );
        }
        if let Ok(o) = OperatorName::parse(s) {
            prop_assert_eq!(
                OperatorName::parse(o.as_str()).ok().map(|v| v.to_string()),
                Some(o.to_string())
            );
        }
        Ok(())
    });
}

#[test]
fn emails_parse_without_panic_and_never_hold_a_line_break() {
    fuzz("emails", |s| {
        if let Ok(e) = Email::parse(s) {
            prop_assert!(!e.as_str().contains(['\r', '\n', '\0']), "{:?}", e.as_str());
            prop_assert_eq!(
                Email::parse(e.as_str()).ok().map(|v| v.to_string()),
                Some(e.to_string())
            );
        }
        Ok(())
    });
}

#[test]
fn passwords_and_pins_parse_without_panic() {
    let user = Username::parse(USER).expect("valid");
    let ext = Extension::parse("201").expect("valid");
    fuzz("passwords and PINs", |s| {
        let ctx = PasswordContext {
            username: Some(&user),
            pin: Some("4821"),
            sip_secret: None,
            operator: None,
        };
        match NewPassword::parse(s, &ctx) {
            Ok(p) => prop_assert!(p.expose().chars().count() >= NewPassword::MIN_CHARS),
            Err(problems) => prop_assert!(!problems.is_empty()),
        }
        if let Ok(pin) = Pin::parse(s, &ext) {
            prop_assert!(pin.expose().bytes().all(|b| b.is_ascii_digit()));
        }
        Ok(())
    });
}

#[test]
fn durations_in_settings_are_taken_or_refused_by_name_never_panicked_on() {
    fuzz("durations", |s| {
        let mut layers = Layers::default();
        layers.set("session_idle", s);
        layers.set("lockout_window", s);
        match layers.resolve() {
            Ok(settings) => prop_assert!(!settings.lockout_window.is_zero()),
            Err(e) => prop_assert!(e.to_string().contains("DIALTONE_"), "{}", e),
        }
        Ok(())
    });
}

#[test]
fn a_csrf_token_verifies_only_for_its_own_cookie() {
    let key = SecretKey::random();
    fuzz("csrf tokens", |s| {
        prop_assert!(!csrf::verify(&key, s, s));
        prop_assert!(!csrf::verify(&key, "cookie", s));
        let token = csrf::form_token(&key, s);
        prop_assert!(csrf::verify(&key, s, &token));
        Ok(())
    });
}

/// Routes that read a form, and the field names they know.
const ROUTES: &[&str] = &[
    "/login",
    "/logout",
    "/password/forgot",
    "/password/reset",
    "/settings/password",
    "/settings/pin",
    "/settings/question",
    "/phone/sip/regenerate",
    "/admin/users",
    "/operator/login",
];
const FIELDS: &[&str] = &[
    "username",
    "password",
    "identifier",
    "current_password",
    "new_password",
    "confirm_password",
    "pin",
    "confirm_pin",
    "question",
    "answer",
    "email",
    "token",
    "csrf_token",
];

#[derive(Debug, Clone)]
enum Body {
    Fields(Vec<(String, String)>),
    Raw(Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    let name = prop_oneof![
        proptest::sample::select(FIELDS).prop_map(str::to_owned),
        input()
    ];
    prop_oneof![
        proptest::collection::vec((name, input()), 0..6).prop_map(Body::Fields),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Raw),
    ]
}

fn cookie() -> impl Strategy<Value = Option<String>> {
    let value = "[ -~]{0,80}";
    proptest::option::of(prop_oneof![
        value.prop_map(|v| format!("dialtone_session={v}")),
        value.prop_map(|v| format!("dialtone_csrf={v}")),
        (value, value).prop_map(|(a, b)| format!("dialtone_session={a}; dialtone_csrf={b}")),
        value.prop_map(|v| format!("dialtone_operator={v}")),
        value.prop_map(|v| v),
    ])
}

/// What only a framework or a database would write into a response.
const LEAKS: &[&str] = &[
    "Failed to deserialize",
    "sqlx",
    "panicked",
    "SQLITE",
    "syntax error",
    "Form requests must",
];

#[test]
fn random_forms_and_cookies_are_answered_without_a_5xx_or_internal_text() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (app, signed_in, token) = rt.block_on(async {
        let app = spawn_app().await;
        app.add_admin().await;
        let b = app.signed_in_user().await;
        let token = b.csrf().await;
        (app, b, token)
    });
    let anonymous = plain_client();
    let http_cases = (cases() / 10).max(50);
    let mut runner = TestRunner::new(Config {
        cases: http_cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        proptest::sample::select(ROUTES),
        body(),
        cookie(),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(route, body, cookie, as_user)| {
            let url = app.url(route);
            let request = if as_user {
                signed_in.client.post(&url)
            } else {
                let r = anonymous.post(&url);
                match &cookie {
                    Some(c) => r.header(reqwest::header::COOKIE, c),
                    None => r,
                }
            };
            let request = match body {
                Body::Fields(mut fields) => {
                    if as_user {
                        fields.push(("csrf_token".into(), token.clone()));
                    }
                    request.form(&fields)
                }
                Body::Raw(bytes) => request
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(bytes),
            };
            let (status, text) = rt.block_on(async {
                let r = request.send().await.expect("the portal answers");
                let status = r.status();
                (status, r.text().await.unwrap_or_default())
            });
            prop_assert!(!status.is_server_error(), "{route}: {status}: {text}");
            for leak in LEAKS {
                prop_assert!(
                    !text.contains(leak),
                    "{route}: {status} shows {leak:?}: {text}"
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("fuzz http: {http_cases} requests");
    rt.block_on(async { drop(app) });
}
