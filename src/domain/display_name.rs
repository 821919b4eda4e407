//! `DisplayName`: a person's or company's name as shown on pages — 1 to 100 characters,
//! trimmed, no control characters.

use super::{display_as_str, one_line, DomainError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName, DomainError> {
        let name = one_line(raw, 1, 100).ok_or(DomainError::DisplayName)?;
        Ok(DisplayName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

display_as_str!(DisplayName);

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
