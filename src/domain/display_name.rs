//! `DisplayName`: a person's or company's name as shown on pages — 1 to 100 characters,
//! trimmed, no control characters.

use super::{display_as_str, from_str_by_parse, one_line, text_type, DomainError};

text_type! {
    pub struct DisplayName;
}

impl DisplayName {
    fn parse_trimmed(s: &str) -> Option<Self> {
        one_line(s, 1, 100).map(|name| Self(name.to_owned()))
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
