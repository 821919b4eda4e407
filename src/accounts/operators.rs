//! The provider's operator console: operators sign in apart from tenant users, look after
//! tenants, and help a tenant admin who is locked out by verifying the caller with the
//! admin's security question. An operator never sees or sets a password: after a match
//! they may only read back the username and Client ID, mail a reset link to the email on
//! file, or unlock — each for 15 minutes, each audited for the provider and the tenant.

use std::time::Duration;

use secrecy::SecretString;

use super::provisioning::ProvisionError;
use super::sessions::Liveness;
use super::{user_key, Accounts, AdminError, Client, SignInError, Unexpected, PAGE_SIZE};
use crate::audit::{Event, EventKind};
use crate::auth::token;
use crate::clock::Timestamp;
use crate::domain::{
    DisplayName, Email, Extension, NewPassword, OperatorName, Role, SecurityAnswer, TenantCode,
    Username,
};
use crate::store::{
    AdminRow, AuditRecord, OperatorRecord, OperatorSessionRecord, StoreError, Tenant,
    TenantListRow, UserId, UserRecord,
};

/// How long after a caller's answer matched the operator may act for that admin.
pub const VERIFIED_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Tries at a caller's answer per admin, across operators, before a pause of…
pub const CALLER_TRIES: i64 = 3;
/// …an hour without tries.
pub const CALLER_TRIES_WINDOW: Duration = Duration::from_secs(3600);

/// A live operator session and its operator.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub session: OperatorSessionRecord,
    pub operator: OperatorRecord,
}

impl OperatorSession {
    /// How the operator appears in audit logs.
    pub fn actor(&self) -> String {
        operator_actor(&self.operator.name)
    }
}

/// An operator's name in audit logs and as their sign-in throttle key: `operator:NAME`,
/// which no tenant username can be.
fn operator_actor(name: &str) -> String {
    format!("operator:{name}")
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No such tenant, or no such admin in it.
    #[error("not found")]
    NotFound,
    /// The admin has no security question, so a caller cannot be verified.
    #[error("no security question")]
    NoQuestion,
    /// No matching answer from this operator in the last 15 minutes.
    #[error("caller not verified")]
    NotVerified,
    /// The admin's tries are used up; call back later.
    #[error("too many tries")]
    TooManyTries { retry_after: Duration },
    /// No email on file to send a reset link to.
    #[error("no email on file")]
    NoEmail,
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<StoreError> for OperatorError {
    fn from(e: StoreError) -> Self {
        OperatorError::Unexpected(e.into())
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

/// A new tenant with its first admin.
pub struct NewTenantRequest {
    pub code: TenantCode,
    pub name: DisplayName,
    pub sip_domain: Option<String>,
    pub admin_extension: Extension,
    pub admin_name: DisplayName,
    pub admin_email: Option<Email>,
}

/// The first admin of a new tenant: a reset link went to their email, or (without one)
/// this temporary password is shown once.
pub struct CreatedTenant {
    pub admin_username: String,
    pub temporary_password: Option<NewPassword>,
}

impl Accounts {
    /// Signs an operator in: the same lockout, address slow-down, bounded hashing and
    /// dummy hash as a tenant sign-in. Returns the new session's cookie value.
    pub async fn operator_sign_in(
        &self,
        name: &OperatorName,
        password: SecretString,
        client: Client,
    ) -> Result<String, SignInError> {
        let admitted = self.hasher.admit().map_err(|_| SignInError::Busy)?;
        let operator = self.store.operator_by_name(name.as_str()).await?;
        let actor = operator_actor(name.as_str());
        let addr = client.addr_string();
        let event = |kind| Event {
            actor: Some(actor.as_str()),
            client_addr: addr.as_deref(),
            ..Event::new(kind)
        };
        self.check_password_guarded(
            admitted,
            &actor,
            operator.as_ref().map(|o| o.password_hash.as_str()),
            &password,
            client,
            &event,
        )
        .await?;
        let Some(operator) = operator else {
            return Err(SignInError::InvalidCredentials);
        };
        self.store.throttle_clear(&actor).await?;
        let token = token::random_token();
        self.store
            .insert_operator_session(&token::token_hash(&token), operator.id, self.now())
            .await?;
        self.audit(event(EventKind::SignInOk)).await?;
        Ok(token)
    }

    /// The operator session behind a cookie value, if it is live; slides its idle timer.
    pub async fn operator_authenticate(
        &self,
        cookie: &str,
    ) -> Result<Option<OperatorSession>, Unexpected> {
        if !token::looks_like_token(cookie) {
            return Ok(None);
        }
        let Some((session, operator)) = self
            .store
            .operator_session(&token::token_hash(cookie))
            .await?
        else {
            return Ok(None);
        };
        let now = self.now();
        match self.liveness(session.created_at, session.last_seen_at, now) {
            Liveness::Ended => {
                self.store.delete_operator_session(session.id).await?;
                return Ok(None);
            }
            Liveness::Live { slide: true } => {
                self.store.touch_operator_session(session.id, now).await?
            }
            Liveness::Live { slide: false } => {}
        }
        Ok(Some(OperatorSession { session, operator }))
    }

    pub async fn operator_sign_out(
        &self,
        os: &OperatorSession,
        client: Client,
    ) -> Result<(), Unexpected> {
        self.store.delete_operator_session(os.session.id).await?;
        let actor = os.actor();
        let addr = client.addr_string();
        self.audit(Event {
            actor: Some(&actor),
            client_addr: addr.as_deref(),
            ..Event::new(EventKind::SignOut)
        })
        .await
    }

    /// One page of tenants, searched by Client ID or name.
    pub async fn operator_tenants(
        &self,
        search: Option<&str>,
        page: i64,
    ) -> Result<(Vec<TenantListRow>, i64), Unexpected> {
        let offset = page.max(0).saturating_mul(PAGE_SIZE);
        Ok(self.store.list_tenants(search, PAGE_SIZE, offset).await?)
    }

    /// A tenant (by Client ID as typed in a link) and its admins.
    pub async fn operator_tenant(&self, code: &str) -> Result<TenantView, OperatorError> {
        let code = TenantCode::parse(code).map_err(|_| OperatorError::NotFound)?;
        let tenant = self
            .store
            .tenant_by_code(code.as_str())
            .await?
            .ok_or(OperatorError::NotFound)?;
        let admins = self.store.tenant_admins(tenant.id, self.now()).await?;
        Ok(TenantView { tenant, admins })
    }

    /// Creates a tenant and its first admin. With an email the admin is mailed a reset
    /// link to choose a password; without one a temporary password is returned, once.
    pub async fn operator_create_tenant(
        &self,
        os: &OperatorSession,
        req: &NewTenantRequest,
    ) -> Result<CreatedTenant, ProvisionError> {
        let actor = os.actor();
        self.create_tenant(&req.code, &req.name, req.sip_domain.as_deref(), &actor)
            .await?;
        let username = Username::new(req.admin_extension.clone(), req.code.clone());
        let (id, temporary) = self
            .create_user(
                &username,
                &req.admin_name,
                req.admin_email.as_ref(),
                Role::Admin,
                None,
                &actor,
            )
            .await?;
        if req.admin_email.is_none() {
            return Ok(CreatedTenant {
                admin_username: username.to_string(),
                temporary_password: temporary,
            });
        }
        // The generated password is never shown: the admin chooses one from the link.
        let user = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| Unexpected(anyhow::anyhow!("new admin vanished")))?;
        self.send_reset_link(user, &actor)
            .await
            .map_err(|e| match e {
                AdminError::Unexpected(u) => ProvisionError::Unexpected(u),
                other => ProvisionError::Unexpected(Unexpected(anyhow::anyhow!("{other}"))),
            })?;
        Ok(CreatedTenant {
            admin_username: username.to_string(),
            temporary_password: None,
        })
    }

    /// The admin `admin_id` of the tenant `code`, with their question and lock state.
    async fn claimed_admin(
        &self,
        code: &str,
        admin_id: i64,
    ) -> Result<(Tenant, AdminRow), OperatorError> {
        let view = self.operator_tenant(code).await?;
        let admin = view
            .admins
            .into_iter()
            .find(|a| a.user.id == UserId(admin_id))
            .ok_or(OperatorError::NotFound)?;
        Ok((view.tenant, admin))
    }

    fn tries_key(user: &UserRecord) -> String {
        format!("caller:{}", user.id.0)
    }

    /// Until when this operator may act for this admin, if a caller matched lately.
    async fn verified_until(
        &self,
        os: &OperatorSession,
        user: &UserRecord,
    ) -> Result<Option<Timestamp>, OperatorError> {
        let now = self.now();
        Ok(self
            .store
            .last_caller_verification(os.operator.id, user.id)
            .await?
            .map(|at| at.plus(VERIFIED_WINDOW))
            .filter(|until| *until > now))
    }

    /// What the verification page shows about the admin a caller claims to be.
    pub async fn caller_view(
        &self,
        os: &OperatorSession,
        code: &str,
        admin_id: i64,
    ) -> Result<CallerView, OperatorError> {
        let (tenant, admin) = self.claimed_admin(code, admin_id).await?;
        let now = self.now();
        let used = self
            .store
            .throttle_attempts(
                &Self::tries_key(&admin.user),
                now.minus(CALLER_TRIES_WINDOW),
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

    async fn operator_audit(
        &self,
        os: &OperatorSession,
        kind: EventKind,
        user: &UserRecord,
        client: Client,
        detail: Option<&str>,
    ) -> Result<(), Unexpected> {
        let actor = os.actor();
        let subject = user.username();
        let addr = client.addr_string();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(&actor),
            subject: Some(&subject),
            client_addr: addr.as_deref(),
            detail,
            ..Event::new(kind)
        })
        .await
    }

    /// Checks the answer a caller gave against the admin's stored one. Three tries per
    /// admin, counted atomically before the hash, then an hour's pause.
    pub async fn verify_caller(
        &self,
        os: &OperatorSession,
        code: &str,
        admin_id: i64,
        answer: &str,
        client: Client,
    ) -> Result<CallerCheck, OperatorError> {
        let (_, admin) = self.claimed_admin(code, admin_id).await?;
        let user = &admin.user;
        let stored = self
            .store
            .security_question(user.id)
            .await?
            .ok_or(OperatorError::NoQuestion)?;
        let now = self.now();
        let key = Self::tries_key(user);
        let state = self
            .store
            .throttle_count(&key, now, CALLER_TRIES_WINDOW)
            .await?;
        if state.attempts > CALLER_TRIES {
            self.operator_audit(
                os,
                EventKind::CallerRefused,
                user,
                client,
                Some("no tries left; caller told to call back later"),
            )
            .await?;
            return Err(OperatorError::TooManyTries {
                retry_after: CALLER_TRIES_WINDOW,
            });
        }
        let typed = SecurityAnswer::typed(answer);
        let matched = match self
            .hasher
            .verify(
                stored.answer_hash,
                SecretString::from(typed.expose().to_owned()),
            )
            .await
        {
            Ok(m) => m,
            Err(_) => {
                self.store.throttle_release(&key).await?;
                return Err(OperatorError::Busy);
            }
        };
        let tries_left = (CALLER_TRIES - state.attempts).max(0);
        if matched {
            self.store
                .record_caller_verified(os.operator.id, user.id, self.now())
                .await?;
            self.operator_audit(os, EventKind::CallerVerified, user, client, None)
                .await?;
            Ok(CallerCheck::Matched)
        } else {
            let detail = format!("answer did not match; {tries_left} tries left");
            self.operator_audit(
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
    async fn verified_admin(
        &self,
        os: &OperatorSession,
        code: &str,
        admin_id: i64,
    ) -> Result<UserRecord, OperatorError> {
        let (_, admin) = self.claimed_admin(code, admin_id).await?;
        match self.verified_until(os, &admin.user).await? {
            Some(_) => Ok(admin.user),
            None => Err(OperatorError::NotVerified),
        }
    }

    /// The admin's username and the tenant's Client ID, to read back to a verified caller.
    pub async fn reveal_admin_identity(
        &self,
        os: &OperatorSession,
        code: &str,
        admin_id: i64,
        client: Client,
    ) -> Result<(String, String), OperatorError> {
        let user = self.verified_admin(os, code, admin_id).await?;
        self.operator_audit(
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
    pub async fn operator_send_reset_link(
        &self,
        os: &OperatorSession,
        code: &str,
        admin_id: i64,
    ) -> Result<(), OperatorError> {
        let user = self.verified_admin(os, code, admin_id).await?;
        self.send_reset_link(user, &os.actor())
            .await
            .map_err(|e| match e {
                AdminError::NoEmail => OperatorError::NoEmail,
                AdminError::Unexpected(u) => OperatorError::Unexpected(u),
                other => OperatorError::Unexpected(Unexpected(anyhow::anyhow!("{other}"))),
            })
    }

    /// Clears the verified admin's sign-in lock.
    pub async fn operator_unlock(
        &self,
        os: &OperatorSession,
        code: &str,
        admin_id: i64,
        client: Client,
    ) -> Result<(), OperatorError> {
        let user = self.verified_admin(os, code, admin_id).await?;
        self.store
            .throttle_clear(&user_key(&user.username()))
            .await?;
        self.operator_audit(os, EventKind::UserUnlocked, &user, client, None)
            .await?;
        Ok(())
    }

    /// One page of the provider's audit log.
    pub async fn provider_audit(&self, page: i64) -> Result<(Vec<AuditRecord>, i64), Unexpected> {
        let offset = page.max(0).saturating_mul(PAGE_SIZE);
        Ok(self.store.provider_audit_page(PAGE_SIZE, offset).await?)
    }
}
