//! Password recovery by email: reset links (one message per address, one link per
//! account), the "email me my usernames" reminder, and using a link exactly once.
//! Every request gets the same answer whatever exists; the mail is only queued here.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;

use super::passwords::check_form;
use super::{user_key, Accounts, ChangePasswordError, Client, Unexpected};
use crate::audit::{Event, EventKind};
use crate::auth::hashing::HashError;
use crate::auth::token;
use crate::domain::{DomainError, Email, PasswordContext, PasswordProblem, Username};
use crate::mail::{LinkLine, UsernameLine};
use crate::store::{NewResetLink, PasswordChange, StoreError, UserRecord};

/// At most this many reset links per account per window.
pub const RESET_MAILS_PER_ACCOUNT: i64 = 3;
/// At most this many recovery requests per client address per window.
pub const RECOVERY_REQUESTS_PER_ADDRESS: i64 = 10;
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong answers to "your email address" on a reset page before the link is spent.
pub const WRONG_EMAILS_PER_LINK: i64 = 5;

/// What a user typed to find their account: a username or the email on file.
#[derive(Debug, Clone)]
pub enum Identifier {
    Username(Username),
    Email(Email),
}

impl Identifier {
    pub fn parse(raw: &str) -> Result<Identifier, DomainError> {
        if raw.contains('@') {
            Email::parse(raw).map(Identifier::Email)
        } else {
            Username::parse(raw).map(Identifier::Username)
        }
    }
}

/// A reset link that can still be used, as its page shows it.
#[derive(Debug, Clone)]
pub struct ResetLinkView {
    pub username: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Unknown, tampered, expired or already used.
    #[error("the link is not valid")]
    LinkInvalid,
    /// The form's problems, all at once.
    #[error("invalid form")]
    Form {
        email_wrong: bool,
        problems: Vec<PasswordProblem>,
        mismatch: bool,
    },
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<StoreError> for ResetError {
    fn from(e: StoreError) -> Self {
        ResetError::Unexpected(e.into())
    }
}

fn render_failed(e: askama::Error) -> Unexpected {
    Unexpected(anyhow::anyhow!("mail template: {e}"))
}

impl Accounts {
    /// Whether the client address has asked for too much recovery mail lately.
    async fn recovery_limited(&self, client: Client) -> Result<bool, Unexpected> {
        let Some(ip) = client.addr else {
            return Ok(false);
        };
        let state = self
            .store
            .throttle_count(&format!("recovery:{ip}"), self.now(), RECOVERY_WINDOW)
            .await?;
        Ok(state.attempts > RECOVERY_REQUESTS_PER_ADDRESS)
    }

    async fn accounts_for(&self, id: &Identifier) -> Result<Vec<UserRecord>, Unexpected> {
        Ok(match id {
            Identifier::Username(u) => self
                .store
                .user_by_username(u.tenant().as_str(), u.extension().as_str())
                .await?
                .into_iter()
                .collect(),
            Identifier::Email(e) => self.store.users_by_email(e.as_str()).await?,
        })
    }

    /// Queues reset links for the matching accounts that have an email on file. The caller
    /// shows the same answer whatever happened here.
    pub async fn request_reset(&self, id: &Identifier, client: Client) -> Result<(), Unexpected> {
        let addr = client.addr_string();
        if self.recovery_limited(client).await? {
            self.audit(Event {
                client_addr: addr.as_deref(),
                detail: Some("too many recovery requests from this address"),
                ..Event::new(EventKind::ResetLimited)
            })
            .await?;
            return Ok(());
        }
        let users = self.accounts_for(id).await?;
        let mut by_email: BTreeMap<String, Vec<UserRecord>> = BTreeMap::new();
        for user in users {
            let name = user.username();
            match user.email.clone() {
                Some(email) => by_email.entry(email).or_default().push(user),
                None => {
                    self.audit(Event {
                        tenant: Some(user.tenant_id),
                        subject: Some(&name),
                        client_addr: addr.as_deref(),
                        detail: Some("no email on file; nothing sent"),
                        ..Event::new(EventKind::ResetRequested)
                    })
                    .await?
                }
            }
        }
        for (email, users) in by_email {
            self.queue_reset_mail(&email, users, None, addr.as_deref(), true)
                .await?;
        }
        self.mail_wake.notify_one();
        Ok(())
    }

    /// Creates a link for each of `users` (who share `email`) and queues the one message
    /// that carries them. With `enforce_limit`, accounts over the per-account mail limit
    /// are skipped. Returns how many links were queued.
    pub(crate) async fn queue_reset_mail(
        &self,
        email: &str,
        users: Vec<UserRecord>,
        actor: Option<&str>,
        addr: Option<&str>,
        enforce_limit: bool,
    ) -> Result<usize, Unexpected> {
        let now = self.now();
        let ttl = self.policy.reset_ttl;
        let mut links = Vec::new();
        let mut lines = Vec::new();
        let mut granted = Vec::new();
        for user in users {
            let name = user.username();
            // Counted atomically, so concurrent requests cannot slip past the limit.
            if enforce_limit
                && self
                    .store
                    .throttle_count(&format!("reset-mail:{}", user.id.0), now, RECOVERY_WINDOW)
                    .await?
                    .attempts
                    > RESET_MAILS_PER_ACCOUNT
            {
                self.audit(Event {
                    tenant: Some(user.tenant_id),
                    actor,
                    subject: Some(&name),
                    client_addr: addr,
                    detail: Some("reset mail limit reached; nothing sent"),
                    ..Event::new(EventKind::ResetLimited)
                })
                .await?;
                continue;
            }
            let token = token::random_token();
            links.push(NewResetLink {
                token_hash: token::token_hash(&token),
                user_id: user.id,
                expires_at: now.plus(ttl),
            });
            lines.push(LinkLine {
                username: name,
                url: self.outbox.link(&format!("/password/reset?token={token}")),
            });
            granted.push(user);
        }
        let Some(first) = granted.first() else {
            return Ok(0);
        };
        let message = self
            .outbox
            .reset_message(&lines, ttl, now.plus(ttl))
            .map_err(render_failed)?;
        let single_user = (granted.len() == 1).then_some(first.id);
        let mail = self
            .outbox
            .seal(message, email, single_user, Some(first.tenant_id));
        self.store.create_reset_links(&links, &mail, now).await?;
        for user in &granted {
            let name = user.username();
            self.audit(Event {
                tenant: Some(user.tenant_id),
                actor,
                subject: Some(&name),
                client_addr: addr,
                detail: Some("reset link queued to the email on file"),
                ..Event::new(EventKind::ResetRequested)
            })
            .await?;
        }
        self.mail_wake.notify_one();
        Ok(granted.len())
    }

    /// Queues the list of usernames on file for the address (found by email, or by the
    /// email of the named account).
    pub async fn request_usernames(
        &self,
        id: &Identifier,
        client: Client,
    ) -> Result<(), Unexpected> {
        let addr = client.addr_string();
        if self.recovery_limited(client).await? {
            return Ok(());
        }
        let email = match id {
            Identifier::Email(e) => Some(e.as_str().to_owned()),
            Identifier::Username(_) => self
                .accounts_for(id)
                .await?
                .into_iter()
                .next()
                .and_then(|u| u.email),
        };
        let Some(email) = email else { return Ok(()) };
        let users = self.store.users_by_email(&email).await?;
        let Some(first) = users.first() else {
            return Ok(());
        };
        let now = self.now();
        if self
            .store
            .throttle_count(&format!("usernames-mail:{email}"), now, RECOVERY_WINDOW)
            .await?
            .attempts
            > RESET_MAILS_PER_ACCOUNT
        {
            return Ok(());
        }
        let lines: Vec<UsernameLine> = users
            .iter()
            .map(|u| UsernameLine {
                username: u.username(),
                tenant_name: u.tenant_name.clone(),
                tenant_code: u.tenant_code.clone(),
            })
            .collect();
        let message = self
            .outbox
            .usernames_message(&lines)
            .map_err(render_failed)?;
        let single_user = (users.len() == 1).then_some(first.id);
        let mail = self
            .outbox
            .seal(message, &email, single_user, Some(first.tenant_id));
        self.store.enqueue_mail(&mail, now).await?;
        for user in &users {
            let name = user.username();
            self.audit(Event {
                tenant: Some(user.tenant_id),
                subject: Some(&name),
                client_addr: addr.as_deref(),
                ..Event::new(EventKind::UsernamesRequested)
            })
            .await?;
        }
        self.mail_wake.notify_one();
        Ok(())
    }

    /// The account a link resets, if the link can still be used. Looking never uses it up.
    pub async fn reset_link(&self, token: &str) -> Result<Option<ResetLinkView>, Unexpected> {
        Ok(self.live_link(token).await?.map(|(_, user)| ResetLinkView {
            username: user.username(),
        }))
    }

    async fn live_link(
        &self,
        token: &str,
    ) -> Result<Option<(crate::store::ResetRecord, UserRecord)>, Unexpected> {
        if !token::looks_like_token(token) {
            return Ok(None);
        }
        let found = self.store.reset_link(&token::token_hash(token)).await?;
        let now = self.now();
        Ok(found.filter(|(link, _)| link.used_at.is_none() && link.expires_at > now))
    }

    /// Uses a link: checks the email on file and the new password, then — atomically with
    /// marking the link used — sets the password, ends every session, kills the user's other
    /// links, clears the lockout and queues a notice.
    pub async fn complete_reset(
        &self,
        token: &str,
        email: &str,
        new: &str,
        confirm: &str,
        client: Client,
    ) -> Result<(), ResetError> {
        let Some((link, user)) = self.live_link(token).await? else {
            return Err(ResetError::LinkInvalid);
        };
        let on_file = user.email.as_deref().unwrap_or("");
        let email_wrong = match Email::parse(email) {
            Ok(e) => e.as_str() != on_file,
            Err(_) => true,
        };
        if email_wrong {
            // The email is the one thing a leaked link's finder does not know: a few wrong
            // guesses and the link is spent.
            let guesses = self
                .store
                .throttle_count(
                    &format!("reset-email:{}", link.id),
                    self.now(),
                    self.policy.reset_ttl,
                )
                .await?;
            if guesses.attempts >= WRONG_EMAILS_PER_LINK {
                self.store.spend_reset_link(link.id, self.now()).await?;
                return Err(ResetError::LinkInvalid);
            }
        }
        let username = Username::parse(&user.username())
            .map_err(|e| Unexpected(anyhow::anyhow!("stored username: {e}")))?;
        let (sip_secret, pin) = self.device_secrets(&user).await?;
        let context = PasswordContext {
            username: Some(&username),
            pin: pin.as_deref(),
            sip_secret: sip_secret.as_deref(),
        };
        let checked = check_form(new, confirm, &context);
        let password = match (checked, email_wrong) {
            (Ok(p), false) => p,
            (Ok(_), true) => {
                return Err(ResetError::Form {
                    email_wrong,
                    problems: Vec::new(),
                    mismatch: false,
                })
            }
            (Err(ChangePasswordError::Invalid { problems, mismatch }), _) => {
                return Err(ResetError::Form {
                    email_wrong,
                    problems,
                    mismatch,
                })
            }
            (Err(e), _) => return Err(Unexpected(anyhow::anyhow!("password check: {e}")).into()),
        };
        let hash = match self
            .hasher
            .hash(SecretString::from(password.expose().to_owned()))
            .await
        {
            Ok(h) => h,
            Err(HashError::Busy(_)) => return Err(ResetError::Busy),
            Err(e) => return Err(Unexpected::from(e).into()),
        };
        let now = self.now();
        let name = user.username();
        let notice = self
            .outbox
            .password_changed_message(&user.name, &name, "reset", now)
            .map_err(render_failed)?;
        let notice = self
            .outbox
            .seal(notice, on_file, Some(user.id), Some(user.tenant_id));
        let done = self
            .store
            .complete_reset(
                link.id,
                user.id,
                &PasswordChange {
                    password_hash: &hash,
                    expires_at: None,
                },
                &user_key(&name),
                Some(&notice),
                now,
            )
            .await?;
        if !done {
            return Err(ResetError::LinkInvalid);
        }
        let addr = client.addr_string();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(&name),
            client_addr: addr.as_deref(),
            ..Event::new(EventKind::ResetUsed)
        })
        .await?;
        self.mail_wake.notify_one();
        Ok(())
    }
}
