//! `seismo-detector` binary: `serve` runs the service, `replay` scores
//! series files offline.

use clap::Parser;
use seismo_detector::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);

    match cli.command {
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(args))
        }
        Command::Replay(args) => {
            // Pure file I/O: no async runtime needed.
            let summary = seismo_detector::replay::run(args)?;
            println!(
                "replayed {} file(s), {} rows, {} alerts",
                summary.files.len(),
                summary.rows(),
                summary.fired()
            );
            Ok(())
        }
    }
}

async fn serve(args: seismo_detector::cli::ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received; shutting down");
        on_signal.cancel();
    });

    let detector = seismo_detector::service::start(config, shutdown).await?;
    let stats = detector.stats();
    let result = detector.wait().await;
    tracing::info!(stats = ?stats.snapshot(), "final counters");
    result
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
