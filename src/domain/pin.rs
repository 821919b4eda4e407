//! `Pin`: a voicemail PIN that passes the PIN rules, kept out of logs.

use std::fmt;

use super::Extension;

/// A voicemail PIN: 4 to 10 ASCII digits, not one digit repeated (`1111`), not a run up or
/// down (`1234`, `3210`; runs do not wrap from 9 to 0), and not the user's own extension.
///
/// It is a device secret the PBX needs in clear, so its `Debug` is redacted and it has no
/// `Display`; use [`Pin::expose`] only where it is encrypted or handed to the PBX.
#[derive(Clone)]
pub struct Pin(String);

/// The PIN rule that a candidate PIN broke. Rules are checked in the order listed and the
/// first broken one is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProblem {
    /// Holds something other than the digits 0 to 9 (inner spaces count).
    NotDigits,
    /// Fewer than 4 digits.
    TooShort,
    /// More than 10 digits.
    TooLong,
    /// One digit repeated throughout, like `1111`.
    RepeatedDigit,
    /// Consecutive digits up or down, like `1234` or `4321`.
    Sequence,
    /// The same digits as the user's extension.
    SameAsExtension,
}

impl PinProblem {
    /// A sentence for the form, explaining the rule.
    pub fn message(&self) -> &'static str {
        match self {
            Self::NotDigits => "Use only the digits 0 to 9 in your PIN.",
            Self::TooShort => "Use at least 4 digits in your PIN.",
            Self::TooLong => "Use at most 10 digits in your PIN.",
            Self::RepeatedDigit => "Don't repeat one digit throughout your PIN, like 1111.",
            Self::Sequence => "Don't use a run of consecutive digits, like 1234 or 4321.",
            Self::SameAsExtension => "Don't use the extension number as the PIN.",
        }
    }
}

impl fmt::Display for PinProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for PinProblem {}

impl Pin {
    /// Fewest digits a PIN may have.
    pub const MIN_DIGITS: usize = 4;
    /// Most digits a PIN may have.
    pub const MAX_DIGITS: usize = 10;

    /// Parses a new PIN for the user at `extension`, trimming surrounding whitespace.
    pub fn parse(raw: &str, extension: &Extension) -> Result<Self, PinProblem> {
        let pin = raw.trim();
        let digits = pin.as_bytes();
        if !digits.iter().all(u8::is_ascii_digit) {
            Err(PinProblem::NotDigits)
        } else if digits.len() < Self::MIN_DIGITS {
            Err(PinProblem::TooShort)
        } else if digits.len() > Self::MAX_DIGITS {
            Err(PinProblem::TooLong)
        } else if steps_by(digits, |a, b| a == b) {
            Err(PinProblem::RepeatedDigit)
        } else if steps_by(digits, |a, b| b.checked_sub(a) == Some(1))
            || steps_by(digits, |a, b| a.checked_sub(b) == Some(1))
        {
            Err(PinProblem::Sequence)
        } else if pin == extension.as_str() {
            Err(PinProblem::SameAsExtension)
        } else {
            Ok(Self(pin.to_owned()))
        }
    }

    /// The PIN's digits, for encrypting at rest or handing to the PBX.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether every neighbouring pair of ASCII digits satisfies `step`.
fn steps_by(digits: &[u8], step: impl Fn(u8, u8) -> bool) -> bool {
    digits
        .windows(2)
        .all(|pair| matches!(*pair, [a, b] if step(a, b)))
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::assert_refuses_all;
    use proptest::prelude::*;

    fn ext(raw: &str) -> Extension {
        Extension::parse(raw).unwrap()
    }

    fn check(raw: &str) -> Result<String, PinProblem> {
        Pin::parse(raw, &ext("201")).map(|pin| pin.expose().to_owned())
    }

    #[test]
    fn a_pin_is_four_to_ten_digits() {
        assert_eq!(check("2580"), Ok("2580".to_owned()));
        assert_eq!(check("8675309152"), Ok("8675309152".to_owned()));
        assert_eq!(check(""), Err(PinProblem::TooShort));
        assert_eq!(check("258"), Err(PinProblem::TooShort));
        assert_eq!(check("86753091524"), Err(PinProblem::TooLong));
    }

    #[test]
    fn a_pin_is_trimmed() {
        assert_eq!(check("  2580\n"), Ok("2580".to_owned()));
    }

    #[test]
    fn a_pin_holds_only_ascii_digits() {
        assert_refuses_all(
            check,
            &["25 80", "258a", "-2580", "２５８０", "25\u{0}80", "٢٥٨٠"],
            PinProblem::NotDigits,
        );
    }

    #[test]
    fn a_pin_is_not_one_digit_repeated() {
        assert_refuses_all(
            check,
            &["0000", "1111", "9999999999"],
            PinProblem::RepeatedDigit,
        );
        assert!(check("1112").is_ok());
    }

    #[test]
    fn a_pin_is_not_an_ascending_or_descending_run() {
        assert_refuses_all(
            check,
            &["1234", "0123", "3210", "56789", "0123456789", "9876543210"],
            PinProblem::Sequence,
        );
    }

    #[test]
    fn a_run_does_not_wrap_from_nine_to_zero() {
        assert!(check("7890").is_ok());
        assert!(check("2109").is_ok());
        assert!(check("1235").is_ok());
    }

    #[test]
    fn a_pin_is_not_the_extension() {
        assert_eq!(
            Pin::parse("2580", &ext("2580")).map(|_| ()),
            Err(PinProblem::SameAsExtension)
        );
        assert!(Pin::parse("2580", &ext("258")).is_ok());
    }

    #[test]
    fn a_pin_never_shows_in_debug_output() {
        let pin = Pin::parse("2580", &ext("201")).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn every_pin_problem_has_a_sentence() {
        for problem in [
            PinProblem::NotDigits,
            PinProblem::TooShort,
            PinProblem::TooLong,
            PinProblem::RepeatedDigit,
            PinProblem::Sequence,
            PinProblem::SameAsExtension,
        ] {
            let message = problem.message();
            assert!(message.ends_with('.'), "{problem:?}");
            assert_eq!(problem.to_string(), message);
        }
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics(raw in any::<String>(), extension in "[0-9]{1,10}") {
            let _ = Pin::parse(&raw, &ext(&extension));
        }

        #[test]
        fn an_accepted_pin_obeys_every_rule(raw in "[0-9]{0,12}", extension in "[0-9]{1,10}") {
            if let Ok(pin) = Pin::parse(&raw, &ext(&extension)) {
                let digits: Vec<i32> = pin.expose().bytes().map(i32::from).collect();
                let steps: Vec<i32> = digits.iter().zip(digits.iter().skip(1)).map(|(a, b)| b - a).collect();
                prop_assert!((4..=10).contains(&digits.len()));
                prop_assert!(steps.iter().any(|&step| step != 0));
                prop_assert!(steps.iter().any(|&step| step != 1));
                prop_assert!(steps.iter().any(|&step| step != -1));
                prop_assert_ne!(pin.expose(), extension.as_str());
            }
        }
    }
}
