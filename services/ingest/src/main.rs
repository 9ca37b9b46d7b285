//! `seismo-ingest`: consumes Seismo events from Kafka into ClickHouse.

use std::sync::Arc;

use seismo_ingest::{IngestArgs, IngestStats, Readiness, run};
use seismo_telemetry::{init_telemetry, install_metrics_recorder, parse_with_settings_file, start_admin_server};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: IngestArgs = parse_with_settings_file();
    // Kept to the end of main, so the last spans are flushed.
    let _telemetry = init_telemetry(args.log_format, "seismo-ingest")?;

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received");
        on_signal.cancel();
    });

    // The admin server has a token of its own, so /readyz reports the
    // shutdown and /metrics stays readable while the last batch is stored.
    let readiness = Readiness::default();
    let admin_shutdown = CancellationToken::new();
    let admin = start_admin_server(
        args.admin_listen,
        install_metrics_recorder(),
        readiness.clone(),
        admin_shutdown.clone(),
    )
    .await?;

    let stats = Arc::new(IngestStats::default());
    let result = run(args.into_config(), stats, readiness, shutdown).await;

    admin_shutdown.cancel();
    let admin_result = admin.wait().await;
    result?;
    admin_result
}

/// Waits for Ctrl-C or SIGTERM, the signal container runtimes send to stop.
async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds in a tokio runtime");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
