//! The notifier library as a process of its own, for tests that end it with
//! SIGKILL. It takes the command-line options and environment variables of
//! `seismo-notifier` and runs `seismo_notifier::run`, without the admin
//! server and the bot commands. SIGTERM stops it gracefully.
//!
//! The `seismo-notifier` binary belongs to another package, so integration
//! tests of this package cannot locate it. Cargo builds this one for them and
//! names it in `CARGO_BIN_EXE_notifier_process`.

use std::sync::Arc;

use seismo_notifier::cli::NotifierArgs;
use seismo_notifier::{NotifierStats, Readiness, run};
use seismo_telemetry::parse_with_settings_file;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: NotifierArgs = parse_with_settings_file();
    let config = args.into_config()?;

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        terminate.recv().await;
        on_signal.cancel();
    });

    run(config, Arc::new(NotifierStats::default()), Readiness::default(), cancel).await?;
    Ok(())
}
