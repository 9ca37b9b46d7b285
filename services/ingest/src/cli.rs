//! Command-line options of the `seismo-ingest` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use seismo_events::ParseLimits;
use seismo_telemetry::LogFormat;

use crate::backoff::RetryPolicy;
use crate::batch::BatchPolicy;
use crate::config::{ClickHouseConfig, IngestConfig};

/// Consumes Seismo events from Kafka, validates them and stores them in
/// ClickHouse. Invalid messages go to a dead-letter topic. Offsets are
/// committed only after ClickHouse stored the rows.
#[derive(Debug, Parser)]
#[command(name = "seismo-ingest", version)]
pub struct IngestArgs {
    /// Settings file (TOML) whose keys are the environment variable names
    /// below, e.g. `SEISMO_INGEST_BATCH_MAX_ROWS = 500`. Command-line options
    /// and environment variables override it.
    #[arg(long = "config-file", env = "SEISMO_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic to consume events from.
    #[arg(long, env = "SEISMO_EVENTS_TOPIC", default_value = "events")]
    pub topic: String,

    /// Consumer group id under which offsets are committed.
    #[arg(long, env = "SEISMO_INGEST_GROUP_ID", default_value = "seismo-ingest")]
    pub group_id: String,

    /// Topic that receives messages failing validation, with the reason in headers.
    #[arg(long, env = "SEISMO_INGEST_DEAD_LETTER_TOPIC", default_value = "events.dlq")]
    pub dead_letter_topic: String,

    /// Start position of a consumer group without committed offsets.
    #[arg(long, env = "SEISMO_INGEST_AUTO_OFFSET_RESET", default_value = "earliest",
          value_parser = ["earliest", "latest"])]
    pub auto_offset_reset: String,

    /// Extra librdkafka property for the consumer and the dead-letter producer,
    /// KEY=VALUE; repeat the option or separate with commas in the variable.
    #[arg(long = "kafka-property", env = "SEISMO_INGEST_KAFKA_PROPERTIES", value_delimiter = ',',
          value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,

    /// Time librdkafka tries to deliver one dead-letter message before the
    /// service retries it, in milliseconds. Keep it under the consumer's
    /// `max.poll.interval.ms`, because a full batch of waiting messages stops
    /// the consumer's polling for up to this long.
    #[arg(long, env = "SEISMO_INGEST_DEAD_LETTER_TIMEOUT_MS", default_value_t = 30_000)]
    pub dead_letter_timeout_ms: u64,

    /// ClickHouse HTTP interface URL.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,

    /// ClickHouse user.
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password; prefer the environment variable, which stays out of
    /// the process list. Never logged.
    #[arg(long, env = "CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,

    /// ClickHouse database, created if missing.
    #[arg(long, env = "SEISMO_INGEST_DATABASE", default_value = "seismo")]
    pub database: String,

    /// ClickHouse table, created if missing.
    #[arg(long, env = "SEISMO_INGEST_TABLE", default_value = "events")]
    pub table: String,

    /// Maximum time of one ClickHouse request, in milliseconds. Keep it under
    /// the consumer's `max.poll.interval.ms` (300 000 by default), because a
    /// full batch of waiting messages stops the consumer's polling for up to
    /// this long.
    #[arg(long, env = "SEISMO_INGEST_INSERT_TIMEOUT_MS", default_value_t = 30_000)]
    pub insert_timeout_ms: u64,

    /// Use server-side async_insert, waiting for the data to be stored
    /// (ClickHouse 21.11 and later; ignored with a warning before).
    #[arg(long, env = "SEISMO_INGEST_ASYNC_INSERT")]
    pub async_insert: bool,

    /// Maximum messages per batch (rows plus dead-lettered messages).
    #[arg(long, env = "SEISMO_INGEST_BATCH_MAX_ROWS", default_value_t = 10_000)]
    pub batch_max_rows: usize,

    /// Maximum age of a batch before it is stored, in milliseconds.
    #[arg(long, env = "SEISMO_INGEST_BATCH_MAX_WAIT_MS", default_value_t = 1_000)]
    pub batch_max_wait_ms: u64,

    /// First wait after a failed insert, connection or dead-letter
    /// delivery, in milliseconds; doubled per further failure.
    #[arg(long, env = "SEISMO_INGEST_RETRY_INITIAL_BACKOFF_MS", default_value_t = 200)]
    pub retry_initial_backoff_ms: u64,

    /// Maximum wait between retries, in milliseconds.
    #[arg(long, env = "SEISMO_INGEST_RETRY_MAX_BACKOFF_MS", default_value_t = 30_000)]
    pub retry_max_backoff_ms: u64,

    /// Largest accepted message, in bytes.
    #[arg(long, env = "SEISMO_INGEST_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Maximum time event_time may lie ahead of this host's clock, in seconds.
    #[arg(long, env = "SEISMO_INGEST_MAX_FUTURE_SECS", default_value_t = 86_400)]
    pub max_future_secs: u64,

    /// Accept event_time values in the future, e.g. for replays of data
    /// produced with skewed clocks.
    #[arg(long, env = "SEISMO_INGEST_NO_FUTURE_CHECK")]
    pub no_future_check: bool,

    /// Time after SIGTERM or Ctrl-C to keep trying to store the pending
    /// batch, in milliseconds. Messages not stored by then are consumed
    /// again after a restart.
    #[arg(long, env = "SEISMO_INGEST_SHUTDOWN_TIMEOUT_MS", default_value_t = 30_000)]
    pub shutdown_timeout_ms: u64,

    /// Address of the admin HTTP server, which serves /metrics (Prometheus),
    /// /healthz (liveness) and /readyz (readiness).
    #[arg(long, env = "SEISMO_INGEST_ADMIN_LISTEN", default_value = "0.0.0.0:9101")]
    pub admin_listen: SocketAddr,

    /// Log format: `text` for human-readable lines or `json` for one JSON
    /// object per line. RUST_LOG sets the level (default info).
    #[arg(long, env = "SEISMO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!(
            "invalid Kafka property {text:?}: expected KEY=VALUE, e.g. security.protocol=SSL"
        )),
    }
}

impl IngestArgs {
    pub fn into_config(self) -> IngestConfig {
        let max_future = (!self.no_future_check).then(|| Duration::from_secs(self.max_future_secs));
        IngestConfig {
            brokers: self.brokers,
            topic: self.topic,
            group_id: self.group_id,
            dead_letter_topic: self.dead_letter_topic,
            auto_offset_reset: self.auto_offset_reset,
            kafka_properties: self.kafka_properties,
            dead_letter_delivery_timeout: Duration::from_millis(self.dead_letter_timeout_ms),
            clickhouse: ClickHouseConfig {
                url: self.clickhouse_url,
                user: self.clickhouse_user,
                password: self.clickhouse_password,
                database: self.database,
                table: self.table,
                insert_timeout: Duration::from_millis(self.insert_timeout_ms),
                async_insert: self.async_insert,
            },
            batch: BatchPolicy {
                max_rows: self.batch_max_rows,
                max_wait: Duration::from_millis(self.batch_max_wait_ms),
            },
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(self.retry_initial_backoff_ms),
                max_backoff: Duration::from_millis(self.retry_max_backoff_ms),
            },
            parse_limits: ParseLimits {
                max_message_bytes: self.max_message_bytes,
                max_future,
            },
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> IngestArgs {
        let mut argv = vec!["seismo-ingest"];
        argv.extend_from_slice(args);
        IngestArgs::try_parse_from(argv).expect("arguments are valid")
    }

    #[test]
    fn cli_definition_is_consistent() {
        IngestArgs::command().debug_assert();
    }

    #[test]
    fn defaults_match_config_defaults() {
        // Variables such as KAFKA_BROKERS in the test environment would
        // change connection defaults, so only these settings are compared.
        let config = parse(&[]).into_config();
        let expected = IngestConfig::default();
        assert_eq!(config.batch, expected.batch);
        assert_eq!(config.retry, expected.retry);
        assert_eq!(config.parse_limits, expected.parse_limits);
        assert_eq!(config.shutdown_timeout, expected.shutdown_timeout);
        assert_eq!(config.group_id, expected.group_id);
        assert_eq!(config.dead_letter_topic, expected.dead_letter_topic);
    }

    #[test]
    fn batch_and_retry_options_convert_to_durations() {
        let config = parse(&[
            "--batch-max-rows",
            "500",
            "--batch-max-wait-ms",
            "250",
            "--retry-initial-backoff-ms",
            "50",
            "--retry-max-backoff-ms",
            "5000",
        ])
        .into_config();
        assert_eq!(config.batch.max_rows, 500);
        assert_eq!(config.batch.max_wait, Duration::from_millis(250));
        assert_eq!(config.retry.initial_backoff, Duration::from_millis(50));
        assert_eq!(config.retry.max_backoff, Duration::from_secs(5));
    }

    #[test]
    fn no_future_check_disables_skew_limit() {
        let config = parse(&["--no-future-check"]).into_config();
        assert_eq!(config.parse_limits.max_future, None);

        let config = parse(&["--max-future-secs", "60"]).into_config();
        assert_eq!(config.parse_limits.max_future, Some(Duration::from_secs(60)));
    }

    #[test]
    fn kafka_properties_parse_key_value() {
        let args = parse(&["--kafka-property", "security.protocol=SSL", "--kafka-property", "a=b=c"]);
        assert_eq!(
            args.kafka_properties,
            [
                ("security.protocol".to_string(), "SSL".to_string()),
                ("a".to_string(), "b=c".to_string())
            ]
        );
        assert!(IngestArgs::try_parse_from(["seismo-ingest", "--kafka-property", "novalue"]).is_err());
    }

    #[test]
    fn admin_and_log_options_parse() {
        let args = parse(&["--admin-listen", "127.0.0.1:19101", "--log-format", "json"]);
        assert_eq!(args.admin_listen, SocketAddr::from(([127, 0, 0, 1], 19101)));
        assert_eq!(args.log_format, LogFormat::Json);

        let invalid = IngestArgs::try_parse_from(["seismo-ingest", "--log-format", "yaml"]);
        assert!(invalid.is_err());
    }

    #[test]
    fn help_lists_admin_and_log_defaults() {
        let help = IngestArgs::command().render_long_help().to_string();
        assert!(help.contains("SEISMO_INGEST_ADMIN_LISTEN"), "{help}");
        assert!(help.contains("[default: 0.0.0.0:9101]"), "{help}");
        assert!(help.contains("SEISMO_LOG_FORMAT"), "{help}");
        assert!(help.contains("[default: text]"), "{help}");
    }

    #[test]
    fn help_hides_password_value() {
        let help = IngestArgs::command().render_long_help().to_string();
        assert!(help.contains("CLICKHOUSE_PASSWORD"), "{help}");
        assert!(help.contains("milliseconds"), "{help}");
        assert!(help.contains("[default: 10000]"), "{help}");
    }
}
