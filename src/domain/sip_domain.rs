//! `SipDomain`: the host name a tenant's phones register at (`wickedsprockets.sip.example`),
//! kept lowercase — letters, digits and hyphens in dot-separated labels of 1 to 63
//! characters, none starting or ending with a hyphen, 253 characters at most.

use super::{display_as_str, from_str_by_parse, text_type, DomainError};

text_type! {
    pub struct SipDomain;
}

impl SipDomain {
    fn parse_trimmed(s: &str) -> Option<Self> {
        Self::is_host_name(s).then(|| Self(s.to_ascii_lowercase()))
    }

    /// Whether `s` is a host name as a SIP domain must be, in any case (what a SIP server
    /// asks for is checked as it comes, without trimming).
    pub fn is_host_name(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sip_domain_is_a_lowercase_host_name() {
        let d = SipDomain::parse("  Sip.Example.COM ").unwrap();
        assert_eq!(d.as_str(), "sip.example.com");
        assert_eq!(SipDomain::canonical("Sip.example.com"), None);
        assert!(SipDomain::canonical("sip.example.com").is_some());
        assert!(SipDomain::parse("localhost").is_ok());
        assert!(SipDomain::parse(&format!("{}.example", "a".repeat(63))).is_ok());
        let bad = [
            "",
            " ",
            "sip..example",
            ".sip.example",
            "sip.example.",
            "-sip.example",
            "sip-.example",
            "sip_example.com",
            "sip example.com",
            "sip.exämple.com",
            "sip.example.com:5060",
        ];
        for raw in bad {
            assert_eq!(
                SipDomain::parse(raw),
                Err(DomainError::SipDomain),
                "{raw:?}"
            );
        }
        assert!(SipDomain::parse(&format!("{}.example", "a".repeat(64))).is_err());
        let long = ["abc"; 64].join(".");
        assert!(long.len() > 253 && SipDomain::parse(&long).is_err());
    }
}
