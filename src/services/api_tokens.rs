//! The JSON API's tokens: provider tokens (made by the CLI, reaching every tenant) and
//! tenant tokens (made by a tenant admin, reaching that tenant only). A token is shown
//! once and kept as a SHA-256; presenting one yields an [`ApiActor`], counted against the
//! token's rate limit by the guard. Which tenant an actor may reach is decided here
//! ([`ApiTokens::tenant_scope`], [`ApiActor::provider`]), so handlers cannot widen it.
//! Also the replay store behind `Idempotency-Key`: the first answer, sealed, for 24 hours.

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::tenant_admin::{Admin, ApiAdmin, TenantActor};
use super::tenants::ProviderActor;
use super::{service, Unexpected};
use crate::audit::{Actor, Event, EventKind};
use crate::auth::token::{looks_like_token, random_token, token_hash};
use crate::domain::TenantCode;
use crate::store::{ApiTokenRecord, Burst, Claimed, StoreError, TenantId};

/// How long the first answer under an idempotency key is given again.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a retry waits for the first request under its key to answer.
pub const IDEMPOTENCY_WAIT: Duration = Duration::from_secs(5);

/// A claim whose request never answered (its node stopped) is let go after this long.
pub const IDEMPOTENCY_ABANDONED: Duration = Duration::from_secs(60);

/// How often at most a token's "last used" is written.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
const IDEMPOTENCY_PURPOSE: &str = "api-idempotency";

/// Who presented a valid token. Only [`ApiTokens::authenticate`] makes one.
#[derive(Debug, Clone)]
pub struct ApiActor {
    token_id: i64,
    name: String,
    tenant: Option<(TenantId, TenantCode)>,
    /// Where the request came from.
    addr: Option<IpAddr>,
}

impl ApiActor {
    /// How the token appears in the audit log: `api:NAME`, from the request's address.
    pub fn actor(&self) -> Actor {
        Actor::new(format!("api:{}", self.name), self.addr)
    }

    /// The provider's powers, for a provider token only.
    pub fn provider(&self) -> Option<ProviderActor> {
        self.tenant
            .is_none()
            .then(|| ProviderActor::new(self.actor()))
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ApiAuthError {
    /// No such token (or not one of ours at all).
    #[error("invalid token")]
    Invalid,
    /// A tenant token of a suspended tenant.
    #[error("tenant suspended")]
    Suspended,
    /// Over the token's requests per minute.
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    #[error("an API token named {0} already exists")]
    Exists(String),
    #[error("an API token name is 1 to 64 letters, digits, '.', '-' or '_'")]
    BadName,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// What an idempotency key found.
#[derive(Debug)]
pub enum Replay {
    /// Not seen (or expired), and now claimed: do the request, then
    /// [`ApiTokens::remember`] its answer, or [`ApiTokens::release`] the claim.
    New(IdempotencyClaim),
    /// The same key and body: this was the first answer.
    Same { status: u16, body: String },
    /// The same key with another body.
    Mismatch,
    /// The same key and body, whose first request is still running after a wait.
    InProgress,
}

/// An `Idempotency-Key` claimed by one request, which alone may keep its answer or let
/// it go.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    key: String,
    nonce: Vec<u8>,
}

/// An API token as listed (never the token).
#[derive(Debug, Clone)]
pub struct ApiTokenInfo {
    pub name: String,
    pub created_at: crate::clock::Timestamp,
    pub last_used_at: Option<crate::clock::Timestamp>,
}

impl From<ApiTokenRecord> for ApiTokenInfo {
    fn from(r: ApiTokenRecord) -> Self {
        ApiTokenInfo {
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

service!(
    /// The JSON API's tokens and idempotency keys.
    ApiTokens
);

impl ApiTokens {
    async fn add(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        actor: &Actor,
    ) -> Result<String, ApiTokenError> {
        if !valid_name(name) {
            return Err(ApiTokenError::BadName);
        }
        let token = random_token();
        match self
            .ctx
            .store
            .insert_api_token(name, tenant, &token_hash(&token), self.ctx.now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(ApiTokenError::Exists(name.to_owned())),
            Err(e) => return Err(Unexpected::from(e).into()),
        }
        self.audit(EventKind::ApiTokenAdded, tenant, actor, name)
            .await?;
        Ok(token)
    }

    async fn audit(
        &self,
        kind: EventKind,
        tenant: Option<TenantId>,
        actor: &Actor,
        name: &str,
    ) -> Result<(), Unexpected> {
        self.ctx
            .audit(Event {
                tenant,
                detail: Some(name),
                ..Event::by(kind, actor.name(), actor.addr())
            })
            .await
    }

    /// `dialtone api-token add NAME`: a provider token, returned once.
    pub async fn add_provider_token(
        &self,
        by: &ProviderActor,
        name: &str,
    ) -> Result<String, ApiTokenError> {
        self.add(name, None, by.actor()).await
    }

    pub async fn provider_tokens(&self) -> Result<Vec<ApiTokenInfo>, Unexpected> {
        let tokens = self.ctx.store.api_tokens(None).await?;
        Ok(tokens.into_iter().map(ApiTokenInfo::from).collect())
    }

    /// Revokes a provider token; false when there is none of that name.
    pub async fn revoke_provider_token(
        &self,
        by: &ProviderActor,
        name: &str,
    ) -> Result<bool, Unexpected> {
        let gone = self.ctx.store.delete_api_token(None, name).await?;
        if gone {
            self.audit(EventKind::ApiTokenRevoked, None, by.actor(), name)
                .await?;
        }
        Ok(gone)
    }

    /// A tenant admin's token for their own tenant, returned once.
    pub async fn add_tenant_token(
        &self,
        admin: &Admin,
        name: &str,
    ) -> Result<String, ApiTokenError> {
        self.add(name, Some(admin.tenant_id()), &admin.actor())
            .await
    }

    pub async fn tenant_tokens(&self, admin: &Admin) -> Result<Vec<ApiTokenInfo>, Unexpected> {
        let tokens = self.ctx.store.api_tokens(Some(admin.tenant_id())).await?;
        Ok(tokens.into_iter().map(ApiTokenInfo::from).collect())
    }

    pub async fn revoke_tenant_token(&self, admin: &Admin, name: &str) -> Result<bool, Unexpected> {
        let tenant = Some(admin.tenant_id());
        let gone = self.ctx.store.delete_api_token(tenant, name).await?;
        if gone {
            self.audit(EventKind::ApiTokenRevoked, tenant, &admin.actor(), name)
                .await?;
        }
        Ok(gone)
    }

    /// The actor behind a presented token, for a request from `addr`, counted against its
    /// rate limit.
    pub async fn authenticate(
        &self,
        token: &str,
        addr: Option<IpAddr>,
        reads: bool,
    ) -> Result<ApiActor, ApiAuthError> {
        if !looks_like_token(token) {
            return Err(ApiAuthError::Invalid);
        }
        let presented = token_hash(token);
        // Found by the SHA-256 of what was presented (which tells a timing observer nothing
        // about any valid token), then compared in constant time all the same.
        let Some(found) = self
            .ctx
            .store
            .api_token_by_hash(&presented)
            .await
            .map_err(Unexpected::from)?
        else {
            return Err(ApiAuthError::Invalid);
        };
        if !bool::from(found.token_hash.ct_eq(&presented)) {
            return Err(ApiAuthError::Invalid);
        }
        if let Err(retry_after) = self.ctx.guard().api_request(found.id).await? {
            return Err(ApiAuthError::RateLimited { retry_after });
        }
        if found.tenant.is_some() && found.tenant_suspended {
            return Err(ApiAuthError::Suspended);
        }
        let now = self.ctx.now();
        if found
            .last_used_at
            .is_none_or(|at| at.until(now) >= TOUCH_EVERY || now < at)
        {
            self.ctx
                .store
                .touch_api_token(found.id, now)
                .await
                .map_err(Unexpected::from)?;
        }
        let actor = ApiActor {
            token_id: found.id,
            name: found.name,
            tenant: found.tenant,
            addr,
        };
        if reads {
            // Every change is audited on its own; reads are audited too, folded as refusals
            // are, so a busy billing system cannot fill the log: one event per token and
            // address with a count and the time of the last.
            let who = actor.actor();
            let event = Event {
                tenant: actor.tenant.as_ref().map(|(id, _)| *id),
                detail: Some("read requests"),
                ..Event::by(EventKind::ApiRead, who.name(), who.addr())
            };
            self.ctx
                .guard()
                .audit_refusal(event, Burst::PerName)
                .await?;
        }
        Ok(actor)
    }

    /// The proof that `actor` reaches tenant `code`: a provider token reaches any tenant
    /// that exists, a tenant token its own. `None` otherwise — as for a missing tenant.
    pub async fn tenant_scope(
        &self,
        actor: &ApiActor,
        code: &TenantCode,
    ) -> Result<Option<ApiAdmin>, Unexpected> {
        let tenant_id = match &actor.tenant {
            Some((id, own)) if own == code => *id,
            Some(_) => return Ok(None),
            None => match self.ctx.store.tenant_by_code(code).await? {
                Some(t) => t.id,
                None => return Ok(None),
            },
        };
        Ok(Some(ApiAdmin {
            tenant_id,
            tenant_code: code.clone(),
            actor: actor.actor(),
        }))
    }

    fn aad(actor: &ApiActor, key: &str) -> Vec<u8> {
        let mut aad = actor.token_id.to_be_bytes().to_vec();
        aad.extend_from_slice(key.as_bytes());
        aad
    }

    /// Claims an `Idempotency-Key` for `request`, or finds what is kept under it. A
    /// request with the same key still running elsewhere is waited for (up to
    /// [`IDEMPOTENCY_WAIT`]), so a retry sent while the first is busy gets its answer.
    pub async fn replay(
        &self,
        actor: &ApiActor,
        key: &str,
        request: &[u8],
    ) -> Result<Replay, Unexpected> {
        let request_hash = Sha256::digest(request);
        let claim = IdempotencyClaim {
            key: key.to_owned(),
            nonce: random_token().into_bytes(),
        };
        let waited_out = tokio::time::Instant::now() + IDEMPOTENCY_WAIT;
        loop {
            let now = self.ctx.now();
            let kept = match self
                .ctx
                .store
                .claim_idempotency_key(
                    actor.token_id,
                    key,
                    &request_hash,
                    &claim.nonce,
                    now,
                    now.minus(IDEMPOTENCY_TTL),
                    now.minus(IDEMPOTENCY_ABANDONED),
                )
                .await?
            {
                Claimed::Now => return Ok(Replay::New(claim)),
                Claimed::Gone => continue,
                Claimed::Before(kept) => kept,
            };
            if !bool::from(kept.request_hash.ct_eq(&request_hash[..])) {
                return Ok(Replay::Mismatch);
            }
            if kept.is_pending() {
                if tokio::time::Instant::now() >= waited_out {
                    return Ok(Replay::InProgress);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let opened = self
                .ctx
                .keyring
                .open(IDEMPOTENCY_PURPOSE, &Self::aad(actor, key), &kept.body)
                .ok()
                .and_then(|body| String::from_utf8(body).ok());
            match opened {
                Some(body) => {
                    return Ok(Replay::Same {
                        status: kept.status,
                        body,
                    })
                }
                // Sealed under a key since retired, it cannot be given again: the request
                // is done afresh (a create then finds what it made: 409).
                None => {
                    self.ctx
                        .store
                        .release_idempotency_key(actor.token_id, key, None)
                        .await?
                }
            }
        }
    }

    /// Lets go of a claimed key whose request changed nothing, so a retry runs afresh.
    pub async fn release(
        &self,
        actor: &ApiActor,
        claim: &IdempotencyClaim,
    ) -> Result<(), Unexpected> {
        Ok(self
            .ctx
            .store
            .release_idempotency_key(actor.token_id, &claim.key, Some(&claim.nonce))
            .await?)
    }

    /// Keeps the first answer under an `Idempotency-Key` for 24 hours, sealed (it may
    /// hold a temporary password); false when the claim had been let go as abandoned.
    pub async fn remember(
        &self,
        actor: &ApiActor,
        claim: &IdempotencyClaim,
        status: u16,
        body: &str,
    ) -> Result<bool, Unexpected> {
        let sealed = self.ctx.keyring.seal(
            IDEMPOTENCY_PURPOSE,
            &Self::aad(actor, &claim.key),
            body.as_bytes(),
        );
        Ok(self
            .ctx
            .store
            .answer_idempotency_key(actor.token_id, &claim.key, &claim.nonce, status, &sealed)
            .await?)
    }
}
