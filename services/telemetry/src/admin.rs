use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Readiness;

/// Content type of the Prometheus text exposition format 0.0.4.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// A running admin HTTP server.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl AdminServer {
    /// Address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server stopped after the shutdown token fired.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("admin server task panicked")??;
        Ok(())
    }
}

/// Binds `listen` (port 0 picks a free port) and serves, until `shutdown`:
/// - `GET /metrics`: Prometheus text format of every metric recorded through
///   the `metrics` facade;
/// - `GET /healthz`: 200 while the process serves requests (liveness);
/// - `GET /readyz`: 200 when `readiness` is ready, else 503 with the reason.
pub async fn start_admin_server(
    listen: SocketAddr,
    metrics: PrometheusHandle,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<AdminServer> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on admin address {listen}; choose a free one"))?;
    let local_addr = listener
        .local_addr()
        .context("cannot read the admin server's bound address")?;

    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(report_readiness))
        .with_state(AdminState { metrics, readiness });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });

    tracing::info!(listen = %local_addr, "admin server started: /metrics, /healthz, /readyz");
    Ok(AdminServer { local_addr, task })
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

async fn report_readiness(State(state): State<AdminState>) -> impl IntoResponse {
    match state.readiness.status() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}
