//! The long-running experiments service: the gRPC API with the admin HTTP
//! server, and their lifecycle.

use std::net::SocketAddr;

use anyhow::Context;
use seismo_telemetry::{AdminServer, Readiness, install_metrics_recorder, start_admin_server};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::analysis::AnalysisSettings;
use crate::clickhouse_source::EventsTable;
use crate::grpc::{ExperimentsService, serve};
use crate::prometheus_metrics::register_metrics;

/// Settings of [`start`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// gRPC address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Admin HTTP address (`/metrics`, `/healthz`, `/readyz`); port 0 picks a
    /// free port.
    pub admin_listen: SocketAddr,
    pub table: EventsTable,
    /// Settings a request does not carry: buckets, smoothing, bootstrap
    /// replicates.
    pub defaults: AnalysisSettings,
}

/// A started experiments service.
#[derive(Debug)]
pub struct RunningExperiments {
    local_addr: SocketAddr,
    admin_addr: SocketAddr,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningExperiments {
    /// Address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Address the admin HTTP server is bound to.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Waits until both servers stopped after `shutdown` fired, or the gRPC
    /// server failed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("experiments service task panicked")?
    }
}

/// Starts the admin server, binds the gRPC address and serves until
/// `shutdown` fires.
///
/// `/readyz` turns ready once the gRPC server accepts connections and not
/// ready as soon as `shutdown` fires. The admin server keeps responding
/// until the in-flight requests finished. ClickHouse is queried per
/// request, as in the forecast service, so an unreachable ClickHouse shows
/// as `UNAVAILABLE` responses and in the request metrics, not in readiness.
///
/// Installs the process-wide Prometheus recorder, if none is, and records
/// the `seismo_experiments_*` metrics through it.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningExperiments> {
    let metrics = install_metrics_recorder();
    register_metrics();

    // The admin server has a token of its own, so /readyz reports the
    // shutdown until the gRPC server stopped.
    let readiness = Readiness::default();
    let admin_shutdown = CancellationToken::new();
    let admin = start_admin_server(config.admin_listen, metrics, readiness.clone(), admin_shutdown.clone()).await?;
    let admin_addr = admin.local_addr();

    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            stop_admin(admin, admin_shutdown).await;
            return Err(error).with_context(|| {
                format!(
                    "failed to listen on {}; choose a free address with --listen",
                    config.listen
                )
            });
        }
    };
    let local_addr = listener.local_addr().context("failed to read the bound gRPC address")?;
    tracing::info!(
        listen = %local_addr,
        admin_listen = %admin_addr,
        clickhouse_url = %config.table.url,
        database = %config.table.database,
        table = %config.table.table,
        bootstrap = config.defaults.bootstrap_iterations,
        "experiments service started"
    );

    let service = ExperimentsService::new(config.table, config.defaults);
    let task = tokio::spawn(async move {
        let grpc_shutdown = CancellationToken::new();
        let watcher = tokio::spawn(mark_not_ready_on(shutdown, readiness.clone(), grpc_shutdown.clone()));

        let serving = readiness.clone();
        let result = serve(listener, service, grpc_shutdown, move || serving.set_ready()).await;
        watcher.abort();

        let reason = match &result {
            Ok(()) => "stopped".to_string(),
            Err(error) => format!("stopped: {error:#}"),
        };
        readiness.set_not_ready(reason);
        stop_admin(admin, admin_shutdown).await;
        tracing::info!("experiments service stopped");
        result
    });
    Ok(RunningExperiments {
        local_addr,
        admin_addr,
        task,
    })
}

/// Marks the service not ready when `shutdown` fires, so load balancers
/// stop sending requests, then stops the gRPC server through
/// `grpc_shutdown`.
async fn mark_not_ready_on(shutdown: CancellationToken, readiness: Readiness, grpc_shutdown: CancellationToken) {
    shutdown.cancelled().await;
    readiness.set_not_ready("shutting down");
    grpc_shutdown.cancel();
}

/// Stops the admin server and logs, rather than returns, its failure, so
/// the gRPC server's result stays the service's result.
async fn stop_admin(admin: AdminServer, admin_shutdown: CancellationToken) {
    admin_shutdown.cancel();
    if let Err(error) = admin.wait().await {
        tracing::warn!(error = format!("{error:#}"), "admin server failed");
    }
}
