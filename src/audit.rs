//! The security event log: what happened, to whom, by whom, from where — never a secret.

use crate::clock::Timestamp;
use crate::store::{AuditRow, Store, StoreResult, TenantId};

/// The kinds of security event, as stored in `audit_events.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    SignInOk,
    SignInFailed,
    SignInLocked,
    SignInThrottled,
    SignOut,
    PasswordChanged,
    TemporaryPasswordChosen,
    TenantCreated,
    UserCreated,
    UserUnlocked,
    OperatorCreated,
    ResetRequested,
    ResetLimited,
    ResetUsed,
    UsernamesRequested,
    UserUpdated,
    UserDeleted,
    TemporaryPasswordSet,
    SignedOutEverywhere,
    MailFailed,
    SipSecretRevealed,
    SipSecretRegenerated,
    PinChanged,
    SecurityQuestionSet,
    CallerVerified,
    CallerNotVerified,
    CallerRefused,
    CallerIdentityRevealed,
    PbxTokenAdded,
    PbxTokenRevoked,
    SoftphoneCredential,
    TenantUpdated,
    TenantSuspended,
    TenantResumed,
    TenantDeleted,
    ApiTokenAdded,
    ApiTokenRevoked,
    /// Reads through the JSON API, folded: one event per token and address for each
    /// lockout window.
    ApiRead,
    TwoStepEnabled,
    TwoStepRemoved,
    TwoStepFailed,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    TwoStepRequirementSet,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    PasskeyUsed,
    PasskeyRejected,
}

impl EventKind {
    /// Every kind, for the audit page's filter.
    pub const ALL: &'static [EventKind] = &[
        EventKind::SignInOk,
        EventKind::SignInFailed,
        EventKind::SignInLocked,
        EventKind::SignInThrottled,
        EventKind::SignOut,
        EventKind::PasswordChanged,
        EventKind::TemporaryPasswordChosen,
        EventKind::TemporaryPasswordSet,
        EventKind::ResetRequested,
        EventKind::ResetLimited,
        EventKind::ResetUsed,
        EventKind::UsernamesRequested,
        EventKind::TenantCreated,
        EventKind::UserCreated,
        EventKind::UserUpdated,
        EventKind::UserDeleted,
        EventKind::UserUnlocked,
        EventKind::SignedOutEverywhere,
        EventKind::MailFailed,
        EventKind::SipSecretRevealed,
        EventKind::SipSecretRegenerated,
        EventKind::PinChanged,
        EventKind::SecurityQuestionSet,
        EventKind::CallerVerified,
        EventKind::CallerNotVerified,
        EventKind::CallerRefused,
        EventKind::CallerIdentityRevealed,
        EventKind::OperatorCreated,
        EventKind::PbxTokenAdded,
        EventKind::PbxTokenRevoked,
        EventKind::SoftphoneCredential,
        EventKind::TenantUpdated,
        EventKind::TenantSuspended,
        EventKind::TenantResumed,
        EventKind::TenantDeleted,
        EventKind::ApiTokenAdded,
        EventKind::ApiTokenRevoked,
        EventKind::ApiRead,
        EventKind::TwoStepEnabled,
        EventKind::TwoStepRemoved,
        EventKind::TwoStepFailed,
        EventKind::RecoveryCodeUsed,
        EventKind::RecoveryCodesRegenerated,
        EventKind::TwoStepRequirementSet,
        EventKind::PasskeyAdded,
        EventKind::PasskeyRenamed,
        EventKind::PasskeyRemoved,
        EventKind::PasskeyUsed,
        EventKind::PasskeyRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SignInOk => "signin.ok",
            EventKind::SignInFailed => "signin.failed",
            EventKind::SignInLocked => "signin.locked",
            EventKind::SignInThrottled => "signin.throttled",
            EventKind::SignOut => "signout",
            EventKind::PasswordChanged => "password.changed",
            EventKind::TemporaryPasswordChosen => "password.temporary_replaced",
            EventKind::TenantCreated => "tenant.created",
            EventKind::UserCreated => "user.created",
            EventKind::UserUnlocked => "user.unlocked",
            EventKind::OperatorCreated => "operator.created",
            EventKind::ResetRequested => "reset.requested",
            EventKind::ResetLimited => "reset.limited",
            EventKind::ResetUsed => "reset.used",
            EventKind::UsernamesRequested => "usernames.requested",
            EventKind::UserUpdated => "user.updated",
            EventKind::UserDeleted => "user.deleted",
            EventKind::TemporaryPasswordSet => "password.temporary_set",
            EventKind::SignedOutEverywhere => "user.signed_out_everywhere",
            EventKind::MailFailed => "mail.failed",
            EventKind::SipSecretRevealed => "sip.revealed",
            EventKind::SipSecretRegenerated => "sip.regenerated",
            EventKind::PinChanged => "pin.changed",
            EventKind::SecurityQuestionSet => "security_question.set",
            EventKind::CallerVerified => "caller.verified",
            EventKind::CallerNotVerified => "caller.not_verified",
            EventKind::CallerRefused => "caller.refused",
            EventKind::CallerIdentityRevealed => "caller.identity_revealed",
            EventKind::PbxTokenAdded => "pbx_token.added",
            EventKind::PbxTokenRevoked => "pbx_token.revoked",
            EventKind::SoftphoneCredential => "softphone.credential",
            EventKind::TenantUpdated => "tenant.updated",
            EventKind::TenantSuspended => "tenant.suspended",
            EventKind::TenantResumed => "tenant.resumed",
            EventKind::TenantDeleted => "tenant.deleted",
            EventKind::ApiTokenAdded => "api_token.added",
            EventKind::ApiTokenRevoked => "api_token.revoked",
            EventKind::ApiRead => "api.read",
            EventKind::TwoStepEnabled => "two_step.enabled",
            EventKind::TwoStepRemoved => "two_step.removed",
            EventKind::TwoStepFailed => "two_step.failed",
            EventKind::RecoveryCodeUsed => "two_step.recovery_code_used",
            EventKind::RecoveryCodesRegenerated => "two_step.codes_regenerated",
            EventKind::TwoStepRequirementSet => "two_step.requirement_set",
            EventKind::PasskeyAdded => "passkey.added",
            EventKind::PasskeyRenamed => "passkey.renamed",
            EventKind::PasskeyRemoved => "passkey.removed",
            EventKind::PasskeyUsed => "passkey.used",
            EventKind::PasskeyRejected => "passkey.rejected",
        }
    }
}

/// Who acted, as the audit log names them — a username, `operator:NAME`, `api:NAME` or
/// `cli` — and the client address the request came from, when there was a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    addr: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>, addr: Option<std::net::IpAddr>) -> Actor {
        Actor {
            name: name.into(),
            addr: addr.map(|a| a.to_string()),
        }
    }

    /// The provider's staff at the command line: no address.
    pub fn cli() -> Actor {
        Actor::new("cli", None)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> Option<&str> {
        self.addr.as_deref()
    }
}

/// One event about to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub tenant: Option<TenantId>,
    /// Who acted: a username, `operator:NAME`, or `cli`.
    pub actor: Option<&'a str>,
    /// Whom it concerned (a username), when not the actor.
    pub subject: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(kind: EventKind) -> Self {
        Event {
            kind,
            tenant: None,
            actor: None,
            subject: None,
            client_addr: None,
            detail: None,
        }
    }

    /// `actor` acted on `subject`, in `tenant`, from the actor's address.
    pub fn on(kind: EventKind, tenant: TenantId, actor: &'a Actor, subject: &'a str) -> Self {
        Event {
            tenant: Some(tenant),
            subject: Some(subject),
            ..Event::by(kind, actor.name(), actor.addr())
        }
    }

    /// `actor`, of `tenant`, acted from `client_addr`.
    pub fn from_addr(
        kind: EventKind,
        tenant: TenantId,
        actor: &'a str,
        client_addr: Option<&'a str>,
    ) -> Self {
        Event {
            tenant: Some(tenant),
            ..Event::by(kind, actor, client_addr)
        }
    }

    /// `actor` acted from `client_addr`, in no tenant (an operator).
    pub fn by(kind: EventKind, actor: &'a str, client_addr: Option<&'a str>) -> Self {
        Event {
            actor: Some(actor),
            client_addr,
            ..Event::new(kind)
        }
    }
}

pub async fn record(store: &Store, at: Timestamp, e: Event<'_>) -> StoreResult<()> {
    store.insert_audit(&e.row(at)).await
}

impl<'a> Event<'a> {
    /// The row this event is stored as, at `at`.
    pub fn row(&self, at: Timestamp) -> AuditRow<'a> {
        AuditRow {
            at,
            tenant_id: self.tenant,
            kind: self.kind.as_str(),
            actor: self.actor,
            subject: self.subject,
            client_addr: self.client_addr,
            detail: self.detail,
        }
    }
}

/// What an operator's actor name starts with in audit logs: `operator:NAME`, which no
/// tenant username can be (the provider's log selects operators' actions by it).
pub const OPERATOR_ACTOR_PREFIX: &str = "operator:";

/// How an operator appears in audit logs: `operator:NAME`.
pub fn operator_actor(name: &crate::domain::OperatorName) -> String {
    format!("{OPERATOR_ACTOR_PREFIX}{name}")
}
