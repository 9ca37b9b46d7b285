//! `seismo-ingest`: consumes Seismo events from Kafka into ClickHouse.

use std::sync::Arc;

use clap::Parser;
use seismo_ingest::{IngestArgs, IngestStats, run};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = IngestArgs::parse();
    init_logging(args.log_json);

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received");
        on_signal.cancel();
    });

    let stats = Arc::new(IngestStats::default());
    run(args.into_config(), stats, shutdown).await?;
    Ok(())
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
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
