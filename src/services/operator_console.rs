//! The provider's operator console: operators sign in apart from tenant users, look after
//! tenants, and help a tenant admin who is locked out by verifying the caller with the
//! admin's security question. An operator never sees or sets a password: after a match
//! they may only read back the username and Client ID, mail a reset link to the email on
//! file, or unlock — each for 15 minutes, each audited for the provider and the tenant.

use std::time::Duration;

use secrecy::SecretString;

use super::guard::{still_ahead, Counted, Refusal, Window, CALLER_TRIES, CALLER_TRIES_WINDOW};
pub use super::provisioning::NewTenantWithAdmin;
use super::provisioning::{Provisioning, TenantError};
use super::recovery::{send_link_for, NoLink};
use super::sessions::{keep_alive, SessionOf};
use super::sign_in::SignInError;
use super::tenant_admin::{page_offset, PAGE_SIZE};
use super::two_step::{self, Account, AfterPassword, PendingStep};
use super::{service, store_error_is_unexpected, Client, Context, Unexpected};
use crate::audit::{operator_actor, Actor, Event, EventKind};
use crate::auth::token;
use crate::clock::Timestamp;
use crate::domain::{Extension, OperatorName, SecurityAnswer, TenantCode, Username};
use crate::store::{
    AdminRow, AuditRecord, OperatorRecord, OperatorSessionRecord, Tenant, TenantListRow,
    ThrottleKey, UserId, UserRecord,
};

/// How long after a caller's answer matched the operator may act for that admin.
pub const VERIFIED_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A live operator session and its operator.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub session: OperatorSessionRecord,
    pub operator: OperatorRecord,
}

impl OperatorSession {
    /// How the operator appears in audit logs, acting from `client`.
    pub fn actor(&self, client: &Client) -> Actor {
        Actor::new(operator_actor(&self.operator.name), client.addr)
    }
}

/// A tenant the operator console did not create.
#[derive(Debug, thiserror::Error)]
pub enum NewTenantError {
    /// No email for the first admin: they would have needed a password the operator saw,
    /// and operators never see passwords.
    #[error("the first admin needs an email, to choose a password from a mailed link")]
    AdminEmailNeeded,
    #[error(transparent)]
    Refused(#[from] TenantError),
}

super::provisioning::wraps_tenant_error!(NewTenantError);

/// No such tenant, or no such admin in it; or a fault.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Why a try at a caller's answer gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not found")]
    NotFound,
    /// The admin has no security question, so a caller cannot be verified.
    #[error("no security question")]
    NoQuestion,
    /// The admin's tries are used up; call back later.
    #[error("too many tries")]
    TooManyTries { retry_after: Duration },
    /// The hashing pool is full; the try was given back.
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Why an action for a verified caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("not found")]
    NotFound,
    /// No matching answer from this operator in the last 15 minutes.
    #[error("caller not verified")]
    NotVerified,
    /// No reset link was sent: no email on file, or the mail limit.
    #[error(transparent)]
    NoLink(#[from] NoLink),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(OperatorError);

store_error_is_unexpected!(VerifyError);

impl From<OperatorError> for VerifyError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::NotFound => VerifyError::NotFound,
            OperatorError::Unexpected(u) => VerifyError::Unexpected(u),
        }
    }
}

impl From<OperatorError> for ActError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::NotFound => ActError::NotFound,
            OperatorError::Unexpected(u) => ActError::Unexpected(u),
        }
    }
}

/// A tenant and its admins, as the console shows them.
#[derive(Debug, Clone)]
pub struct TenantView {
    pub tenant: Tenant,
    pub admins: Vec<AdminRow>,
}

/// One admin as the caller-verification page shows them.
#[derive(Debug, Clone)]
pub struct CallerView {
    pub tenant: Tenant,
    pub admin: AdminRow,
    /// Tries left before the pause.
    pub tries_left: i64,
    /// Until when this operator may act after a matching answer.
    pub verified_until: Option<Timestamp>,
}

/// What a try at the caller's answer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCheck {
    Matched,
    Wrong { tries_left: i64 },
}

/// The first admin of a new tenant, to whose email a link to choose a password went.
pub struct CreatedTenant {
    pub admin_username: Username,
}

/// Where an operator's right password leads: operators must have a second factor, so
/// it is the second step, or setting one up first.
#[derive(Debug)]
pub enum OperatorSignIn {
    /// The second step is next (`GET /operator/login/two-step`).
    SecondStep(PendingStep),
    /// Setting up an authenticator app is next (`GET /operator/login/two-step/setup`).
    Enrol(PendingStep),
}

/// Opens a console session for `operator`, whose sign-in is complete (password and
/// second step); `detail` says how the second step was done. Returns the cookie value.
pub(crate) async fn open_operator_session(
    ctx: &Context,
    operator: &OperatorRecord,
    client: Client,
    detail: Option<&str>,
) -> Result<String, Unexpected> {
    let token = token::random_token();
    ctx.store
        .insert_operator_session(&token::token_hash(&token), operator.id, ctx.now())
        .await?;
    let actor = operator_actor(&operator.name);
    let addr = client.addr_string();
    ctx.audit(Event {
        detail,
        ..Event::by(EventKind::SignInOk, &actor, addr.as_deref())
    })
    .await?;
    Ok(token)
}

service!(
    /// The provider's operator console.
    OperatorConsole
);

impl OperatorConsole {
    /// Signs an operator in: the same lockout, address slow-down, bounded hashing and
    /// dummy hash as a tenant sign-in. No session yet: the second step (or setting up a
    /// second factor) comes first.
    pub async fn sign_in(
        &self,
        name: &OperatorName,
        password: SecretString,
        client: Client,
    ) -> Result<OperatorSignIn, SignInError> {
        let ctx = &self.ctx;
        let admitted = ctx
            .hasher
            .admit(client.source(), false)
            .await
            .map_err(|_| SignInError::Refused(Refusal::Busy))?;
        let operator = ctx.store.operator_by_name(name).await?;
        let actor = operator_actor(name);
        let addr = client.addr_string();
        let event = |kind| Event::by(kind, &actor, addr.as_deref());
        let key = ThrottleKey::operator(name);
        let guard = ctx.guard();
        let operator = guard
            .check_sign_in(admitted, &key, operator, &password, client, &event)
            .await?
            .map_err(SignInError::Refused)?;
        guard.password_ok_step_pending(&key).await?;
        let account = Account::Operator(operator);
        Ok(match two_step::after_password(ctx, &account).await? {
            AfterPassword::Enrol => {
                OperatorSignIn::Enrol(two_step::begin_pending(ctx, &account, true).await?)
            }
            AfterPassword::SecondStep | AfterPassword::SignIn => {
                OperatorSignIn::SecondStep(two_step::begin_pending(ctx, &account, false).await?)
            }
        })
    }

    /// The operator session behind a cookie value, if it is live; slides its idle timer.
    pub async fn authenticate(&self, cookie: &str) -> Result<Option<OperatorSession>, Unexpected> {
        if !token::looks_like_token(cookie) {
            return Ok(None);
        }
        let ctx = &self.ctx;
        let Some((session, operator)) = ctx
            .store
            .operator_session(&token::token_hash(cookie))
            .await?
        else {
            return Ok(None);
        };
        let (id, created, seen) = (session.id, session.created_at, session.last_seen_at);
        if !keep_alive(ctx, SessionOf::Operator, id, created, seen, ctx.now()).await? {
            return Ok(None);
        }
        Ok(Some(OperatorSession { session, operator }))
    }

    pub async fn sign_out(&self, os: &OperatorSession, client: Client) -> Result<(), Unexpected> {
        self.ctx
            .store
            .delete_operator_session(os.session.id)
            .await?;
        let actor = os.actor(&client);
        self.ctx
            .audit(Event::by(EventKind::SignOut, actor.name(), actor.addr()))
            .await
    }

    /// One page of tenants, searched by Client ID or name.
    pub async fn tenants(
        &self,
        search: Option<&str>,
        page: i64,
    ) -> Result<(Vec<TenantListRow>, i64), Unexpected> {
        let offset = page_offset(page);
        Ok(self
            .ctx
            .store
            .list_tenants(search, PAGE_SIZE, offset)
            .await?)
    }

    /// A tenant and its admins.
    pub async fn tenant(&self, code: &TenantCode) -> Result<TenantView, OperatorError> {
        let tenant = self
            .ctx
            .store
            .tenant_by_code(code)
            .await?
            .ok_or(OperatorError::NotFound)?;
        let admins = self
            .ctx
            .store
            .tenant_admins(tenant.id, self.ctx.now())
            .await?;
        Ok(TenantView { tenant, admins })
    }

    /// Creates a tenant and its first admin, who is mailed a link to choose a password:
    /// an operator never sees one, so the admin's email is required.
    pub async fn create_tenant(
        &self,
        os: &OperatorSession,
        req: &NewTenantWithAdmin,
        client: &Client,
    ) -> Result<CreatedTenant, NewTenantError> {
        if req.admin_email.is_none() {
            return Err(NewTenantError::AdminEmailNeeded);
        }
        let actor = os.actor(client);
        // The generated password is never shown: the admin chooses one from the link.
        let (_, admin, _) = Provisioning::new(self.ctx.clone())
            .create_tenant_with_admin(req, &actor)
            .await?;
        let username = admin.user.username();
        match send_link_for(&self.ctx, admin.user, &actor).await? {
            Ok(()) => {}
            Err(NoLink::NoEmailOnFile) => {
                return Err(Unexpected::invariant("the new admin's email is gone").into())
            }
            Err(NoLink::MailLimit) => {
                return Err(Unexpected::invariant("a new admin is over the mail limit").into())
            }
        }
        Ok(CreatedTenant {
            admin_username: username,
        })
    }

    /// The admin `admin_id` of the tenant `code`, with their question and lock state.
    async fn claimed_admin(
        &self,
        code: &TenantCode,
        admin_id: UserId,
    ) -> Result<(Tenant, AdminRow), OperatorError> {
        let view = self.tenant(code).await?;
        let admin = view
            .admins
            .into_iter()
            .find(|a| a.user.id == admin_id)
            .ok_or(OperatorError::NotFound)?;
        Ok((view.tenant, admin))
    }

    /// Until when this operator may act for this admin, if a caller matched lately.
    async fn verified_until(
        &self,
        os: &OperatorSession,
        user: &UserRecord,
    ) -> Result<Option<Timestamp>, OperatorError> {
        let now = self.ctx.now();
        let at = self
            .ctx
            .store
            .last_caller_verification(os.operator.id, user.id)
            .await?;
        Ok(still_ahead(at.map(|at| at.plus(VERIFIED_WINDOW)), now))
    }

    /// What the verification page shows about the admin a caller claims to be.
    pub async fn caller_view(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
    ) -> Result<CallerView, OperatorError> {
        let (tenant, admin) = self.claimed_admin(code, admin_id).await?;
        let used = self
            .ctx
            .guard()
            .tries_used(
                &ThrottleKey::caller_tries(admin.user.id),
                CALLER_TRIES_WINDOW,
            )
            .await?;
        let verified_until = self.verified_until(os, &admin.user).await?;
        Ok(CallerView {
            tenant,
            admin,
            tries_left: (CALLER_TRIES - used).max(0),
            verified_until,
        })
    }

    async fn audit(
        &self,
        os: &OperatorSession,
        kind: EventKind,
        user: &UserRecord,
        client: Client,
        detail: Option<&str>,
    ) -> Result<(), Unexpected> {
        let actor = os.actor(&client);
        let subject = user.username().to_string();
        self.ctx
            .audit(Event {
                detail,
                ..Event::on(kind, user.tenant_id, &actor, &subject)
            })
            .await
    }

    /// Checks the answer a caller gave against the admin's stored one. Three tries per
    /// admin, counted atomically before the hash, then an hour's pause.
    pub async fn verify_caller(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
        answer: &str,
        client: Client,
    ) -> Result<CallerCheck, VerifyError> {
        let (_, admin) = self.claimed_admin(code, admin_id).await?;
        let user = &admin.user;
        let stored = self
            .ctx
            .store
            .security_question(user.id)
            .await?
            .ok_or(VerifyError::NoQuestion)?;
        let key = ThrottleKey::caller_tries(user.id);
        let guard = self.ctx.guard();
        let attempts = match guard
            .count(&key, CALLER_TRIES, Window::Sliding(CALLER_TRIES_WINDOW))
            .await?
        {
            Counted::Within { attempts } => attempts,
            Counted::Over => {
                self.audit(
                    os,
                    EventKind::CallerRefused,
                    user,
                    client,
                    Some("no tries left; caller told to call back later"),
                )
                .await?;
                return Err(VerifyError::TooManyTries {
                    retry_after: CALLER_TRIES_WINDOW,
                });
            }
        };
        let typed = SecurityAnswer::typed(answer);
        let matched = match self
            .ctx
            .hasher
            .verify(stored.answer_hash, typed.expose())
            .await
        {
            Ok(m) => m,
            Err(_) => {
                guard.give_back(&key).await?;
                return Err(VerifyError::Busy);
            }
        };
        let tries_left = (CALLER_TRIES - attempts).max(0);
        if matched {
            // A match proves the caller, as a right password clears a name's failures:
            // the admin's next call starts with every try again.
            guard.unlock(&key).await?;
            self.ctx
                .store
                .record_caller_verified(os.operator.id, user.id, self.ctx.now())
                .await?;
            self.audit(os, EventKind::CallerVerified, user, client, None)
                .await?;
            Ok(CallerCheck::Matched)
        } else {
            let detail = format!("answer did not match; {tries_left} tries left");
            self.audit(
                os,
                EventKind::CallerNotVerified,
                user,
                client,
                Some(&detail),
            )
            .await?;
            Ok(CallerCheck::Wrong { tries_left })
        }
    }

    /// The admin behind a verified call, or `NotVerified`.
    pub(crate) async fn verified_admin(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
    ) -> Result<UserRecord, ActError> {
        let (_, admin) = self.claimed_admin(code, admin_id).await?;
        match self.verified_until(os, &admin.user).await? {
            Some(_) => Ok(admin.user),
            None => Err(ActError::NotVerified),
        }
    }

    /// The admin's username and the tenant's Client ID, to read back to a verified caller.
    pub async fn reveal_admin_identity(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
        client: Client,
    ) -> Result<(Username, TenantCode), ActError> {
        let user = self.verified_admin(os, code, admin_id).await?;
        self.audit(
            os,
            EventKind::CallerIdentityRevealed,
            &user,
            client,
            Some("username and Client ID read back to the verified caller"),
        )
        .await?;
        Ok((user.username(), user.tenant_code.clone()))
    }

    /// Mails a reset link to the verified admin's email on file; their sessions end.
    pub async fn send_reset_link(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
        client: &Client,
    ) -> Result<(), ActError> {
        let user = self.verified_admin(os, code, admin_id).await?;
        Ok(send_link_for(&self.ctx, user, &os.actor(client)).await??)
    }

    /// Clears the verified admin's sign-in lock.
    pub async fn unlock(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
        client: Client,
    ) -> Result<(), ActError> {
        let user = self.verified_admin(os, code, admin_id).await?;
        self.ctx
            .guard()
            .unlock(&ThrottleKey::username(&user.username()))
            .await?;
        self.audit(os, EventKind::UserUnlocked, &user, client, None)
            .await?;
        Ok(())
    }

    /// One page of the provider's audit log. Tenant usernames in it (actors, subjects) are
    /// masked to their Client ID (`•••-acme`) unless this operator has a live caller
    /// verification for that admin: the username is revealed only after verification.
    pub async fn provider_audit(
        &self,
        os: &OperatorSession,
        page: i64,
    ) -> Result<(Vec<AuditRecord>, i64), Unexpected> {
        let offset = page.max(0).saturating_mul(PAGE_SIZE);
        let (mut events, total) = self
            .ctx
            .store
            .provider_audit_page(PAGE_SIZE, offset)
            .await?;
        let since = self.ctx.now().minus(VERIFIED_WINDOW);
        let verified: Vec<Username> = self
            .ctx
            .store
            .verified_admins(os.operator.id, since)
            .await?
            .into_iter()
            .filter_map(|(extension, code)| {
                Some(Username::new(
                    Extension::parse(&extension).ok()?,
                    TenantCode::parse(&code).ok()?,
                ))
            })
            .collect();
        let shown = |name: Option<String>| {
            name.map(|n| match Username::parse(&n) {
                Ok(u) if !verified.contains(&u) => masked(&u),
                _ => n,
            })
        };
        for e in &mut events {
            e.actor = shown(e.actor.take());
            e.subject = shown(e.subject.take());
        }
        Ok((events, total))
    }
}

/// A tenant username with its extension hidden: the Client ID is enough to find the tenant.
fn masked(u: &Username) -> String {
    format!("•••-{}", u.tenant())
}
