//! Form pieces more than one page shows: the password fields' errors (Settings, choosing a
//! new password, a reset link), the PIN fields' errors (Settings, an admin's user page),
//! the sign-in forms, and the forms confirmed with a password or a ticked box.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;
use serde::Deserialize;

use super::extract::{device_cookie, session_cookie};
use super::respond::{clip, refused_in_session, Refused};
use super::{AppState, WebError};
use crate::domain::DomainError;
use crate::services::passwords::{
    ChangePasswordError, PasswordChanged, PasswordForm, PasswordRejected,
};
use crate::services::phone::PinRejected;
use crate::services::Refusal;

/// Declares the errors of a form: one optional message a field (by the field's name), and
/// `any()`, whether the form has one.
macro_rules! field_errors {
    ($(#[$attr:meta])* $vis:vis struct $name:ident { $($field:ident),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(Default)]
        $vis struct $name {
            $($field: Option<String>,)+
        }

        impl $name {
            fn any(&self) -> bool {
                false $(|| self.$field.is_some())+
            }
        }
    };
}
pub(crate) use field_errors;

/// A form that carries nothing but its CSRF token: a button that acts.
#[derive(Deserialize)]
pub struct NoFields {}

/// A form that names something: a passkey being renamed, a new API token.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct NameFields {
    pub name: String,
}

/// A form confirmed with the current password (removing a passkey or two-step sign-in,
/// new recovery codes).
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PasswordFields {
    pub current_password: String,
}

/// The form that makes a new SIP secret (the Phone tab, an admin's user page): a box ticked
/// to say every phone on the extension must be reprogrammed.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SipSecretFields {
    confirm: String,
}

impl SipSecretFields {
    /// What the page says when the box was not ticked.
    pub fn unconfirmed(&self) -> Option<&'static str> {
        (self.confirm != "yes").then_some(
            "Tick the box to confirm that every phone on this extension must be reprogrammed.",
        )
    }
}

/// What a form says when the current password typed is wrong.
pub const WRONG_CURRENT: &str = "Your current password is not right.";

/// A temporary password that ran out: at sign-in, or on the page to replace it.
pub const TEMPORARY_EXPIRED: &str =
    "Your temporary password has expired. Ask your administrator for a new one.";

/// What a page says for a refused password typed to confirm a change (a wrong one is 422).
pub fn refused_current_password(r: Refusal) -> Refused {
    refused_in_session(r, (StatusCode::UNPROCESSABLE_ENTITY, WRONG_CURRENT))
}

/// What a form says when the new password is the current one.
pub const SAME_AS_CURRENT: &str =
    "Choose a password different from your current one (or the temporary one you were given).";

/// Problems with a password form, each tied to its field.
#[derive(Debug, Default)]
pub struct PasswordErrors {
    pub current: Option<String>,
    pub new: Vec<&'static str>,
    pub confirm: Option<String>,
    pub form: Option<String>,
    /// Seconds for a `Retry-After` header (locked or busy).
    pub retry_after: Option<u64>,
}

impl PasswordErrors {
    pub fn any(&self) -> bool {
        self.current.is_some()
            || !self.new.is_empty()
            || self.confirm.is_some()
            || self.form.is_some()
    }

    /// The errors of a new password the policy or the confirmation refused.
    pub fn rejected(r: &PasswordRejected) -> PasswordErrors {
        let mut new: Vec<&'static str> = r.problems.iter().map(|p| p.message()).collect();
        if r.same_as_current {
            new.push(SAME_AS_CURRENT);
        }
        PasswordErrors {
            new,
            confirm: r
                .mismatch
                .then(|| "The two new passwords do not match.".to_owned()),
            ..PasswordErrors::default()
        }
    }
}

/// The form that changes a password (Settings; choosing one after a temporary password):
/// the new password typed twice, and the current one where the page asks for it.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct NewPasswordFields {
    pub current_password: String,
    new_password: String,
    confirm_password: String,
}

impl NewPasswordFields {
    /// The form as the passwords service reads it; `current` when the page asks for the
    /// current password.
    pub fn typed(&self, current: bool) -> PasswordForm<'_> {
        PasswordForm {
            current: current.then_some(self.current_password.as_str()),
            new: &self.new_password,
            confirm: &self.confirm_password,
        }
    }
}

/// The browser's device cookie, if it sent one (for a password change to carry over).
pub fn device_cookie_of<'j>(state: &AppState, jar: &'j CookieJar) -> Option<&'j str> {
    jar.get(state.cookies.device).map(|c| c.value())
}

/// Turns a password change outcome into its answer: the new session's cookie, the
/// browser's device cookie under the new password, and a 303 to `to`; or the status and
/// errors to re-render the form with. Unexpected failures stay errors.
pub fn password_change_outcome(
    outcome: Result<PasswordChanged, ChangePasswordError>,
    state: &AppState,
    jar: CookieJar,
    to: &str,
) -> Result<Result<Response, (StatusCode, PasswordErrors)>, WebError> {
    match outcome {
        Ok(changed) => {
            let jar = jar
                .add(session_cookie(state, Some(changed.token)))
                .add(device_cookie(state, changed.device_cookie));
            Ok(Ok((jar, Redirect::to(to)).into_response()))
        }
        Err(ChangePasswordError::Rejected(r)) => Ok(Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            PasswordErrors::rejected(&r),
        ))),
        Err(ChangePasswordError::Refused(Refusal::WrongPassword)) => Ok(Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            PasswordErrors {
                current: Some(WRONG_CURRENT.to_owned()),
                ..PasswordErrors::default()
            },
        ))),
        Err(ChangePasswordError::Refused(r)) => {
            let shown = refused_current_password(r);
            Ok(Err((
                shown.status,
                PasswordErrors {
                    form: Some(shown.message),
                    retry_after: shown.retry_after,
                    ..PasswordErrors::default()
                },
            )))
        }
        Err(ChangePasswordError::TemporaryExpired) => Ok(Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            PasswordErrors {
                form: Some(TEMPORARY_EXPIRED.to_owned()),
                ..PasswordErrors::default()
            },
        ))),
        Err(ChangePasswordError::Unexpected(e)) => Err(e.into()),
    }
}

/// The PIN form (Settings, an admin's user page): the new PIN, typed twice.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PinFields {
    pub new_pin: String,
    pub confirm_pin: String,
}

/// A field as typed, parsed; when it cannot be, `None`, and its problem in `error`.
pub fn field<T>(parsed: Result<T, DomainError>, error: &mut Option<String>) -> Option<T> {
    parsed.map_err(|e| *error = Some(e.to_string())).ok()
}

/// An optional field (an email): left empty it is `Some(None)`; otherwise as [`field`].
pub fn optional_field<T>(
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
    error: &mut Option<String>,
) -> Option<Option<T>> {
    if raw.trim().is_empty() {
        Some(None)
    } else {
        field(parse(raw).map(Some), error)
    }
}

/// A sign-in form (the portal's, the operator console's): the name, the password, and
/// where to go afterwards (the portal's only).
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SignInFields {
    pub username: String,
    pub password: String,
    pub next: String,
}

impl SignInFields {
    /// The name as `parse` reads it and the password, when neither field has a problem;
    /// otherwise `None`, and each problem on its field of `shown`.
    pub fn check<N>(
        self,
        parse: impl FnOnce(&str) -> Result<N, DomainError>,
        shown: &mut SignInShown,
    ) -> Option<(N, SecretString)> {
        let name = field(parse(&self.username), &mut shown.username_error);
        if self.password.is_empty() {
            shown.password_error = Some("Enter your password.".to_owned());
        }
        let password = SecretString::from(self.password);
        name.filter(|_| shown.password_error.is_none())
            .map(|name| (name, password))
    }
}

/// What a sign-in page shows of its form: the name as typed (never the password), a
/// message about the whole form (wrong credentials, locked, busy), and each field's.
#[derive(Default)]
pub struct SignInShown {
    pub username: String,
    pub error: Option<String>,
    pub username_error: Option<String>,
    pub password_error: Option<String>,
}

impl SignInShown {
    /// The form again with the name as typed, trimmed and capped so a huge field is not
    /// echoed.
    pub fn typed(username: &str) -> SignInShown {
        SignInShown {
            username: clip(username, 64),
            ..SignInShown::default()
        }
    }
}

/// Problems with the PIN form, each tied to its field.
#[derive(Debug, Default)]
pub struct PinErrors {
    pub new: Option<&'static str>,
    pub confirm: Option<&'static str>,
}

impl PinErrors {
    /// The page's PIN errors for a rejected PIN.
    pub fn rejected(r: PinRejected) -> PinErrors {
        PinErrors {
            new: r.problem.map(|p| p.message()),
            confirm: r.mismatch.then_some("The two PINs do not match."),
        }
    }
}
