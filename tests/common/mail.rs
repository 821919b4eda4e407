//! Delivered mail, read as a mail client would: from the portal's mail folder or a
//! relay's Maildir.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A delivered message, parsed as a mail client would.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        let m = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("an RFC 5322 message");
        let first = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_owned()
        };
        Mail {
            to: first(m.to()),
            from: first(m.from()),
            subject: m.subject().unwrap_or_default().to_owned(),
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }

    /// Every reset link in the text part.
    pub fn links(&self) -> Vec<String> {
        self.text
            .split_whitespace()
            .filter(|w| w.contains("/password/reset?token="))
            .map(|w| w.to_owned())
            .collect()
    }
}

/// The path and query of an absolute link, to follow it on the test server.
pub fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).expect("absolute link");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// The token in a reset link.
pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

/// The files in `dir`, oldest (by name) first; none when it does not exist yet.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The `.eml` files in `dir`, oldest first.
pub fn eml_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files = files_in(dir);
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files
}

/// Waits (bounded) until `list` gives at least `n` files, and returns them parsed;
/// `what` names them in the failure.
pub async fn wait_for_messages(n: usize, what: &str, list: impl Fn() -> Vec<PathBuf>) -> Vec<Mail> {
    for _ in 0..300 {
        if list().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = list();
    assert!(
        files.len() >= n,
        "expected {n} {what}, found {}",
        files.len()
    );
    files
        .iter()
        .map(|p| Mail::parse(&std::fs::read(p).unwrap()))
        .collect()
}
