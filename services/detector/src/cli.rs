//! Command-line options of the `seismo-detector` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use seismo_events::ParseLimits;
use seismo_telemetry::LogFormat;

use crate::config::{MetricsConfig, format_duration_ms, parse_duration_ms};
use crate::detection::SeriesDetector;
use crate::evaluate::EvaluateArgs;
use crate::kafka_source::KafkaSettings;
use crate::replay::ReplayArgs;
use crate::service::ServiceConfig;
use crate::warm_start::WarmStartSettings;

/// Seismo detector: turns events into metric series per window and slice,
/// judges each closed window against a band learnt from the series' own
/// history, and streams anomalies over gRPC.
#[derive(Debug, Parser)]
#[command(name = "seismo-detector", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr: `text` for human-readable lines or `json` for
    /// one JSON object per line. RUST_LOG sets the level (default info).
    #[arg(long, global = true, env = "SEISMO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Settings file (TOML) whose keys are the environment variable names of
    /// the options, e.g. `SEISMO_LOG_FORMAT = "json"`, or
    /// `SEISMO_DETECTOR_LISTEN = "127.0.0.1:50051"` for `serve`.
    /// Command-line options and environment variables override it. For
    /// `serve`, the metrics definitions stay in the separate `--config` file.
    #[arg(long = "config-file", global = true, env = "SEISMO_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
}

// `Serve` carries every service option; the enum is parsed once at start,
// so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume events from Kafka and serve anomalies over gRPC until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Score NAB-format series files offline with the live detector's maths
    /// and write NAB results files.
    Replay(ReplayArgs),
    /// Measure detection quality on a NAB corpus or on synthetic business
    /// metrics and print the scores.
    Evaluate(EvaluateArgs),
    /// Check a metrics file and print the settings in effect, defaults
    /// included, without connecting to anything. Exits with 1 and the
    /// error when the file is invalid.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Metrics file (TOML) to check, as `serve --config` takes it.
    #[arg(long, env = "SEISMO_DETECTOR_CONFIG", default_value = "deploy/config/metrics.toml")]
    pub config: PathBuf,
}

impl CheckArgs {
    /// Loads the metrics file and returns a summary of its settings in
    /// effect: windowing, then each metric with its window, dimensions and
    /// method.
    pub fn run(&self) -> anyhow::Result<String> {
        let config = MetricsConfig::load(&self.config)
            .with_context(|| format!("invalid metrics file {}", self.config.display()))?;
        Ok(check_summary(&self.config, &config))
    }
}

fn check_summary(path: &std::path::Path, config: &MetricsConfig) -> String {
    let windowing = &config.windowing;
    let mut lines = vec![
        format!(
            "{}: valid, {} metric(s), {} experiment(s)",
            path.display(),
            config.metrics.len(),
            config.experiments.len()
        ),
        "[windowing]".to_string(),
        format!(
            "  allowed_lateness = \"{}\"",
            format_duration_ms(windowing.allowed_lateness_ms)
        ),
        format!(
            "  max_future_jump = \"{}\"",
            format_duration_ms(windowing.max_future_jump_ms)
        ),
        format!("  future_confirmations = {}", windowing.future_confirmations),
        format!("  max_held_events = {}", windowing.max_held_events),
        format!(
            "  series_idle_limit = \"{}\"",
            format_duration_ms(windowing.series_idle_limit_ms)
        ),
        format!("  max_slices_per_dimension = {}", windowing.max_slices_per_dimension),
        format!(
            "  partition_idle_timeout = \"{}\"",
            format_duration_ms(windowing.partition_idle_timeout_ms)
        ),
    ];
    for metric in &config.metrics {
        let detector = SeriesDetector::new(&metric.detection, metric.window.as_ms());
        let hour_means = if detector.reads_hour_means() {
            ", weekly reference by the hour"
        } else {
            ""
        };
        lines.push(format!(
            "metric {}: {} windows, dimensions [{}], method {}{hour_means}, {} windows kept per series",
            metric.name,
            format_duration_ms(metric.window.as_ms()),
            metric.dimensions.join(", "),
            metric.detection.method,
            detector.history_windows()
        ));
        if let Some(problem) = SeriesDetector::hourly_reference_unused(&metric.detection, metric.window.as_ms()) {
            lines.push(format!("  note: {problem}"));
        }
    }
    lines.push(String::new());
    lines.join("\n")
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Metrics file (TOML): metric definitions, windowing and detection settings.
    #[arg(long, env = "SEISMO_DETECTOR_CONFIG", default_value = "deploy/config/metrics.toml")]
    pub config: PathBuf,

    /// gRPC listen address, host:port; the default accepts connections from
    /// other hosts, 127.0.0.1:50051 keeps the server local.
    #[arg(long, env = "SEISMO_DETECTOR_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic to consume events from.
    #[arg(long, env = "SEISMO_EVENTS_TOPIC", default_value = "events")]
    pub topic: String,

    /// Consumer group id; keep it separate from ingest's group.
    #[arg(long, env = "SEISMO_DETECTOR_GROUP_ID", default_value = "seismo-detector")]
    pub group_id: String,

    /// Interval between offset commits, e.g. 5s or 1m.
    #[arg(long, env = "SEISMO_DETECTOR_COMMIT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub commit_interval: Duration,

    /// Extra librdkafka consumer property, KEY=VALUE; repeat the option or
    /// separate with commas in the variable.
    #[arg(long = "kafka-property", env = "SEISMO_DETECTOR_KAFKA_PROPERTIES", value_delimiter = ',',
          value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,

    /// Anomaly changes kept in memory for clients that resume with after_sequence.
    #[arg(long, env = "SEISMO_DETECTOR_REPLAY_BUFFER", default_value_t = 10_000)]
    pub replay_buffer: usize,

    /// Largest accepted Kafka message, in bytes.
    #[arg(long, env = "SEISMO_DETECTOR_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,

    /// How far an event's time may lie ahead of this host's clock, e.g. 24h;
    /// later events are skipped as invalid.
    #[arg(long, env = "SEISMO_DETECTOR_MAX_FUTURE", default_value = "24h", value_parser = parse_duration)]
    pub max_future: Duration,

    /// Skip the max-future check, for replays of data with skewed clocks.
    #[arg(long, env = "SEISMO_DETECTOR_NO_FUTURE_CHECK")]
    pub no_future_check: bool,

    /// Address of the admin HTTP server, host:port, which serves /metrics
    /// (Prometheus), /healthz (liveness) and /readyz (readiness).
    #[arg(long, env = "SEISMO_DETECTOR_ADMIN_LISTEN", default_value = "0.0.0.0:9102")]
    pub admin_listen: SocketAddr,

    /// Start without loading history from ClickHouse, so every series learns
    /// again before it alerts.
    #[arg(long, env = "SEISMO_DETECTOR_NO_WARM_START")]
    pub no_warm_start: bool,

    /// ClickHouse HTTP interface to load history from at start.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,

    /// ClickHouse user of the warm start; it only reads.
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password; prefer the environment variable over the
    /// command line, which other local users can read.
    #[arg(long, env = "CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,

    /// Database of the events table that seismo-ingest writes.
    #[arg(long, env = "SEISMO_DETECTOR_CLICKHOUSE_DATABASE", default_value = "seismo")]
    pub clickhouse_database: String,

    /// Events table that seismo-ingest writes from the same topic.
    #[arg(long, env = "SEISMO_DETECTOR_CLICKHOUSE_TABLE", default_value = "events")]
    pub clickhouse_table: String,

    /// History to load per metric at start, e.g. 8d, or `auto` for what each
    /// metric's detector keeps (one week plus a few windows with weekly
    /// seasonality).
    #[arg(long, env = "SEISMO_DETECTOR_WARM_START_HISTORY", default_value = "auto", value_parser = parse_history)]
    pub warm_start_history: History,

    /// How long to retry when ClickHouse or Kafka fail at start, e.g. 60s;
    /// then the detector starts without history. Also limits each attempt,
    /// loading included.
    #[arg(long, env = "SEISMO_DETECTOR_WARM_START_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub warm_start_timeout: Duration,
}

/// Length of history a warm start loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Each metric's detector history length.
    Auto,
    Fixed(Duration),
}

impl ServeArgs {
    /// Loads the metrics file and builds the service config.
    pub fn into_config(self) -> anyhow::Result<ServiceConfig> {
        let metrics = MetricsConfig::load(&self.config)
            .with_context(|| format!("invalid metrics file {}", self.config.display()))?;

        let kafka = KafkaSettings {
            brokers: self.brokers,
            topic: self.topic,
            group_id: self.group_id,
            commit_interval: self.commit_interval,
            properties: self.kafka_properties,
            parse_limits: ParseLimits {
                max_message_bytes: self.max_message_bytes,
                max_future: (!self.no_future_check).then_some(self.max_future),
            },
        };
        let warm_start = if self.no_warm_start {
            None
        } else {
            let settings = WarmStartSettings {
                url: self.clickhouse_url,
                user: self.clickhouse_user,
                password: self.clickhouse_password,
                database: self.clickhouse_database,
                table: self.clickhouse_table,
                history: match self.warm_start_history {
                    History::Auto => None,
                    History::Fixed(history) => Some(history),
                },
                timeout: self.warm_start_timeout,
            };
            settings.validate().map_err(anyhow::Error::msg)?;
            Some(settings)
        };
        Ok(ServiceConfig {
            metrics,
            kafka,
            listen: self.listen,
            replay_buffer: self.replay_buffer,
            warm_start,
        })
    }
}

fn parse_history(text: &str) -> Result<History, String> {
    if text == "auto" {
        return Ok(History::Auto);
    }
    parse_duration(text).map(History::Fixed)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let milliseconds = parse_duration_ms(text)?;
    Ok(Duration::from_millis(milliseconds as u64))
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("\"{text}\" is not KEY=VALUE; write e.g. security.protocol=ssl")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_prints_settings_in_effect() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("metrics.toml");
        std::fs::write(
            &path,
            "[windowing]\npartition_idle_timeout = \"45s\"\n[[metric]]\nname = \"views\"\nevents = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\ndimensions = [\"os\"]\n",
        )
        .unwrap();

        let summary = CheckArgs { config: path }.run().unwrap();

        assert!(summary.contains("valid, 1 metric(s)"), "{summary}");
        assert!(summary.contains("  partition_idle_timeout = \"45s\"\n"), "{summary}");
        assert!(
            summary.contains("  allowed_lateness = \"1m\"\n"),
            "default shown: {summary}"
        );
        assert!(
            summary.contains("metric views: 5m windows, dimensions [os], method robust_band, 2066 windows kept"),
            "{summary}"
        );
    }

    #[test]
    fn check_tells_whether_hour_means_apply() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("metrics.toml");
        let metric = |name: &str, window: &str| {
            format!(
                "[[metric]]\nname = \"{name}\"\nevents = [\"view\"]\naggregation = \"count\"\nwindow = \"{window}\"\n\
                 detection = {{ weekly_reference = \"hourly\" }}\n"
            )
        };
        std::fs::write(&path, metric("fine", "5m") + &metric("coarse", "30m")).unwrap();

        let summary = CheckArgs { config: path }.run().unwrap();

        assert!(
            summary.contains("metric fine: 5m windows, dimensions [], method robust_band, weekly reference by the hour, 338 windows kept"),
            "{summary}"
        );
        assert!(
            summary.contains("metric coarse: 30m windows, dimensions [], method robust_band, 386 windows kept"),
            "{summary}"
        );
        assert_eq!(
            summary
                .matches("note: weekly_reference = \"hourly\" has no effect")
                .count(),
            1,
            "{summary}"
        );
    }

    #[test]
    fn check_rejects_invalid_file_with_the_reason() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("metrics.toml");
        std::fs::write(
            &path,
            "[windowing]\npartition_idle_timeout = \"-5s\"\n[[metric]]\nname = \"views\"\nevents = [\"view\"]\naggregation = \"count\"\n",
        )
        .unwrap();

        let error = format!("{:#}", CheckArgs { config: path }.run().unwrap_err());

        assert!(error.contains("partition_idle_timeout"), "{error}");
        assert!(error.contains("negative"), "{error}");
    }

    #[test]
    fn serve_defaults_parse() {
        let cli = Cli::try_parse_from(["seismo-detector", "serve"]).unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        assert_eq!(args.listen, "0.0.0.0:50051".parse().unwrap());
        assert_eq!(args.group_id, "seismo-detector");
        assert_eq!(args.topic, "events");
        assert_eq!(args.commit_interval, Duration::from_secs(5));
        assert_eq!(args.max_future, Duration::from_secs(86_400));
        assert_eq!(args.replay_buffer, 10_000);
        assert_eq!(args.admin_listen, "0.0.0.0:9102".parse().unwrap());
        assert_eq!(cli.log_format, LogFormat::Text);
        assert!(!args.no_warm_start);
        assert_eq!(args.warm_start_history, History::Auto);
        assert_eq!(args.warm_start_timeout, Duration::from_secs(60));
        assert_eq!(args.clickhouse_database, "seismo");
        assert_eq!(args.clickhouse_table, "events");
    }

    #[test]
    fn warm_start_options_parse() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/metrics.toml");
        let cli = Cli::try_parse_from([
            "seismo-detector",
            "serve",
            "--config",
            config,
            "--clickhouse-url",
            "http://clickhouse:8123",
            "--clickhouse-table",
            "events_v2",
            "--warm-start-history",
            "8d",
            "--warm-start-timeout",
            "5s",
        ])
        .unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        let warm_start = args.into_config().unwrap().warm_start.unwrap();
        assert_eq!(warm_start.url, "http://clickhouse:8123");
        assert_eq!(warm_start.table, "events_v2");
        assert_eq!(warm_start.history, Some(Duration::from_secs(8 * 86_400)));
        assert_eq!(warm_start.timeout, Duration::from_secs(5));
    }

    #[test]
    fn warm_start_can_be_turned_off() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/metrics.toml");
        let cli = Cli::try_parse_from(["seismo-detector", "serve", "--config", config, "--no-warm-start"]).unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        assert!(args.into_config().unwrap().warm_start.is_none());
    }

    #[test]
    fn invalid_table_name_is_rejected() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/metrics.toml");
        let cli = Cli::try_parse_from([
            "seismo-detector",
            "serve",
            "--config",
            config,
            "--clickhouse-table",
            "a.b",
        ])
        .unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        let error = args.into_config().unwrap_err().to_string();
        assert!(error.contains("--clickhouse-table"), "{error}");
    }

    #[test]
    fn admin_and_log_options_parse() {
        let cli = Cli::try_parse_from([
            "seismo-detector",
            "serve",
            "--admin-listen",
            "127.0.0.1:19102",
            "--log-format",
            "json",
        ])
        .unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        assert_eq!(args.admin_listen, "127.0.0.1:19102".parse().unwrap());
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_log_format_is_rejected() {
        let error = Cli::try_parse_from(["seismo-detector", "serve", "--log-format", "yaml"]).unwrap_err();

        assert!(error.to_string().contains("`text` or `json`"), "{error}");
    }

    #[test]
    fn kafka_properties_split() {
        let cli = Cli::try_parse_from([
            "seismo-detector",
            "serve",
            "--kafka-property",
            "security.protocol=ssl",
            "--kafka-property",
            "client.id=a=b",
        ])
        .unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        assert_eq!(
            args.kafka_properties,
            vec![
                ("security.protocol".to_string(), "ssl".to_string()),
                ("client.id".to_string(), "a=b".to_string()),
            ]
        );
    }

    #[test]
    fn bad_property_is_rejected() {
        let error = Cli::try_parse_from(["seismo-detector", "serve", "--kafka-property", "novalue"]).unwrap_err();

        assert!(error.to_string().contains("KEY=VALUE"), "{error}");
    }

    #[test]
    fn bad_duration_is_rejected() {
        let error = Cli::try_parse_from(["seismo-detector", "serve", "--commit-interval", "often"]).unwrap_err();

        assert!(error.to_string().contains("5m"), "{error}");
    }

    #[test]
    fn shipped_config_loads() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/metrics.toml");
        let cli = Cli::try_parse_from(["seismo-detector", "serve", "--config", config, "--no-future-check"]).unwrap();

        let Command::Serve(args) = cli.command else {
            panic!("serve parsed as another command");
        };
        let service = args.into_config().unwrap();
        assert_eq!(service.kafka.parse_limits.max_future, None);
        assert!(service.metrics.metric("ctr").is_some());
    }

    #[test]
    fn replay_options_parse() {
        let cli = Cli::try_parse_from([
            "seismo-detector",
            "replay",
            "deploy/demo/nyc_taxi.csv",
            "/tmp/results",
            "--window",
            "30m",
            "--labels",
            "deploy/demo/nyc_taxi.windows.json",
        ])
        .unwrap();

        let Command::Replay(args) = cli.command else {
            panic!("replay parsed as another command");
        };
        assert_eq!(args.input, PathBuf::from("deploy/demo/nyc_taxi.csv"));
        assert_eq!(args.output, PathBuf::from("/tmp/results"));
        assert_eq!(args.window, Some(1_800_000));
        assert_eq!(args.labels, Some(PathBuf::from("deploy/demo/nyc_taxi.windows.json")));
    }

    #[test]
    fn evaluate_options_parse() {
        let cli = Cli::try_parse_from(["seismo-detector", "evaluate", "nab", "corpus", "--score", "alert"]).unwrap();
        let Command::Evaluate(args) = cli.command else {
            panic!("evaluate parsed as another command");
        };
        let crate::evaluate::EvaluateSuite::Nab(nab) = args.suite else {
            panic!("evaluate nab parsed as another suite");
        };
        assert_eq!(nab.corpus, PathBuf::from("corpus"));
        assert_eq!(nab.score, crate::replay::ScoreMode::Alert);
        assert_eq!(nab.results, None);

        let cli = Cli::try_parse_from(["seismo-detector", "evaluate", "business", "--seed", "9"]).unwrap();
        let Command::Evaluate(args) = cli.command else {
            panic!("evaluate parsed as another command");
        };
        let crate::evaluate::EvaluateSuite::Business(business) = args.suite else {
            panic!("evaluate business parsed as another suite");
        };
        assert_eq!(business.seed, 9);
        assert_eq!(business.window, 30 * 60_000);
        assert_eq!(business.level, None);
        assert_eq!(business.iqr_windows, None);
        assert_eq!(business.iqr_coefficient, 1.5);

        // A negative number reaches the evaluator's own check, which
        // explains it, rather than being read as an unknown option.
        let cli = Cli::try_parse_from(["seismo-detector", "evaluate", "business", "--level", "-5"]).unwrap();
        let Command::Evaluate(args) = cli.command else {
            panic!("evaluate parsed as another command");
        };
        let crate::evaluate::EvaluateSuite::Business(business) = args.suite else {
            panic!("evaluate business parsed as another suite");
        };
        assert_eq!(business.level, Some(-5.0));
    }
}
