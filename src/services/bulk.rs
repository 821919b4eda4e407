//! Creating many users at once, for benchmarks and load tests: the password is hashed
//! once and shared, each user's SIP secret is sealed for its own row, and rows go in by
//! the thousand. Not for real customers: everyone seeded shares one password and one SIP
//! secret, and nothing is audited.

use std::ops::Range;

use super::device_secrets::{generate_sip_secret, seal_sip_secret};
use super::provisioning::CreateUserError;
use super::{service, Unexpected};
use crate::domain::{DisplayName, Extension, NewPassword, Role, TenantCode};
use crate::store::NewUser;

/// Users built and written per transaction.
const CHUNK: u64 = 10_000;

service!(
    /// Seeding many users at once.
    BulkLoad
);

impl BulkLoad {
    /// Creates the users `{n}-{tenant}` for every `n` in `extensions`, role "user", named
    /// `{name} {n}`, all with `password`. Returns how many were created.
    pub async fn seed_users(
        &self,
        tenant: &TenantCode,
        extensions: Range<u64>,
        name: &DisplayName,
        password: &NewPassword,
    ) -> Result<u64, CreateUserError> {
        let ctx = &self.ctx;
        let tenant = ctx
            .store
            .tenant_by_code(tenant)
            .await?
            .ok_or_else(|| CreateUserError::NoSuchTenant(tenant.clone()))?;
        let hash = ctx
            .hasher
            .hash(password.expose())
            .await
            .map_err(Unexpected::from)?;
        let sip = generate_sip_secret();
        let mut created = 0;
        let mut start = extensions.start;
        while start < extensions.end {
            let end = extensions.end.min(start.saturating_add(CHUNK));
            let rows = (start..end)
                .map(|n| {
                    let ext = Extension::parse(&n.to_string()).map_err(|_| {
                        Unexpected::invariant("a seeded extension is not 1-10 digits")
                    })?;
                    let sealed = seal_sip_secret(ctx, tenant.id, &ext, &sip);
                    Ok((ext, format!("{} {n}", name.as_str()), sealed))
                })
                .collect::<Result<Vec<(Extension, String, Vec<u8>)>, Unexpected>>()?;
            let users: Vec<NewUser<'_>> = rows
                .iter()
                .map(|(ext, display, sealed)| NewUser {
                    extension: ext,
                    name: display,
                    email: None,
                    role: Role::User,
                    password_hash: &hash,
                    password_expires_at: None,
                    sip_secret: Some(sealed),
                })
                .collect();
            ctx.store
                .insert_users_bulk(tenant.id, &users, ctx.now())
                .await?;
            created += end - start;
            start = end;
        }
        ctx.store.settle_after_bulk_load().await?;
        Ok(created)
    }
}
