//! `GET /metrics`: the Prometheus text exposition of every `dialtone_` series. Levels
//! (hashing pool, outbox) are sampled at the moment of the scrape.
//!
//! No token is asked for: the internal listener is for the provider's own network (it
//! binds 127.0.0.1 unless told otherwise), and nothing here names a user, an address or a
//! secret — counts by outcome, route pattern and status only.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::services::levels::LoadLevels;
use crate::telemetry;

pub async fn metrics(State(levels): State<LoadLevels>) -> Response {
    let Some(handle) = telemetry::metrics_handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded\n",
        )
            .into_response();
    };
    match levels.sample().await {
        Ok(now) => telemetry::set_levels(&now),
        // The other series are still worth a scrape; the level gauges keep their last value.
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
