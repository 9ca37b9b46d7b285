//! Notifier configuration: the detectors to follow, where alerts go, and the
//! timing of reconnects and delivery retries.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::backoff::ExponentialBackoff;
use crate::rate_limit::RateLimits;
use crate::retry::RetryPolicy;
use crate::routing::Routing;

/// Telegram Bot API endpoint used unless `TELEGRAM_API_URL` names another.
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// Detector gRPC address used unless another is configured.
pub const DEFAULT_DETECTOR_ADDRESS: &str = "http://127.0.0.1:50051";

/// Settings of [`crate::run`].
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// gRPC addresses of the detectors, such as `http://127.0.0.1:50051`. An
    /// address without a scheme gets `http://`. TLS is not supported.
    pub detectors: Vec<String>,
    /// Metric names to follow; empty follows all.
    pub metrics: Vec<String>,
    /// Telegram delivery; `None` sends nothing to Telegram.
    pub telegram: Option<TelegramConfig>,
    /// Prints every alert to stdout as the plain text Telegram would show.
    pub console: bool,
    /// Delays between reconnects to a detector.
    pub reconnect: ExponentialBackoff,
    /// Time allowed for a TCP connect to a detector.
    pub connect_timeout: Duration,
    /// Retries of one Telegram message.
    pub delivery: RetryPolicy,
    /// Time after cancellation during which alerts already received are still
    /// delivered; retries still pending after it are abandoned and counted as
    /// failed.
    pub shutdown_grace: Duration,
    /// Alerts buffered between the detector subscriptions and routing, and
    /// again in each chat's queue. A chat's queue fills up, for example, while
    /// the rate limits space out a storm of alerts to a group. Routing then
    /// waits, the subscriptions stop reading and gRPC flow control holds back
    /// the detectors' streams, so no alert is dropped. Other chats go on
    /// receiving what is already in their queues.
    pub queue_capacity: usize,
    /// Directory of the notification log and stream cursors
    /// (`notifier.sqlite3`). `None` keeps them in memory, so a restarted
    /// notifier resends nothing and follows live changes only.
    pub state_dir: Option<PathBuf>,
    /// Time alerts of one metric and state wait for others to go out as one
    /// message to a chat. Zero sends each alert on its own.
    pub grouping_window: Duration,
    /// Interval at which a firing episode that has not resolved is notified
    /// again; `None` notifies once.
    pub repeat_interval: Option<Duration>,
    /// Routing rules; `None` routes every alert to the chats of
    /// [`TelegramConfig::chats`].
    pub routing: Option<Routing>,
    /// Age after which finished rows (sent, suppressed, failed) are deleted
    /// from the notification log.
    pub log_retention: Duration,
    /// Directory of template sets (`<name>.toml`) that add to or replace the
    /// built-in `en` and `ru` sets; chats choose one in the routing file.
    pub templates_dir: Option<PathBuf>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            detectors: vec![DEFAULT_DETECTOR_ADDRESS.to_string()],
            metrics: Vec::new(),
            telegram: None,
            console: false,
            reconnect: ExponentialBackoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            connect_timeout: Duration::from_secs(5),
            delivery: RetryPolicy::default(),
            shutdown_grace: Duration::from_secs(10),
            queue_capacity: 1024,
            state_dir: None,
            grouping_window: Duration::ZERO,
            repeat_interval: None,
            routing: None,
            templates_dir: None,
            log_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl NotifierConfig {
    /// Checks the settings that need no network: at least one detector, a
    /// queue capacity of at least one alert, and backoffs that neither spin
    /// (zero initial delay) nor start above their maximum.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detectors.is_empty() {
            return Err(ConfigError::NoDetectors);
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::ZeroQueueCapacity);
        }
        if self
            .repeat_interval
            .is_some_and(|interval| interval < Duration::from_secs(1))
        {
            return Err(ConfigError::RepeatIntervalTooShort);
        }
        validate_backoff("reconnect", &self.reconnect)?;
        validate_backoff("delivery", &self.delivery.backoff)
    }
}

fn validate_backoff(name: &'static str, backoff: &ExponentialBackoff) -> Result<(), ConfigError> {
    if backoff.initial.is_zero() || backoff.max < backoff.initial {
        return Err(ConfigError::InvalidBackoff {
            name,
            initial: backoff.initial,
            max: backoff.max,
        });
    }
    Ok(())
}

/// Telegram Bot API endpoint, bot token and target chats.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: BotToken,
    /// Chats that receive every alert.
    pub chats: Vec<ChatTarget>,
    pub api_url: Url,
    /// Request limits, Telegram's published ones unless changed.
    pub rate_limits: RateLimits,
}

impl TelegramConfig {
    /// Builds the configuration from a token, a comma-separated list of chat
    /// ids and the Bot API base URL.
    pub fn new(token: &str, chat_ids: &str, api_url: &str) -> Result<Self, ConfigError> {
        if token.trim().is_empty() {
            return Err(ConfigError::MissingBotToken);
        }
        let chats = parse_chat_targets(chat_ids)?;
        Self::with_chats(token, chats, api_url)
    }

    /// Builds the configuration without chats of its own, for a routing file
    /// that names every route's chats, its default route's included.
    pub fn without_default_chats(token: &str, api_url: &str) -> Result<Self, ConfigError> {
        Self::with_chats(token, Vec::new(), api_url)
    }

    fn with_chats(token: &str, chats: Vec<ChatTarget>, api_url: &str) -> Result<Self, ConfigError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ConfigError::MissingBotToken);
        }

        let api_url = Url::parse(api_url).map_err(|source| ConfigError::InvalidApiUrl {
            value: api_url.to_string(),
            source,
        })?;
        if api_url.cannot_be_a_base() {
            return Err(ConfigError::ApiUrlNotHierarchical {
                value: api_url.to_string(),
            });
        }

        Ok(Self {
            token: BotToken(token.to_string()),
            chats,
            api_url,
            rate_limits: RateLimits::default(),
        })
    }

    /// Reads `TELEGRAM_BOT_TOKEN`, `TELEGRAM_CHAT_IDS` and `TELEGRAM_API_URL`
    /// (default [`DEFAULT_TELEGRAM_API_URL`]). Returns `None` when no token is
    /// set, so that Telegram delivery is off.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let token = std::env::var("TELEGRAM_BOT_TOKEN").unwrap_or_default();
        if token.trim().is_empty() {
            return Ok(None);
        }
        let chat_ids = std::env::var("TELEGRAM_CHAT_IDS").unwrap_or_default();
        let api_url = std::env::var("TELEGRAM_API_URL").unwrap_or_else(|_| DEFAULT_TELEGRAM_API_URL.to_string());

        Self::new(&token, &chat_ids, &api_url).map(Some)
    }
}

/// A Telegram bot token. Its `Debug` output hides the value, so a logged
/// configuration never contains it.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl BotToken {
    /// Returns the token for the Bot API client, the only place it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BotToken(<redacted>)")
    }
}

/// One chat that receives alerts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatTarget {
    /// Numeric chat id; negative for groups and channels.
    Id(i64),
    /// Public channel or supergroup username, with its leading `@`.
    Username(String),
}

impl ChatTarget {
    /// Returns whether the chat is a group, supergroup or channel, which
    /// Telegram limits more strictly than a private chat. Their ids are
    /// negative, and only they have usernames a bot can send to.
    pub fn is_group(&self) -> bool {
        match self {
            ChatTarget::Id(id) => *id < 0,
            ChatTarget::Username(_) => true,
        }
    }
}

impl fmt::Display for ChatTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatTarget::Id(id) => write!(formatter, "{id}"),
            ChatTarget::Username(name) => formatter.write_str(name),
        }
    }
}

/// Parses a comma-separated list of chat ids (`-1001234567890`) and channel
/// usernames (`@alerts`). Blank entries are skipped; at least one chat is
/// required.
pub fn parse_chat_targets(list: &str) -> Result<Vec<ChatTarget>, ConfigError> {
    let mut chats = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let chat = if let Some(name) = entry.strip_prefix('@') {
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::InvalidChatId {
                    value: entry.to_string(),
                });
            }
            ChatTarget::Username(entry.to_string())
        } else {
            let id = entry.parse::<i64>().map_err(|_| ConfigError::InvalidChatId {
                value: entry.to_string(),
            })?;
            ChatTarget::Id(id)
        };
        chats.push(chat);
    }

    if chats.is_empty() {
        return Err(ConfigError::MissingChatIds);
    }
    Ok(chats)
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the Telegram bot token is empty: set TELEGRAM_BOT_TOKEN to the token from @BotFather")]
    MissingBotToken,
    #[error(
        "no Telegram chat id configured: set TELEGRAM_CHAT_IDS to a comma-separated list such as -1001234567890,@alerts"
    )]
    MissingChatIds,
    #[error(
        "invalid Telegram chat id `{value}`: expected an integer such as -1001234567890 or a username such as @alerts"
    )]
    InvalidChatId { value: String },
    #[error("invalid Telegram API URL `{value}`: {source}; expected a URL such as {DEFAULT_TELEGRAM_API_URL}")]
    InvalidApiUrl { value: String, source: url::ParseError },
    #[error(
        "invalid Telegram API URL `{value}`: it has no path to append /bot<token>/<method> to; expected a URL such as {DEFAULT_TELEGRAM_API_URL}"
    )]
    ApiUrlNotHierarchical { value: String },
    #[error("no detector address configured: pass at least one, such as {DEFAULT_DETECTOR_ADDRESS}")]
    NoDetectors,
    #[error(
        "invalid {name} backoff: initial delay {initial:?} and maximum {max:?}; the initial delay must be above zero and at most the maximum"
    )]
    InvalidBackoff {
        name: &'static str,
        initial: Duration,
        max: Duration,
    },
    #[error("invalid detector address `{value}`: {reason}")]
    InvalidDetectorAddress { value: String, reason: String },
    #[error("invalid alert queue capacity 0: the queue must hold at least one alert; the default is 1024")]
    ZeroQueueCapacity,
    #[error("no alert output configured: set a Telegram bot token and chat ids, or enable the console output")]
    NoSinks,
    #[error("reading the routing file {path} failed: {source}")]
    RoutingFileUnreadable { path: PathBuf, source: std::io::Error },
    #[error("invalid routing file {path}: {reason}")]
    InvalidRoutingFile { path: PathBuf, reason: String },
    #[error("invalid repeat interval: it must be at least 1 s, or unset to notify once")]
    RepeatIntervalTooShort,
    #[error(transparent)]
    Templates(#[from] crate::templates::TemplateError),
    #[error("opening the notification log failed: {0}")]
    NotificationLog(#[from] crate::notification_log::LogError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_targets_parse_ids_and_usernames() {
        let chats = parse_chat_targets(" -1001234567890, 42 ,@seismo_alerts,").unwrap();

        assert_eq!(
            chats,
            vec![
                ChatTarget::Id(-1001234567890),
                ChatTarget::Id(42),
                ChatTarget::Username("@seismo_alerts".to_string()),
            ]
        );
    }

    #[test]
    fn chat_targets_reject_invalid_entries() {
        for value in ["abc", "12x", "@", "@bad-name", "1.5"] {
            let error = parse_chat_targets(value).unwrap_err();
            assert!(
                matches!(&error, ConfigError::InvalidChatId { value: v } if v == value),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn chat_targets_require_one_entry() {
        assert!(matches!(parse_chat_targets(" , "), Err(ConfigError::MissingChatIds)));
    }

    #[test]
    fn telegram_config_rejects_bad_api_url() {
        let error = TelegramConfig::new("1:token", "1", "not a url").unwrap_err();
        assert!(matches!(error, ConfigError::InvalidApiUrl { .. }), "{error}");

        let error = TelegramConfig::new("1:token", "1", "mailto:bot@example.com").unwrap_err();
        assert!(matches!(error, ConfigError::ApiUrlNotHierarchical { .. }), "{error}");
    }

    #[test]
    fn telegram_config_requires_token() {
        let error = TelegramConfig::new("  ", "1", DEFAULT_TELEGRAM_API_URL).unwrap_err();
        assert!(matches!(error, ConfigError::MissingBotToken), "{error}");
    }

    #[test]
    fn default_config_is_valid() {
        assert!(NotifierConfig::default().validate().is_ok());
    }

    #[test]
    fn config_rejects_spinning_backoff() {
        let mut config = NotifierConfig::default();
        config.reconnect.initial = Duration::ZERO;
        let error = config.validate().unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidBackoff { name: "reconnect", .. }),
            "{error}"
        );

        let mut config = NotifierConfig::default();
        config.delivery.backoff.max = config.delivery.backoff.initial / 2;
        let error = config.validate().unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidBackoff { name: "delivery", .. }),
            "{error}"
        );
    }

    #[test]
    fn config_requires_a_detector() {
        let config = NotifierConfig {
            detectors: Vec::new(),
            ..NotifierConfig::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::NoDetectors)));
    }

    #[test]
    fn config_rejects_zero_queue_capacity() {
        let config = NotifierConfig {
            queue_capacity: 0,
            ..NotifierConfig::default()
        };

        assert!(matches!(config.validate(), Err(ConfigError::ZeroQueueCapacity)));
    }

    #[test]
    fn token_debug_output_is_redacted() {
        let config = TelegramConfig::new("123456:SECRET-value", "1", DEFAULT_TELEGRAM_API_URL).unwrap();

        let printed = format!("{config:?}");

        assert!(!printed.contains("SECRET"), "{printed}");
        assert!(printed.contains("BotToken(<redacted>)"), "{printed}");
        assert_eq!(config.token.expose(), "123456:SECRET-value");
    }
}
