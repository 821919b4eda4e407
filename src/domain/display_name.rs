//! `DisplayName`: a person's or company's name as shown on pages — 1 to 100 characters,
//! trimmed, no control characters.

use std::fmt;

use super::DomainError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName, DomainError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > 100 || trimmed.chars().any(char::is_control) {
            return Err(DomainError::DisplayName);
        }
        Ok(DisplayName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ada Admin ").unwrap().as_str(),
            "Ada Admin"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("Ada\u{0}").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse("Zoë Ødegård").is_ok());
    }
}
