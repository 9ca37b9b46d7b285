//! `seismo-notifier`: follows Seismo detectors and sends anomaly alerts to
//! Telegram and/or the console.

use std::sync::Arc;

use seismo_notifier::cli::NotifierArgs;
use seismo_notifier::{NotifierStats, Readiness, run};
use seismo_telemetry::{init_telemetry, install_metrics_recorder, parse_with_settings_file, start_admin_server};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: NotifierArgs = parse_with_settings_file();
    // Logs go to stderr, so the console alerts on stdout stay clean.
    // Kept to the end of main, so the last spans are flushed.
    let _telemetry = init_telemetry(args.log_format, "seismo-notifier")?;

    let admin_listen = args.admin_listen;
    let config = args.into_config()?;
    let stats = Arc::new(NotifierStats::default());
    let readiness = Readiness::default();
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        on_signal.cancel();
    });

    // The admin server outlives `run`, so /readyz reports the shutdown while
    // received alerts are still delivered.
    let admin_shutdown = CancellationToken::new();
    let admin = start_admin_server(
        admin_listen,
        install_metrics_recorder(),
        readiness.clone(),
        admin_shutdown.clone(),
    )
    .await?;

    let result = run(config, Arc::clone(&stats), readiness, shutdown).await;

    admin_shutdown.cancel();
    admin.wait().await?;
    result?;
    Ok(())
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
