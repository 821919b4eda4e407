//! `GET /metrics`: the Prometheus text exposition of every `dialtone_` series. Levels
//! (hashing pool, outbox) are sampled at the moment of the scrape.
//!
//! No token is asked for: the internal listener is for the provider's own network (it
//! binds 127.0.0.1 unless told otherwise), and nothing here names a user, an address or a
//! secret — counts by outcome, route pattern and status only.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Hasher;
use crate::clock::SharedClock;
use crate::store::Store;
use crate::telemetry::{self, Levels};

/// What the levels are read from.
#[derive(Clone)]
pub struct LevelSource {
    pub store: Store,
    pub hasher: Hasher,
    pub clock: SharedClock,
}

pub async fn metrics(State(source): State<LevelSource>) -> Response {
    let Some(handle) = telemetry::metrics_handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded\n",
        )
            .into_response();
    };
    let (hashing_in_use, hashing_queued) = source.hasher.load();
    match source.store.outbox_backlog().await {
        Ok((depth, oldest)) => {
            let now = source.clock.now();
            let age = oldest.map_or(0, |at| now.0.saturating_sub(at.0).max(0));
            telemetry::set_levels(&Levels {
                hashing_in_use,
                hashing_queued,
                outbox_depth: depth,
                outbox_oldest_age: std::time::Duration::from_secs(age.unsigned_abs()),
            });
        }
        // The other series are still worth a scrape; the outbox gauges keep their last value.
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the outbox backlog"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
