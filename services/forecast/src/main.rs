//! `seismo-forecast` binary: `forecast` and `backtest` print results,
//! `serve` runs the gRPC API.

use seismo_forecast::cli::{Cli, Command, ServeArgs};
use seismo_forecast::commands::{run_backtest, run_forecast};
use seismo_forecast::service::{self, ServiceConfig};
use seismo_telemetry::{
    Readiness, init_logging, init_telemetry, install_metrics_recorder, parse_with_settings_file, start_admin_server,
};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli: Cli = parse_with_settings_file();
    let runtime = tokio::runtime::Runtime::new()?;

    match cli.command {
        Command::Forecast(args) => {
            init_logging(cli.log_format);
            let text = runtime.block_on(run_forecast(args))?;
            print!("{text}");
            Ok(())
        }
        Command::Backtest(args) => {
            init_logging(cli.log_format);
            let text = runtime.block_on(run_backtest(args))?;
            print!("{text}");
            Ok(())
        }
        Command::Serve(args) => runtime.block_on(async {
            // The OTLP exporter needs the runtime; the guard flushes the last spans.
            let _telemetry = init_telemetry(cli.log_format, "seismo-forecast")?;
            serve(args).await
        }),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received; shutting down");
        on_signal.cancel();
    });

    // The admin server has a token of its own, so /readyz reports the
    // shutdown until the gRPC server stopped.
    let readiness = Readiness::default();
    let admin_shutdown = CancellationToken::new();
    let admin = start_admin_server(
        args.admin_listen,
        install_metrics_recorder(),
        readiness.clone(),
        admin_shutdown.clone(),
    )
    .await?;

    let config = ServiceConfig {
        listen: args.listen,
        clickhouse: args.clickhouse.settings(),
    };
    let result = match service::start(config, readiness, shutdown).await {
        Ok(running) => running.wait().await,
        Err(error) => Err(error),
    };

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
