//! The portal's load as the metrics scrape samples it: the hashing pool's workers in use
//! and sign-ins queued, and the outbox's depth and its oldest message's age.

use std::time::Duration;

use super::{service, Unexpected};
use crate::telemetry::Levels;

service!(
    /// Load levels, read at the moment of a scrape.
    LoadLevels
);

impl LoadLevels {
    pub async fn sample(&self) -> Result<Levels, Unexpected> {
        let (hashing_in_use, hashing_queued) = self.ctx.hasher.load();
        let (depth, oldest) = self.ctx.store.outbox_backlog().await?;
        let now = self.ctx.now();
        let age = oldest.map_or(0, |at| now.0.saturating_sub(at.0).max(0));
        Ok(Levels {
            hashing_in_use,
            hashing_queued,
            outbox_depth: depth,
            outbox_oldest_age: Duration::from_secs(age.unsigned_abs()),
        })
    }
}
