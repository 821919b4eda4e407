//! The portal's messages, rendered from `templates/email/*.txt` and `*.html`.

use std::time::Duration;

use askama::Template;

use super::{Composed, Outbox};
use crate::clock::{human, utc, Timestamp};
use crate::store::{NewMail, UserRecord};

/// One account in a reset message.
#[derive(Debug, Clone)]
pub struct LinkLine {
    pub username: String,
    pub url: String,
}

/// One account in a "your usernames" message.
#[derive(Debug, Clone)]
pub struct UsernameLine {
    pub username: String,
    pub tenant_name: String,
    pub tenant_code: String,
}

/// Declares the two templates of a message, its plain text and its HTML, over one value of
/// its fields (each template reads them through `Deref`), so the fields are written once;
/// and the fields' `composed`, which renders both into the message.
macro_rules! message_templates {
    ($($fields:ident: $text:ident = $text_path:tt, $html:ident = $html_path:tt;)*) => {
        $(
            message_templates!(@one $fields, $text, $text_path);
            message_templates!(@one $fields, $html, $html_path);

            impl $fields<'_> {
                /// The message of these fields: `kind` as the outbox records it, `subject`,
                /// and both templates rendered.
                fn composed(
                    &self,
                    kind: &'static str,
                    subject: String,
                ) -> Result<Composed, askama::Error> {
                    Ok(Composed {
                        kind,
                        subject,
                        text: $text(self).render()?,
                        html: $html(self).render()?,
                    })
                }
            }
        )*
    };
    (@one $fields:ident, $name:ident, $path:tt) => {
        #[derive(Template)]
        #[template(path = $path)]
        struct $name<'a>(&'a $fields<'a>);

        impl<'a> std::ops::Deref for $name<'a> {
            type Target = $fields<'a>;

            fn deref(&self) -> &$fields<'a> {
                self.0
            }
        }
    };
}

struct Reset<'a> {
    provider: &'a str,
    links: &'a [LinkLine],
    ttl: &'a str,
    expires: &'a str,
}

struct Usernames<'a> {
    provider: &'a str,
    usernames: &'a [UsernameLine],
    login_url: &'a str,
}

struct EmailChanged<'a> {
    provider: &'a str,
    name: &'a str,
    username: &'a str,
    when: &'a str,
}

struct Changed<'a> {
    provider: &'a str,
    name: &'a str,
    username: &'a str,
    how: &'a str,
    when: &'a str,
    /// Which sessions ended: every other one (changed in a session), or every one.
    sessions: &'a str,
    forgot_url: &'a str,
}

struct TwoStep<'a> {
    provider: &'a str,
    name: &'a str,
    username: &'a str,
    what: &'a str,
    advice: &'a str,
    when: &'a str,
}

message_templates! {
    Reset: ResetText = "email/reset.txt", ResetHtml = "email/reset.html";
    Usernames: UsernamesText = "email/usernames.txt", UsernamesHtml = "email/usernames.html";
    EmailChanged: EmailChangedText = "email/email_changed.txt",
        EmailChangedHtml = "email/email_changed.html";
    Changed: ChangedText = "email/password_changed.txt",
        ChangedHtml = "email/password_changed.html";
    TwoStep: TwoStepText = "email/two_step.txt", TwoStepHtml = "email/two_step.html";
}

/// Who removed a user's second factor, as its notice says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remover {
    /// An admin of the user's company.
    Admin,
    /// The provider's support, after verifying a call from the user.
    Provider,
}

/// What happened to an account's two-step sign-in, for [`AccountNotice::TwoStep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoStepNotice {
    /// A recovery code was used to sign in.
    RecoveryCodeUsed { left: i64 },
    /// Someone else removed the account's second factor.
    Removed { by: Remover },
    /// A second factor was added to the account: `factor` says which, as a sentence
    /// begins ("An authenticator app", "A passkey").
    Added { factor: &'static str },
}

impl Outbox {
    pub fn reset_message(
        &self,
        links: &[LinkLine],
        ttl: Duration,
        expires: Timestamp,
    ) -> Result<Composed, askama::Error> {
        let ttl = human(ttl);
        let expires = utc(expires);
        let provider = &self.provider;
        Reset {
            provider,
            links,
            ttl: &ttl,
            expires: &expires,
        }
        .composed(
            "password_reset",
            format!("Reset your {provider} portal password"),
        )
    }

    pub fn usernames_message(&self, usernames: &[UsernameLine]) -> Result<Composed, askama::Error> {
        let provider = &self.provider;
        let login_url = self.link("/login");
        Usernames {
            provider,
            usernames,
            login_url: &login_url,
        }
        .composed("usernames", format!("Your {provider} portal usernames"))
    }
}

/// A change to an account, told to its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountNotice {
    /// An admin changed the email on file (told to the old address).
    EmailChanged,
    /// The password was changed by its holder, or reset.
    PasswordChanged { how: PasswordWas },
    /// Something happened to the account's two-step sign-in.
    TwoStep(TwoStepNotice),
}

/// How a password came to change, as the notice words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordWas {
    /// By its holder, in Settings.
    Changed,
    /// With a reset link.
    Reset,
}

impl Outbox {
    /// `notice` about `user`'s account, sealed for `to` (their address on file, or the old
    /// one when it is the address that changed).
    pub fn account_notice(
        &self,
        user: &UserRecord,
        to: &str,
        notice: AccountNotice,
        when: Timestamp,
    ) -> Result<NewMail, askama::Error> {
        let message =
            self.account_message(&user.name, &user.username().to_string(), notice, when)?;
        Ok(self.seal(message, to, Some(user.id), Some(user.tenant_id)))
    }

    fn account_message(
        &self,
        name: &str,
        username: &str,
        notice: AccountNotice,
        when: Timestamp,
    ) -> Result<Composed, askama::Error> {
        let provider = &self.provider;
        let when = &utc(when);
        match notice {
            AccountNotice::EmailChanged => EmailChanged {
                provider,
                name,
                username,
                when,
            }
            .composed(
                "email_changed",
                format!("The email address of your {provider} portal account was changed"),
            ),
            AccountNotice::PasswordChanged { how } => {
                let (how, sessions) = match how {
                    PasswordWas::Changed => ("changed", "Every other session"),
                    PasswordWas::Reset => ("reset", "Every session"),
                };
                Changed {
                    provider,
                    name,
                    username,
                    how,
                    when,
                    sessions,
                    forgot_url: &self.link("/password/forgot"),
                }
                .composed(
                    "password_changed",
                    format!("Your {provider} portal password was {how}"),
                )
            }
            AccountNotice::TwoStep(notice) => {
                let (kind, subject, what, advice) = two_step_words(notice, provider);
                TwoStep {
                    provider,
                    name,
                    username,
                    what: &what,
                    advice: &advice,
                    when,
                }
                .composed(kind, subject)
            }
        }
    }
}

/// The mail kind, subject, what happened and what to do, for a two-step notice.
fn two_step_words(notice: TwoStepNotice, provider: &str) -> (&'static str, String, String, String) {
    match notice {
        TwoStepNotice::RecoveryCodeUsed { left } => (
            "two_step_recovery_code_used",
            format!("A recovery code was used to sign in to your {provider} portal"),
            "A recovery code was used to sign in".to_owned(),
            format!(
                "You have {left} unused recovery code{} left; make new ones in Settings, \
                 Two-step sign-in. If this was not you, change your password now and tell \
                 your administrator.",
                if left == 1 { "" } else { "s" }
            ),
        ),
        TwoStepNotice::Added { factor } => (
            "two_step_added",
            format!("A second factor was added to your {provider} portal account"),
            format!("{factor} was added to your two-step sign-in"),
            "From now on, signing in can ask for it after your password. If this was not \
             you, change your password now and tell your administrator, who can remove it."
                .to_owned(),
        ),
        TwoStepNotice::Removed { by } => (
            "two_step_removed",
            format!("Two-step sign-in was turned off for your {provider} portal"),
            match by {
                Remover::Admin => "Your two-step sign-in (authenticator app, passkeys and \
                                   recovery codes) was removed by an administrator of your \
                                   company"
                    .to_owned(),
                Remover::Provider => format!(
                    "Your two-step sign-in (authenticator app, passkeys and recovery codes) \
                     was removed by {provider} support, after a call in which the caller \
                     answered your security question"
                ),
            },
            match by {
                Remover::Admin => "Set it up again in Settings, Two-step sign-in. If you did \
                                   not ask for this, tell your administrator."
                    .to_owned(),
                Remover::Provider => format!(
                    "Set it up again in Settings, Two-step sign-in. If you did not make that \
                     call, change your password now and tell {provider} support."
                ),
            },
        ),
    }
}
