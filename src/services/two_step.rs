//! Two-step sign-in: an authenticator app (TOTP, RFC 6238: SHA-1, 6 digits, 30 s, ±1 step
//! of drift, each code accepted once) with its secret sealed at rest like a SIP secret,
//! 10 single-use recovery codes stored as hashes, the second step of a sign-in, and the
//! rules on who must have a second factor (every operator; a tenant's admins or everyone,
//! as the tenant's admin chooses).
//!
//! A right password of an account that has a second factor opens no session: it leaves a
//! *pending step* (a server-side record, bound to the account and to the password hash
//! checked, 5 minutes on the injected clock) that [`TwoStep::complete_second_step`] turns
//! into a session, with a fresh id, once a [`Proof`] is accepted. An account the rules
//! demand a factor of, and that has none, gets a pending *enrolment* instead, which only
//! setting up an authenticator app completes.
//!
//! Passkeys: a tenant user's registered passkey is a second factor too
//! ([`has_second_factor`]), and an assertion of one ([`Proof::Passkey`], checked by
//! [`Passkeys::finish_authentication`]) completes a pending step as a code does.
//! Operators have no passkeys.

use std::time::Duration;

use qrcode::render::svg;
use qrcode::QrCode;
use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::guard::Refusal;
use super::operator_console::{open_operator_session, ActError, OperatorConsole, OperatorSession};
use super::passkeys::{Passkeys, SignInStartError};
use super::sessions::{prove_recent_sign_in, Reconfirm};
use super::sign_in::{open_session, SignedIn};
use super::tenant_admin::{Admin, TenantActor};
use super::{
    service, store_error_is_unexpected, trusted_devices, Client, Context, SessionUser, Unexpected,
};
use crate::audit::{operator_actor, Actor, Event, EventKind};
use crate::auth::{token, totp};
use crate::domain::{Extension, TenantCode, TwoStepRequirement};
use crate::mail::compose::{Remover, TwoStepNotice};
use crate::mail::AccountNotice;
use crate::store::{
    FactorOwner, NewMail, NewPending, OperatorRecord, PendingPurpose, PendingRecord, StoreError,
    ThrottleKey, TotpRecord, UserId, UserRecord,
};

/// How long a pending second step lasts after the password.
pub const PENDING_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a pending enrolment lasts: long enough to install an app and scan a code.
pub const ENROL_TTL: Duration = Duration::from_secs(15 * 60);
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;

const TOTP_PURPOSE: &str = "totp-secret";
/// How the notice of a new second factor names an authenticator app.
const APP_ADDED: &str = "An authenticator app";
/// Recovery codes: 16 characters of base32, 80 random bits each.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CODE_LEN: usize = 16;

/// Whoever signs in with a password: a tenant user or an operator.
#[derive(Debug, Clone)]
pub enum Account {
    User(UserRecord),
    Operator(OperatorRecord),
}

impl Account {
    fn owner(&self) -> FactorOwner {
        match self {
            Account::User(u) => FactorOwner::User(u.id),
            Account::Operator(o) => FactorOwner::Operator(o.id),
        }
    }

    fn password_hash(&self) -> &str {
        match self {
            Account::User(u) => &u.password_hash,
            Account::Operator(o) => &o.password_hash,
        }
    }

    /// How the account is named in an authenticator app and the audit log.
    fn name(&self) -> String {
        match self {
            Account::User(u) => u.username().to_string(),
            Account::Operator(o) => operator_actor(&o.name),
        }
    }

    fn tenant(&self) -> Option<crate::store::TenantId> {
        match self {
            Account::User(u) => Some(u.tenant_id),
            Account::Operator(_) => None,
        }
    }
}

/// Binds a pending step to the password hash it checked: a password changed (or reset)
/// meanwhile voids the step.
fn password_stamp(account: &Account) -> Vec<u8> {
    Sha256::digest(account.password_hash().as_bytes()).to_vec()
}

/// The associated data that binds a sealed secret to its owner.
fn aad(owner: FactorOwner) -> Vec<u8> {
    match owner {
        FactorOwner::User(id) => format!("user:{}", id.0).into_bytes(),
        FactorOwner::Operator(id) => format!("operator:{}", id.0).into_bytes(),
    }
}

fn unsealable() -> Unexpected {
    Unexpected::invariant(
        "a stored authenticator secret does not open with the data key and its owner",
    )
}

/// What completes a pending second step.
#[derive(Clone)]
pub enum Proof {
    /// The 6 digits an authenticator app shows.
    Totp(String),
    /// One of the account's recovery codes.
    RecoveryCode(String),
    /// The browser's answer (the JSON of the `PublicKeyCredential` that
    /// `navigator.credentials.get()` made) to the challenge of
    /// [`TwoStep::start_passkey_step`].
    Passkey(String),
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proof::Totp(_) => "Proof::Totp(..)",
            Proof::RecoveryCode(_) => "Proof::RecoveryCode(..)",
            Proof::Passkey(_) => "Proof::Passkey(..)",
        })
    }
}

impl Proof {
    /// What was typed in the one `code` field: 6 digits are an app's code, anything else
    /// is tried as a recovery code (spaces and hyphens ignored, any case; the digits 0, 1
    /// and 8, which no recovery code holds, read as the letters O, I and B they are taken
    /// for). `None` when nothing was typed.
    pub fn from_typed(typed: &str) -> Option<Proof> {
        let compact: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .take(64)
            .collect();
        if compact.is_empty() {
            return None;
        }
        if compact.len() == totp::DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Proof::Totp(compact));
        }
        let read = compact
            .to_ascii_uppercase()
            .chars()
            .map(|c| match c {
                '0' => 'O',
                '1' => 'I',
                '8' => 'B',
                c => c,
            })
            .collect();
        Some(Proof::RecoveryCode(read))
    }
}

/// The code typed to confirm a new app: 6 digits, spaces ignored.
fn typed_totp(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(16)
        .collect()
}

/// What a right password leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterPassword {
    SignIn,
    SecondStep,
    Enrol,
}

/// A sign-in waiting for its second step (or enrolment): the cookie value, shown once.
#[derive(Debug)]
pub struct PendingStep {
    pub token: String,
    pub lifetime: Duration,
}

/// Whether the account has a second factor that counts: a confirmed authenticator app,
/// or (a tenant user) a registered passkey.
///
/// This is the one definition every rule asks (the second step at sign-in, the policy,
/// removal, new recovery codes). A passkey counts because [`Proof::Passkey`] completes a
/// pending step and `/login/two-step` offers it, so a passkey-only user can finish.
/// The mail telling `user` of a change to their two-step sign-in, when they have an email
/// on file; to be queued with the change.
pub(crate) fn two_step_notice(
    ctx: &Context,
    user: &UserRecord,
    notice: TwoStepNotice,
) -> Result<Option<NewMail>, Unexpected> {
    let Some(email) = &user.email else {
        return Ok(None);
    };
    let notice = AccountNotice::TwoStep(notice);
    Ok(Some(ctx.outbox.account_notice(
        user,
        email,
        notice,
        ctx.now(),
    )?))
}

pub async fn has_second_factor(ctx: &Context, owner: FactorOwner) -> Result<bool, Unexpected> {
    if has_app(ctx, owner).await? {
        return Ok(true);
    }
    Ok(match owner {
        FactorOwner::User(id) => ctx.store.has_passkey(id).await?,
        FactorOwner::Operator(_) => false,
    })
}

/// Whether the account has a confirmed authenticator app.
async fn has_app(ctx: &Context, owner: FactorOwner) -> Result<bool, Unexpected> {
    Ok(ctx
        .store
        .totp_factor(owner)
        .await?
        .is_some_and(|f| f.confirmed_at.is_some()))
}

/// Whether the rules demand a second factor of the account: every operator; a tenant user
/// when their tenant requires one of its admins (and they are one) or of everyone.
async fn required(ctx: &Context, account: &Account) -> Result<bool, Unexpected> {
    Ok(match account {
        Account::Operator(_) => true,
        Account::User(u) => required_of_user(ctx, u).await?,
    })
}

async fn required_of_user(ctx: &Context, user: &UserRecord) -> Result<bool, Unexpected> {
    Ok(
        match ctx.store.two_step_requirement(user.tenant_id).await? {
            TwoStepRequirement::Off => false,
            TwoStepRequirement::Admins => user.is_admin(),
            TwoStepRequirement::Everyone => true,
        },
    )
}

/// What follows a right password for `account`.
pub(crate) async fn after_password(
    ctx: &Context,
    account: &Account,
) -> Result<AfterPassword, Unexpected> {
    if has_second_factor(ctx, account.owner()).await? {
        Ok(AfterPassword::SecondStep)
    } else if required(ctx, account).await? {
        Ok(AfterPassword::Enrol)
    } else {
        Ok(AfterPassword::SignIn)
    }
}

/// Records a pending step (or, with `enrol`, a pending enrolment) for `account`.
pub(crate) async fn begin_pending(
    ctx: &Context,
    account: &Account,
    enrol: bool,
) -> Result<PendingStep, Unexpected> {
    let token = token::random_token();
    let (purpose, lifetime) = if enrol {
        (PendingPurpose::Enrol, ENROL_TTL)
    } else {
        (PendingPurpose::Verify, PENDING_TTL)
    };
    let now = ctx.now();
    ctx.store
        .insert_pending(
            &NewPending {
                token_hash: &token::token_hash(&token),
                owner: account.owner(),
                purpose,
                password_stamp: &password_stamp(account),
                expires_at: now.plus(lifetime),
            },
            now,
        )
        .await?;
    Ok(PendingStep { token, lifetime })
}

/// Which sign-in a pending step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// The customer portal (`/login`).
    Portal,
    /// The operator console (`/operator/login`).
    Operator,
}

/// A session opened by a completed step.
#[derive(Debug)]
pub enum Completed {
    User(SignedIn),
    /// The operator console's cookie value.
    Operator(String),
}

/// Why a pending step could not go on.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// No such step, expired (5 minutes), used, for the other console, or its password
    /// changed meanwhile: sign in again.
    #[error("no pending step")]
    Expired,
    /// A wrong code, or the name is locked.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(StepError);

/// Why a passkey could not be asked for as the second step.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyStepError {
    /// See [`StepError::Expired`].
    #[error("no pending step")]
    Expired,
    /// The account has no passkey (or is an operator's, which cannot have one).
    #[error("no passkey")]
    NoPasskey,
    /// The public URL cannot be a relying party (an IP address).
    #[error("passkeys are not available")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// What a pending second step can be completed with (what its page offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepFactors {
    /// A code: the account has an authenticator app or unused recovery codes.
    pub code: bool,
    /// A passkey.
    pub passkey: bool,
}

/// Why a new authenticator app was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No setup in progress (the page was not opened, or another one confirmed it).
    #[error("no setup in progress")]
    NotStarted,
    /// Already set up.
    #[error("already set up")]
    AlreadySet,
    /// The code does not match the app's secret (±1 step).
    #[error("wrong code")]
    WrongCode,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(SetupError);

/// Why adding an authenticator app from Settings did not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum AddAppError {
    /// No sign-in in the last 15 minutes, and the password was not (rightly) given.
    #[error("password needed: {0:?}")]
    Reconfirm(Reconfirm),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

impl From<Unexpected> for AddAppError {
    fn from(e: Unexpected) -> Self {
        AddAppError::Setup(SetupError::Unexpected(e))
    }
}

/// Why a change that needs the password was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmedChangeError {
    /// The password was wrong or missing, the name is locked, or the pool is busy.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// There is no second factor to change.
    #[error("no second factor")]
    NoFactor,
    /// The tenant's rules demand a second factor of this account: it cannot be removed.
    #[error("required")]
    Required,
    /// No such user in the admin's tenant.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(ConfirmedChangeError);

/// Why an operator could not remove an admin's second factor.
#[derive(Debug, thiserror::Error)]
pub enum OperatorRemoveError {
    #[error("not found")]
    NotFound,
    /// No matching caller answer from this operator in the last 15 minutes.
    #[error("caller not verified")]
    NotVerified,
    #[error("no second factor")]
    NoFactor,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(OperatorRemoveError);

/// The setup page of a pending enrolment, or the step is over: any refusal of the setup
/// ends it.
fn enrolment_setup(setup: Result<SetupView, SetupError>) -> Result<SetupView, StepError> {
    match setup {
        Ok(view) => Ok(view),
        Err(SetupError::Unexpected(e)) => Err(e.into()),
        Err(SetupError::NotStarted | SetupError::AlreadySet | SetupError::WrongCode) => {
            Err(StepError::Expired)
        }
    }
}

/// An authenticator app being set up: what the page shows.
pub struct SetupView {
    /// The account as the app will name it.
    pub account: String,
    /// The secret in base32, grouped by 4 for typing.
    pub secret: String,
    /// The QR code of the `otpauth://` URI, as an SVG `data:` URI (made here, no
    /// external service).
    pub qr_data_uri: String,
    /// Confirming it needs the password too (set up from Settings without a sign-in in
    /// the last 15 minutes).
    pub password_needed: bool,
}

/// A fresh set of recovery codes, shown once.
pub struct RecoveryCodes(pub Vec<String>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

/// The Settings page's view of an account's two-step sign-in.
#[derive(Debug, Clone)]
pub struct Status {
    pub has_app: bool,
    /// A passkey (Settings → Passkeys), which is a second factor too.
    pub has_passkey: bool,
    pub codes_left: i64,
    /// The tenant's rules demand a second factor of this user.
    pub required: bool,
}

fn new_codes(owner: FactorOwner) -> (RecoveryCodes, Vec<Vec<u8>>) {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw: String = (0..CODE_LEN)
            .map(|_| char::from(CODE_ALPHABET[OsRng.gen_range(0..CODE_ALPHABET.len())]))
            .collect();
        hashes.push(code_hash(owner, &raw));
        let grouped: Vec<&str> = (0..CODE_LEN / 4).map(|i| &raw[i * 4..i * 4 + 4]).collect();
        shown.push(grouped.join("-"));
    }
    (RecoveryCodes(shown), hashes)
}

/// What the store keeps of a recovery code: SHA-256 over the owner and the code (random
/// 80 bits, so a fast hash suffices; bound to its owner so a hash copied to another
/// account is nothing).
fn code_hash(owner: FactorOwner, normalized: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"dialtone recovery code\0");
    h.update(aad(owner));
    h.update(b"\0");
    h.update(normalized.as_bytes());
    h.finalize().to_vec()
}

/// Groups a base32 secret by 4 for typing.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

service!(
    /// Two-step sign-in.
    TwoStep
);

impl TwoStep {
    fn open_secret(&self, owner: FactorOwner, f: &TotpRecord) -> Result<Vec<u8>, Unexpected> {
        self.ctx
            .keyring
            .open(TOTP_PURPOSE, &aad(owner), &f.sealed_secret)
            .map_err(|_| unsealable())
    }

    /// A fresh secret for `account`'s new app (replacing one not yet confirmed), and what
    /// the setup page shows of it.
    async fn begin_app(&self, account: &Account) -> Result<SetupView, SetupError> {
        let owner = account.owner();
        let secret = totp::new_secret();
        let sealed = self.ctx.keyring.seal(TOTP_PURPOSE, &aad(owner), &secret);
        if !self
            .ctx
            .store
            .begin_totp(owner, &sealed, self.ctx.now())
            .await?
        {
            return Err(SetupError::AlreadySet);
        }
        self.view(account, &secret)
    }

    /// The setup page's view of the app being set up (after a wrong code, the same one).
    async fn current_setup(&self, account: &Account) -> Result<SetupView, SetupError> {
        let owner = account.owner();
        match self.ctx.store.totp_factor(owner).await? {
            None => Err(SetupError::NotStarted),
            Some(f) if f.confirmed_at.is_some() => Err(SetupError::AlreadySet),
            Some(f) => {
                let secret = self.open_secret(owner, &f)?;
                self.view(account, &secret)
            }
        }
    }

    fn view(&self, account: &Account, secret: &[u8]) -> Result<SetupView, SetupError> {
        let issuer = self.ctx.outbox.provider();
        let label = account.name();
        let b32 = totp::base32(secret);
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let uri = format!(
            "otpauth://totp/{}:{}?secret={b32}&issuer={}&algorithm=SHA1&digits=6&period=30",
            enc(issuer),
            enc(&label),
            enc(issuer)
        );
        let code = QrCode::new(uri.as_bytes())
            .map_err(|_| Unexpected::invariant("the otpauth URI does not fit a QR code"))?;
        let svg = code
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
        Ok(SetupView {
            account: label,
            secret: grouped(&b32),
            qr_data_uri: format!("data:image/svg+xml;base64,{data}"),
            password_needed: false,
        })
    }

    /// Confirms the app being set up with a first code (±1 step), and makes the first
    /// set of recovery codes. Audited.
    async fn confirm_app(
        &self,
        account: &Account,
        typed: &str,
        client: Client,
    ) -> Result<RecoveryCodes, SetupError> {
        let owner = account.owner();
        let f = match self.ctx.store.totp_factor(owner).await? {
            None => return Err(SetupError::NotStarted),
            Some(f) if f.confirmed_at.is_some() => return Err(SetupError::AlreadySet),
            Some(f) => f,
        };
        let secret = self.open_secret(owner, &f)?;
        let typed = typed_totp(typed);
        let now = totp::step_at(self.ctx.now());
        let Some(step) = (now - 1..=now + 1).find(|s| totp::is_code(&secret, *s, &typed)) else {
            return Err(SetupError::WrongCode);
        };
        let (codes, hashes) = new_codes(owner);
        let notice = match account {
            Account::User(user) => self.notice(user, TwoStepNotice::Added { factor: APP_ADDED })?,
            Account::Operator(_) => None,
        };
        if !self
            .ctx
            .store
            .confirm_totp(owner, step, &hashes, notice.as_ref(), self.ctx.now())
            .await?
        {
            return Err(SetupError::NotStarted);
        }
        if notice.is_some() {
            self.ctx.mail_wake.notify_one();
        }
        self.audit(
            account,
            None,
            EventKind::TwoStepEnabled,
            client,
            Some("authenticator app"),
        )
        .await?;
        Ok(codes)
    }

    /// The first recovery codes of a tenant user whose first second factor is the passkey
    /// just added (as confirming a first app makes them): shown once; audited as two-step
    /// sign-in turned on.
    pub(crate) async fn codes_for_first_passkey(
        &self,
        user: &UserRecord,
        client: Client,
    ) -> Result<RecoveryCodes, Unexpected> {
        let owner = FactorOwner::User(user.id);
        let codes = self.store_new_codes(owner).await?;
        self.audit(
            &Account::User(user.clone()),
            None,
            EventKind::TwoStepEnabled,
            client,
            Some("passkey"),
        )
        .await?;
        Ok(codes)
    }

    async fn audit(
        &self,
        account: &Account,
        actor: Option<&str>,
        kind: EventKind,
        client: Client,
        detail: Option<&str>,
    ) -> Result<(), Unexpected> {
        let name = account.name();
        let addr = client.addr_string();
        self.ctx
            .audit(Event {
                tenant: account.tenant(),
                actor: Some(actor.unwrap_or(&name)),
                subject: actor.map(|_| name.as_str()),
                client_addr: addr.as_deref(),
                detail,
                ..Event::new(kind)
            })
            .await
    }

    // ---- the pending step ------------------------------------------------------------

    /// The pending enrolment of this cookie, and its account (see [`Self::live_pending`]).
    async fn enrolling(
        &self,
        cookie: &str,
        console: Console,
    ) -> Result<(PendingRecord, Account), StepError> {
        self.live_pending(cookie, console, PendingPurpose::Enrol)
            .await
    }

    /// New recovery codes for `owner`, stored in place of the old ones (which stop working).
    async fn store_new_codes(&self, owner: FactorOwner) -> Result<RecoveryCodes, Unexpected> {
        let (codes, hashes) = new_codes(owner);
        let now = self.ctx.now();
        self.ctx
            .store
            .replace_recovery_codes(owner, &hashes, now)
            .await?;
        Ok(codes)
    }

    /// The live pending step behind a cookie value, for `console`, waiting for `purpose`,
    /// with its account — or `Expired`.
    async fn live_pending(
        &self,
        cookie: &str,
        console: Console,
        purpose: PendingPurpose,
    ) -> Result<(PendingRecord, Account), StepError> {
        if !token::looks_like_token(cookie) {
            return Err(StepError::Expired);
        }
        let ctx = &self.ctx;
        let Some(p) = ctx.store.pending(&token::token_hash(cookie)).await? else {
            return Err(StepError::Expired);
        };
        if p.expires_at <= ctx.now() {
            ctx.store.take_pending(p.id).await?;
            return Err(StepError::Expired);
        }
        let account = match (p.owner, console) {
            (FactorOwner::User(id), Console::Portal) => match ctx.store.user_by_id(id).await? {
                Some(u) if !u.tenant_suspended => Account::User(u),
                _ => return Err(StepError::Expired),
            },
            (FactorOwner::Operator(id), Console::Operator) => {
                match ctx.store.operator_by_id(id).await? {
                    Some(o) => Account::Operator(o),
                    None => return Err(StepError::Expired),
                }
            }
            _ => return Err(StepError::Expired),
        };
        if p.purpose != purpose || p.password_stamp != password_stamp(&account) {
            return Err(StepError::Expired);
        }
        Ok((p, account))
    }

    /// What a live pending second step can be completed with, or `None` when none is live
    /// (for the page that asks for it).
    pub async fn second_step_factors(
        &self,
        cookie: &str,
        console: Console,
    ) -> Result<Option<StepFactors>, Unexpected> {
        let account = match self
            .live_pending(cookie, console, PendingPurpose::Verify)
            .await
        {
            Ok((_, account)) => account,
            Err(StepError::Expired | StepError::Refused(_)) => return Ok(None),
            Err(StepError::Unexpected(e)) => return Err(e),
        };
        let owner = account.owner();
        let ctx = &self.ctx;
        let code = has_app(ctx, owner).await? || ctx.store.recovery_codes_left(owner).await? > 0;
        let passkey = match &account {
            Account::User(u) => ctx.store.has_passkey(u.id).await?,
            Account::Operator(_) => false,
        };
        Ok(Some(StepFactors { code, passkey }))
    }

    /// Starts the passkey of a pending second step: the options for
    /// `navigator.credentials.get()` as JSON, for the pending step's user only.
    pub async fn start_passkey_step(
        &self,
        cookie: &str,
        console: Console,
    ) -> Result<String, PasskeyStepError> {
        let account = match self
            .live_pending(cookie, console, PendingPurpose::Verify)
            .await
        {
            Ok((_, account)) => account,
            Err(StepError::Expired | StepError::Refused(_)) => {
                return Err(PasskeyStepError::Expired)
            }
            Err(StepError::Unexpected(e)) => return Err(e.into()),
        };
        let Account::User(user) = account else {
            return Err(PasskeyStepError::NoPasskey);
        };
        match Passkeys::new(self.ctx.clone())
            .start_authentication(user.id)
            .await
        {
            Ok(options) => Ok(options),
            Err(SignInStartError::NoPasskey) => Err(PasskeyStepError::NoPasskey),
            Err(SignInStartError::Unavailable) => Err(PasskeyStepError::Unavailable),
            Err(SignInStartError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Completes a pending second step with `proof`, and opens the session (a fresh id;
    /// for a tenant user, the device cookie too). A wrong proof counts toward the same
    /// lockout as a wrong password, under the same key (the browser's own, when its
    /// device cookie is valid — which never skips this step), and is audited.
    pub async fn complete_second_step(
        &self,
        cookie: &str,
        console: Console,
        device_cookie: Option<&str>,
        proof: Proof,
        client: Client,
    ) -> Result<Completed, StepError> {
        let ctx = &self.ctx;
        let (pending, account) = self
            .live_pending(cookie, console, PendingPurpose::Verify)
            .await?;
        let signing_key = ctx.keyring.signing_key();
        let (key, device) = match &account {
            Account::User(u) => {
                let device = trusted_devices::recognise(&signing_key, device_cookie, u);
                (
                    ctx.guard().sign_in_key(&u.username(), device.as_ref()),
                    device,
                )
            }
            Account::Operator(o) => (ThrottleKey::operator(&o.name), None),
        };
        let name = account.name();
        let addr = client.addr_string();
        let tenant = account.tenant();
        let event = |kind| Event {
            tenant,
            actor: Some(name.as_str()),
            client_addr: addr.as_deref(),
            ..Event::new(kind)
        };
        let how = match proof {
            Proof::Totp(_) => "second step: an authenticator code",
            Proof::RecoveryCode(_) => "second step: a recovery code",
            Proof::Passkey(_) => "second step: a passkey",
        };
        let used_recovery = matches!(proof, Proof::RecoveryCode(_));
        ctx.guard()
            .check_code(&key, self.check_proof(&account, proof, client), &event)
            .await?
            .map_err(StepError::Refused)?;
        if !ctx.store.take_pending(pending.id).await? {
            return Err(StepError::Expired);
        }
        if used_recovery {
            self.audit(&account, None, EventKind::RecoveryCodeUsed, client, None)
                .await?;
        }
        Ok(match account {
            Account::User(u) => {
                Completed::User(open_session(ctx, &u, device.as_ref(), client, Some(how)).await?)
            }
            Account::Operator(o) => {
                Completed::Operator(open_operator_session(ctx, &o, client, Some(how)).await?)
            }
        })
    }

    /// Whether `proof` is accepted for `account`, spending it: an app's code of the step
    /// now (±1) newer than the last one accepted; an unused recovery code (its use mailed
    /// to the user, when they have an email, in the same transaction); an assertion of one
    /// of a tenant user's passkeys for their pending challenge (used up either way, and
    /// audited by [`Passkeys::finish_authentication`]).
    async fn check_proof(
        &self,
        account: &Account,
        proof: Proof,
        client: Client,
    ) -> Result<bool, Unexpected> {
        let ctx = &self.ctx;
        let owner = account.owner();
        match proof {
            Proof::Totp(typed) => {
                let Some(f) = ctx.store.totp_factor(owner).await? else {
                    return Ok(false);
                };
                if f.confirmed_at.is_none() {
                    return Ok(false);
                }
                let secret = self.open_secret(owner, &f)?;
                let now = totp::step_at(ctx.now());
                for step in now - 1..=now + 1 {
                    if step > f.last_step && totp::is_code(&secret, step, &typed) {
                        // Atomic: of two requests with one code, one wins.
                        return Ok(ctx.store.accept_totp_step(owner, step).await?);
                    }
                }
                Ok(false)
            }
            Proof::RecoveryCode(typed) => {
                if typed.len() != CODE_LEN {
                    return Ok(false);
                }
                let hash = code_hash(owner, &typed);
                let notice = match account {
                    Account::User(u) => {
                        let left = (ctx.store.recovery_codes_left(owner).await? - 1).max(0);
                        self.notice(u, TwoStepNotice::RecoveryCodeUsed { left })?
                    }
                    Account::Operator(_) => None,
                };
                let used = ctx
                    .store
                    .use_recovery_code(owner, &hash, notice.as_ref(), ctx.now())
                    .await?;
                if used && notice.is_some() {
                    ctx.mail_wake.notify_one();
                }
                Ok(used)
            }
            Proof::Passkey(answer) => match account {
                Account::User(u) => Ok(Passkeys::new(ctx.clone())
                    .finish_authentication(u.id, &answer, client)
                    .await?
                    .is_ok()),
                Account::Operator(_) => Ok(false),
            },
        }
    }

    fn notice(
        &self,
        user: &UserRecord,
        notice: TwoStepNotice,
    ) -> Result<Option<NewMail>, Unexpected> {
        two_step_notice(&self.ctx, user, notice)
    }

    /// The setup page of a pending enrolment: a fresh secret for a new app each time it is
    /// opened (a secret shown to an abandoned setup is never reused).
    pub async fn enrolment(&self, cookie: &str, console: Console) -> Result<SetupView, StepError> {
        let (_, account) = self.enrolling(cookie, console).await?;
        enrolment_setup(self.begin_app(&account).await)
    }

    /// The setup page again after a wrong code: the same secret.
    pub async fn enrolment_again(
        &self,
        cookie: &str,
        console: Console,
    ) -> Result<SetupView, StepError> {
        let (_, account) = self.enrolling(cookie, console).await?;
        enrolment_setup(self.current_setup(&account).await)
    }

    /// Completes a pending enrolment with the new app's first code: the app counts from
    /// now, the recovery codes are returned (to show once), and the session opens.
    pub async fn complete_enrolment(
        &self,
        cookie: &str,
        console: Console,
        device_cookie: Option<&str>,
        code: &str,
        client: Client,
    ) -> Result<(Completed, RecoveryCodes), EnrolError> {
        let ctx = &self.ctx;
        let (pending, account) = self.enrolling(cookie, console).await?;
        let codes = self.confirm_app(&account, code, client).await?;
        if !ctx.store.take_pending(pending.id).await? {
            return Err(EnrolError::Step(StepError::Expired));
        }
        let how = Some("after setting up an authenticator app");
        let completed = match &account {
            Account::User(u) => {
                let signing_key = ctx.keyring.signing_key();
                let device = trusted_devices::recognise(&signing_key, device_cookie, u);
                let key = ctx.guard().sign_in_key(&u.username(), device.as_ref());
                ctx.guard().unlock(&key).await?;
                Completed::User(open_session(ctx, u, device.as_ref(), client, how).await?)
            }
            Account::Operator(o) => {
                ctx.guard().unlock(&ThrottleKey::operator(&o.name)).await?;
                Completed::Operator(open_operator_session(ctx, o, client, how).await?)
            }
        };
        Ok((completed, codes))
    }

    // ---- Settings --------------------------------------------------------------------

    /// The user's two-step sign-in as Settings shows it.
    pub async fn status(&self, su: &SessionUser) -> Result<Status, Unexpected> {
        let owner = FactorOwner::User(su.user.id);
        Ok(Status {
            has_app: has_app(&self.ctx, owner).await?,
            has_passkey: self.ctx.store.has_passkey(su.user.id).await?,
            codes_left: self.ctx.store.recovery_codes_left(owner).await?,
            required: required_of_user(&self.ctx, &su.user).await?,
        })
    }

    /// Starts setting up an authenticator app from Settings: a fresh secret.
    pub async fn begin_setup(&self, su: &SessionUser) -> Result<SetupView, SetupError> {
        let setup = self.begin_app(&Account::User(su.user.clone())).await;
        self.in_settings(su, setup)
    }

    /// The app being set up, again (after a wrong code or password).
    pub async fn setup_again(&self, su: &SessionUser) -> Result<SetupView, SetupError> {
        let setup = self.current_setup(&Account::User(su.user.clone())).await;
        self.in_settings(su, setup)
    }

    /// A setup from Settings asks for the password when the sign-in is not recent.
    fn in_settings(
        &self,
        su: &SessionUser,
        setup: Result<SetupView, SetupError>,
    ) -> Result<SetupView, SetupError> {
        let password_needed = !su.signed_in_recently(self.ctx.now());
        setup.map(|s| SetupView {
            password_needed,
            ..s
        })
    }

    /// Confirms the app being set up from Settings; the recovery codes, shown once. Only
    /// with a sign-in in the last 15 minutes, or the `password` given now: a borrowed
    /// session cannot add a way in of its own.
    pub async fn confirm_setup(
        &self,
        su: &SessionUser,
        code: &str,
        password: Option<&str>,
        client: Client,
    ) -> Result<RecoveryCodes, AddAppError> {
        let why = "wrong password when adding an authenticator app";
        if let Err(r) = prove_recent_sign_in(&self.ctx, su, password, client, why).await? {
            return Err(AddAppError::Reconfirm(r));
        }
        Ok(self
            .confirm_app(&Account::User(su.user.clone()), code, client)
            .await?)
    }

    /// A new set of recovery codes (the old ones stop working), with the password
    /// confirmed. Audited.
    pub async fn regenerate_codes(
        &self,
        su: &SessionUser,
        password: &str,
        client: Client,
    ) -> Result<RecoveryCodes, ConfirmedChangeError> {
        self.confirm(
            su,
            password,
            client,
            "wrong password when making new recovery codes",
        )
        .await?;
        self.replace_codes(
            FactorOwner::User(su.user.id),
            &Account::User(su.user.clone()),
            client,
        )
        .await
    }

    /// New recovery codes for `owner`, who has a second factor, voiding the old ones;
    /// audited. The caller has confirmed the password.
    async fn replace_codes(
        &self,
        owner: FactorOwner,
        account: &Account,
        client: Client,
    ) -> Result<RecoveryCodes, ConfirmedChangeError> {
        if !has_second_factor(&self.ctx, owner).await? {
            return Err(ConfirmedChangeError::NoFactor);
        }
        let codes = self.store_new_codes(owner).await?;
        self.audit(
            account,
            None,
            EventKind::RecoveryCodesRegenerated,
            client,
            None,
        )
        .await?;
        Ok(codes)
    }

    async fn confirm(
        &self,
        su: &SessionUser,
        password: &str,
        client: Client,
        why: &'static str,
    ) -> Result<(), ConfirmedChangeError> {
        if password.is_empty() {
            return Err(ConfirmedChangeError::Refused(Refusal::WrongPassword));
        }
        self.ctx
            .guard()
            .confirm_password(su, password, client, why)
            .await?
            .map_err(ConfirmedChangeError::Refused)
    }

    /// Removes the user's own second factor, with the password confirmed — unless their
    /// tenant requires one of them. Audited.
    pub async fn remove_own(
        &self,
        su: &SessionUser,
        password: &str,
        client: Client,
    ) -> Result<(), ConfirmedChangeError> {
        if required_of_user(&self.ctx, &su.user).await? {
            return Err(ConfirmedChangeError::Required);
        }
        self.confirm(
            su,
            password,
            client,
            "wrong password when removing two-step sign-in",
        )
        .await?;
        let owner = FactorOwner::User(su.user.id);
        if !self
            .ctx
            .store
            .remove_second_factor(owner, false, None, self.ctx.now())
            .await?
        {
            return Err(ConfirmedChangeError::NoFactor);
        }
        self.audit(
            &Account::User(su.user.clone()),
            None,
            EventKind::TwoStepRemoved,
            client,
            None,
        )
        .await?;
        Ok(())
    }

    // ---- tenant admins ---------------------------------------------------------------

    /// Who of the admin's tenant must have a second factor.
    pub async fn requirement(&self, admin: &Admin) -> Result<TwoStepRequirement, Unexpected> {
        Ok(self
            .ctx
            .store
            .two_step_requirement(admin.session().user.tenant_id)
            .await?)
    }

    /// Sets who of the admin's tenant must have a second factor. Audited.
    pub async fn set_requirement(
        &self,
        admin: &Admin,
        requirement: TwoStepRequirement,
        client: Client,
    ) -> Result<(), Unexpected> {
        let user = &admin.session().user;
        self.ctx
            .store
            .set_two_step_requirement(user.tenant_id, requirement)
            .await?;
        let detail = format!("required of: {}", requirement.as_str());
        self.audit(
            &Account::User(user.clone()),
            None,
            EventKind::TwoStepRequirementSet,
            client,
            Some(&detail),
        )
        .await
    }

    /// The user `extension` of the admin's tenant and whether they have a second factor.
    pub async fn user_status(
        &self,
        admin: &Admin,
        extension: &Extension,
    ) -> Result<Option<(UserRecord, bool)>, Unexpected> {
        let tenant = admin.session().user.tenant_id;
        let Some(user) = self
            .ctx
            .store
            .user_in_tenant(tenant, extension.as_str())
            .await?
        else {
            return Ok(None);
        };
        let has = has_second_factor(&self.ctx, FactorOwner::User(user.id)).await?;
        Ok(Some((user, has)))
    }

    /// Removes a user's second factor (app, passkeys and recovery codes), with the admin's
    /// own password confirmed; the user is mailed, and it is audited.
    pub async fn remove_for_user(
        &self,
        admin: &Admin,
        extension: &Extension,
        password: &str,
        client: Client,
    ) -> Result<(), ConfirmedChangeError> {
        let me = &admin.session().user;
        let target = self
            .ctx
            .store
            .user_in_tenant(me.tenant_id, extension.as_str())
            .await?
            .ok_or(ConfirmedChangeError::NotFound)?;
        self.confirm(
            admin.session(),
            password,
            client,
            "wrong password when removing a user's two-step sign-in",
        )
        .await?;
        self.remove_by_other(&target, &admin.actor(), Remover::Admin, client)
            .await?
            .then_some(())
            .ok_or(ConfirmedChangeError::NoFactor)
    }

    /// Removes `target`'s second factor on behalf of `actor` (`by`: an admin or the
    /// provider's support), mailing them and auditing; false when they had none.
    async fn remove_by_other(
        &self,
        target: &UserRecord,
        actor: &Actor,
        by: Remover,
        client: Client,
    ) -> Result<bool, Unexpected> {
        let notice = self.notice(target, TwoStepNotice::Removed { by })?;
        let removed = self
            .ctx
            .store
            .remove_second_factor(
                FactorOwner::User(target.id),
                true,
                notice.as_ref(),
                self.ctx.now(),
            )
            .await?;
        if !removed {
            return Ok(false);
        }
        if notice.is_some() {
            self.ctx.mail_wake.notify_one();
        }
        self.audit(
            &Account::User(target.clone()),
            Some(actor.name()),
            EventKind::TwoStepRemoved,
            client,
            None,
        )
        .await?;
        Ok(true)
    }

    // ---- operators -------------------------------------------------------------------

    /// Removes a tenant admin's second factor for a caller this operator verified in the
    /// last 15 minutes (as every action for a caller); the admin is mailed; audited.
    pub async fn remove_for_admin(
        &self,
        os: &OperatorSession,
        code: &TenantCode,
        admin_id: UserId,
        client: Client,
    ) -> Result<(), OperatorRemoveError> {
        let console = OperatorConsole::new(self.ctx.clone());
        let admin = match console.verified_admin(os, code, admin_id).await {
            Ok(user) => user,
            Err(ActError::NotFound) => return Err(OperatorRemoveError::NotFound),
            Err(ActError::NotVerified) => return Err(OperatorRemoveError::NotVerified),
            Err(ActError::NoLink(_)) => {
                return Err(Unexpected::invariant("verifying a caller needs no email").into())
            }
            Err(ActError::Unexpected(e)) => return Err(e.into()),
        };
        if self
            .remove_by_other(&admin, &os.actor(&client), Remover::Provider, client)
            .await?
        {
            Ok(())
        } else {
            Err(OperatorRemoveError::NoFactor)
        }
    }

    /// How many unused recovery codes the operator has.
    pub async fn operator_codes_left(&self, os: &OperatorSession) -> Result<i64, Unexpected> {
        Ok(self
            .ctx
            .store
            .recovery_codes_left(FactorOwner::Operator(os.operator.id))
            .await?)
    }

    /// New recovery codes for the signed-in operator (the old ones stop working), with
    /// their password confirmed. Audited.
    pub async fn regenerate_operator_codes(
        &self,
        os: &OperatorSession,
        password: &str,
        client: Client,
    ) -> Result<RecoveryCodes, ConfirmedChangeError> {
        if password.is_empty() {
            return Err(ConfirmedChangeError::Refused(Refusal::WrongPassword));
        }
        self.ctx
            .guard()
            .confirm_operator_password(
                &os.operator,
                password,
                client,
                "wrong password when making new recovery codes",
            )
            .await?
            .map_err(ConfirmedChangeError::Refused)?;
        self.replace_codes(
            FactorOwner::Operator(os.operator.id),
            &Account::Operator(os.operator.clone()),
            client,
        )
        .await
    }

    // ---- key rotation ----------------------------------------------------------------

    /// Re-encrypts every authenticator secret under the current data key. Returns how many
    /// changed and the keys still holding secrets that could not be changed.
    pub async fn reseal_everything(&self) -> Result<(u64, Vec<u32>), Unexpected> {
        let ctx = &self.ctx;
        let current = ctx.keyring.current_id();
        let (mut changed, mut in_use, mut after) = (0, Vec::new(), 0);
        loop {
            let batch = ctx.store.sealed_totp_after(after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            for row in &batch {
                let held = crate::auth::keyring::key_id(&row.sealed_secret);
                if held == Some(current) {
                    continue;
                }
                let aad = aad(row.owner);
                match ctx.keyring.open(TOTP_PURPOSE, &aad, &row.sealed_secret) {
                    Ok(clear) => {
                        let sealed = ctx.keyring.seal(TOTP_PURPOSE, &aad, &clear);
                        if ctx.store.reseal_totp(row, &sealed).await? {
                            changed += 1;
                        } else {
                            in_use.extend(held);
                        }
                    }
                    Err(_) => {
                        tracing::error!(
                            factor = row.id,
                            "cannot re-encrypt an authenticator secret"
                        );
                        in_use.extend(held);
                    }
                }
            }
        }
        Ok((changed, in_use))
    }
}

/// Why a pending enrolment was not completed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Step(#[from] StepError),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

impl From<StoreError> for EnrolError {
    fn from(e: StoreError) -> Self {
        EnrolError::Step(e.into())
    }
}

impl From<Unexpected> for EnrolError {
    fn from(e: Unexpected) -> Self {
        EnrolError::Step(StepError::Unexpected(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_typed_becomes_the_right_proof() {
        assert!(matches!(Proof::from_typed(" 123 456 "), Some(Proof::Totp(c)) if c == "123456"));
        assert!(
            matches!(Proof::from_typed("abcd-efgh-2345-67ab"), Some(Proof::RecoveryCode(c)) if c == "ABCDEFGH234567AB")
        );
        assert!(Proof::from_typed("  ").is_none());
        // Digits no code holds, read as the letters they look like.
        assert!(
            matches!(Proof::from_typed("0J7I-DSZD-1LAB-8ZZ2"), Some(Proof::RecoveryCode(c)) if c == "OJ7IDSZDILABBZZ2")
        );
        assert!(matches!(
            Proof::from_typed("12345"),
            Some(Proof::RecoveryCode(_))
        ));
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_bound_to_their_owner() {
        let owner = FactorOwner::User(UserId(7));
        let (codes, hashes) = new_codes(owner);
        assert_eq!(codes.0.len(), RECOVERY_CODES);
        let mut unique = codes.0.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let typed = codes.0[0].replace('-', "");
        assert_eq!(code_hash(owner, &typed), hashes[0]);
        assert_ne!(code_hash(FactorOwner::User(UserId(8)), &typed), hashes[0]);
    }
}
