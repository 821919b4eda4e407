//! `Email`: an address we can put in a `To:` header and send reset links and notices to.

use super::{display_as_str, from_str_by_parse, text_type, DomainError};

text_type! {
    /// An email address on file: trimmed, lowercased, and plain enough to be mailed safely.
    ///
    /// - at most 254 characters, exactly one `@`;
    /// - the local part has 1 to 64 characters: ASCII letters, digits, dots (not first, not
    ///   last, never two in a row) and ``!#$%&'*+-/=?^_`{|}~``. Quoted local parts and the
    ///   RFC 5322 specials (`<>()[],;:"\` and whitespace) are refused, so an address can never
    ///   smuggle a second recipient or a header into a message;
    /// - the domain has at least two dot-separated labels of 1 to 63 ASCII letters, digits and
    ///   hyphens (a label neither starts nor ends with a hyphen), and its last label is not all
    ///   digits. International domains are entered in their `xn--` form.
    ///
    /// Both halves are lowercased: mailbox names are case-insensitive in practice, and one
    /// spelling per address lets the "forgot password" form find every account that uses it.
    pub struct Email;
}

impl Email {
    /// Most characters an address may have.
    pub const MAX_CHARS: usize = 254;
    /// Most characters the part before the `@` may have.
    pub const MAX_LOCAL_CHARS: usize = 64;
    const MAX_LABEL_CHARS: usize = 63;

    fn parse_trimmed(s: &str) -> Option<Self> {
        if s.len() > Self::MAX_CHARS || !s.is_ascii() {
            return None;
        }
        let (local, domain) = s.split_once('@')?;
        (is_local_part(local) && is_domain(domain)).then(|| Self(s.to_ascii_lowercase()))
    }
}

fn is_local_part(local: &str) -> bool {
    const ATEXT_SYMBOLS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    (1..=Email::MAX_LOCAL_CHARS).contains(&local.len())
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT_SYMBOLS.contains(&b))
        })
}

fn is_domain(domain: &str) -> bool {
    let top_level = domain.rsplit('.').next().unwrap_or_default();
    domain.contains('.')
        && domain.split('.').all(is_domain_label)
        && !top_level.bytes().all(|b| b.is_ascii_digit())
}

fn is_domain_label(label: &str) -> bool {
    (1..=Email::MAX_LABEL_CHARS).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::assert_refuses_all;
    use proptest::prelude::*;

    fn email(raw: &str) -> String {
        Email::parse(raw).unwrap().to_string()
    }

    fn refused(raw: &str) -> bool {
        Email::parse(raw) == Err(DomainError::Email)
    }

    #[test]
    fn an_email_is_trimmed_and_lowercased() {
        assert_eq!(email("  Jane.Doe@Example.COM \n"), "jane.doe@example.com");
    }

    #[test]
    fn common_address_shapes_are_accepted() {
        for ok in [
            "a@b.co",
            "jane+voicemail@example.com",
            "o'brien@mail.example.co.uk",
            "x_y-z@sub-domain.example.org",
            "1234@example.com",
            "user@xn--mnchen-3ya.de",
        ] {
            assert_eq!(email(ok), ok);
        }
    }

    #[test]
    fn an_email_needs_exactly_one_at_sign() {
        assert!(refused("jane.example.com"));
        assert!(refused("jane@@example.com"));
        assert!(refused("jane@doe@example.com"));
    }

    #[test]
    fn an_email_needs_a_local_part_of_at_most_sixty_four_characters() {
        assert!(refused("@example.com"));
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
        assert!(refused(&format!("{}@example.com", "a".repeat(65))));
    }

    #[test]
    fn an_email_domain_needs_a_dot_and_well_formed_labels() {
        let bad = [
            "jane@localhost",
            "jane@",
            "jane@.com",
            "jane@example.",
            "jane@example..com",
            "jane@-example.com",
            "jane@example-.com",
            "jane@exa_mple.com",
            "jane@192.168.1.1",
            "jane@[192.168.1.1]",
            "jane@münchen.de",
        ];
        assert_refuses_all(Email::parse, &bad, DomainError::Email);
        assert!(refused(&format!("jane@{}.com", "a".repeat(64))));
    }

    #[test]
    fn an_email_refuses_whitespace_control_characters_and_header_specials() {
        let bad = [
            "jane doe@example.com",
            "jane@exam ple.com",
            "jane\t@example.com",
            "jane\r\nBcc: x@example.com@example.com",
            "jane\0@example.com",
            "jane,evil@example.com",
            "<jane@example.com>",
            "\"jane\"@example.com",
            "jane;x@example.com",
            ".jane@example.com",
            "jane.@example.com",
            "ja..ne@example.com",
            "jäne@example.com",
        ];
        assert_refuses_all(Email::parse, &bad, DomainError::Email);
    }

    #[test]
    fn an_email_has_at_most_two_hundred_fifty_four_characters() {
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(57)
        );
        let longest = format!("{}@{domain}", "l".repeat(64));
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
        let too_long = format!("{}@{domain}", "l".repeat(65));
        assert!(refused(&too_long));
        assert!(refused(&format!("a@{}.com", "b".repeat(1 << 20))));
    }

    #[test]
    fn the_email_error_is_a_form_sentence() {
        assert_eq!(
            DomainError::Email.to_string(),
            "Enter a valid email address, for example name@example.com."
        );
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics(raw in any::<String>()) {
            let _ = Email::parse(&raw);
        }

        #[test]
        fn a_parsed_email_reparses_to_itself(raw in "[ a-zA-Z0-9.@+_-]{0,30}") {
            if let Ok(parsed) = Email::parse(&raw) {
                prop_assert_eq!(parsed.as_str(), parsed.as_str().to_ascii_lowercase());
                prop_assert_eq!(Email::parse(parsed.as_str()), Ok(parsed));
            }
        }
    }
}
