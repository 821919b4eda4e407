//! A tenant's lifecycle, as the provider's billing system drives it (JSON API) and the
//! provider's staff (CLI): create with its first admin, rename, move to another SIP
//! domain, suspend, resume, delete. Every action takes a [`ProviderActor`].
//!
//! Suspension keeps everything: the tenant's users cannot sign in, their sessions end,
//! the SIP credential lookup answers 403 and the SIP server is told to forget every
//! extension (so phones stop registering); resuming undoes it.

use super::provisioning::Provisioning;
pub use super::provisioning::{NewTenantWithAdmin, TenantError};
use super::{service, Unexpected};
use crate::audit::{Actor, Event, EventKind};
use crate::domain::{DisplayName, NewPassword, SipDomain, TenantCode};
use crate::store::{ApiUserRow, StoreError, TenantRow, TenantUpdate};

/// Proof of acting for the provider: a provider API token ([`ApiActor::provider`]) or the
/// command line.
///
/// [`ApiActor::provider`]: super::api_tokens::ApiActor::provider
#[derive(Debug, Clone)]
pub struct ProviderActor {
    actor: Actor,
}

impl ProviderActor {
    pub(super) fn new(actor: Actor) -> ProviderActor {
        ProviderActor { actor }
    }

    /// The provider's staff at the command line (audited as `cli`).
    pub fn cli() -> ProviderActor {
        ProviderActor::new(Actor::cli())
    }

    pub(super) fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// What creating a tenant made: the tenant, its admin and the admin's temporary
/// password (the only time it is visible).
pub struct CreatedTenant {
    pub tenant: TenantRow,
    pub admin: ApiUserRow,
    pub temporary_password: NewPassword,
}

/// A tenant's lifecycle action refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("there is no such tenant")]
    NotFound,
    /// Not created, or not moved to another SIP domain.
    #[error(transparent)]
    Refused(#[from] TenantError),
}

super::provisioning::wraps_tenant_error!(ActionError);

/// What a provider changes of a tenant: its name, its SIP domain (as typed), or both.
#[derive(Debug, Default)]
pub struct TenantEdit<'a> {
    pub name: Option<&'a DisplayName>,
    pub sip_domain: Option<&'a SipDomain>,
}

service!(
    /// Tenants' lifecycle.
    Tenants
);

impl Tenants {
    async fn existing(&self, code: &TenantCode) -> Result<TenantRow, ActionError> {
        self.ctx
            .store
            .tenant_row(code)
            .await?
            .ok_or(ActionError::NotFound)
    }

    async fn audit(
        &self,
        by: &ProviderActor,
        kind: EventKind,
        tenant: &TenantRow,
        detail: Option<&str>,
    ) -> Result<(), Unexpected> {
        self.ctx
            .audit(Event {
                detail,
                ..Event::on(
                    kind,
                    tenant.tenant.id,
                    by.actor(),
                    tenant.tenant.code.as_str(),
                )
            })
            .await
    }

    /// Up to `limit` tenants after `after`, in code order.
    pub async fn list(
        &self,
        _by: &ProviderActor,
        after: Option<&TenantCode>,
        limit: i64,
    ) -> Result<Vec<TenantRow>, Unexpected> {
        Ok(self
            .ctx
            .store
            .tenants_after(after.map(TenantCode::as_str), limit)
            .await?)
    }

    pub async fn get(
        &self,
        _by: &ProviderActor,
        code: &TenantCode,
    ) -> Result<TenantRow, ActionError> {
        self.existing(code).await
    }

    /// Creates a tenant and its first admin, who gets a temporary password.
    pub async fn create(
        &self,
        by: &ProviderActor,
        new: &NewTenantWithAdmin,
    ) -> Result<CreatedTenant, TenantError> {
        let (tenant, admin, temporary) = Provisioning::new(self.ctx.clone())
            .create_tenant_with_admin(new, by.actor())
            .await?;
        let temporary_password = temporary
            .ok_or_else(|| Unexpected::invariant("no temporary password was generated"))?;
        Ok(CreatedTenant {
            tenant,
            admin,
            temporary_password,
        })
    }

    /// Renames a tenant and/or moves its phones to another SIP domain, all or nothing: a
    /// domain that is another tenant's changes nothing, the name included. Moving makes the
    /// SIP server forget the old addresses, so every phone must be set to the new domain.
    pub async fn update(
        &self,
        by: &ProviderActor,
        code: &TenantCode,
        changes: &TenantEdit<'_>,
    ) -> Result<(), ActionError> {
        let tenant = self.existing(code).await?;
        let moved = changes
            .sip_domain
            .filter(|d| !tenant.tenant.sip_domain.eq_ignore_ascii_case(d.as_str()));
        if changes.name.is_none() && moved.is_none() {
            return Ok(());
        }
        let change = TenantUpdate {
            name: changes.name.map(DisplayName::as_str),
            sip_domain: moved.map(|new| (tenant.tenant.sip_domain.as_str(), new.as_str())),
        };
        match self
            .ctx
            .store
            .update_tenant(tenant.tenant.id, &change, self.ctx.now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                let refused = match moved {
                    Some(d) => TenantError::SipDomainTaken(d.clone()),
                    None => Unexpected::invariant("a new name alone was refused").into(),
                };
                return Err(refused.into());
            }
            Err(e) => return Err(e.into()),
        }
        let detail = match (&changes.name, &moved) {
            (Some(_), Some(d)) => format!("renamed; SIP domain is now {d}"),
            (Some(_), None) => "renamed".to_owned(),
            (None, Some(d)) => format!("SIP domain is now {d}"),
            (None, None) => String::new(),
        };
        self.audit(by, EventKind::TenantUpdated, &tenant, Some(&detail))
            .await?;
        Ok(())
    }

    /// Suspends the tenant (see the module doc). Suspending a suspended tenant changes
    /// nothing.
    pub async fn suspend(&self, by: &ProviderActor, code: &TenantCode) -> Result<(), ActionError> {
        let tenant = self.existing(code).await?;
        if self
            .ctx
            .store
            .suspend_tenant(tenant.tenant.id, self.ctx.now())
            .await?
        {
            self.audit(by, EventKind::TenantSuspended, &tenant, None)
                .await?;
        }
        Ok(())
    }

    /// Puts a suspended tenant back in service; a tenant in service is left as it is.
    pub async fn resume(&self, by: &ProviderActor, code: &TenantCode) -> Result<(), ActionError> {
        let tenant = self.existing(code).await?;
        if self.ctx.store.resume_tenant(tenant.tenant.id).await? {
            self.audit(by, EventKind::TenantResumed, &tenant, None)
                .await?;
        }
        Ok(())
    }

    /// Deletes the tenant with its users, tokens and mail; the audit log keeps its history
    /// and the provider's log records the deletion.
    pub async fn delete(&self, by: &ProviderActor, code: &TenantCode) -> Result<(), ActionError> {
        let tenant = self.existing(code).await?;
        self.ctx
            .store
            .delete_tenant(tenant.tenant.id, self.ctx.now())
            .await?;
        self.ctx
            .audit(Event {
                subject: Some(code.as_str()),
                ..Event::by(
                    EventKind::TenantDeleted,
                    by.actor().name(),
                    by.actor().addr(),
                )
            })
            .await?;
        Ok(())
    }
}
