//! Password recovery by email: reset links (one message per address, one link per
//! account), the "email me my usernames" reminder, and using a link exactly once.
//! Every request gets the same answer whatever exists; the mail is only queued here.

use std::collections::BTreeMap;

use super::guard::{
    Counted, Window, RECOVERY_WINDOW, RESET_MAILS_PER_ACCOUNT, USERNAMES_MAILS_PER_ADDRESS,
    WRONG_EMAILS_PER_LINK,
};
use super::passwords::{check_new_password, refuse_current, PasswordRejected};
use super::{service, store_error_is_unexpected, trusted_devices, Client, Context, Unexpected};
use crate::audit::{Actor, Event, EventKind};
use crate::auth::hashing::HashError;
use crate::auth::token;
use crate::domain::{DomainError, Email, Username};
use crate::mail::{AccountNotice, LinkLine, PasswordWas, UsernameLine};
use crate::store::{Burst, NewResetLink, PasswordChange, ThrottleKey, UserId, UserRecord};

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
        rejected: Option<PasswordRejected>,
    },
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(ResetError);

/// Why no reset link was sent for someone else's request: a refusal every service that
/// sends links for others (tenant admin, operator console, provisioning) passes on as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoLink {
    /// The account has no email on file.
    #[error("no email on file")]
    NoEmailOnFile,
    /// The account was sent as many reset links by those trusted with it as the limit
    /// allows in the current window ([`RESET_MAILS_PER_ACCOUNT`] per [`RECOVERY_WINDOW`]);
    /// nothing changed.
    #[error("reset mail limit reached")]
    MailLimit,
}

/// Mails `user` a reset link to the email on file and ends their sessions, for someone
/// else who asked (`actor`: an admin, an operator, the API, the CLI). Limited as the
/// user's own requests are, on a budget of its own: an admin clicking again and again
/// cannot mail-bomb the user, and strangers asking for the user's links cannot spend what
/// the admin may send. Over the limit, nothing changes.
pub(crate) async fn send_link_for(
    ctx: &Context,
    user: UserRecord,
    actor: &Actor,
) -> Result<Result<(), NoLink>, Unexpected> {
    let Some(email) = user.email.clone() else {
        return Ok(Err(NoLink::NoEmailOnFile));
    };
    let id = user.id;
    let sent = queue_reset_mail(
        ctx,
        &email,
        vec![user],
        Some(actor.name()),
        actor.addr(),
        ThrottleKey::reset_mail_by_staff,
    )
    .await?;
    if sent == 0 {
        return Ok(Err(NoLink::MailLimit));
    }
    ctx.store.delete_user_sessions(id).await?;
    Ok(Ok(()))
}

/// Creates a link for each of `users` (who share `email`) and queues the messages that
/// carry them: one per tenant, so each customer's admins see (in a user's mail status) the
/// message about their own accounts and never another tenant's. Accounts over the
/// per-account mail limit (counted under `limit_key`) are skipped. Returns how many links
/// were queued.
async fn queue_reset_mail(
    ctx: &Context,
    email: &str,
    users: Vec<UserRecord>,
    actor: Option<&str>,
    addr: Option<&str>,
    limit_key: fn(UserId) -> ThrottleKey,
) -> Result<usize, Unexpected> {
    let now = ctx.now();
    let ttl = ctx.policy.reset_ttl;
    let mut granted = Vec::new();
    for user in users {
        let (guard, key) = (ctx.guard(), limit_key(user.id));
        let window = Window::Fixed(RECOVERY_WINDOW);
        if guard.count(&key, RESET_MAILS_PER_ACCOUNT, window).await? == Counted::Over {
            let detail = "reset mail limit reached; nothing sent";
            audit_reset(ctx, &user, actor, addr, EventKind::ResetLimited, detail).await?;
        } else {
            granted.push(user);
        }
    }
    let sent = granted.len();
    for tenant in by_tenant(granted) {
        let mut links = Vec::new();
        let mut lines = Vec::new();
        for user in &tenant {
            let token = token::random_token();
            links.push(NewResetLink {
                token_hash: token::token_hash(&token),
                user_id: user.id,
                expires_at: now.plus(ttl),
            });
            lines.push(LinkLine {
                username: user.username().to_string(),
                url: ctx.outbox.link(&format!("/password/reset?token={token}")),
            });
        }
        let message = ctx.outbox.reset_message(&lines, ttl, now.plus(ttl))?;
        let first = &tenant[0];
        let single_user = (tenant.len() == 1).then_some(first.id);
        let mail = ctx
            .outbox
            .seal(message, email, single_user, Some(first.tenant_id));
        ctx.store.create_reset_links(&links, &mail, now).await?;
        for user in &tenant {
            let detail = "reset link queued to the email on file";
            audit_reset(ctx, user, actor, addr, EventKind::ResetRequested, detail).await?;
        }
    }
    if sent > 0 {
        ctx.mail_wake.notify_one();
    }
    Ok(sent)
}

/// `users` in groups of one tenant each (never empty).
fn by_tenant(users: Vec<UserRecord>) -> Vec<Vec<UserRecord>> {
    let mut groups: Vec<Vec<UserRecord>> = Vec::new();
    for user in users {
        match groups.iter_mut().find(|g| g[0].tenant_id == user.tenant_id) {
            Some(group) => group.push(user),
            None => groups.push(vec![user]),
        }
    }
    groups
}

/// Audits what came of a reset asked for `user`'s account, by `actor` from `addr`.
async fn audit_reset(
    ctx: &Context,
    user: &UserRecord,
    actor: Option<&str>,
    addr: Option<&str>,
    kind: EventKind,
    detail: &str,
) -> Result<(), Unexpected> {
    let name = user.username().to_string();
    ctx.audit(Event {
        tenant: Some(user.tenant_id),
        actor,
        subject: Some(&name),
        client_addr: addr,
        detail: Some(detail),
        ..Event::new(kind)
    })
    .await
}

service!(
    /// Recovery by email, asked for by the account's owner.
    Recovery
);

impl Recovery {
    async fn accounts_for(&self, id: &Identifier) -> Result<Vec<UserRecord>, Unexpected> {
        let store = &self.ctx.store;
        Ok(match id {
            Identifier::Username(u) => store.user_by_username(u).await?.into_iter().collect(),
            Identifier::Email(e) => store.users_by_email(e.as_str()).await?,
        })
    }

    /// Queues reset links for the matching accounts that have an email on file. The caller
    /// shows the same answer whatever happened here.
    pub async fn request_reset(&self, id: &Identifier, client: Client) -> Result<(), Unexpected> {
        let addr = client.addr_string();
        let guard = self.ctx.guard();
        if guard.recovery_limited(client).await? {
            guard
                .audit_refusal(
                    Event {
                        client_addr: addr.as_deref(),
                        detail: Some("too many recovery requests from this address"),
                        ..Event::new(EventKind::ResetLimited)
                    },
                    Burst::PerAddress,
                )
                .await?;
            return Ok(());
        }
        let users = self.accounts_for(id).await?;
        let mut by_email: BTreeMap<String, Vec<UserRecord>> = BTreeMap::new();
        for user in users {
            let name = user.username().to_string();
            match user.email.clone() {
                Some(email) => by_email.entry(email).or_default().push(user),
                None => {
                    self.ctx
                        .audit(Event {
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
            let own = ThrottleKey::reset_mail;
            queue_reset_mail(&self.ctx, &email, users, None, addr.as_deref(), own).await?;
        }
        self.ctx.mail_wake.notify_one();
        Ok(())
    }

    /// Queues the list of usernames on file for the address (found by email, or by the
    /// email of the named account).
    pub async fn request_usernames(
        &self,
        id: &Identifier,
        client: Client,
    ) -> Result<(), Unexpected> {
        let addr = client.addr_string();
        if self.ctx.guard().recovery_limited(client).await? {
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
        let users = self.ctx.store.users_by_email(email.as_str()).await?;
        if users.is_empty() {
            return Ok(());
        }
        let now = self.ctx.now();
        let key = ThrottleKey::usernames_mail(&email);
        if self
            .ctx
            .guard()
            .count(
                &key,
                USERNAMES_MAILS_PER_ADDRESS,
                Window::Fixed(RECOVERY_WINDOW),
            )
            .await?
            == Counted::Over
        {
            return Ok(());
        }
        // One message per tenant, as for reset links.
        for tenant in by_tenant(users) {
            let lines: Vec<UsernameLine> = tenant
                .iter()
                .map(|u| UsernameLine {
                    username: u.username().to_string(),
                    tenant_name: u.tenant_name.clone(),
                    tenant_code: u.tenant_code.to_string(),
                })
                .collect();
            let message = self.ctx.outbox.usernames_message(&lines)?;
            let first = &tenant[0];
            let single_user = (tenant.len() == 1).then_some(first.id);
            let mail =
                self.ctx
                    .outbox
                    .seal(message, email.as_str(), single_user, Some(first.tenant_id));
            self.ctx.store.enqueue_mail(&mail, now).await?;
            for user in &tenant {
                let name = user.username().to_string();
                self.ctx
                    .audit(Event {
                        tenant: Some(user.tenant_id),
                        subject: Some(&name),
                        client_addr: addr.as_deref(),
                        ..Event::new(EventKind::UsernamesRequested)
                    })
                    .await?;
            }
        }
        self.ctx.mail_wake.notify_one();
        Ok(())
    }

    /// The account a link resets, if the link can still be used. Looking never uses it up.
    pub async fn reset_link(&self, token: &str) -> Result<Option<ResetLinkView>, Unexpected> {
        Ok(self.live_link(token).await?.map(|(_, user)| ResetLinkView {
            username: user.username().to_string(),
        }))
    }

    async fn live_link(
        &self,
        token: &str,
    ) -> Result<Option<(crate::store::ResetRecord, UserRecord)>, Unexpected> {
        if !token::looks_like_token(token) {
            return Ok(None);
        }
        let found = self.ctx.store.reset_link(&token::token_hash(token)).await?;
        let now = self.ctx.now();
        Ok(found.filter(|(link, _)| link.used_at.is_none() && link.expires_at > now))
    }

    /// Counts a guess made with `link` (a wrong email, or a new password that matched the
    /// current one): past [`WRONG_EMAILS_PER_LINK`] the link is spent and no longer works.
    async fn guess_on(&self, link: &crate::store::ResetRecord) -> Result<(), ResetError> {
        let guesses = self
            .ctx
            .guard()
            .count(
                &ThrottleKey::reset_email_guesses(link.id),
                WRONG_EMAILS_PER_LINK - 1,
                Window::Sliding(self.ctx.policy.reset_ttl),
            )
            .await?;
        if guesses == Counted::Over {
            self.ctx
                .store
                .spend_reset_link(link.id, self.ctx.now())
                .await?;
            return Err(ResetError::LinkInvalid);
        }
        Ok(())
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
        device_cookie: Option<&str>,
        client: Client,
    ) -> Result<String, ResetError> {
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
            // guesses and the link is spent. The policy only after the email is proven: its
            // answer may name the voicemail PIN, which a link's finder must not be able to
            // test.
            self.guess_on(&link).await?;
            return Err(ResetError::Form {
                email_wrong,
                rejected: None,
            });
        }
        let checked = match check_new_password(&self.ctx, &user, new, confirm).await? {
            Ok(p) => refuse_current(&self.ctx, &user, p, None).await,
            Err(rejected) => Ok(Err(rejected)),
        };
        let password = match checked {
            Ok(Ok(p)) => p,
            Ok(Err(rejected)) => {
                if rejected.same_as_current {
                    // "The same as your current password" tells whether a guess is the
                    // password: it costs a guess on the link as a wrong email does.
                    self.guess_on(&link).await?;
                }
                return Err(ResetError::Form {
                    email_wrong,
                    rejected: Some(rejected),
                });
            }
            Err(HashError::Busy(_)) => return Err(ResetError::Busy),
            Err(e) => return Err(Unexpected::from(e).into()),
        };
        let hash = match self.ctx.hasher.hash(password.expose()).await {
            Ok(h) => h,
            Err(HashError::Busy(_)) => return Err(ResetError::Busy),
            Err(e) => return Err(Unexpected::from(e).into()),
        };
        let now = self.ctx.now();
        let notice = AccountNotice::PasswordChanged {
            how: PasswordWas::Reset,
        };
        let notice = self.ctx.outbox.account_notice(&user, on_file, notice, now);
        let notice = notice.map_err(Unexpected::from)?;
        let done = self
            .ctx
            .store
            .complete_reset(
                link.id,
                user.id,
                &PasswordChange {
                    password_hash: &hash,
                    expires_at: None,
                    username_key: &ThrottleKey::username(&user.username()),
                },
                Some(&notice),
                now,
            )
            .await?;
        if !done {
            return Err(ResetError::LinkInvalid);
        }
        let addr = client.addr_string();
        let name = user.username().to_string();
        self.ctx
            .audit(Event::from_addr(
                EventKind::ResetUsed,
                user.tenant_id,
                &name,
                addr.as_deref(),
            ))
            .await?;
        self.ctx.mail_wake.notify_one();
        let signing_key = self.ctx.keyring.signing_key();
        Ok(trusted_devices::reissue(
            &signing_key,
            device_cookie,
            &user,
            &hash,
        ))
    }
}
