//! Polls the Bot API for updates (getUpdates) and handles the commands and
//! button presses of allow-listed chats and users.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, EditMessageReplyMarkupSetters, GetUpdatesSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{AllowedUpdate, CallbackQuery, ChatId, Message, Update, UpdateKind, User};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::access::AllowList;
use super::acknowledgements::{AcknowledgeOutcome, Acknowledgement, AcknowledgementStore};
use super::buttons::{ButtonAction, acknowledged_buttons, parse_button_data};
use super::parse::{Command, UnmuteTarget, parse_command};
use super::replies::{HELP_TEXT, format_silences, format_status};
use super::status_view::StatusView;
use crate::ab_report::arguments::AbArguments;
use crate::backoff::ExponentialBackoff;
use crate::config::TelegramConfig;
use crate::silence::selector::SeriesSelector;
use crate::silence::store::{NewSilence, SilenceSource, SilenceStore};
use crate::stats::NotifierStats;
use crate::telegram_error::describe_request_error;

/// Counter of bot updates by outcome: `accepted` or `ignored`.
const COMMANDS_TOTAL: &str = "seismo_notifier_bot_updates_total";

/// Sends a report to one chat on request: the daily report (`/report`) or
/// the forecast report (`/forecast`).
pub trait ReportTrigger: Send + Sync {
    fn send_report(&self, chat: ChatId) -> BoxFuture<'_, Result<(), String>>;
}

/// Runs the A/B analysis of `/ab` and sends its report to the chat of the
/// command. An error is the text to reply instead.
pub trait AbReportTrigger: Send + Sync {
    fn send_ab_report(&self, chat: ChatId, arguments: AbArguments) -> BoxFuture<'_, Result<(), String>>;
}

/// Counts of handled commands and button presses, also exported as
/// `seismo_notifier_bot_updates_total{outcome}`.
#[derive(Debug, Default)]
pub struct BotStats {
    accepted: AtomicU64,
    ignored: AtomicU64,
}

impl BotStats {
    /// Commands and button presses from allow-listed chats and users.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Commands and button presses from anyone else.
    pub fn ignored(&self) -> u64 {
        self.ignored.load(Ordering::Relaxed)
    }

    fn record(&self, accepted: bool) {
        let (counter, outcome) = if accepted {
            (&self.accepted, "accepted")
        } else {
            (&self.ignored, "ignored")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(COMMANDS_TOTAL, "outcome" => outcome).increment(1);
    }
}

/// The command handler and what it acts on.
pub struct CommandBot {
    pub bot: Bot,
    /// The bot token, only to strip it from logged errors.
    pub token: String,
    pub allow_list: AllowList,
    pub silences: Arc<SilenceStore>,
    pub acknowledgements: Arc<AcknowledgementStore>,
    pub status: Arc<StatusView>,
    pub report: Option<Arc<dyn ReportTrigger>>,
    pub forecast_report: Option<Arc<dyn ReportTrigger>>,
    pub ab_report: Option<Arc<dyn AbReportTrigger>>,
    /// One permit, held by the running `/ab` analysis.
    ab_permits: Arc<Semaphore>,
    /// The notifier's delivery counters for `/status`; `None` leaves them out.
    pub delivery_stats: Option<Arc<NotifierStats>>,
    pub stats: Arc<BotStats>,
    /// Long-polling timeout of one getUpdates request.
    pub poll_timeout: Duration,
}

impl CommandBot {
    /// Builds a handler that talks to the Bot API of `telegram`, without
    /// `/report`, `/forecast`, `/ab` or delivery counters and with a 10 s
    /// long-polling timeout.
    /// teloxide-core 0.13 does not extend its 17 s HTTP timeout by the
    /// polling timeout, so a longer poll would fail as a timeout.
    pub fn new(
        telegram: &TelegramConfig,
        allow_list: AllowList,
        silences: Arc<SilenceStore>,
        acknowledgements: Arc<AcknowledgementStore>,
        status: Arc<StatusView>,
    ) -> Self {
        Self {
            bot: Bot::new(telegram.token.expose()).set_api_url(telegram.api_url.clone()),
            token: telegram.token.expose().to_string(),
            allow_list,
            silences,
            acknowledgements,
            status,
            report: None,
            forecast_report: None,
            ab_report: None,
            ab_permits: Arc::new(Semaphore::new(1)),
            delivery_stats: None,
            stats: Arc::new(BotStats::default()),
            poll_timeout: Duration::from_secs(10),
        }
    }

    /// Polls for updates until `cancel` fires. A failed poll is logged and
    /// repeated after a growing delay (0.5 s to 30 s).
    pub async fn run(self, cancel: CancellationToken) {
        let backoff = ExponentialBackoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        let mut failures = 0;
        let mut offset = self.acknowledgements.update_offset().unwrap_or_else(|error| {
            error!(error = %error, "reading the stored bot update offset failed; starting from Telegram's oldest unconfirmed update");
            0
        });
        describe_bot_metrics();
        info!(allowed_chats = ?self.allow_list.chats, allowed_users = self.allow_list.users.len(), "bot command polling started");

        loop {
            let request = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(self.poll_timeout.as_secs() as u32)
                .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
            let result = tokio::select! {
                result = request.send() => result,
                () = cancel.cancelled() => break,
            };

            let updates = match result {
                Ok(updates) => {
                    failures = 0;
                    updates
                }
                Err(error) => {
                    failures += 1;
                    let delay = backoff.delay(failures - 1);
                    warn!(
                        error = %describe_request_error(&error, &self.token), failures,
                        delay_ms = delay.as_millis() as u64,
                        "polling Telegram for bot commands failed; retrying"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = cancel.cancelled() => break,
                    }
                }
            };

            for update in updates {
                // Confirms this update on the next poll, so a handler error
                // does not make Telegram send it again. The stored offset
                // does the same after a restart, before any poll confirmed it.
                offset = offset.max(update.id.0 as i32 + 1);
                self.handle_update(update).await;
                if let Err(error) = self.acknowledgements.store_update_offset(offset) {
                    error!(error = %error, offset, "storing the bot update offset failed; a restart may handle this update again");
                }
            }
        }
        info!(
            accepted = self.stats.accepted(),
            ignored = self.stats.ignored(),
            "bot command polling stopped"
        );
    }

    async fn handle_update(&self, update: Update) {
        match update.kind {
            UpdateKind::Message(message) => self.handle_message(&message).await,
            UpdateKind::CallbackQuery(query) => self.handle_button(&query).await,
            _ => debug!(
                update_id = update.id.0,
                "ignoring an update that is neither a message nor a button press"
            ),
        }
    }

    async fn handle_message(&self, message: &Message) {
        let Some(parsed) = message.text().and_then(parse_command) else {
            return;
        };
        let chat = message.chat.id;
        let user = message.from.as_ref();
        if !self.is_allowed(chat, user, "command") {
            return;
        }

        let command = match parsed {
            Ok(command) => command,
            Err(usage) => {
                self.reply(chat, usage).await;
                return;
            }
        };
        info!(chat_id = chat.0, user_id = user.map(|user| user.id.0), command = ?command, "bot command accepted");
        let now = Utc::now();
        let reply = match command {
            Command::Mute { selector, duration } => self.mute(selector, duration, user, now),
            Command::Unmute(target) => self.unmute(target, now),
            Command::Silences => self.with_silences(now, |silences| format_silences(silences, now)),
            Command::Status => self.status_reply(now),
            Command::Report => self.report(chat).await,
            Command::Forecast => self.forecast_report(chat).await,
            Command::Ab(arguments) => match self.start_ab_report(chat, arguments) {
                Some(reply) => reply,
                None => return,
            },
            Command::Help => HELP_TEXT.to_string(),
        };
        self.reply(chat, reply).await;
    }

    /// Logs and counts an update from outside the allow-list; returns
    /// whether it may be handled.
    fn is_allowed(&self, chat: ChatId, user: Option<&User>, kind: &'static str) -> bool {
        let user_id = user.map(|user| user.id.0);
        let allowed = self.allow_list.allows(chat.0, user_id);
        self.stats.record(allowed);
        if !allowed {
            warn!(
                chat_id = chat.0,
                user_id, kind, "ignoring a bot {kind} from a chat or user not on the allow-list"
            );
        }
        allowed
    }

    fn mute(
        &self,
        selector: SeriesSelector,
        duration: chrono::TimeDelta,
        user: Option<&User>,
        now: DateTime<Utc>,
    ) -> String {
        let silence = NewSilence {
            selector,
            starts_at: now,
            expires_at: now + duration,
            created_by: user.map_or_else(|| "anonymous".to_string(), user_name),
            source: SilenceSource::Command,
        };
        match self.silences.add(silence) {
            Ok(silence) => {
                info!(silence_id = silence.id, selector = %silence.selector, expires_at = %silence.expires_at, created_by = %silence.created_by, "silence created");
                format!(
                    "Muted {} until {} (silence #{}). /unmute {} ends it early.",
                    silence.selector,
                    silence.expires_at.format("%Y-%m-%d %H:%M UTC"),
                    silence.id,
                    silence.id
                )
            }
            Err(error) => store_failure(&error),
        }
    }

    fn unmute(&self, target: UnmuteTarget, now: DateTime<Utc>) -> String {
        let result = match &target {
            UnmuteTarget::Id(id) => self.silences.remove(*id).map(usize::from),
            UnmuteTarget::Selector(selector) => self.silences.remove_selector(selector, now),
        };
        match (result, target) {
            (Err(error), _) => store_failure(&error),
            (Ok(0), UnmuteTarget::Id(id)) => format!("No silence #{id}. /silences lists the ids."),
            (Ok(0), UnmuteTarget::Selector(selector)) => {
                format!("No silence in force for exactly {selector}. /silences lists them.")
            }
            (Ok(_), UnmuteTarget::Id(id)) => {
                info!(silence_id = id, "silence removed");
                format!("Removed silence #{id}.")
            }
            (Ok(count), UnmuteTarget::Selector(selector)) => {
                info!(selector = %selector, count, "silences removed");
                format!("Removed {count} silence(s) for {selector}.")
            }
        }
    }

    fn with_silences(
        &self,
        now: DateTime<Utc>,
        format: impl FnOnce(&[crate::silence::store::Silence]) -> String,
    ) -> String {
        match self.silences.active(now) {
            Ok(silences) => format(&silences),
            Err(error) => store_failure(&error),
        }
    }

    fn status_reply(&self, now: DateTime<Utc>) -> String {
        let status = self.status.snapshot();
        let mut acknowledged_by = BTreeMap::new();
        for episode in &status.firing {
            match self.acknowledgements.acknowledgement(&episode.anomaly_id) {
                Ok(Some(acknowledgement)) => {
                    acknowledged_by.insert(episode.anomaly_id.clone(), acknowledgement.user_name);
                }
                Ok(None) => {}
                Err(error) => return store_failure(&error),
            }
        }
        let delivery = self.delivery_stats.as_ref().map(|stats| stats.snapshot());
        self.with_silences(now, |silences| {
            format_status(&status, &acknowledged_by, delivery.as_ref(), silences, now)
        })
    }

    async fn report(&self, chat: ChatId) -> String {
        let Some(report) = &self.report else {
            return "Reports are not configured: the notifier needs SEISMO_REPORT_CLICKHOUSE_URL.".to_string();
        };
        match report.send_report(chat).await {
            Ok(()) => "Report sent.".to_string(),
            Err(error) => {
                error!(chat_id = chat.0, error = %error, "sending the report on request failed");
                format!("Sending the report failed: {error}")
            }
        }
    }

    async fn forecast_report(&self, chat: ChatId) -> String {
        let Some(report) = &self.forecast_report else {
            return "The forecast report is not configured: the notifier needs SEISMO_REPORT_CLICKHOUSE_URL."
                .to_string();
        };
        match report.send_report(chat).await {
            Ok(()) => "Forecast report sent.".to_string(),
            Err(error) => {
                error!(chat_id = chat.0, error = %error, "sending the forecast report on request failed");
                format!("Sending the forecast report failed: {error}")
            }
        }
    }

    /// Starts `/ab` in a task of its own, so polling and other commands go
    /// on during the analysis (a ClickHouse query of up to 60 s and the
    /// bootstrap). One analysis runs at a time. Returns the reply to send
    /// now, or `None` when the task sends the report or its error.
    fn start_ab_report(&self, chat: ChatId, arguments: AbArguments) -> Option<String> {
        let Some(report) = self.ab_report.clone() else {
            return Some(
                "A/B reports are not configured: the notifier needs SEISMO_REPORT_CLICKHOUSE_URL.".to_string(),
            );
        };
        let Ok(permit) = Arc::clone(&self.ab_permits).try_acquire_owned() else {
            info!(chat_id = chat.0, "rejecting /ab while another A/B analysis runs");
            return Some("Another A/B analysis is running. Send /ab again after its report arrives.".to_string());
        };

        let bot = self.bot.clone();
        let token = self.token.clone();
        // The task is not awaited on shutdown: a report still running then
        // is dropped with the runtime.
        tokio::spawn(async move {
            if let Err(reply) = report.send_ab_report(chat, arguments).await {
                send_reply(&bot, &token, chat, reply).await;
            }
            drop(permit);
        });
        None
    }

    async fn handle_button(&self, query: &CallbackQuery) {
        let Some(message) = &query.message else {
            debug!(user_id = query.from.id.0, "ignoring a button press without its message");
            return;
        };
        let chat = message.chat().id;
        if !self.is_allowed(chat, Some(&query.from), "button press") {
            self.answer(query, "You are not allowed to use this bot.").await;
            return;
        }
        let Some(action) = query.data.as_deref().and_then(parse_button_data) else {
            self.answer(query, "Unknown button.").await;
            return;
        };
        info!(chat_id = chat.0, user_id = query.from.id.0, action = ?action, "bot button accepted");

        let now = Utc::now();
        match action {
            ButtonAction::Acknowledge { anomaly_id } => {
                self.acknowledge(query, chat, message.id(), &anomaly_id, now).await;
            }
            ButtonAction::Mute {
                anomaly_id,
                duration,
                metric,
            } => {
                let selector = match self.acknowledgements.series_of(&anomaly_id) {
                    Ok(Some((metric, slice))) => Some(SeriesSelector::for_series(&metric, &slice)),
                    Ok(None) => metric.map(|metric| SeriesSelector::for_series(&metric, &[])),
                    Err(error) => {
                        error!(episode_id = %anomaly_id, error = %error, "reading the alert's series failed");
                        metric.map(|metric| SeriesSelector::for_series(&metric, &[]))
                    }
                };
                let Some(selector) = selector else {
                    self.answer(query, "This alert is too old to mute from here; use /mute.")
                        .await;
                    return;
                };
                let reply = self.mute(selector, duration, Some(&query.from), now);
                self.answer(query, &reply).await;
                self.reply(chat, reply).await;
            }
        }
    }

    async fn acknowledge(
        &self,
        query: &CallbackQuery,
        chat: ChatId,
        message_id: teloxide::types::MessageId,
        anomaly_id: &str,
        now: DateTime<Utc>,
    ) {
        let acknowledgement = Acknowledgement {
            anomaly_id: anomaly_id.to_string(),
            user_id: query.from.id.0,
            user_name: user_name(&query.from),
            acknowledged_at: now,
        };
        match self.acknowledgements.acknowledge(&acknowledgement) {
            Ok(AcknowledgeOutcome::Recorded) => {}
            Ok(AcknowledgeOutcome::AlreadyAcknowledged(earlier)) => {
                let text = format!("Already acknowledged by {}.", earlier.user_name);
                self.answer(query, &text).await;
                return;
            }
            Err(error) => {
                self.answer(query, &store_failure(&error)).await;
                return;
            }
        }

        info!(episode_id = %anomaly_id, user_id = acknowledgement.user_id, "alert acknowledged");
        self.answer(query, "Acknowledged.").await;
        let metric = match self.acknowledgements.series_of(anomaly_id) {
            Ok(Some((metric, _))) => metric,
            _ => String::new(),
        };
        let markup = acknowledged_buttons(anomaly_id, &metric, &acknowledgement.user_name);
        let edit = self
            .bot
            .edit_message_reply_markup(chat, message_id)
            .reply_markup(markup);
        if let Err(error) = edit.send().await {
            warn!(chat_id = chat.0, episode_id = %anomaly_id, error = %describe_request_error(&error, &self.token), "marking the alert as acknowledged failed");
        }
    }

    async fn answer(&self, query: &CallbackQuery, text: &str) {
        let request = self.bot.answer_callback_query(query.id.clone()).text(text);
        if let Err(error) = request.send().await {
            warn!(user_id = query.from.id.0, error = %describe_request_error(&error, &self.token), "answering the callback query failed");
        }
    }

    async fn reply(&self, chat: ChatId, text: String) {
        send_reply(&self.bot, &self.token, chat, text).await;
    }
}

async fn send_reply(bot: &Bot, token: &str, chat: ChatId, text: String) {
    if let Err(error) = bot.send_message(chat, text).send().await {
        warn!(chat_id = chat.0, error = %describe_request_error(&error, token), "sending a command reply failed");
    }
}

/// Describes the bot counter and registers both outcomes at zero, so a
/// dashboard shows 0 rather than no data before the first command.
fn describe_bot_metrics() {
    metrics::describe_counter!(
        COMMANDS_TOTAL,
        "Bot commands and button presses by outcome: accepted (allow-listed chat and user) or ignored."
    );
    for outcome in ["accepted", "ignored"] {
        metrics::counter!(COMMANDS_TOTAL, "outcome" => outcome).increment(0);
    }
}

/// `@username`, or the first name when the user has none.
fn user_name(user: &User) -> String {
    match &user.username {
        Some(username) => format!("@{username}"),
        None => user.first_name.clone(),
    }
}

fn store_failure(error: &crate::silence::sqlite::StoreError) -> String {
    error!(error = %error, "the silence or acknowledgement store failed");
    "The notifier could not read or write its state file; see its logs.".to_string()
}
