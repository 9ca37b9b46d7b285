//! `seismo-detector` binary: `serve` runs the service, `replay` scores
//! series files offline, `evaluate` measures detection quality, `check`
//! validates a metrics file.

use seismo_detector::Readiness;
use seismo_detector::cli::{Cli, Command};
use seismo_telemetry::{
    init_logging, init_telemetry, install_metrics_recorder, parse_with_settings_file, start_admin_server,
};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli: Cli = parse_with_settings_file();

    match cli.command {
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                // The OTLP exporter needs the runtime; the guard flushes the last spans.
                let _telemetry = init_telemetry(cli.log_format, "seismo-detector")?;
                serve(args).await
            })
        }
        Command::Replay(args) => {
            init_logging(cli.log_format);
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
        Command::Evaluate(args) => {
            init_logging(cli.log_format);
            let report = seismo_detector::evaluate::run(args)?;
            print!("{report}");
            Ok(())
        }
        Command::Check(args) => {
            init_logging(cli.log_format);
            print!("{}", args.run()?);
            Ok(())
        }
    }
}

async fn serve(args: seismo_detector::cli::ServeArgs) -> anyhow::Result<()> {
    let admin_listen = args.admin_listen;
    let config = args.into_config()?;

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received; shutting down");
        on_signal.cancel();
    });

    // The admin server has a token of its own, so /readyz reports the
    // shutdown and /metrics stays readable until the detector stopped.
    let readiness = Readiness::default();
    let admin_shutdown = CancellationToken::new();
    let admin = start_admin_server(
        admin_listen,
        install_metrics_recorder(),
        readiness.clone(),
        admin_shutdown.clone(),
    )
    .await?;

    let result = run_detector(config, readiness, shutdown).await;

    admin_shutdown.cancel();
    let admin_result = admin.wait().await;
    result?;
    admin_result
}

async fn run_detector(
    config: seismo_detector::ServiceConfig,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let detector = seismo_detector::service::start(config, readiness, shutdown).await?;
    let stats = detector.stats();
    let result = detector.wait().await;
    tracing::info!(stats = ?stats.snapshot(), "final counters");
    result
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
