//! Command-line options of the `seismo-forecast` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use seismo_telemetry::LogFormat;

use crate::Granularity;
use crate::backtest::Origins;
use crate::clickhouse_source::ClickHouseSettings;
use crate::output::OutputFormat;

/// Seismo forecasts: predicts a metric hours or days ahead with prediction
/// intervals (MSTL + AutoETS) and backtests the model against a
/// seasonal-naive baseline.
#[derive(Debug, Parser)]
#[command(name = "seismo-forecast", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr: `text` or `json`. RUST_LOG sets the level
    /// (default info).
    #[arg(long, global = true, env = "SEISMO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Settings file (TOML) whose keys are the environment variable names of
    /// these options, e.g. `SEISMO_FORECAST_LISTEN = "127.0.0.1:50053"`.
    #[arg(long = "config-file", global = true, env = "SEISMO_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Forecast a metric and print time, point, lower and upper bound.
    Forecast(ForecastArgs),
    /// Forecast from successive origins in the history and print MAE, RMSE,
    /// MAPE, SMAPE and WMAPE of MSTL + AutoETS and of seasonal naive.
    Backtest(BacktestArgs),
    /// Serve the seismo.forecast.v1.Forecast gRPC API until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
}

/// The series to work on: a ClickHouse metric or a CSV file.
#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// Metric: views, likes, messages_sent, active_users, ctr, or
    /// count:<event> for the count of any event type.
    #[arg(long, required_unless_present = "input")]
    pub metric: Option<String>,

    /// Bucket size: `hour` or `day` (UTC).
    #[arg(long, default_value = "hour")]
    pub granularity: Granularity,

    /// Slice filter DIMENSION=VALUE, e.g. os=iOS; repeat for several.
    #[arg(long = "slice", value_parser = parse_slice)]
    pub slice: Vec<(String, String)>,

    /// History start, RFC 3339 or YYYY-MM-DD (UTC), rounded down to a bucket
    /// start. Default: 28 days (hourly) or 365 days (daily) before the end.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,

    /// History end, exclusive, RFC 3339 or YYYY-MM-DD (UTC), rounded down to
    /// a bucket start. Default: the start of the current bucket.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,

    /// Read the series from a `time,value` CSV file instead of ClickHouse.
    #[arg(long, conflicts_with_all = ["metric", "slice", "from", "to"])]
    pub input: Option<PathBuf>,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

#[derive(Debug, Args)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP interface URL.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,

    /// ClickHouse user.
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password; prefer the environment variable, which stays out
    /// of the process list. Never logged.
    #[arg(long, env = "CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,

    /// ClickHouse database of the events table.
    #[arg(long, env = "SEISMO_FORECAST_DATABASE", default_value = "seismo")]
    pub database: String,

    /// Events table written by seismo-ingest.
    #[arg(long, env = "SEISMO_FORECAST_TABLE", default_value = "events")]
    pub table: String,

    /// Maximum time of one series query, in seconds.
    #[arg(long, env = "SEISMO_FORECAST_CLICKHOUSE_TIMEOUT_SECONDS", default_value_t = 60)]
    pub clickhouse_timeout_seconds: u64,
}

impl ClickHouseArgs {
    pub fn settings(&self) -> ClickHouseSettings {
        ClickHouseSettings {
            url: self.clickhouse_url.clone(),
            user: Some(self.clickhouse_user.clone()),
            password: self.clickhouse_password.clone(),
            database: self.database.clone(),
            table: self.table.clone(),
            timeout: Duration::from_secs(self.clickhouse_timeout_seconds),
        }
    }
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    #[command(flatten)]
    pub series: SeriesArgs,

    /// Steps ahead, in buckets of --granularity.
    #[arg(long, default_value_t = 24)]
    pub horizon: usize,

    /// Coverage probability of the prediction interval, between 0 and 1.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,

    /// File of holiday or event dates, one YYYY-MM-DD per line (optionally
    /// `,name`); past ones are masked, future ones get their mean effect.
    #[arg(long)]
    pub holidays: Option<PathBuf>,

    /// Output format: table, csv or json.
    #[arg(long, default_value = "table")]
    pub format: OutputFormat,

    /// Print the plain-text report a chat message would carry instead.
    #[arg(long, conflicts_with = "format")]
    pub report: bool,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub series: SeriesArgs,

    /// Steps forecast from each origin.
    #[arg(long, default_value_t = 24)]
    pub horizon: usize,

    /// Steps between origins. Default: the horizon.
    #[arg(long)]
    pub step: Option<usize>,

    /// Training length at the first origin, in buckets. Default: 504
    /// (hourly, three weeks) or 56 (daily, eight weeks).
    #[arg(long)]
    pub window: Option<usize>,

    /// `rolling` keeps the window length fixed, `expanding` trains on all
    /// history up to each origin.
    #[arg(long, default_value = "expanding")]
    pub origins: Origins,

    /// Level of the interval whose coverage is reported.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,

    /// File of holiday or event dates, as for `forecast`.
    #[arg(long)]
    pub holidays: Option<PathBuf>,

    /// Output format: table, csv or json.
    #[arg(long, default_value = "table")]
    pub format: OutputFormat,
}

/// Default first backtest window for `granularity`, in buckets. Hourly
/// windows get three weeks because with two the interval calibration must
/// drop the weekly period and the intervals come out too narrow.
pub fn default_window(granularity: Granularity) -> usize {
    match granularity {
        Granularity::Hour => 504,
        Granularity::Day => 56,
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// gRPC listen address, host:port.
    #[arg(long, env = "SEISMO_FORECAST_LISTEN", default_value = "0.0.0.0:50053")]
    pub listen: SocketAddr,

    /// Address of the admin HTTP server (/metrics, /healthz, /readyz).
    #[arg(long, env = "SEISMO_FORECAST_ADMIN_LISTEN", default_value = "0.0.0.0:9104")]
    pub admin_listen: SocketAddr,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

fn parse_slice(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
        _ => Err(format!("\"{text}\" is not DIMENSION=VALUE; write e.g. os=iOS")),
    }
}

/// Parses RFC 3339 or a UTC date (midnight).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time or a YYYY-MM-DD date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forecast_options_parse() {
        let cli = Cli::try_parse_from([
            "seismo-forecast",
            "forecast",
            "--metric",
            "views",
            "--granularity",
            "hour",
            "--horizon",
            "48",
            "--level",
            "0.9",
            "--slice",
            "os=iOS",
            "--from",
            "2026-01-01",
            "--format",
            "csv",
        ])
        .unwrap();

        let Command::Forecast(args) = cli.command else {
            panic!("forecast parsed as another command");
        };
        assert_eq!(args.series.metric.as_deref(), Some("views"));
        assert_eq!(args.horizon, 48);
        assert_eq!(args.level, 0.9);
        assert_eq!(args.series.slice, vec![("os".to_string(), "iOS".to_string())]);
        assert_eq!(args.series.from, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(args.format, OutputFormat::Csv);
        assert_eq!(args.series.clickhouse.database, "seismo");
    }

    #[test]
    fn input_file_replaces_metric() {
        let cli = Cli::try_parse_from([
            "seismo-forecast",
            "backtest",
            "--input",
            "series.csv",
            "--origins",
            "rolling",
        ])
        .unwrap();

        let Command::Backtest(args) = cli.command else {
            panic!("backtest parsed as another command");
        };
        assert_eq!(args.series.input, Some(PathBuf::from("series.csv")));
        assert_eq!(args.origins, Origins::Rolling);
        assert_eq!(args.step, None);
    }

    #[test]
    fn metric_or_input_is_required() {
        assert!(Cli::try_parse_from(["seismo-forecast", "forecast"]).is_err());
        assert!(Cli::try_parse_from(["seismo-forecast", "forecast", "--input", "a.csv", "--metric", "views"]).is_err());
    }

    #[test]
    fn bad_slice_is_rejected() {
        let error =
            Cli::try_parse_from(["seismo-forecast", "forecast", "--metric", "views", "--slice", "iOS"]).unwrap_err();

        assert!(error.to_string().contains("DIMENSION=VALUE"), "{error}");
    }
}
