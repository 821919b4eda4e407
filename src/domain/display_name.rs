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
    use crate::domain::assert_one_trimmed_line;

    #[test]
    fn a_name_is_trimmed_and_bounded() {
        assert_one_trimmed_line(DisplayName::parse, 100, "Ada Admin");
        assert!(DisplayName::parse("Zoë Ødegård").is_ok());
    }
}
