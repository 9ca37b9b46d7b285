//! `seismo-notifier`: follows Seismo detectors and sends anomaly alerts to
//! Telegram and/or the console.

use std::sync::Arc;

use seismo_notifier::cli::NotifierArgs;
use seismo_notifier::commands::setup::{Interaction, NotifierCommand, send_forecast_report_now, send_report_now};
use seismo_notifier::{NotifierStats, Readiness, build_sinks, run_with_hooks};
use seismo_telemetry::{init_telemetry, install_metrics_recorder, parse_with_settings_file, start_admin_server};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: NotifierArgs = parse_with_settings_file();
    // Logs go to stderr, so the console alerts on stdout stay clean.
    // Kept to the end of main, so the last spans are flushed.
    let _telemetry = init_telemetry(args.log_format, "seismo-notifier")?;

    let admin_listen = args.admin_listen;
    let interaction_args = args.interaction.clone();
    let command = args.command.clone();
    let config = args.into_config()?;
    match command {
        Some(NotifierCommand::Report { now }) => {
            if !now {
                anyhow::bail!("`seismo-notifier report` needs --now; the daily schedule runs inside the notifier");
            }
            return send_report_now(&interaction_args, config.telegram.as_ref()).await;
        }
        Some(NotifierCommand::ForecastReport { now }) => {
            if !now {
                anyhow::bail!(
                    "`seismo-notifier forecast-report` needs --now; the weekly schedule runs inside the notifier"
                );
            }
            return send_forecast_report_now(&interaction_args, config.telegram.as_ref()).await;
        }
        None => {}
    }
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

    let interaction = Interaction::start(
        &interaction_args,
        config.state_dir.as_deref(),
        &config.detectors,
        config.telegram.as_ref(),
        &stats,
        &shutdown,
    )?;
    let sinks = build_sinks(&config, &stats);
    let result = run_with_hooks(
        config,
        sinks,
        interaction.hooks,
        Arc::clone(&stats),
        readiness,
        shutdown,
    )
    .await;
    for task in interaction.tasks {
        let _ = task.await;
    }

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
