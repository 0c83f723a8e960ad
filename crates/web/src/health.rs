//! Liveness, readiness and metrics.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::{AppState, OperationsState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and serving.
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers; a load balancer sends traffic here only then.
async fn readyz(State(state): State<Arc<OperationsState>>) -> impl IntoResponse {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unreachable".to_string(),
            )
        }
    }
}

/// Prometheus text format.
async fn metrics(State(state): State<Arc<OperationsState>>) -> impl IntoResponse {
    let stats = (state.pool_stats)();
    metrics::gauge!("portcullis_db_pool_connections").set(stats.size as f64);
    metrics::gauge!("portcullis_db_pool_idle_connections").set(stats.idle as f64);
    if let Some(bytes) = resident_memory_bytes() {
        // Prometheus' conventional name, so dashboards and the load generator find it.
        metrics::gauge!("process_resident_memory_bytes").set(bytes as f64);
    }
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// This process's resident memory (`VmRSS` in `/proc/self/status`); `None` where there is no
/// procfs.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
