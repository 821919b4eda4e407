//! Domain types parsed once at the edge (usernames, tenant codes, SIP domains, emails,
//! passwords, PINs, a tenant's two-step requirement), so an invalid one cannot exist past
//! it.
//!
//! Every type here has a private field and a `parse` constructor; the web layer and the CLI
//! turn user input into these types and show the error's message when that fails. The
//! services below them never re-check what a type already guarantees.

mod display_name;
mod email;
mod passkey_name;
/// Public as a module too: sign-in calls `password::normalize` on the typed password.
pub mod password;
mod pin;
mod security_question;
mod sip_domain;
mod two_step_requirement;
mod username;

pub use display_name::DisplayName;
pub use email::Email;
pub use passkey_name::PasskeyName;
pub use password::{normalize, NewPassword, PasswordContext, PasswordProblem};
pub use pin::{Pin, PinProblem};
pub use security_question::{SecurityAnswer, SecurityQuestion, SUGGESTED_QUESTIONS};
pub use sip_domain::SipDomain;
pub use two_step_requirement::TwoStepRequirement;
pub use username::{Extension, OperatorName, Role, TenantCode, Username};

/// Why a piece of user input is not a valid domain value; each variant is named after the
/// type that refused it.
///
/// Each message is a complete sentence meant for the person filling in the form (the SIP
/// domain's keeps the words the CLI and the API have always printed); it never repeats the
/// input back (so it is safe to show and to log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Not 1 to 10 ASCII digits.
    #[error("The extension must be 1 to 10 digits.")]
    Extension,
    /// Not a tenant code (see [`TenantCode`] for the exact rules).
    #[error(
        "The tenant code (Client ID) must be 2 to 32 letters, digits or single hyphens, \
         start with a letter and not end with a hyphen."
    )]
    TenantCode,
    /// Not `extension-tenantcode`.
    #[error(
        "Sign in with your extension, a hyphen and your tenant code, for example 201-wickedsprockets."
    )]
    Username,
    /// Neither `user` nor `admin`.
    #[error("The role must be \"user\" or \"admin\".")]
    Role,
    /// Not an operator name (see [`OperatorName`]).
    #[error(
        "The operator name must be 2 to 64 letters, digits, dots, underscores or hyphens, \
         starting with a letter."
    )]
    OperatorName,
    /// Not an email address we can send mail to (see [`Email`]).
    #[error("Enter a valid email address, for example name@example.com.")]
    Email,
    /// Not a display name (see [`DisplayName`]).
    #[error(
        "Enter a name of 1 to 100 characters, without line breaks or other control characters."
    )]
    DisplayName,
    /// Not a passkey name (see [`PasskeyName`]).
    #[error(
        "Name the passkey with 1 to 60 characters, without line breaks or other control characters."
    )]
    PasskeyName,
    /// Not a security question (see [`SecurityQuestion`]).
    #[error("Write a question of 10 to 150 characters on one line.")]
    SecurityQuestion,
    /// Not a host name a tenant's phones can register at (see [`SipDomain`]).
    #[error("invalid SIP domain: use a host name like sip.example.com")]
    SipDomain,
    /// Not a security answer (see [`SecurityAnswer`]).
    #[error(
        "The answer must have at least 3 letters or digits (spaces and punctuation do not count) \
         and at most 100 characters."
    )]
    SecurityAnswer,
}

/// `raw` trimmed, when it is one line of `min` to `max` characters (no control
/// characters): a name or question as a person writes it.
fn one_line(raw: &str, min: usize, max: usize) -> Option<&str> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    ((min..=max).contains(&len) && !trimmed.chars().any(char::is_control)).then_some(trimmed)
}

/// Declares a text type of the domain: a newtype over its canonical text, whose one
/// constructor is `parse` (what a person typed, trimmed, then the type's own
/// `parse_trimmed`; refused as the [`DomainError`] variant of the type's name), with
/// `as_str`, `Display` and `FromStr`.
macro_rules! text_type {
    ($(#[$attr:meta])* pub struct $t:ident;) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $t(String);

        impl $t {
            /// Parses what a person typed, trimming surrounding whitespace.
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                Self::parse_trimmed(raw.trim()).ok_or(DomainError::$t)
            }

            /// `raw` when it already is the canonical text, with nothing to trim or
            /// lowercase: how a machine (a path, a cursor) names one.
            pub fn canonical(raw: &str) -> Option<Self> {
                Self::parse(raw).ok().filter(|v| v.as_str() == raw)
            }

            /// The canonical text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        display_as_str!($t);
        from_str_by_parse!($t);
    };
}
use text_type;

/// `Display` of domain types: the canonical text their `as_str` gives.
macro_rules! display_as_str {
    ($($t:ident),+) => {
        $(impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        })+
    };
}
use display_as_str;

/// `FromStr` of domain types: their `parse`.
macro_rules! from_str_by_parse {
    ($($t:ident),+) => {
        $(impl std::str::FromStr for $t {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        })+
    };
}
use from_str_by_parse;

/// Asserts that `parse` refuses every one of `bad` with `expected`, naming the input that
/// was not refused.
#[cfg(test)]
fn assert_refuses_all<T, E: std::fmt::Debug + PartialEq + Clone>(
    parse: impl Fn(&str) -> Result<T, E>,
    bad: &[&str],
    expected: E,
) {
    for raw in bad {
        assert_eq!(parse(raw).err(), Some(expected.clone()), "{raw:?}");
    }
}

/// Asserts the rules of a one-line text type of at most `max_chars` characters: `example`
/// is kept with surrounding whitespace trimmed; blank, over-long and control-character
/// inputs are refused; `max_chars` non-ASCII characters are accepted.
#[cfg(test)]
fn assert_one_trimmed_line<T: std::fmt::Display>(
    parse: impl Fn(&str) -> Result<T, DomainError>,
    max_chars: usize,
    example: &str,
) {
    let kept = parse(&format!("  {example}\t")).map(|v| v.to_string());
    assert_eq!(kept.as_deref(), Ok(example));
    let too_long = "x".repeat(max_chars + 1);
    let with_nul = format!("{example}\u{0}");
    let with_break = format!("{example}\nTwo");
    for raw in ["", "   ", &too_long, &with_nul, &with_break] {
        assert!(parse(raw).is_err(), "{raw:?}");
    }
    assert!(parse(&"é".repeat(max_chars)).is_ok());
}
