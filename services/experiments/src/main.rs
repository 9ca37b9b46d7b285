//! `seismo-experiments`: A/B test analysis and A/A checks over the Seismo
//! events table in ClickHouse.

use seismo_experiments::cli::{Cli, execute};
use seismo_telemetry::{init_telemetry, parse_with_settings_file};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = parse_with_settings_file();
    // Kept to the end of main, so the last spans are flushed.
    let _telemetry = init_telemetry(cli.log_format, "seismo-experiments")?;

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received; shutting down");
        on_signal.cancel();
    });

    execute(cli, shutdown).await
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
