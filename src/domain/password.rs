//! The portal password policy: NFKC normalisation and `NewPassword`, a password that passed every rule.
//!
//! One policy applies wherever a password is set (change, reset, first sign-in, generated
//! temporary passwords), and [`normalize`] is applied both when a password is set and when
//! one is checked at sign-in, so `ｐａｓｓ` and `pass` are the same password.

use std::fmt;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

use super::{OperatorName, Username};

/// The common/breached password list: one lowercase password per line, compiled in.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// What is left of a password once its trailing digits and punctuation are stripped must
/// have at least this many characters to be looked up, so a short stem never condemns it.
const MIN_COMMON_BASE_CHARS: usize = 4;

/// Normalises a password to Unicode NFKC, the form it is hashed and compared in.
///
/// Call it on the raw input at sign-in as at set time; [`NewPassword::parse`] already does.
/// Nothing is trimmed: spaces are part of a password.
pub fn normalize(raw: &str) -> String {
    raw.nfkc().collect()
}

/// What the policy needs to know about the account whose password is being set.
/// Leave a field `None` when it does not apply (an account with no PIN yet, say).
#[derive(Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    /// The account's username; the password may not be it, its extension or tenant code.
    pub username: Option<&'a Username>,
    /// An operator's name (operators have no username); the password may not be it.
    pub operator: Option<&'a OperatorName>,
    /// The voicemail PIN; the password may not be or contain it.
    pub pin: Option<&'a str>,
    /// The SIP secret; the password may not be or contain it.
    pub sip_secret: Option<&'a str>,
}

impl fmt::Debug for PasswordContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: Option<&str>| secret.map(|_| "<redacted>");
        f.debug_struct("PasswordContext")
            .field("username", &self.username)
            .field("operator", &self.operator)
            .field("pin", &redacted(self.pin))
            .field("sip_secret", &redacted(self.sip_secret))
            .finish()
    }
}

/// A new portal password that passed every rule, held in NFKC form.
///
/// Its `Debug` is redacted and it has no `Display`; [`NewPassword::expose`] is for the hasher.
#[derive(Clone)]
pub struct NewPassword(String);

/// A password rule that a candidate password broke. [`NewPassword::parse`] reports every
/// broken rule at once, in [`PasswordProblem::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer than 8 characters.
    TooShort,
    /// More than 128 characters (never silently cut).
    TooLong,
    /// No lowercase letter, in any script.
    NoLowercase,
    /// No uppercase letter, in any script.
    NoUppercase,
    /// Holds a control character (tab, line break, NUL, ...).
    ControlCharacter,
    /// Is the username, the extension or the tenant code, in any letter case.
    SameAsUsername,
    /// Is or contains the voicemail PIN or the SIP secret.
    ContainsSecret,
    /// Is on the list of common or breached passwords, perhaps with digits or punctuation added at the end.
    Common,
}

impl PasswordProblem {
    /// Every rule, in the order a form lists the ones a password broke.
    pub const ALL: [Self; 8] = [
        Self::TooShort,
        Self::TooLong,
        Self::NoLowercase,
        Self::NoUppercase,
        Self::ControlCharacter,
        Self::SameAsUsername,
        Self::ContainsSecret,
        Self::Common,
    ];

    /// A sentence for the form, explaining the rule.
    pub fn message(&self) -> &'static str {
        match self {
            Self::TooShort => "Use at least 8 characters.",
            Self::TooLong => "Use at most 128 characters.",
            Self::NoLowercase => "Include at least one lowercase letter.",
            Self::NoUppercase => "Include at least one uppercase letter.",
            Self::ControlCharacter => {
                "Remove control characters such as tabs or line breaks."
            }
            Self::SameAsUsername => {
                "Don't use your username, extension or tenant code as your password."
            }
            Self::ContainsSecret => {
                "Don't use your voicemail PIN or SIP secret in your password."
            }
            Self::Common => {
                "This password is too common or has appeared in a data breach; choose one that is harder to guess."
            }
        }
    }
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl NewPassword {
    /// Fewest characters (Unicode scalar values, after NFKC) a password may have.
    pub const MIN_CHARS: usize = 8;
    /// Most characters (Unicode scalar values, after NFKC) a password may have.
    pub const MAX_CHARS: usize = 128;

    /// Normalises `raw` to NFKC and checks it against every rule, returning all the
    /// problems found (never an empty `Vec`) or the accepted password.
    pub fn parse(raw: &str, ctx: &PasswordContext<'_>) -> Result<Self, Vec<PasswordProblem>> {
        let password = normalize(raw);
        let problems = problems(&password, ctx);
        if problems.is_empty() {
            Ok(Self(password))
        } else {
            Err(problems)
        }
    }

    /// The normalised password, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

/// Every rule `password` (already NFKC) breaks, in [`PasswordProblem::ALL`] order.
fn problems(password: &str, ctx: &PasswordContext<'_>) -> Vec<PasswordProblem> {
    let candidate = Candidate {
        password,
        chars: password.chars().count(),
        lower: password.to_lowercase(),
    };
    PasswordProblem::ALL
        .into_iter()
        .filter(|rule| rule.broken_by(&candidate, ctx))
        .collect()
}

/// A password being checked, with what several rules read of it worked out once.
struct Candidate<'a> {
    password: &'a str,
    chars: usize,
    lower: String,
}

impl PasswordProblem {
    /// Whether `candidate` breaks this rule.
    fn broken_by(self, candidate: &Candidate<'_>, ctx: &PasswordContext<'_>) -> bool {
        let Candidate {
            password,
            chars,
            lower,
        } = candidate;
        match self {
            Self::TooShort => *chars < NewPassword::MIN_CHARS,
            Self::TooLong => *chars > NewPassword::MAX_CHARS,
            Self::NoLowercase => !password.chars().any(char::is_lowercase),
            Self::NoUppercase => !password.chars().any(char::is_uppercase),
            Self::ControlCharacter => password.chars().any(char::is_control),
            Self::SameAsUsername => {
                ctx.username
                    .is_some_and(|username| is_username(lower.trim(), username))
                    || ctx
                        .operator
                        .is_some_and(|name| lower.trim() == name.as_str())
            }
            Self::ContainsSecret => [ctx.pin, ctx.sip_secret]
                .into_iter()
                .flatten()
                .any(|secret| contains_secret(lower, secret)),
            Self::Common => is_common(lower),
        }
    }
}

/// Whether `lower` (a lowercased password) is the username or one of its halves. The
/// username's parts are already lowercase.
fn is_username(lower: &str, username: &Username) -> bool {
    let extension = username.extension().as_str();
    let tenant = username.tenant().as_str();
    lower == extension
        || lower == tenant
        || lower
            .strip_prefix(extension)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| rest == tenant)
}

/// Whether `lower` (a lowercased password) contains `secret`, compared in the same
/// normalised, lowercased form. A blank secret is no secret.
fn contains_secret(lower: &str, secret: &str) -> bool {
    let secret = normalize(secret.trim()).to_lowercase();
    !secret.is_empty() && lower.contains(&secret)
}

/// Whether `lower` (a lowercased password) is common: on the list as it is, or once
/// trailing punctuation, or trailing digits and punctuation, are stripped
/// (`password2024!`, `qwerty123`), as long as what is left has at least 4 characters.
fn is_common(lower: &str) -> bool {
    let trailing_punctuation = |c: char| c.is_ascii_punctuation() || c.is_whitespace();
    let without_punctuation = lower.trim_end_matches(trailing_punctuation);
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit() || trailing_punctuation(c));
    is_listed(lower)
        || [without_punctuation, base]
            .into_iter()
            .any(|stem| stem.chars().count() >= MIN_COMMON_BASE_CHARS && is_listed(stem))
}

fn is_listed(candidate: &str) -> bool {
    common_passwords()
        .binary_search_by(|entry| (**entry).cmp(candidate))
        .is_ok()
}

/// The common list, sorted and deduplicated once, for binary search.
fn common_passwords() -> &'static [Box<str>] {
    static LIST: OnceLock<Vec<Box<str>>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<Box<str>> = COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.to_lowercase().into_boxed_str())
            .collect();
        list.sort_unstable();
        list.dedup();
        list
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    use PasswordProblem::*;

    fn problems_of(raw: &str) -> Vec<PasswordProblem> {
        problems_with(raw, &PasswordContext::default())
    }

    fn problems_with(raw: &str, ctx: &PasswordContext<'_>) -> Vec<PasswordProblem> {
        match NewPassword::parse(raw, ctx) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    /// A context with only a voicemail PIN and a SIP secret.
    fn secrets<'a>(pin: &'a str, sip_secret: &'a str) -> PasswordContext<'a> {
        PasswordContext {
            pin: Some(pin),
            sip_secret: Some(sip_secret),
            ..PasswordContext::default()
        }
    }

    fn accepted(raw: &str) -> bool {
        NewPassword::parse(raw, &PasswordContext::default()).is_ok()
    }

    #[test]
    fn a_good_password_is_accepted_as_typed() {
        let password =
            NewPassword::parse("Tiled-Kettle-Orbit-58", &PasswordContext::default()).unwrap();
        assert_eq!(password.expose(), "Tiled-Kettle-Orbit-58");
    }

    #[test]
    fn a_password_needs_at_least_eight_characters() {
        assert_eq!(problems_of("Zq7-wx"), vec![TooShort]);
        assert!(accepted("Zq7-wxMp"));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Eight characters, sixteen bytes.
        assert_eq!("ÄöÜßäÖüé".len(), 16);
        assert!(accepted("ÄöÜßäÖüé"));
        assert!(accepted("Жюльен-Ёж"));
        assert_eq!(problems_of("ÄöÜßäÖü"), vec![TooShort]);
    }

    #[test]
    fn a_password_of_one_hundred_twenty_nine_characters_is_refused_not_cut() {
        let longest = format!("Aa{}", "x7".repeat(63));
        assert_eq!(longest.chars().count(), 128);
        assert!(accepted(&longest));
        let too_long = format!("{longest}y");
        assert_eq!(problems_of(&too_long), vec![TooLong]);
    }

    #[test]
    fn a_password_needs_a_lowercase_and_an_uppercase_letter_in_any_script() {
        assert_eq!(problems_of("TILED-KETTLE-58"), vec![NoLowercase]);
        assert_eq!(problems_of("tiled-kettle-58"), vec![NoUppercase]);
        assert_eq!(
            problems_of("58-58-58-58-58"),
            vec![NoLowercase, NoUppercase]
        );
        assert!(accepted("Ωμέγα-λάμδα-58"), "Greek cases count");
        assert!(accepted("Москва-река-58"), "Cyrillic cases count");
    }

    #[test]
    fn a_caseless_script_needs_a_cased_letter_too() {
        assert_eq!(
            problems_of("日本語のパスワード"),
            vec![NoLowercase, NoUppercase]
        );
        assert!(accepted("日本語のパスワードAb"));
    }

    #[test]
    fn a_password_may_not_hold_control_characters() {
        for raw in [
            "Tiled\tKettle58",
            "Tiled\nKettle58",
            "Tiled\0Kettle58",
            "Tiled\u{7f}Kettle",
        ] {
            assert_eq!(problems_of(raw), vec![ControlCharacter], "{raw:?}");
        }
        assert!(accepted("Tiled Kettle 58"), "spaces are fine");
    }

    #[test]
    fn passwords_are_nfkc_normalised() {
        assert_eq!(normalize("ｐａｓｓ①"), "pass1");
        assert_eq!(normalize("e\u{301}"), "é");
        let typed = NewPassword::parse("Ｔｉｌｅｄ-Ｋｅｔｔｌｅ-５８", &PasswordContext::default())
            .unwrap();
        assert_eq!(typed.expose(), "Tiled-Kettle-58");
        assert_eq!(typed.expose(), normalize("Tiled-Kettle-58"));
    }

    #[test]
    fn normalising_keeps_spaces_at_the_ends() {
        assert_eq!(normalize("  Tiled Kettle  "), "  Tiled Kettle  ");
    }

    #[test]
    fn a_password_may_not_be_the_username_extension_or_tenant_code() {
        let username = Username::parse("20158-wickedsprockets").unwrap();
        let ctx = PasswordContext {
            username: Some(&username),
            ..PasswordContext::default()
        };
        assert_eq!(problems_with("WickedSprockets", &ctx), vec![SameAsUsername]);
        assert_eq!(
            problems_with("20158-WickedSprockets", &ctx),
            vec![SameAsUsername]
        );
        assert_eq!(
            problems_with(" 20158-WICKEDsprockets ", &ctx),
            vec![SameAsUsername]
        );
        assert_eq!(
            problems_with("20158", &ctx),
            vec![TooShort, NoLowercase, NoUppercase, SameAsUsername]
        );
        assert!(problems_with("WickedSprockets-Tiled", &ctx).is_empty());
    }

    #[test]
    fn a_password_may_not_be_or_contain_the_pin_or_sip_secret() {
        let ctx = secrets("2580", "Xk9vQ2mPz7Lr");
        assert_eq!(problems_with("Tiled2580Kettle", &ctx), vec![ContainsSecret]);
        assert_eq!(problems_with("Xk9vQ2mPz7Lr", &ctx), vec![ContainsSecret]);
        assert_eq!(
            problems_with("my-xk9vq2mpz7lr-Secret", &ctx),
            vec![ContainsSecret],
            "compared case-insensitively"
        );
        assert!(problems_with("Tiled2581Kettle", &ctx).is_empty());
    }

    #[test]
    fn a_blank_pin_or_sip_secret_is_ignored() {
        let ctx = secrets("", "   ");
        assert!(problems_with("Tiled-Kettle-58", &ctx).is_empty());
    }

    #[test]
    fn a_common_password_is_refused_in_any_case() {
        for raw in [
            "Password", "PASSWORD", "Sunshine", "Iloveyou", "Football", "Letmein!",
        ] {
            assert!(problems_of(raw).contains(&Common), "{raw:?}");
        }
    }

    #[test]
    fn a_common_password_with_digits_or_punctuation_added_is_refused() {
        for raw in [
            "Password2024!",
            "Qwerty123",
            "Dragon!!",
            "Monkey1234",
            "Welcome2025?",
            "Summer2024",
            "Michael1985",
            "P@ssw0rd1",
            "Liverpool2024",
            "December31!",
            "Tr0ub4dor&3",
            "CorrectHorseBatteryStaple",
            "correcthorsebatterystaple1!",
        ] {
            assert!(problems_of(raw).contains(&Common), "{raw:?}");
        }
    }

    #[test]
    fn a_common_word_inside_a_longer_password_is_fine() {
        for raw in [
            "Correct-Horse-7",
            "Sunshine-Kettle-58",
            "Tiled-Password-Orbit",
            "MyDragonEatsKettles",
            "2024Password-Tiled",
            "Sprocket-Tuesday-42",
        ] {
            assert!(accepted(raw), "{raw:?}: {:?}", problems_of(raw));
        }
    }

    #[test]
    fn an_operator_may_not_use_their_own_name() {
        let name = OperatorName::parse("Ops2Admin").unwrap();
        let ctx = PasswordContext {
            operator: Some(&name),
            ..PasswordContext::default()
        };
        assert_eq!(problems_with("Ops2Admin", &ctx), vec![SameAsUsername]);
        assert_eq!(
            problems_with("Ops2Admin", &PasswordContext::default()),
            vec![]
        );
    }

    #[test]
    fn every_failed_rule_is_reported_at_once() {
        let username = Username::parse("201-wickedsprockets").unwrap();
        let ctx = PasswordContext {
            username: Some(&username),
            pin: Some("201"),
            sip_secret: None,
            operator: None,
        };
        assert_eq!(
            problems_with("201", &ctx),
            vec![
                TooShort,
                NoLowercase,
                NoUppercase,
                SameAsUsername,
                ContainsSecret
            ]
        );
        assert_eq!(
            problems_with("password\n", &PasswordContext::default()),
            vec![NoUppercase, ControlCharacter, Common]
        );
        assert_eq!(
            problems_with("", &PasswordContext::default()),
            vec![TooShort, NoLowercase, NoUppercase]
        );
    }

    #[test]
    fn a_one_megabyte_password_is_refused_without_panicking() {
        let huge = "Aa1!".repeat(1 << 18);
        assert_eq!(problems_of(&huge), vec![TooLong]);
    }

    #[test]
    fn a_new_password_never_shows_in_debug_output() {
        let password = NewPassword::parse("Tiled-Kettle-58", &PasswordContext::default()).unwrap();
        assert_eq!(format!("{password:?}"), "NewPassword(<redacted>)");
        let ctx = secrets("2580", "Xk9vQ2mPz7Lr");
        let shown = format!("{ctx:?}");
        assert!(
            !shown.contains("2580") && !shown.contains("Xk9vQ2mPz7Lr"),
            "{shown}"
        );
    }

    #[test]
    fn every_password_problem_has_a_sentence() {
        let all = PasswordProblem::ALL;
        assert_eq!(TooShort.message(), "Use at least 8 characters.");
        assert_eq!(TooLong.message(), "Use at most 128 characters.");
        let messages: HashSet<_> = all.iter().map(PasswordProblem::message).collect();
        assert_eq!(messages.len(), all.len());
        for problem in all {
            assert!(problem.message().ends_with('.'), "{problem:?}");
            assert_eq!(problem.to_string(), problem.message());
        }
    }

    #[test]
    fn the_common_list_is_large_lowercase_and_free_of_duplicates() {
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        let distinct: HashSet<&str> = lines.iter().copied().collect();
        assert_eq!(distinct.len(), lines.len(), "duplicate lines");
        assert!(lines.len() >= 1500, "only {} entries", lines.len());
        for line in &lines {
            assert_eq!(*line, line.trim(), "{line:?} has spaces around it");
            assert_eq!(*line, line.to_lowercase(), "{line:?} is not lowercase");
            assert!(line.chars().count() >= 4, "{line:?} is too short to matter");
            assert!(!line.chars().any(char::is_whitespace), "{line:?}");
        }
        assert!(lines.contains(&"correcthorsebatterystaple"));
        assert!(!lines.iter().any(|line| line.contains("sprocket")));
        assert_eq!(common_passwords().len(), lines.len());
    }

    proptest! {
        #[test]
        fn parsing_any_string_gives_a_password_or_some_problems(raw in any::<String>()) {
            match NewPassword::parse(&raw, &PasswordContext::default()) {
                Ok(password) => prop_assert_eq!(password.expose(), normalize(&raw)),
                Err(problems) => prop_assert!(!problems.is_empty()),
            }
        }

        #[test]
        fn parsing_with_a_full_context_never_panics(
            raw in any::<String>(),
            pin in any::<String>(),
            secret in any::<String>(),
        ) {
            let username = Username::parse("201-wickedsprockets").unwrap();
            let operator = OperatorName::parse("ops.admin").unwrap();
            let ctx = PasswordContext {
                username: Some(&username),
                pin: Some(&pin),
                sip_secret: Some(&secret),
                operator: Some(&operator),
            };
            if let Err(problems) = NewPassword::parse(&raw, &ctx) {
                prop_assert!(!problems.is_empty());
            }
        }

        #[test]
        fn an_accepted_password_is_eight_to_one_hundred_twenty_eight_characters(
            raw in "[a-zA-Z0-9 !-]{0,140}",
        ) {
            if let Ok(password) = NewPassword::parse(&raw, &PasswordContext::default()) {
                let chars = password.expose().chars().count();
                prop_assert!((8..=128).contains(&chars));
            }
        }

        #[test]
        fn normalising_twice_changes_nothing(raw in any::<String>()) {
            let once = normalize(&raw);
            prop_assert_eq!(normalize(&once), once.clone());
        }
    }
}
