//! A tenant admin's support security question and its answer.
//!
//! The answer is folded before it is hashed or compared: letters lowercased (after Unicode
//! compatibility normalisation), and spaces and punctuation dropped, so "New York",
//! "new-york" and "NEWYORK!" are the same answer on the phone.

use unicode_normalization::UnicodeNormalization;

use super::{display_as_str, from_str_by_parse, one_line, text_type, DomainError};

/// The questions an admin can pick from; they may also write their own.
pub const SUGGESTED_QUESTIONS: &[&str] = &[
    "What was the name of your first pet?",
    "What street did you grow up on?",
    "What was the make of your first car?",
    "What was the name of your first school?",
    "In what city did your parents meet?",
];

const QUESTION_MIN: usize = 10;
const QUESTION_MAX: usize = 150;
const ANSWER_MIN: usize = 3;
const ANSWER_MAX: usize = 100;

text_type! {
    /// A question the operator reads to a caller: one line of 10 to 150 characters.
    pub struct SecurityQuestion;
}

impl SecurityQuestion {
    fn parse_trimmed(s: &str) -> Option<Self> {
        one_line(s, QUESTION_MIN, QUESTION_MAX).map(|q| Self(q.to_owned()))
    }
}

/// An answer in its folded form: what is hashed and what a typed answer is compared as.
/// It is a secret: it has no `Display` and its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecurityAnswer(String);

impl std::fmt::Debug for SecurityAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityAnswer(..)")
    }
}

impl SecurityAnswer {
    /// An answer being set: at least 3 letters or digits once folded, at most 100 typed.
    pub fn parse(raw: &str) -> Result<SecurityAnswer, DomainError> {
        if raw.chars().count() > ANSWER_MAX {
            return Err(DomainError::SecurityAnswer);
        }
        let folded = fold(raw);
        if folded.chars().count() < ANSWER_MIN {
            return Err(DomainError::SecurityAnswer);
        }
        Ok(SecurityAnswer(folded))
    }

    /// What a caller said, folded the same way, for comparison only (any length; an
    /// over-long one is cut, since no stored answer is longer).
    pub fn typed(raw: &str) -> SecurityAnswer {
        let capped: String = raw.chars().take(ANSWER_MAX * 2).collect();
        SecurityAnswer(fold(&capped))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Compatibility-normalised, lowercased, only letters and digits kept.
fn fold(raw: &str) -> String {
    raw.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_spacing_and_punctuation_are_folded() {
        let a = SecurityAnswer::parse("New York").unwrap();
        for same in [
            "new york",
            "NEW-YORK!",
            "  new   york ",
            "Ｎｅｗ Ｙｏｒｋ",
            "new.york",
        ] {
            assert_eq!(SecurityAnswer::typed(same), a, "{same}");
        }
        assert_ne!(SecurityAnswer::typed("New Jersey"), a);
    }

    #[test]
    fn answers_too_short_or_long_are_refused() {
        assert_eq!(
            SecurityAnswer::parse(" a-b "),
            Err(DomainError::SecurityAnswer)
        );
        assert!(SecurityAnswer::parse(&"x".repeat(101)).is_err());
        assert!(SecurityAnswer::parse("Rex").is_ok());
    }

    #[test]
    fn questions_are_one_line_of_sensible_length() {
        assert!(SecurityQuestion::parse("What was my first phone number?").is_ok());
        assert!(SecurityQuestion::parse("Why?").is_err());
        assert!(SecurityQuestion::parse("What is\nthis question?").is_err());
        assert!(SecurityQuestion::parse(&"q".repeat(151)).is_err());
        for q in SUGGESTED_QUESTIONS {
            assert!(SecurityQuestion::parse(q).is_ok());
        }
    }

    #[test]
    fn the_answer_never_shows_in_debug_output() {
        let a = SecurityAnswer::parse("Biscuit").unwrap();
        assert!(!format!("{a:?}").contains("biscuit"));
    }
}
