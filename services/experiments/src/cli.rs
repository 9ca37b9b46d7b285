//! Command-line interface of `seismo-experiments`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use seismo_telemetry::LogFormat;
use tokio_util::sync::CancellationToken;

use crate::aa::AaSettings;
use crate::analysis::{AnalysisSettings, Metric};
use crate::clickhouse_source::EventsTable;
use crate::run::{AaRequest, AbRequest, run_aa_check, run_ab_test};
use crate::service::{ServiceConfig, start};
use crate::telegram::{TelegramTarget, send_report};

/// A/B test analysis and A/A checks over the Seismo events table.
#[derive(Debug, Parser)]
#[command(name = "seismo-experiments", version)]
pub struct Cli {
    #[command(flatten)]
    pub table: TableArgs,

    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr: `text` or `json`. RUST_LOG sets the level
    /// (default info).
    #[arg(long, global = true, env = "SEISMO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Settings file (TOML) whose keys are the environment variable names of
    /// these options, e.g. `SEISMO_EXPERIMENTS_LISTEN = "0.0.0.0:50071"`.
    #[arg(long = "config-file", global = true, env = "SEISMO_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare a treatment group with a control group and print the report.
    Ab(AbArgs),
    /// Re-split the users of some groups at random many times and report how
    /// often each test rejects; expect about alpha.
    Aa(AaArgs),
    /// Serve the `seismo.experiments.v1.Experiments` gRPC service until
    /// SIGTERM or Ctrl-C.
    Serve(ServeArgs),
}

/// Location of the events table.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// ClickHouse HTTP interface.
    #[arg(long, global = true, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,

    /// ClickHouse user.
    #[arg(long, global = true, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password.
    #[arg(
        long,
        global = true,
        env = "CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub clickhouse_password: String,

    /// Database of the events table.
    #[arg(long, global = true, env = "SEISMO_CLICKHOUSE_DATABASE", default_value = "seismo")]
    pub database: String,

    /// Events table, as ingest creates it.
    #[arg(long, global = true, env = "SEISMO_EXPERIMENTS_TABLE", default_value = "events")]
    pub table: String,

    /// `event` value counted as a view (the CTR's denominator).
    #[arg(long, global = true, env = "SEISMO_EXPERIMENTS_VIEW_EVENT", default_value = "view")]
    pub view_event: String,

    /// `event` value counted as a like (the CTR's numerator).
    #[arg(long, global = true, env = "SEISMO_EXPERIMENTS_LIKE_EVENT", default_value = "like")]
    pub like_event: String,

    /// Maximum time of one ClickHouse query, in seconds.
    #[arg(
        long,
        global = true,
        env = "SEISMO_EXPERIMENTS_CLICKHOUSE_TIMEOUT_SECONDS",
        default_value_t = 60
    )]
    pub clickhouse_timeout_seconds: u64,
}

/// Statistical settings shared by `ab` and `aa`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Start of the period, inclusive: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC)
    /// or `YYYY-MM-DD`.
    #[arg(long, value_parser = parse_time)]
    pub from: DateTime<Utc>,

    /// End of the period, exclusive, in the same formats.
    #[arg(long, value_parser = parse_time)]
    pub to: DateTime<Utc>,

    /// Per-user value to compare.
    #[arg(long, value_enum, default_value_t = MetricArg::Ctr)]
    pub metric: MetricArg,

    /// Significance level of every test.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,

    /// Buckets per group for the bucketed CTR.
    #[arg(long, default_value_t = 50)]
    pub buckets: u32,

    /// Salt of the bucket hash, which must differ from the assignment salt.
    #[arg(long, default_value = "seismo-buckets")]
    pub bucket_salt: String,

    /// Smoothing strength a of the smoothed CTR, in views.
    #[arg(long, default_value_t = 5.0)]
    pub smoothing: f64,

    /// Seed of the random splits and the bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Likes per view, by per-user, linearised, bucketed, smoothed and
    /// bootstrap tests.
    Ctr,
    /// Likes per user.
    Likes,
    /// Views per user.
    Views,
}

impl From<MetricArg> for Metric {
    fn from(metric: MetricArg) -> Metric {
        match metric {
            MetricArg::Ctr => Metric::Ctr,
            MetricArg::Likes => Metric::Likes,
            MetricArg::Views => Metric::Views,
        }
    }
}

#[derive(Debug, Args)]
pub struct AbArgs {
    /// Control and treatment `exp_group` values, e.g. `1,2`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub groups: Vec<String>,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Expected shares of the control and treatment users, e.g. `50,50`.
    #[arg(long, value_delimiter = ',', default_values_t = [50.0, 50.0])]
    pub split: Vec<f64>,

    /// Power for the minimum detectable effect.
    #[arg(long, default_value_t = 0.8)]
    pub power: f64,

    /// Poisson bootstrap replicates; 0 skips the bootstrap.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,

    /// Writes the PNG chart of the per-group distributions to this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,

    #[command(flatten)]
    pub telegram: TelegramArgs,
}

#[derive(Debug, Args)]
pub struct TelegramArgs {
    /// Sends the report and chart to this Telegram chat (numeric id or
    /// @channel). Group ids are negative, so a leading `-` is part of the
    /// value.
    #[arg(long, allow_hyphen_values = true)]
    pub telegram_chat: Option<String>,

    /// Bot token for --telegram-chat. Prefer the environment variable,
    /// because other users of the machine can read command lines.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<String>,

    /// Bot API base URL, for a self-hosted or fake Bot API server.
    #[arg(long, env = "TELEGRAM_API_URL", default_value = "https://api.telegram.org")]
    pub telegram_api_url: url::Url,
}

#[derive(Debug, Args)]
pub struct AaArgs {
    /// `exp_group` values whose users are pooled and re-split, e.g. `1`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub groups: Vec<String>,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Number of random splits.
    #[arg(long, default_value_t = 1000)]
    pub simulations: usize,

    /// Poisson bootstrap replicates per split; 0 skips the bootstrap, which
    /// is the slowest test.
    #[arg(long, default_value_t = 200)]
    pub bootstrap: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the gRPC server, host:port.
    #[arg(long, env = "SEISMO_EXPERIMENTS_LISTEN", default_value = "127.0.0.1:50071")]
    pub listen: SocketAddr,

    /// Address of the admin HTTP server, host:port, which serves /metrics
    /// (Prometheus), /healthz (liveness) and /readyz (readiness).
    #[arg(long, env = "SEISMO_EXPERIMENTS_ADMIN_LISTEN", default_value = "0.0.0.0:9105")]
    pub admin_listen: SocketAddr,

    /// Poisson bootstrap replicates of each analysis; 0 skips the bootstrap.
    #[arg(long, env = "SEISMO_EXPERIMENTS_BOOTSTRAP", default_value_t = 2000)]
    pub bootstrap: usize,
}

/// Runs one command; `ab` and `aa` print their report to stdout.
pub async fn execute(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    let table = events_table(&cli.table);
    match cli.command {
        Command::Ab(args) => run_ab(&table, args).await,
        Command::Aa(args) => run_aa(&table, args).await,
        Command::Serve(args) => {
            let config = ServiceConfig {
                listen: args.listen,
                admin_listen: args.admin_listen,
                table,
                defaults: AnalysisSettings {
                    bootstrap_iterations: args.bootstrap,
                    ..AnalysisSettings::default()
                },
            };
            start(config, shutdown).await?.wait().await
        }
    }
}

async fn run_ab(table: &EventsTable, args: AbArgs) -> anyhow::Result<()> {
    let (control, treatment, split) = check_pairs(&args)?;
    let telegram = match &args.telegram.telegram_chat {
        Some(chat) => Some(telegram_target(chat, &args.telegram)?),
        None => None,
    };
    let request = AbRequest {
        control,
        treatment,
        from: args.stats.from,
        to: args.stats.to,
        settings: analysis_settings(&args.stats, split, args.power, args.bootstrap),
        with_chart: args.chart.is_some() || telegram.is_some(),
    };

    let output = run_ab_test(table, &request).await?;
    print!("{}", output.report);
    if let (Some(path), Some(png)) = (&args.chart, &output.chart_png) {
        std::fs::write(path, png).with_context(|| format!("writing the chart to {} failed", path.display()))?;
        println!("Chart written to {}", path.display());
    }
    if let Some(target) = telegram {
        send_report(&target, &output.report, output.chart_png).await?;
        println!("Report sent to Telegram chat {}", target.chat);
    }
    Ok(())
}

/// Returns the control group, the treatment group and the expected split.
fn check_pairs(args: &AbArgs) -> anyhow::Result<(String, String, [f64; 2])> {
    let [control, treatment] = args.groups.as_slice() else {
        bail!(
            "--groups has {} values; give the control and the treatment group, e.g. --groups 1,2",
            args.groups.len()
        );
    };
    if control == treatment {
        bail!("--groups names `{control}` twice; give two different groups, the control first, e.g. --groups 1,2");
    }
    let [control_share, treatment_share] = args.split.as_slice() else {
        bail!(
            "--split has {} values; give the expected shares of control and treatment, e.g. --split 50,50",
            args.split.len()
        );
    };
    Ok((control.clone(), treatment.clone(), [*control_share, *treatment_share]))
}

async fn run_aa(table: &EventsTable, args: AaArgs) -> anyhow::Result<()> {
    let request = AaRequest {
        groups: args.groups,
        from: args.stats.from,
        to: args.stats.to,
        settings: AaSettings {
            simulations: args.simulations,
            seed: args.stats.seed,
            analysis: analysis_settings(&args.stats, [50.0, 50.0], 0.8, args.bootstrap),
        },
    };

    let (_, report) = run_aa_check(table, &request).await?;
    print!("{report}");
    Ok(())
}

fn analysis_settings(stats: &StatsArgs, expected_split: [f64; 2], power: f64, bootstrap: usize) -> AnalysisSettings {
    AnalysisSettings {
        metric: stats.metric.into(),
        alpha: stats.alpha,
        power,
        expected_split,
        buckets: stats.buckets,
        bucket_salt: stats.bucket_salt.clone(),
        smoothing: stats.smoothing,
        bootstrap_iterations: bootstrap,
        seed: stats.seed,
    }
}

fn events_table(args: &TableArgs) -> EventsTable {
    EventsTable {
        url: args.clickhouse_url.clone(),
        user: args.clickhouse_user.clone(),
        password: args.clickhouse_password.clone(),
        database: args.database.clone(),
        table: args.table.clone(),
        view_event: args.view_event.clone(),
        like_event: args.like_event.clone(),
        query_timeout: Duration::from_secs(args.clickhouse_timeout_seconds),
    }
}

fn telegram_target(chat: &str, args: &TelegramArgs) -> anyhow::Result<TelegramTarget> {
    let token = args.telegram_bot_token.clone().unwrap_or_default();
    if token.is_empty() {
        bail!("--telegram-chat needs the bot token in TELEGRAM_BOT_TOKEN, which is not set");
    }
    Ok(TelegramTarget {
        token,
        api_url: args.telegram_api_url.clone(),
        chat: chat.to_string(),
    })
}

/// Parses RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (UTC
/// midnight).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Ok(time.and_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "invalid time `{text}`; use RFC 3339 (2014-07-01T00:00:00Z), `2014-07-01 00:00:00` or `2014-07-01`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats_parsed() {
        let expected = DateTime::parse_from_rfc3339("2014-07-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);

        assert_eq!(parse_time("2014-07-01T00:00:00Z").unwrap(), expected);
        assert_eq!(parse_time("2014-07-01 00:00:00").unwrap(), expected);
        assert_eq!(parse_time("2014-07-01").unwrap(), expected);
        assert!(
            parse_time("01/07/2014")
                .unwrap_err()
                .contains("invalid time `01/07/2014`")
        );
    }

    #[test]
    fn ab_arguments_parsed() {
        let cli = Cli::try_parse_from([
            "seismo-experiments",
            "ab",
            "--groups",
            "1,2",
            "--from",
            "2014-07-01",
            "--to",
            "2014-08-01",
            "--metric",
            "likes",
        ])
        .unwrap();

        let Command::Ab(args) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(args.groups, vec!["1", "2"]);
        assert_eq!(args.split, vec![50.0, 50.0]);
        assert_eq!(args.stats.metric, MetricArg::Likes);
    }

    #[test]
    fn serve_arguments_parsed() {
        let cli = Cli::try_parse_from([
            "seismo-experiments",
            "serve",
            "--admin-listen",
            "127.0.0.1:19105",
            "--table",
            "events_local",
            "--log-format",
            "json",
        ])
        .unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(args.admin_listen, "127.0.0.1:19105".parse().unwrap());
        assert_eq!(args.listen, "127.0.0.1:50071".parse().unwrap());
        assert_eq!(args.bootstrap, 2000);
        assert_eq!(cli.table.table, "events_local");
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn serve_settings_file_applied() {
        let path = std::env::temp_dir().join(format!("seismo-experiments-settings-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "SEISMO_EXPERIMENTS_TABLE = \"events_local\"\n\
             SEISMO_EXPERIMENTS_ADMIN_LISTEN = \"127.0.0.1:19105\"\n\
             SEISMO_EXPERIMENTS_CLICKHOUSE_TIMEOUT_SECONDS = 5\n\
             SEISMO_LOG_FORMAT = \"json\"\n",
        )
        .unwrap();

        let parsed = seismo_telemetry::try_parse_with_settings_file::<Cli, _, _>([
            "seismo-experiments",
            "--config-file",
            path.to_str().unwrap(),
            "serve",
            "--bootstrap",
            "100",
        ]);
        std::fs::remove_file(&path).unwrap();

        let cli = parsed.unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(args.admin_listen, "127.0.0.1:19105".parse().unwrap());
        assert_eq!(args.bootstrap, 100);
        assert_eq!(cli.table.table, "events_local");
        assert_eq!(cli.table.clickhouse_timeout_seconds, 5);
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    fn parse_ab(extra: &[&str]) -> AbArgs {
        let mut arguments = vec!["seismo-experiments", "ab", "--from", "2014-07-01", "--to", "2014-08-01"];
        arguments.extend_from_slice(extra);
        match Cli::try_parse_from(arguments).unwrap().command {
            Command::Ab(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn ab_rejects_same_group_twice() {
        let error = check_pairs(&parse_ab(&["--groups", "1,1"])).unwrap_err().to_string();
        assert!(error.contains("names `1` twice"), "{error}");
    }

    #[test]
    fn ab_needs_two_groups() {
        let one_group = check_pairs(&parse_ab(&["--groups", "1"])).unwrap_err().to_string();
        let three_shares = check_pairs(&parse_ab(&["--groups", "1,2", "--split", "1,1,1"]))
            .unwrap_err()
            .to_string();

        assert!(one_group.contains("--groups has 1 values"), "{one_group}");
        assert!(three_shares.contains("--split has 3 values"), "{three_shares}");
        assert_eq!(
            check_pairs(&parse_ab(&["--groups", "1,2", "--split", "20,80"])).unwrap(),
            ("1".to_string(), "2".to_string(), [20.0, 80.0])
        );
    }
}
