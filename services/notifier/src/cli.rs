//! Command-line options of the `seismo-notifier` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use seismo_telemetry::LogFormat;

use crate::{
    DEFAULT_DETECTOR_ADDRESS, DEFAULT_TELEGRAM_API_URL, ExponentialBackoff, NotifierConfig, RateLimits, RetryPolicy,
    Routing, TelegramConfig, WindowLimit,
};

/// Follows the anomaly streams of Seismo detectors over gRPC and sends each
/// firing, escalation and resolution of an anomaly to Telegram chats. Without a bot token the
/// alerts are printed to stdout.
#[derive(Debug, Parser)]
#[command(name = "seismo-notifier", version)]
pub struct NotifierArgs {
    /// Settings file (TOML) whose keys are the environment variable names
    /// below, e.g. `TELEGRAM_CHAT_IDS = "-1001234567890"`. Command-line
    /// options and environment variables override it.
    #[arg(long = "config-file", env = "SEISMO_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Detector gRPC addresses, comma-separated (plain-text gRPC; `host:port` gets `http://`).
    #[arg(long, env = "SEISMO_DETECTORS", value_delimiter = ',', default_value = DEFAULT_DETECTOR_ADDRESS)]
    pub detectors: Vec<String>,

    /// Metric names to alert on, comma-separated; empty alerts on all.
    #[arg(long, env = "SEISMO_NOTIFIER_METRICS", value_delimiter = ',')]
    pub metrics: Vec<String>,

    /// Telegram bot token from @BotFather; without it nothing goes to Telegram. Prefer the
    /// environment variable, because other local users can read command lines.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<String>,

    /// Telegram chats, comma-separated: numeric ids (-1001234567890) or channel usernames (@alerts).
    #[arg(long, env = "TELEGRAM_CHAT_IDS", default_value = "")]
    pub telegram_chat_ids: String,

    /// Telegram Bot API base URL.
    #[arg(long, env = "TELEGRAM_API_URL", default_value = DEFAULT_TELEGRAM_API_URL)]
    pub telegram_api_url: String,

    /// Minimum time between two Telegram messages to the same chat, in milliseconds.
    #[arg(long, env = "TELEGRAM_CHAT_INTERVAL_MS", default_value_t = 1_000)]
    pub telegram_chat_interval_ms: u64,

    /// Maximum Telegram messages to one group, supergroup or channel in any 60 s.
    #[arg(long, env = "TELEGRAM_GROUP_MESSAGES_PER_MINUTE", default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub telegram_group_messages_per_minute: u32,

    /// Maximum Telegram messages to all chats together in any 1 s.
    #[arg(long, env = "TELEGRAM_MESSAGES_PER_SECOND", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub telegram_messages_per_second: u32,

    /// Also print every alert to stdout (always on when no bot token is set).
    #[arg(long, env = "SEISMO_NOTIFIER_CONSOLE")]
    pub console: bool,

    /// First delay before reconnecting to a detector, in milliseconds; doubles per failure.
    #[arg(long, env = "SEISMO_NOTIFIER_RECONNECT_INITIAL_MS", default_value_t = 500)]
    pub reconnect_initial_ms: u64,

    /// Maximum delay between reconnects to a detector, in milliseconds.
    #[arg(long, env = "SEISMO_NOTIFIER_RECONNECT_MAX_MS", default_value_t = 30_000)]
    pub reconnect_max_ms: u64,

    /// Timeout of a TCP connect to a detector, in milliseconds.
    #[arg(long, env = "SEISMO_NOTIFIER_CONNECT_TIMEOUT_MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,

    /// Telegram requests per alert and chat, the first included.
    #[arg(long, env = "SEISMO_NOTIFIER_SEND_ATTEMPTS", default_value_t = 6,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub send_attempts: u32,

    /// First delay before repeating a Telegram request after a network error or 5xx, in milliseconds; doubles per failure.
    #[arg(long, env = "SEISMO_NOTIFIER_SEND_BACKOFF_INITIAL_MS", default_value_t = 1_000)]
    pub send_backoff_initial_ms: u64,

    /// Maximum delay between Telegram request attempts after a network error or 5xx, in milliseconds.
    #[arg(long, env = "SEISMO_NOTIFIER_SEND_BACKOFF_MAX_MS", default_value_t = 60_000)]
    pub send_backoff_max_ms: u64,

    /// Longest `retry_after` of a Telegram 429 to wait for, in seconds; a longer one fails the alert for that chat.
    #[arg(long, env = "SEISMO_NOTIFIER_MAX_RETRY_AFTER_S", default_value_t = 600)]
    pub max_retry_after_s: u64,

    /// Time after SIGTERM or Ctrl-C to finish delivering received alerts, in seconds.
    #[arg(long, env = "SEISMO_NOTIFIER_SHUTDOWN_GRACE_S", default_value_t = 10)]
    pub shutdown_grace_s: u64,

    /// Alerts buffered between the detectors and Telegram; when full, the notifier stops reading
    /// the detectors' streams until delivery catches up.
    #[arg(long, env = "SEISMO_NOTIFIER_QUEUE_CAPACITY", default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_capacity: u64,

    /// Directory of the notification log and detector cursors (`notifier.sqlite3`), so that a
    /// restarted notifier sends what was pending and resumes each detector where it stopped.
    /// Without it both are kept in memory.
    #[arg(long, env = "SEISMO_NOTIFIER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Routing rules file (TOML): which chats receive which metrics, slices and severities, and
    /// whom to mention. Without it every alert goes to TELEGRAM_CHAT_IDS.
    #[arg(long, env = "SEISMO_NOTIFIER_ROUTING_FILE")]
    pub routing_file: Option<PathBuf>,

    /// Directory of alert template sets (`<name>.toml`, like the built-in `en.toml`). They add to or
    /// replace the built-in `en` and `ru`, and the routing file picks one per chat.
    #[arg(long, env = "SEISMO_NOTIFIER_TEMPLATES_DIR")]
    pub templates_dir: Option<PathBuf>,

    /// Days after which sent, suppressed and failed alerts are deleted from the notification log.
    #[arg(long, env = "SEISMO_NOTIFIER_LOG_RETENTION_DAYS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub log_retention_days: u64,

    /// Time in seconds that alerts of one metric wait for others, to go to a chat as one message;
    /// 0 sends each alert on its own.
    #[arg(long, env = "SEISMO_NOTIFIER_GROUPING_WINDOW_S", default_value_t = 0)]
    pub grouping_window_s: u64,

    /// Hours after which an episode still firing is notified again; 0 notifies once.
    #[arg(long, env = "SEISMO_NOTIFIER_REPEAT_INTERVAL_H", default_value_t = 0.0)]
    pub repeat_interval_h: f64,

    /// Address of the admin HTTP server with /metrics (Prometheus), /healthz and /readyz (host:port).
    #[arg(long, env = "SEISMO_NOTIFIER_ADMIN_LISTEN", default_value = "0.0.0.0:9103")]
    pub admin_listen: SocketAddr,

    /// Log output format on stderr: `text` for people, `json` for log collectors (one object per line).
    #[arg(long, env = "SEISMO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Silences, quiet hours, bot commands, charts and the daily report.
    #[command(flatten)]
    pub interaction: crate::commands::setup::InteractionArgs,

    #[command(subcommand)]
    pub command: Option<crate::commands::setup::NotifierCommand>,
}

impl NotifierArgs {
    /// Builds the notifier configuration; fails on invalid Telegram settings.
    pub fn into_config(self) -> anyhow::Result<NotifierConfig> {
        let args = self;
        let telegram = match args.telegram_bot_token.as_deref().map(str::trim) {
            Some(token) if !token.is_empty() => {
                // With a routing file, TELEGRAM_CHAT_IDS only fills a
                // default route that names no chats of its own. The report
                // subcommands send to SEISMO_REPORT_CHAT_IDS, falling back to
                // TELEGRAM_CHAT_IDS.
                let chats_named_elsewhere = args.routing_file.is_some() || args.command.is_some();
                let mut telegram = if chats_named_elsewhere && args.telegram_chat_ids.trim().is_empty() {
                    TelegramConfig::without_default_chats(token, &args.telegram_api_url)
                } else {
                    TelegramConfig::new(token, &args.telegram_chat_ids, &args.telegram_api_url)
                }
                .context("invalid Telegram settings")?;
                telegram.rate_limits = RateLimits {
                    per_chat: WindowLimit {
                        max_requests: 1,
                        window: Duration::from_millis(args.telegram_chat_interval_ms),
                    },
                    per_group: WindowLimit {
                        max_requests: args.telegram_group_messages_per_minute,
                        window: Duration::from_secs(60),
                    },
                    overall: WindowLimit {
                        max_requests: args.telegram_messages_per_second,
                        window: Duration::from_secs(1),
                    },
                };
                Some(telegram)
            }
            _ => None,
        };
        let console = args.console || telegram.is_none();
        let routing = match &args.routing_file {
            Some(path) => {
                let default_chats = telegram
                    .as_ref()
                    .map(|telegram| telegram.chats.clone())
                    .unwrap_or_default();
                let routing = Routing::load(path, default_chats)?;
                if telegram.is_some() && routing.default_chats().is_empty() {
                    anyhow::bail!(
                        "the default route of routing file {} has no chats: set `chats` under [default] or \
                         TELEGRAM_CHAT_IDS, so alerts that match no rule are delivered",
                        path.display()
                    );
                }
                Some(routing)
            }
            None => None,
        };
        if !args.repeat_interval_h.is_finite() || args.repeat_interval_h < 0.0 {
            anyhow::bail!(
                "invalid --repeat-interval-h {}: expected a number of hours of at least 0, such as 4",
                args.repeat_interval_h
            );
        }
        let repeat_interval =
            (args.repeat_interval_h > 0.0).then(|| Duration::from_secs_f64(args.repeat_interval_h * 3600.0));

        Ok(NotifierConfig {
            detectors: args.detectors,
            metrics: args
                .metrics
                .into_iter()
                .map(|metric| metric.trim().to_string())
                .filter(|metric| !metric.is_empty())
                .collect(),
            telegram,
            console,
            reconnect: ExponentialBackoff {
                initial: Duration::from_millis(args.reconnect_initial_ms),
                max: Duration::from_millis(args.reconnect_max_ms),
            },
            connect_timeout: Duration::from_millis(args.connect_timeout_ms),
            delivery: RetryPolicy {
                max_attempts: args.send_attempts,
                backoff: ExponentialBackoff {
                    initial: Duration::from_millis(args.send_backoff_initial_ms),
                    max: Duration::from_millis(args.send_backoff_max_ms),
                },
                max_retry_after: Duration::from_secs(args.max_retry_after_s),
            },
            shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
            queue_capacity: usize::try_from(args.queue_capacity).map_err(|_| {
                anyhow::anyhow!(
                    "invalid --queue-capacity {}: the maximum on this platform is {}",
                    args.queue_capacity,
                    usize::MAX
                )
            })?,
            state_dir: args.state_dir,
            grouping_window: Duration::from_secs(args.grouping_window_s),
            repeat_interval,
            routing,
            templates_dir: args.templates_dir,
            log_retention: Duration::from_secs(args.log_retention_days * 24 * 3600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_limits(extra_args: &[&str]) -> RateLimits {
        let mut command_line = vec![
            "seismo-notifier",
            "--telegram-bot-token",
            "123:secret",
            "--telegram-chat-ids=-1001",
        ];
        command_line.extend_from_slice(extra_args);

        let config = NotifierArgs::parse_from(command_line).into_config().unwrap();
        config.telegram.expect("a bot token enables Telegram").rate_limits
    }

    #[test]
    fn rate_limit_defaults_are_telegrams() {
        assert_eq!(rate_limits(&[]), RateLimits::default());
    }

    #[test]
    fn rate_limit_options_set_limits() {
        let limits = rate_limits(&[
            "--telegram-chat-interval-ms",
            "3000",
            "--telegram-group-messages-per-minute",
            "10",
            "--telegram-messages-per-second",
            "5",
        ]);

        assert_eq!(limits.per_chat.window, Duration::from_secs(3));
        assert_eq!(limits.per_group.max_requests, 10);
        assert_eq!(limits.overall.max_requests, 5);
    }

    fn config_with_routing(routing: &str) -> anyhow::Result<NotifierConfig> {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("routing.toml");
        std::fs::write(&path, routing).unwrap();
        let path = path.to_str().unwrap().to_string();

        let command_line = vec![
            "seismo-notifier",
            "--telegram-bot-token",
            "123:secret",
            "--telegram-chat-ids=",
            "--routing-file",
            path.as_str(),
        ];
        NotifierArgs::parse_from(command_line).into_config()
    }

    #[test]
    fn routing_default_chats_replace_chat_ids() {
        let config = config_with_routing("[default]\nchats = [\"-1002\"]\n").unwrap();

        let routing = config.routing.expect("the routing file is loaded");
        assert_eq!(routing.default_chats().len(), 1);
        assert_eq!(routing.default_chats()[0].to_string(), "-1002");
    }

    #[test]
    fn routing_without_any_default_chats_rejected() {
        let error = config_with_routing("[default]\nmentions = [\"@alice\"]\n")
            .unwrap_err()
            .to_string();

        assert!(error.contains("default route"), "{error}");
        assert!(error.contains("TELEGRAM_CHAT_IDS"), "{error}");
    }

    #[test]
    fn report_subcommand_needs_no_alert_chats() {
        let command_line = [
            "seismo-notifier",
            "--telegram-bot-token",
            "123:secret",
            "--telegram-chat-ids=",
            "report",
            "--now",
        ];

        let config = NotifierArgs::parse_from(command_line).into_config().unwrap();
        assert!(config.telegram.expect("a bot token enables Telegram").chats.is_empty());
    }

    #[test]
    fn serving_without_chats_rejected() {
        let command_line = [
            "seismo-notifier",
            "--telegram-bot-token",
            "123:secret",
            "--telegram-chat-ids=",
        ];

        let error = NotifierArgs::parse_from(command_line).into_config().unwrap_err();
        assert!(format!("{error:#}").contains("TELEGRAM_CHAT_IDS"), "{error:#}");
    }
}
