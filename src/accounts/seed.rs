//! Creating many users at once, for benchmarks and load tests: the password is hashed
//! once and shared, each user's SIP secret is sealed for its own row, and rows go in by
//! the thousand. Not for real customers: everyone seeded shares one password and one SIP
//! secret, and nothing is audited.

use std::ops::Range;

use secrecy::SecretString;

use super::{Accounts, ProvisionError, Unexpected};
use crate::domain::{DisplayName, NewPassword, TenantCode};
use crate::store::NewUser;

/// Users built and written per transaction.
const CHUNK: u64 = 10_000;

impl Accounts {
    /// Creates the users `{n}-{tenant}` for every `n` in `extensions`, role "user", named
    /// `{name} {n}`, all with `password`. Returns how many were created.
    pub async fn seed_users(
        &self,
        tenant: &TenantCode,
        extensions: Range<u64>,
        name: &DisplayName,
        password: &NewPassword,
    ) -> Result<u64, ProvisionError> {
        let tenant = self
            .store
            .tenant_by_code(tenant.as_str())
            .await?
            .ok_or_else(|| ProvisionError::NoSuchTenant(tenant.to_string()))?;
        let hash = self
            .hasher
            .hash(SecretString::from(password.expose().to_owned()))
            .await
            .map_err(Unexpected::from)?;
        let sip = super::phone::generate_sip_secret();
        let mut created = 0;
        let mut start = extensions.start;
        while start < extensions.end {
            let end = extensions.end.min(start.saturating_add(CHUNK));
            let rows: Vec<(String, String, Vec<u8>)> = (start..end)
                .map(|n| {
                    let ext = n.to_string();
                    let sealed = self.seal_sip_secret(tenant.id, &ext, &sip);
                    (ext, format!("{} {n}", name.as_str()), sealed)
                })
                .collect();
            let users: Vec<NewUser<'_>> = rows
                .iter()
                .map(|(ext, display, sealed)| NewUser {
                    tenant_id: tenant.id,
                    extension: ext,
                    name: display,
                    email: None,
                    role: "user",
                    password_hash: &hash,
                    password_expires_at: None,
                    sip_secret: Some(sealed),
                })
                .collect();
            self.store.insert_users_bulk(&users, self.now()).await?;
            created += end - start;
            start = end;
        }
        self.store.settle_after_bulk_load().await?;
        Ok(created)
    }
}
