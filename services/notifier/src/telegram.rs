//! Sends alerts to Telegram chats through the Bot API (teloxide).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};
use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{ChatId, InlineKeyboardMarkup, InputFile, ParseMode, Recipient};
use teloxide::{ApiError, Bot, RequestError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{ChatTarget, TelegramConfig};
use crate::message::AlertMessage;
use crate::message_split::{MAX_CAPTION_UTF16, MAX_MESSAGE_UTF16};
use crate::prometheus_metrics::{RETRY_RATE_LIMITED, RETRY_TRANSIENT};
use crate::rate_limit::RateLimiter;
use crate::retry::{FailureKind, RetryDecision, RetryPolicy};
use crate::sink::{Alert, AlertSink, DeliveryError};
use crate::stats::NotifierStats;
use crate::telegram_error::{classify_request_error, describe_request_error, retry_after};

/// Sends each alert as an HTML message to every configured chat, retrying
/// each chat on its own under a [`RetryPolicy`] and pacing every request
/// under the configured [`crate::RateLimits`].
pub struct TelegramSink {
    bot: Bot,
    chats: Vec<ChatTarget>,
    policy: RetryPolicy,
    stats: Arc<NotifierStats>,
    /// Locked only between awaits, never across one.
    limiter: Mutex<RateLimiter>,
}

impl TelegramSink {
    /// Creates the Bot API client. Each retry is counted in `stats` as it
    /// happens.
    pub fn new(config: &TelegramConfig, policy: RetryPolicy, stats: Arc<NotifierStats>) -> Self {
        let bot = Bot::new(config.token.expose()).set_api_url(config.api_url.clone());
        Self {
            bot,
            chats: config.chats.clone(),
            policy,
            stats,
            limiter: Mutex::new(RateLimiter::new(config.rate_limits)),
        }
    }

    /// Waits until the rate limits allow a request to `chat` and records it.
    /// Returns `false` when `abort` fired first.
    async fn wait_for_send_slot(&self, chat: &ChatTarget, abort: &CancellationToken) -> bool {
        loop {
            let allowed = self.limiter().try_acquire(chat, Instant::now());
            let retry_at = match allowed {
                Ok(()) => return true,
                Err(retry_at) => retry_at,
            };

            debug!(
                chat = %chat,
                wait_ms = retry_at.saturating_duration_since(Instant::now()).as_millis() as u64,
                "waiting for the Telegram rate limit"
            );
            tokio::select! {
                () = tokio::time::sleep_until(retry_at.into()) => {}
                () = abort.cancelled() => return false,
            }
        }
    }

    /// Holds back further requests to `chat` for a 429's `retry_after`.
    fn pause_chat(&self, chat: &ChatTarget, retry_after: Duration) {
        self.limiter().pause(chat, Instant::now() + retry_after);
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, RateLimiter> {
        // The limiter's state stays consistent even if a holder panicked,
        // because every update is a single push or assignment.
        self.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the alert to one chat, in parts of at most
    /// [`MAX_MESSAGE_UTF16`] visible characters, until every part is
    /// delivered, the policy gives up on one or `abort` fires. Returns whether
    /// the chat received every part. Parts after a failed one are not sent.
    /// With a chart, the alert goes out as a photo with the text as caption
    /// when the text fits [`MAX_CAPTION_UTF16`]. A longer text goes as a photo
    /// captioned with its first line, followed by the text. When the photo
    /// fails, the text goes alone.
    async fn send_to_chat(&self, chat: &ChatTarget, alert: &Alert, abort: &CancellationToken) -> bool {
        let buttons = alert.buttons.as_ref();
        if let Some(chart) = &alert.chart {
            let fits = alert.message.visible_utf16_len() <= MAX_CAPTION_UTF16;
            let caption = if fits {
                alert.message.clone()
            } else {
                first_line(&alert.message)
            };
            let caption_buttons = if fits { buttons } else { None };
            let photo = Photo { png: chart };
            let single = PartPosition { number: 1, count: 1 };
            let sent = self
                .send_part(chat, alert, &caption, Some(photo), caption_buttons, single, abort)
                .await;
            if sent && fits {
                return true;
            }
            if !sent {
                if abort.is_cancelled() {
                    return false;
                }
                warn!(chat = %chat, episode_id = %alert.episode_id, "sending the alert chart failed; sending the text alone");
            }
        }

        let parts = alert.message.split(MAX_MESSAGE_UTF16);
        if parts.len() > 1 {
            info!(
                chat = %chat, episode_id = %alert.episode_id, parts = parts.len(),
                visible_utf16_len = alert.message.visible_utf16_len(),
                "alert is longer than one Telegram message; sending it in parts"
            );
        }

        for (index, part) in parts.iter().enumerate() {
            let position = PartPosition {
                number: index + 1,
                count: parts.len(),
            };
            let markup = if position.number == position.count {
                buttons
            } else {
                None
            };
            if !self.send_part(chat, alert, part, None, markup, position, abort).await {
                return false;
            }
        }
        true
    }

    /// Sends one part, as a text message or as a photo with the part as
    /// caption, until it is delivered, the policy gives up or `abort` fires.
    /// When Telegram cannot parse the HTML, the part is sent once more as
    /// plain text, without `parse_mode`.
    #[allow(clippy::too_many_arguments)]
    async fn send_part(
        &self,
        chat: &ChatTarget,
        alert: &Alert,
        part: &AlertMessage,
        photo: Option<Photo<'_>>,
        buttons: Option<&InlineKeyboardMarkup>,
        position: PartPosition,
        abort: &CancellationToken,
    ) -> bool {
        let started = Instant::now();
        let mut attempts = 0;
        let mut plain_text = false;

        loop {
            if abort.is_cancelled() || !self.wait_for_send_slot(chat, abort).await {
                log_abandoned(chat, alert, attempts);
                return false;
            }
            attempts += 1;

            // NOTE: teloxide-core 0.13 sleeps 10 s inside the request after any
            // 5xx, before the retry delay starts. A request that timed out
            // (reqwest's 17 s default) may have reached Telegram, so its retry
            // can post the alert twice.
            let request = self.request(chat, part, photo.as_ref(), buttons, plain_text);
            let result = tokio::select! {
                result = request => result,
                () = abort.cancelled() => {
                    log_abandoned(chat, alert, attempts);
                    return false;
                }
            };
            self.limiter().finish(chat, Instant::now());

            let error = match result {
                Ok(()) => {
                    debug!(
                        chat = %chat, episode_id = %alert.episode_id, attempts,
                        part = position.number, parts = position.count, plain_text, photo = photo.is_some(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "alert sent to Telegram"
                    );
                    return true;
                }
                Err(error) => error,
            };
            let description = describe_request_error(&error, self.bot.token());

            if !plain_text && is_entity_parse_error(&error) {
                warn!(
                    chat = %chat, episode_id = %alert.episode_id, attempt = attempts,
                    part = position.number, parts = position.count, error = %description,
                    "Telegram could not parse the alert's HTML; sending it as plain text"
                );
                self.stats.record_plain_text_fallback();
                plain_text = true;
                continue;
            }

            let failure = classify_request_error(&error);
            if let FailureKind::RateLimited { retry_after } = failure {
                self.pause_chat(chat, retry_after);
            }
            match self.policy.decide(failure, attempts) {
                RetryDecision::Retry { delay } => {
                    warn!(
                        chat = %chat, episode_id = %alert.episode_id, attempt = attempts,
                        part = position.number, parts = position.count,
                        delay_ms = delay.as_millis() as u64,
                        retry_after_s = retry_after(&error).map(|wait| wait.as_secs()),
                        error = %description,
                        "Telegram request failed; retrying"
                    );
                    self.stats.record_retry(retry_reason(failure));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = abort.cancelled() => {}
                    }
                }
                RetryDecision::GiveUp(reason) => {
                    error!(
                        chat = %chat, episode_id = %alert.episode_id, attempts,
                        part = position.number, parts = position.count,
                        reason = %reason, error = %description,
                        "Telegram request failed; the chat did not receive the alert"
                    );
                    return false;
                }
            }
        }
    }
}

impl TelegramSink {
    /// Builds one `sendMessage` or `sendPhoto` request for `part`.
    fn request(
        &self,
        chat: &ChatTarget,
        part: &AlertMessage,
        photo: Option<&Photo<'_>>,
        buttons: Option<&InlineKeyboardMarkup>,
        plain_text: bool,
    ) -> BoxFuture<'static, Result<(), RequestError>> {
        let text = if plain_text { part.plain_text() } else { part.html() };
        match photo {
            Some(photo) => {
                let file = InputFile::memory(photo.png.to_vec()).file_name("chart.png");
                let mut request = self.bot.send_photo(recipient(chat), file).caption(text);
                if !plain_text {
                    request = request.parse_mode(ParseMode::Html);
                }
                if let Some(buttons) = buttons {
                    request = request.reply_markup(buttons.clone());
                }
                Box::pin(async move { request.send().await.map(drop) })
            }
            None => {
                let mut request = self.bot.send_message(recipient(chat), text);
                if !plain_text {
                    request = request.parse_mode(ParseMode::Html);
                }
                if let Some(buttons) = buttons {
                    request = request.reply_markup(buttons.clone());
                }
                Box::pin(async move { request.send().await.map(drop) })
            }
        }
    }
}

/// A PNG chart to send as a photo.
#[derive(Clone, Copy)]
struct Photo<'a> {
    png: &'a [u8],
}

/// Returns the first line of `message`'s visible text as an unstyled message,
/// for a photo caption when the whole text is too long for one.
fn first_line(message: &AlertMessage) -> AlertMessage {
    let text = message.plain_text();
    let mut caption = AlertMessage::default();
    caption.plain(text.lines().next().unwrap_or_default().to_string());
    caption
}

/// Position of a part among the parts of one alert, counted from 1.
#[derive(Debug, Clone, Copy)]
struct PartPosition {
    number: usize,
    count: usize,
}

impl AlertSink for TelegramSink {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn sends_to_chats(&self) -> bool {
        true
    }

    fn deliver<'a>(
        &'a self,
        alert: &'a Alert,
        abort: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            // The pipeline queues alerts per chat and names the chat. Without
            // one, the configured chats are sent to concurrently, so that one
            // chat's 429 does not hold back the others within this alert.
            let chats = match &alert.chat {
                Some(chat) => std::slice::from_ref(chat),
                None => self.chats.as_slice(),
            };
            let sends = chats.iter().map(|chat| self.send_to_chat(chat, alert, abort));
            let delivered = join_all(sends).await;

            let failed = delivered.iter().filter(|ok| !**ok).count();
            if failed == 0 {
                Ok(())
            } else {
                Err(DeliveryError::Telegram {
                    failed,
                    total: chats.len(),
                })
            }
        })
    }
}

fn log_abandoned(chat: &ChatTarget, alert: &Alert, attempts: u32) {
    error!(
        chat = %chat, episode_id = %alert.episode_id, attempts,
        "Telegram delivery abandoned at shutdown; the chat did not receive the alert"
    );
}

/// Returns the `reason` label of a retry after `failure`.
fn retry_reason(failure: FailureKind) -> &'static str {
    match failure {
        FailureKind::RateLimited { .. } => RETRY_RATE_LIMITED,
        // A permanent failure is never retried, so this arm labels transient ones only.
        FailureKind::Transient | FailureKind::Permanent => RETRY_TRANSIENT,
    }
}

/// Returns whether Telegram rejected the message's HTML ("Bad Request: can't
/// parse entities: …").
fn is_entity_parse_error(error: &RequestError) -> bool {
    matches!(error, RequestError::Api(ApiError::CantParseEntities(_)))
}

/// Returns the Bot API recipient of `chat`.
pub(crate) fn recipient(chat: &ChatTarget) -> Recipient {
    match chat {
        ChatTarget::Id(id) => Recipient::Id(ChatId(*id)),
        ChatTarget::Username(name) => Recipient::ChannelUsername(name.clone()),
    }
}
