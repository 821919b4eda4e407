//! Sign-in identities: `Extension`, `TenantCode`, `Username` (`201-wickedsprockets`), `Role` and `OperatorName`.
//!
//! Each type is parsed once from what a person typed: surrounding whitespace is trimmed and
//! letters are lowercased, so the stored value is always the canonical form and two inputs
//! that name the same account compare equal.

use std::fmt;
use std::ops::RangeInclusive;

use super::{display_as_str, from_str_by_parse, text_type, DomainError};

text_type! {
    /// A phone extension: 1 to 10 ASCII digits, unique within a tenant.
    ///
    /// Leading zeros are kept (`007` and `7` are different extensions, as on the PBX).
    pub struct Extension;
}

impl Extension {
    /// How many digits an extension may have.
    pub const DIGITS: RangeInclusive<usize> = 1..=10;

    fn parse_trimmed(s: &str) -> Option<Self> {
        let valid = Self::DIGITS.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Self(s.to_owned()))
    }
}

text_type! {
    /// A tenant's code, also called its Client ID: `wickedsprockets`.
    ///
    /// 2 to 32 characters of `a-z`, `0-9` and `-`; the first is a letter, the last is not a
    /// hyphen, and two hyphens never stand side by side (so a code is also a valid DNS label
    /// and can name the tenant's SIP domain). Input is trimmed and compared case-insensitively:
    /// `WickedSprockets` is stored as `wickedsprockets`.
    pub struct TenantCode;
}

impl TenantCode {
    /// How many characters a tenant code may have.
    pub const CHARS: RangeInclusive<usize> = 2..=32;

    fn parse_trimmed(s: &str) -> Option<Self> {
        ascii_name(s, Self::CHARS, b"-")
            .filter(|code| !code.ends_with('-') && !code.contains("--"))
            .map(Self)
    }
}

/// The name a user signs in with: extension, hyphen, tenant code — `201-wickedsprockets`.
///
/// Parsing trims the input and splits it at the first hyphen (an extension never holds
/// one, a tenant code may). No whitespace is allowed inside. Displays in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username {
    extension: Extension,
    tenant: TenantCode,
}

impl Username {
    /// Builds a username from its two already-parsed halves.
    pub fn new(extension: Extension, tenant: TenantCode) -> Self {
        Self { extension, tenant }
    }

    /// Parses `201-WickedSprockets ` and the like. Any malformed input gives
    /// [`DomainError::Username`], whose message shows the expected form.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let (extension, tenant) = raw.trim().split_once('-').ok_or(DomainError::Username)?;
        match (
            Extension::parse_trimmed(extension),
            TenantCode::parse_trimmed(tenant),
        ) {
            (Some(extension), Some(tenant)) => Ok(Self::new(extension, tenant)),
            _ => Err(DomainError::Username),
        }
    }

    /// The extension half.
    pub fn extension(&self) -> &Extension {
        &self.extension
    }

    /// The tenant-code half.
    pub fn tenant(&self) -> &TenantCode {
        &self.tenant
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.extension, self.tenant)
    }
}

from_str_by_parse!(Username);

/// What a portal user may do within their own tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages their own extension.
    User,
    /// Also manages every user of their own tenant.
    Admin,
}

impl Role {
    /// Parses `user` or `admin`, trimmed and in any letter case.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if s.eq_ignore_ascii_case("user") {
            Ok(Self::User)
        } else if s.eq_ignore_ascii_case("admin") {
            Ok(Self::Admin)
        } else {
            Err(DomainError::Role)
        }
    }

    /// `"user"` or `"admin"`, as stored and as shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

display_as_str!(Role);
from_str_by_parse!(Role);

text_type! {
    /// The plain name a provider's support operator signs in with, such as `jane.doe`.
    ///
    /// 2 to 64 characters of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter; trimmed
    /// and lowercased.
    pub struct OperatorName;
}

impl OperatorName {
    /// How many characters an operator name may have.
    pub const CHARS: RangeInclusive<usize> = 2..=64;

    fn parse_trimmed(s: &str) -> Option<Self> {
        ascii_name(s, Self::CHARS, b"._-").map(Self)
    }
}

/// `s` lowercased, when it is a name of `len` characters: ASCII letters, digits and the
/// `marks` (a tenant code's hyphen, an operator name's dots too), starting with a letter.
fn ascii_name(s: &str, len: RangeInclusive<usize>, marks: &[u8]) -> Option<String> {
    let valid = len.contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || marks.contains(&b));
    valid.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::assert_refuses_all;
    use proptest::prelude::*;

    fn username(raw: &str) -> Username {
        Username::parse(raw).unwrap()
    }

    #[test]
    fn an_extension_is_one_to_ten_digits() {
        assert_eq!(Extension::parse("0").unwrap().as_str(), "0");
        assert_eq!(Extension::parse("201").unwrap().as_str(), "201");
        assert_eq!(
            Extension::parse("1234567890").unwrap().as_str(),
            "1234567890"
        );
        assert_eq!(Extension::parse(""), Err(DomainError::Extension), "empty");
        assert_eq!(
            Extension::parse("12345678901"),
            Err(DomainError::Extension),
            "eleven digits"
        );
    }

    #[test]
    fn an_extension_is_trimmed_and_keeps_its_leading_zeros() {
        assert_eq!(Extension::parse("  007\t").unwrap().as_str(), "007");
    }

    #[test]
    fn an_extension_refuses_anything_but_ascii_digits() {
        let bad = [
            "20a",
            "+201",
            "-201",
            "2 01",
            "٢٠١",
            "２０１",
            "201\0",
            "1.5",
        ];
        assert_refuses_all(Extension::parse, &bad, DomainError::Extension);
    }

    #[test]
    fn a_tenant_code_is_compared_case_insensitively() {
        let mixed = TenantCode::parse("WickedSprockets").unwrap();
        assert_eq!(mixed.as_str(), "wickedsprockets");
        assert_eq!(mixed, TenantCode::parse(" wickedsprockets ").unwrap());
    }

    #[test]
    fn a_tenant_code_must_start_with_a_letter() {
        assert_eq!(TenantCode::parse("1acme"), Err(DomainError::TenantCode));
        assert_eq!(TenantCode::parse("-acme"), Err(DomainError::TenantCode));
        assert!(TenantCode::parse("a1").is_ok());
    }

    #[test]
    fn a_tenant_code_is_two_to_thirty_two_characters() {
        assert_eq!(TenantCode::parse("a"), Err(DomainError::TenantCode));
        assert!(TenantCode::parse("ab").is_ok());
        assert!(TenantCode::parse(&"a".repeat(32)).is_ok());
        assert_eq!(
            TenantCode::parse(&"a".repeat(33)),
            Err(DomainError::TenantCode)
        );
    }

    #[test]
    fn a_tenant_code_may_hold_single_hyphens_but_not_end_with_one() {
        assert_eq!(
            TenantCode::parse("acme-west-2").unwrap().as_str(),
            "acme-west-2"
        );
        let bad = [
            "acme-",
            "acme--west",
            "ac me",
            "acmé",
            "acme_west",
            "acme.west",
        ];
        assert_refuses_all(TenantCode::parse, &bad, DomainError::TenantCode);
    }

    #[test]
    fn a_username_is_an_extension_a_hyphen_and_a_tenant_code() {
        let name = username("201-wickedsprockets");
        assert_eq!(name.extension().as_str(), "201");
        assert_eq!(name.tenant().as_str(), "wickedsprockets");
        assert_eq!(name.to_string(), "201-wickedsprockets");
    }

    #[test]
    fn a_username_is_trimmed_and_its_tenant_code_lowercased() {
        assert_eq!(
            username("201-WickedSprockets ").to_string(),
            "201-wickedsprockets"
        );
        assert_eq!(
            username("\t 201-WICKEDSPROCKETS\r\n"),
            username("201-wickedsprockets")
        );
    }

    #[test]
    fn a_username_splits_at_the_first_hyphen() {
        let name = username("201-acme-west");
        assert_eq!(name.extension().as_str(), "201");
        assert_eq!(name.tenant().as_str(), "acme-west");
    }

    #[test]
    fn a_username_built_from_parts_equals_the_parsed_one() {
        let built = Username::new(
            Extension::parse("201").unwrap(),
            TenantCode::parse("WickedSprockets").unwrap(),
        );
        assert_eq!(built, username("201-wickedsprockets"));
    }

    #[test]
    fn a_malformed_username_gets_the_sign_in_hint() {
        let bad = [
            "",
            "   ",
            "-",
            "201",
            "201-",
            "-wickedsprockets",
            "wickedsprockets",
            "201wickedsprockets",
            "bob-wickedsprockets",
            "201 -wickedsprockets",
            "201- wickedsprockets",
            "201-wicked sprockets",
            "201-1wickedsprockets",
            "201--wickedsprockets",
            "201-wickedsprockets-",
            "201-wickedsprockets\0",
            "\0",
            "201\0-wickedsprockets",
            "12345678901-wickedsprockets",
            "201_wickedsprockets",
            "201-wickedsprockets@example.com",
            "２０１-wickedsprockets",
        ];
        for raw in bad {
            assert_eq!(Username::parse(raw), Err(DomainError::Username), "{raw:?}");
        }
    }

    #[test]
    fn a_one_megabyte_username_is_refused() {
        let huge = format!("201-{}", "a".repeat(1 << 20));
        assert_eq!(Username::parse(&huge), Err(DomainError::Username));
        let digits = "9".repeat(1 << 20);
        assert_eq!(Username::parse(&digits), Err(DomainError::Username));
    }

    #[test]
    fn the_username_error_shows_the_expected_form() {
        assert_eq!(
            DomainError::Username.to_string(),
            "Sign in with your extension, a hyphen and your tenant code, for example 201-wickedsprockets."
        );
        assert_eq!(
            DomainError::Extension.to_string(),
            "The extension must be 1 to 10 digits."
        );
    }

    #[test]
    fn usernames_parse_through_from_str() {
        let name: Username = "201-WickedSprockets".parse().unwrap();
        assert_eq!(name, username("201-wickedsprockets"));
    }

    #[test]
    fn a_role_is_user_or_admin_in_any_case() {
        assert_eq!(Role::parse("user"), Ok(Role::User));
        assert_eq!(Role::parse(" ADMIN "), Ok(Role::Admin));
        assert_eq!(Role::parse("Admin"), Ok(Role::Admin));
        assert_eq!(Role::Admin.as_str(), "admin");
        assert_eq!(Role::User.to_string(), "user");
        let bad = ["", "administrator", "operator", "us er", "root"];
        assert_refuses_all(Role::parse, &bad, DomainError::Role);
    }

    #[test]
    fn an_operator_name_is_trimmed_and_lowercased() {
        assert_eq!(
            OperatorName::parse(" Jane.Doe_2-nd ").unwrap().as_str(),
            "jane.doe_2-nd"
        );
    }

    #[test]
    fn an_operator_name_starts_with_a_letter_and_has_two_to_sixty_four_characters() {
        assert!(OperatorName::parse("jd").is_ok());
        assert!(OperatorName::parse(&"j".repeat(64)).is_ok());
        let long = "j".repeat(65);
        let bad = [
            "j", &long, "2jane", ".jane", "jane doe", "jane@doe", "jäne", "",
        ];
        assert_refuses_all(OperatorName::parse, &bad, DomainError::OperatorName);
    }

    fn valid_username() -> impl Strategy<Value = String> {
        (
            "[0-9]{1,10}",
            "[a-zA-Z](-?[a-zA-Z0-9]){1,15}",
            "[ \t]{0,2}",
            "[ \t\n]{0,2}",
        )
            .prop_map(|(ext, tenant, pre, post)| format!("{pre}{ext}-{tenant}{post}"))
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics(raw in any::<String>()) {
            let _ = Extension::parse(&raw);
            let _ = TenantCode::parse(&raw);
            let _ = Username::parse(&raw);
            let _ = Role::parse(&raw);
            let _ = OperatorName::parse(&raw);
        }

        #[test]
        fn a_valid_username_round_trips_through_display(raw in valid_username()) {
            let parsed = Username::parse(&raw).unwrap();
            prop_assert_eq!(parsed.to_string(), raw.trim().to_ascii_lowercase());
            prop_assert_eq!(Username::parse(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn any_parsed_username_round_trips_through_display(raw in "[ 0-9a-zA-Z-]{0,40}") {
            if let Ok(parsed) = Username::parse(&raw) {
                prop_assert_eq!(Username::parse(&parsed.to_string()), Ok(parsed));
            }
        }

        #[test]
        fn a_parsed_tenant_code_is_lowercase_and_reparses_to_itself(raw in "[ a-zA-Z0-9-]{0,40}") {
            if let Ok(code) = TenantCode::parse(&raw) {
                prop_assert_eq!(code.as_str(), code.as_str().to_ascii_lowercase());
                prop_assert_eq!(TenantCode::parse(code.as_str()), Ok(code));
            }
        }
    }
}
