//! Sends the messages of a report (daily, forecast, A/B) within Telegram's
//! rate limits, retried like alerts.
//!
//! A report is several requests to the same chat in a row: text parts and a
//! chart. Sent back to back they exceed Telegram's limits (about one message
//! per second per chat, 20 per minute per group), and Telegram responds
//! with 429. Each request here waits for the [`RateLimiter`], and a failed one is
//! repeated as [`RetryPolicy`] decides: a 429 after its `retry_after`, a
//! network error after a backoff. A permanent error ends the report for that
//! chat.

use std::time::Instant;

use teloxide::RequestError;
use teloxide::requests::{Output, Request};
use tokio::sync::Mutex;
use tracing::warn;

use crate::config::{ChatTarget, TelegramConfig};
use crate::rate_limit::{RateLimiter, RateLimits};
use crate::retry::{FailureKind, RetryDecision, RetryPolicy};
use crate::telegram_error::{classify_request_error, describe_request_error};

/// Pacing and retries of one reporter's requests.
#[derive(Debug)]
pub struct ReportDelivery {
    /// Limiter of this reporter's requests.
    // NOTE: the alert queues and each reporter have limiters of their own, so
    // a report and alerts sent to one chat at the same moment can exceed its
    // limit briefly. Telegram then responds with 429, which is waited out.
    limiter: Mutex<RateLimiter>,
    policy: RetryPolicy,
    /// The bot token, only to strip it from errors.
    token: String,
}

impl ReportDelivery {
    pub fn new(limits: RateLimits, policy: RetryPolicy, token: &str) -> Self {
        Self {
            limiter: Mutex::new(RateLimiter::new(limits)),
            policy,
            token: token.to_string(),
        }
    }

    /// Creates the delivery of `telegram`'s bot, with its rate limits and the
    /// alert path's default retry policy.
    pub fn for_telegram(telegram: &TelegramConfig) -> Self {
        Self::new(telegram.rate_limits, RetryPolicy::default(), telegram.token.expose())
    }

    /// Sends the request that `build` makes to `chat`, building it again for
    /// each attempt. `request_name` names the request in errors and logs,
    /// e.g. "the report chart". Returns the error text of the last attempt,
    /// without the bot token, when the request was given up.
    pub async fn send<R, F>(&self, chat: &ChatTarget, request_name: &str, mut build: F) -> Result<Output<R>, String>
    where
        R: Request<Err = RequestError>,
        F: FnMut() -> R,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.acquire(chat).await;

            let result = build().send().await;
            self.limiter.lock().await.finish(chat, Instant::now());
            let error = match result {
                Ok(output) => return Ok(output),
                Err(error) => error,
            };

            let failure = classify_request_error(&error);
            let description = describe_request_error(&error, &self.token);
            match self.policy.decide(failure, attempts) {
                RetryDecision::Retry { delay } => {
                    warn!(
                        chat = %chat,
                        request = request_name,
                        attempt = attempts,
                        delay_ms = delay.as_millis() as u64,
                        error = %description,
                        "sending a report request failed; retrying"
                    );
                    if let FailureKind::RateLimited { .. } = failure {
                        self.limiter.lock().await.pause(chat, Instant::now() + delay);
                    } else {
                        tokio::time::sleep(delay).await;
                    }
                }
                RetryDecision::GiveUp(reason) => {
                    return Err(format!(
                        "sending {request_name} failed after {attempts} attempts ({reason}): {description}"
                    ));
                }
            }
        }
    }

    /// Waits until the limiter lets one more request to `chat` through.
    async fn acquire(&self, chat: &ChatTarget) {
        loop {
            let allowed_at = match self.limiter.lock().await.try_acquire(chat, Instant::now()) {
                Ok(()) => return,
                Err(allowed_at) => allowed_at,
            };
            tokio::time::sleep_until(allowed_at.into()).await;
        }
    }
}
