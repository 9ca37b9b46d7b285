//! `seismo-demo`: runs the whole Seismo pipeline locally on the NYC taxi
//! series and prints each alert and a summary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Parser;
use seismo_demo::{DemoOptions, DemoSummary, DemoTelegram, run_demo};
use seismo_loader::ExperimentConfig;

/// Repository root, for the default paths of the demo files.
const REPOSITORY_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Replays a series through embedded Kafka, ingest, ClickHouse, detector and
/// notifier, printing every alert as Telegram would show it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// NAB-format series to replay [default: deploy/demo/nyc_taxi.csv]
    #[arg(long)]
    series: Option<PathBuf>,

    /// Labelled anomaly windows of the series, for the summary
    /// [default: deploy/demo/nyc_taxi.windows.json]
    #[arg(long)]
    labels: Option<PathBuf>,

    /// Detector metric definitions [default: deploy/demo/metrics.toml]
    #[arg(long)]
    metrics: Option<PathBuf>,

    /// `event` name of the replayed events; the metrics file must count it.
    #[arg(long, default_value = "taxi_trips")]
    event: String,

    /// ClickHouse HTTP URL; a local server is started when none responds there.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,

    /// ClickHouse database for the demo; dropped and created anew on each run.
    #[arg(long, env = "SEISMO_DEMO_DATABASE", default_value = "seismo_demo")]
    database: String,

    /// Event-time seconds replayed per wall-clock second (the default plays
    /// the 7 months of the taxi series in about 40 s); 0 replays unpaced.
    #[arg(long, default_value_t = 500_000.0)]
    speedup: f64,

    /// Do not try to start a local ClickHouse when none responds.
    #[arg(long)]
    no_start_clickhouse: bool,

    /// Telegram bot token; alerts also go to Telegram when it and chat ids are set.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    telegram_bot_token: Option<String>,

    /// Comma-separated Telegram chat ids that receive the alerts.
    #[arg(long, env = "TELEGRAM_CHAT_IDS")]
    telegram_chat_ids: Option<String>,

    /// Telegram Bot API base URL.
    #[arg(long, env = "TELEGRAM_API_URL", default_value = "https://api.telegram.org")]
    telegram_api_url: String,

    /// Also replay an A/B test: this many simulated users view and like,
    /// assigned to `exp_group` 1 and 2 by a salted hash of `user_id`. The
    /// demo metrics file watches it as the experiment `demo_feed`.
    #[arg(long)]
    experiment_users: Option<u32>,

    /// Relative weights of the experiment groups 1, 2, …
    #[arg(long, value_delimiter = ',', default_value = "50,50")]
    experiment_split: Vec<u32>,

    /// Relative change of group 2's like probability, e.g. -0.2 for 20 %
    /// fewer likes; 0 gives an A/A setup.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    effect: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let root = Path::new(REPOSITORY_ROOT)
        .canonicalize()
        .with_context(|| format!("the repository root {REPOSITORY_ROOT} is missing; run the demo from a checkout"))?;
    let root = root.as_path();

    if !args.no_start_clickhouse {
        ensure_clickhouse(root, &args.clickhouse_url)?;
    }

    if args.experiment_users.is_some() && (args.speedup == 0.0 || args.speedup > 500_000.0) {
        bail!(
            "--speedup {} is too fast with --experiment-users: the embedded Kafka keeps 5 MB per partition and \
             drops older events the consumers have not read yet; use --speedup 500000 (the default) or less",
            args.speedup
        );
    }

    let experiment = args
        .experiment_users
        .map(|users| demo_experiment(users, args.experiment_split.clone(), args.effect));
    if let Some(experiment) = &experiment {
        experiment.validate()?;
    }

    let telegram = match (&args.telegram_bot_token, &args.telegram_chat_ids) {
        (Some(token), Some(chat_ids)) if !token.is_empty() && !chat_ids.is_empty() => Some(DemoTelegram {
            token: token.clone(),
            chat_ids: chat_ids.clone(),
            api_url: args.telegram_api_url.clone(),
            rate_limits: seismo_notifier::RateLimits::default(),
        }),
        (Some(token), _) if !token.is_empty() => {
            bail!("TELEGRAM_BOT_TOKEN is set but TELEGRAM_CHAT_IDS is not; set the chat ids that should receive alerts")
        }
        _ => None,
    };
    let options = DemoOptions {
        series_csv: args.series.unwrap_or_else(|| root.join("deploy/demo/nyc_taxi.csv")),
        label_windows: Some(
            args.labels
                .unwrap_or_else(|| root.join("deploy/demo/nyc_taxi.windows.json")),
        ),
        metrics_config: args.metrics.unwrap_or_else(|| root.join("deploy/demo/metrics.toml")),
        event_name: args.event,
        clickhouse_url: args.clickhouse_url,
        database: args.database,
        speedup: args.speedup,
        telegram,
        print_alerts: true,
        experiment,
    };

    println!(
        "Replaying {} through Kafka → ingest → ClickHouse and detector → notifier{}",
        options.series_csv.display(),
        if options.telegram.is_some() {
            " → Telegram"
        } else {
            ""
        }
    );
    let summary = run_demo(&options).await?;
    print_summary(&summary, &options);
    Ok(())
}

/// Settings of the demo's A/B test traffic; the fixed ones keep the run
/// reproducible.
fn demo_experiment(users: u32, split: Vec<u32>, effect: f64) -> ExperimentConfig {
    ExperimentConfig {
        users,
        salt: "seismo-demo".to_string(),
        split,
        views_per_row: 10,
        like_probability: 0.2,
        effect_group: 2,
        effect,
        seed: 1,
    }
}

/// Runs `deploy/clickhouse/start-local.sh`, which uses a server that responds,
/// or installs and starts one where it can, or explains what to do.
fn ensure_clickhouse(root: &Path, url: &str) -> anyhow::Result<()> {
    let script = root.join("deploy/clickhouse/start-local.sh");
    let status = Command::new("bash")
        .arg(&script)
        .env("CLICKHOUSE_URL", url)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        bail!("ClickHouse is not reachable at {url}; start it as described above, or pass --clickhouse-url");
    }
    Ok(())
}

fn print_summary(summary: &DemoSummary, options: &DemoOptions) {
    println!();
    println!("Summary ({:.1} s)", summary.elapsed.as_secs_f64());
    println!("  events produced to Kafka:   {}", summary.events_produced);
    println!(
        "  rows in ClickHouse:         {} ({} distinct event ids) in {}.events",
        summary.stored.rows, summary.stored.distinct_event_ids, options.database
    );
    println!("  events dead-lettered:       {}", summary.events_dead_lettered);
    println!(
        "  anomalies:                  {} fired, {} escalated, {} resolved",
        summary.firing_times_ms().len(),
        summary.escalated_count(),
        summary.resolved_count()
    );
    if let Some(matched) = &summary.label_match {
        println!(
            "  labelled anomaly windows:   {} of {} hit; {} alerts outside them",
            matched.windows_hit, matched.windows_total, matched.alerts_outside
        );
    }
    if options.experiment.is_some() {
        let alerts = summary.experiment_alerts();
        println!("  experiment alerts:          {}", alerts.len());
        for alert in alerts {
            let group = alert.slice.first().map_or("", |dimension| dimension.value.as_str());
            println!(
                "    {} in exp_group {group}: {:.4} against {:.4} expected (score {:.3})",
                alert.metric, alert.value, alert.expected, alert.score
            );
        }
    }
    let destination = if options.telegram.is_some() {
        "console and Telegram"
    } else {
        "console; set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_IDS for Telegram"
    };
    println!(
        "  alerts sent:                {} ({} failed) to {}",
        summary.alerts_sent, summary.alerts_failed, destination
    );
}
