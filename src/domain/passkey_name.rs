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
    use crate::domain::assert_one_trimmed_line;

    #[test]
    fn a_passkey_name_is_trimmed_and_bounded() {
        assert_one_trimmed_line(PasskeyName::parse, PasskeyName::MAX_CHARS, "Work laptop");
        assert!(PasskeyName::parse("Clé de Zoë 🔑").is_ok());
    }
}
