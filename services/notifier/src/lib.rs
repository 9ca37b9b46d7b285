//! Seismo notifier: follows the anomaly streams of one or more detectors over
//! gRPC and sends every firing, escalation and resolution of an anomaly as an
//! alert to Telegram, to the console, or both.
//!
//! [`run`] is the entry point and runs until its `CancellationToken` fires.
//! It counts its work in a shared [`NotifierStats`] and in `seismo_notifier_*`
//! metrics, and reports through a [`Readiness`] whether it can deliver alerts. Formatting
//! ([`format_alert`]) and the retry decision ([`RetryPolicy::decide`]) are
//! pure functions.

mod backoff;
mod chat_queue;
pub mod cli;
mod config;
mod console;
mod dedup;
mod delivery;
mod error_chain;
mod escape;
mod format;
mod group_format;
mod hooks;
mod message;
mod message_split;
mod notification_log;
mod pipeline;
mod prometheus_metrics;
mod rate_limit;
mod readiness;
mod report_delivery;
mod retry;
mod routing;
mod sink;
mod stats;
mod subscription;
mod telegram;
mod telegram_error;
mod templates;
// Interaction features: silences, quiet hours, bot commands and buttons,
// charts, the daily report and the forecast report.
pub mod ab_report;
pub mod chart;
pub mod commands;
pub mod forecast_report;
pub mod quiet_hours;
pub mod report;
pub mod silence;

pub use backoff::ExponentialBackoff;
pub use commands::buttons::alert_buttons;
pub use config::{
    BotToken, ChatTarget, ConfigError, DEFAULT_DETECTOR_ADDRESS, DEFAULT_TELEGRAM_API_URL, NotifierConfig,
    TelegramConfig, parse_chat_targets,
};
pub use console::ConsoleSink;
pub use escape::escape_html;
pub use format::{deviation_percent, format_alert, format_number};
pub use hooks::{AlertButtons, ChartProvider, DeliveryHooks, NoCharts, SendAll, SendDecision, SendGate};
pub use message::AlertMessage;
pub use message_split::{MAX_CAPTION_UTF16, MAX_MESSAGE_UTF16};
pub use notification_log::{LogError, LogKey, LogStatus, NotificationLog, STATE_FILE_NAME, StreamCursor};
pub use pipeline::{build_sinks, run, run_with_hooks, run_with_sinks};
pub use rate_limit::{RateLimiter, RateLimits, WindowLimit};
pub use retry::{FailureKind, GiveUpReason, RetryDecision, RetryPolicy};
pub use routing::{DEFAULT_ROUTE, Route, Routing, glob_matches};
/// Re-exported so that callers of [`run`] need no direct dependency on
/// `seismo-telemetry`.
pub use seismo_telemetry::Readiness;
pub use sink::{Alert, AlertSink, DeliveryError};
pub use stats::{NotifierStats, StatsSnapshot};
pub use telegram::TelegramSink;
pub use telegram_error::{classify_request_error, describe_request_error};
pub use templates::{TemplateError, TemplateSet, Templates};
