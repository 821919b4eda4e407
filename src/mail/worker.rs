//! The delivery worker: claims due messages with a lease (safe with several nodes on one
//! database), delivers them, and records the outcome; transient failures are retried with
//! exponential backoff, and bodies are dropped once a message is sent or given up.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use tokio::sync::{watch, Notify};

use super::transport::Transport;
use super::Outbox;
use crate::audit::{Event, EventKind};
use crate::auth::token::random_token;
use crate::clock::SharedClock;
use crate::store::Store;

/// Attempts before a message is marked failed.
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a claim keeps other workers away from a message.
const LEASE: Duration = Duration::from_secs(120);
const BATCH: i64 = 20;

/// Wait before attempt `attempts + 1`: 30 s, 1 min, 2 min … capped at 1 hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    Duration::from_secs(30u64.saturating_mul(1u64 << exp)).min(Duration::from_secs(3600))
}

pub struct Worker {
    pub store: Store,
    pub outbox: Outbox,
    pub transport: Transport,
    pub from: Mailbox,
    pub clock: SharedClock,
    pub poll: Duration,
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Runs until `stop` turns true, then returns once the message being sent (if any) is
    /// done; the rest of its claimed batch goes back to the outbox for the next worker.
    pub async fn run_until(self, mut stop: watch::Receiver<bool>) {
        loop {
            loop {
                if *stop.borrow() {
                    return;
                }
                match self.deliver_due_until(&stop).await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "mail worker could not read the outbox");
                        break;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {},
                () = self.wake.notified() => {},
                _ = stop.changed() => {},
            }
        }
    }

    async fn deliver_due_until(
        &self,
        stop: &watch::Receiver<bool>,
    ) -> Result<usize, crate::store::StoreError> {
        let claim = random_token();
        let now = self.clock.now();
        let messages = self
            .store
            .claim_mail(now, now.plus(LEASE), &claim, BATCH)
            .await?;
        for m in &messages {
            if *stop.borrow() {
                // Shutting down: what is not sent yet is handed back, not left leased.
                let back = self.store.release_mail_claim(&claim).await?;
                tracing::info!(
                    messages = back,
                    "stopping; unsent mail handed back to the outbox"
                );
                break;
            }
            // Sending the earlier messages of the batch may have taken long; make sure the
            // claim still holds, so no other node can be sending this one too.
            if !self
                .store
                .renew_mail_claim(m.id, &claim, self.clock.now().plus(LEASE))
                .await?
            {
                continue;
            }
            let (text, html) = match self.outbox.open(m) {
                Ok(bodies) => bodies,
                Err(_) => {
                    tracing::error!(id = m.id, kind = %m.kind, "queued mail does not open with this key; giving up");
                    self.store
                        .mail_failed(
                            m.id,
                            &claim,
                            self.clock.now(),
                            "the message cannot be decrypted with this server's key",
                            None,
                        )
                        .await?;
                    continue;
                }
            };
            match self.transport.deliver(&self.from, m, text, html).await {
                Ok(answer) => {
                    tracing::info!(id = m.id, kind = %m.kind, "mail delivered");
                    self.store
                        .mail_sent(m.id, &claim, self.clock.now(), &answer)
                        .await?;
                }
                Err(e) if e.permanent || m.attempts >= MAX_ATTEMPTS => {
                    tracing::warn!(id = m.id, kind = %m.kind, error = %e, "mail failed; giving up");
                    let now = self.clock.now();
                    let detail = format!(
                        "{} to {} given up after {} attempt(s): {}",
                        m.kind, m.recipient, m.attempts, e.message
                    );
                    let event = Event {
                        tenant: m.tenant_id,
                        actor: Some("mail"),
                        detail: Some(&detail),
                        ..Event::new(EventKind::MailFailed)
                    };
                    self.store
                        .mail_failed(m.id, &claim, now, &e.message, Some(&event.row(now)))
                        .await?;
                }
                Err(e) => {
                    let next = self.clock.now().plus(backoff(m.attempts));
                    tracing::warn!(id = m.id, kind = %m.kind, error = %e, attempts = m.attempts, "mail not delivered; will retry");
                    self.store
                        .mail_retry(m.id, &claim, next, &e.message)
                        .await?;
                }
            }
        }
        Ok(messages.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(4), Duration::from_secs(240));
        assert_eq!(backoff(50), Duration::from_secs(3600));
    }
}
