//! The long-running forecast service: gRPC API plus lifecycle.

use std::net::SocketAddr;

use anyhow::Context;
use seismo_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clickhouse_source::ClickHouseSettings;
use crate::grpc::{ForecastService, serve};
use crate::prometheus_metrics::register_metrics;

/// Settings of [`start`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    pub clickhouse: ClickHouseSettings,
}

/// A started forecast service.
#[derive(Debug)]
pub struct RunningForecast {
    local_addr: SocketAddr,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningForecast {
    /// Address the gRPC server is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server stopped after `shutdown` fired, or failed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("forecast server task panicked")?
    }
}

/// Binds the gRPC address and serves until `shutdown` fires. `readiness`
/// becomes ready once the server accepts connections and not ready when it
/// stops. ClickHouse is contacted per request, so an unreachable server
/// shows in the requests' status, not in readiness.
///
/// Metrics named `seismo_forecast_*` are recorded through the `metrics`
/// facade; install the recorder before this call so their descriptions
/// register.
pub async fn start(
    config: ServiceConfig,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningForecast> {
    register_metrics();
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "failed to listen on {}; choose a free address with --listen",
            config.listen
        )
    })?;
    let local_addr = listener.local_addr().context("failed to read the bound gRPC address")?;
    tracing::info!(
        listen = %local_addr,
        clickhouse_url = %config.clickhouse.url,
        database = %config.clickhouse.database,
        table = %config.clickhouse.table,
        "forecast service started"
    );

    let service = ForecastService::new(config.clickhouse);
    let serving = readiness.clone();
    let task = tokio::spawn(async move {
        let result = serve(listener, service, shutdown, move || serving.set_ready()).await;
        let reason = match &result {
            Ok(()) => "stopped".to_string(),
            Err(error) => format!("stopped: {error:#}"),
        };
        readiness.set_not_ready(reason);
        tracing::info!("forecast service stopped");
        result
    });
    Ok(RunningForecast { local_addr, task })
}
