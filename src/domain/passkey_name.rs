//! `PasskeyName`: what a user calls one of their passkeys ("Work laptop", "YubiKey") —
//! 1 to 60 characters, trimmed, no control characters.

use super::{display_as_str, from_str_by_parse, one_line, text_type, DomainError};

text_type! {
    pub struct PasskeyName;
}

impl PasskeyName {
    pub const MAX_CHARS: usize = 60;

    fn parse_trimmed(s: &str) -> Option<Self> {
        one_line(s, 1, Self::MAX_CHARS).map(|name| Self(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passkey_name_is_trimmed_and_bounded() {
        assert_eq!(
            PasskeyName::parse("  Work laptop ").unwrap().as_str(),
            "Work laptop"
        );
        assert!(PasskeyName::parse("   ").is_err());
        assert!(PasskeyName::parse("").is_err());
        assert!(PasskeyName::parse("Key\nTwo").is_err());
        assert!(PasskeyName::parse(&"x".repeat(61)).is_err());
        assert!(PasskeyName::parse(&"é".repeat(60)).is_ok());
        assert!(PasskeyName::parse("Clé de Zoë 🔑").is_ok());
    }
}
