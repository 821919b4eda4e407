//! `PasskeyName`: what a user calls one of their passkeys ("Work laptop", "YubiKey") —
//! 1 to 60 characters, trimmed, no control characters.

use super::{display_as_str, one_line, DomainError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    pub const MAX_CHARS: usize = 60;

    pub fn parse(raw: &str) -> Result<PasskeyName, DomainError> {
        let name = one_line(raw, 1, Self::MAX_CHARS).ok_or(DomainError::PasskeyName)?;
        Ok(PasskeyName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

display_as_str!(PasskeyName);

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
