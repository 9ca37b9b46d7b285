//! Telegram's flood limits as a pure limiter. Callers pass the current time
//! in, so tests step a clock of their own and never sleep.
//!
//! Telegram Bot Support ("My bot is hitting limits, how do I avoid this?",
//! telegra.ph/Hitting-limits-bot-FAQ) gives the limits as about one message
//! per second in one chat, 20 messages per minute in one group and about 30
//! messages per second overall. Telegram publishes no exact algorithm.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::ChatTarget;

/// At most `max_requests` requests in any time span of length `window`;
/// `max_requests = 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub max_requests: u32,
    pub window: Duration,
}

impl WindowLimit {
    /// Returns the earliest time at or after `now` at which one more request
    /// keeps every `window`-long span of `log` at `max_requests` or fewer.
    /// `log` contains past request times, oldest first.
    fn next_allowed(&self, log: &VecDeque<Instant>, now: Instant) -> Instant {
        let max = self.max_requests as usize;
        if max == 0 || log.len() < max {
            return now;
        }
        // The request `max` places back must lie a whole window earlier.
        let oldest_in_window = log[log.len() - max];
        now.max(oldest_in_window + self.window)
    }
}

/// Request limits of one bot. Each request to a chat counts against the
/// chat's limits and against `overall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Limit of every chat.
    pub per_chat: WindowLimit,
    /// Additional limit of group chats, supergroups and channels: chats with
    /// a negative id or an `@username`.
    pub per_group: WindowLimit,
    /// Limit of all chats together.
    pub overall: WindowLimit,
}

impl Default for RateLimits {
    /// Telegram's published limits: 1 per second per chat, 20 per minute per
    /// group, 30 per second overall.
    fn default() -> Self {
        Self {
            per_chat: WindowLimit {
                max_requests: 1,
                window: Duration::from_secs(1),
            },
            per_group: WindowLimit {
                max_requests: 20,
                window: Duration::from_secs(60),
            },
            overall: WindowLimit {
                max_requests: 30,
                window: Duration::from_secs(1),
            },
        }
    }
}

impl RateLimits {
    /// Returns the limits with every window divided by `divisor` and the
    /// request counts unchanged, so that a test runs the same sending pattern
    /// `divisor` times faster.
    pub fn with_windows_divided_by(self, divisor: u32) -> Self {
        let divisor = divisor.max(1);
        let scale = |limit: WindowLimit| WindowLimit {
            window: limit.window / divisor,
            ..limit
        };
        Self {
            per_chat: scale(self.per_chat),
            per_group: scale(self.per_group),
            overall: scale(self.overall),
        }
    }
}

/// Request times and pause of one chat.
#[derive(Debug, Default)]
struct ChatLog {
    /// Times of the latest requests, oldest first, as many as the chat's
    /// largest `max_requests`.
    requests: VecDeque<Instant>,
    /// No request before this time, after a 429's `retry_after`.
    paused_until: Option<Instant>,
}

/// Sliding-window limiter over [`RateLimits`].
///
/// A sliding window, unlike a token bucket of the same rate, caps the
/// requests in every window: a bucket of 20 tokens refilled at one per 3 s
/// lets about 40 requests through within some 60 s span.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    chats: HashMap<ChatTarget, ChatLog>,
    /// Times of the latest requests to any chat, oldest first.
    overall: VecDeque<Instant>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            chats: HashMap::new(),
            overall: VecDeque::new(),
        }
    }

    /// Records a request to `chat` at `now` and returns `Ok` when every limit
    /// allows it. Otherwise records nothing and returns the earliest time to
    /// ask again.
    pub fn try_acquire(&mut self, chat: &ChatTarget, now: Instant) -> Result<(), Instant> {
        let chat_limits = self.chat_limits(chat);
        let log = self.chats.entry(chat.clone()).or_default();

        let mut allowed_at = self.limits.overall.next_allowed(&self.overall, now);
        for limit in &chat_limits {
            allowed_at = allowed_at.max(limit.next_allowed(&log.requests, now));
        }
        if let Some(paused_until) = log.paused_until {
            allowed_at = allowed_at.max(paused_until);
        }
        if allowed_at > now {
            return Err(allowed_at);
        }

        let log_capacity = chat_limits
            .iter()
            .map(|limit| limit.max_requests as usize)
            .max()
            .unwrap_or(0);
        push_bounded(&mut log.requests, now, log_capacity);
        push_bounded(&mut self.overall, now, self.limits.overall.max_requests as usize);
        Ok(())
    }

    /// Moves the latest request to `chat` to `finished`, the time its
    /// response arrived. Telegram counts a request when it arrives, somewhere
    /// between the start and the response, so counting from the response
    /// keeps the next request a full window away despite network jitter.
    ///
    /// Callers send to one chat one request at a time, so the latest request
    /// is the finished one. The overall log keeps start times, because
    /// requests to different chats overlap.
    pub fn finish(&mut self, chat: &ChatTarget, finished: Instant) {
        let Some(latest) = self.chats.get_mut(chat).and_then(|log| log.requests.back_mut()) else {
            return;
        };
        *latest = (*latest).max(finished);
    }

    /// Holds back every request to `chat` until `until`, as a 429's
    /// `retry_after` requests. A later pause replaces an earlier one only if
    /// it ends later.
    pub fn pause(&mut self, chat: &ChatTarget, until: Instant) {
        let log = self.chats.entry(chat.clone()).or_default();
        log.paused_until = Some(log.paused_until.map_or(until, |paused| paused.max(until)));
    }

    fn chat_limits(&self, chat: &ChatTarget) -> Vec<WindowLimit> {
        if chat.is_group() {
            vec![self.limits.per_chat, self.limits.per_group]
        } else {
            vec![self.limits.per_chat]
        }
    }
}

fn push_bounded(log: &mut VecDeque<Instant>, time: Instant, capacity: usize) {
    log.push_back(time);
    while log.len() > capacity {
        log.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: ChatTarget = ChatTarget::Id(1001);
    const GROUP: ChatTarget = ChatTarget::Id(-1001234567890);

    fn seconds(value: f64) -> Duration {
        Duration::from_secs_f64(value)
    }

    /// Sends to `chat` as early as the limiter allows, `count` times, and
    /// returns the send times as offsets from `start`.
    fn send_greedily(limiter: &mut RateLimiter, chat: &ChatTarget, start: Instant, count: usize) -> Vec<Duration> {
        let mut now = start;
        let mut sent = Vec::new();
        while sent.len() < count {
            match limiter.try_acquire(chat, now) {
                Ok(()) => sent.push(now - start),
                Err(retry_at) => {
                    assert!(retry_at > now, "retry time {retry_at:?} is not after {now:?}");
                    now = retry_at;
                }
            }
        }
        sent
    }

    /// Returns the largest number of `times` inside any half-open span
    /// `[t, t + window)`.
    fn max_in_any_window(times: &[Duration], window: Duration) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|time| **time >= *start && **time < *start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn private_chat_gets_one_per_second() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let start = Instant::now();

        let sent = send_greedily(&mut limiter, &PRIVATE, start, 5);

        assert_eq!(sent, [0.0, 1.0, 2.0, 3.0, 4.0].map(seconds));
    }

    #[test]
    fn group_chat_gets_twenty_per_minute() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let start = Instant::now();

        let sent = send_greedily(&mut limiter, &GROUP, start, 60);

        assert_eq!(max_in_any_window(&sent, seconds(60.0)), 20);
        assert_eq!(max_in_any_window(&sent, seconds(1.0)), 1);
        // 20 at one per second, then the next 20 a minute after the first.
        assert_eq!(sent[19], seconds(19.0));
        assert_eq!(sent[20], seconds(60.0));
        assert_eq!(sent[40], seconds(120.0));
        assert_eq!(sent[59], seconds(139.0));
    }

    #[test]
    fn username_chat_counts_as_group() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let channel = ChatTarget::Username("@seismo_alerts".to_string());

        let sent = send_greedily(&mut limiter, &channel, Instant::now(), 21);

        assert_eq!(sent[20], seconds(60.0));
    }

    #[test]
    fn overall_limit_spans_chats() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let now = Instant::now();

        let accepted = (1..=40)
            .filter(|id| limiter.try_acquire(&ChatTarget::Id(*id), now).is_ok())
            .count();
        let next = limiter.try_acquire(&ChatTarget::Id(41), now);

        assert_eq!(accepted, 30);
        assert_eq!(next, Err(now + seconds(1.0)));
    }

    #[test]
    fn chats_do_not_share_per_chat_limit() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let now = Instant::now();

        assert_eq!(limiter.try_acquire(&PRIVATE, now), Ok(()));
        assert_eq!(limiter.try_acquire(&GROUP, now), Ok(()));
        assert_eq!(limiter.try_acquire(&PRIVATE, now), Err(now + seconds(1.0)));
    }

    #[test]
    fn rejected_request_is_not_recorded() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let now = Instant::now();
        limiter.try_acquire(&PRIVATE, now).unwrap();

        for _ in 0..5 {
            assert!(limiter.try_acquire(&PRIVATE, now + seconds(0.5)).is_err());
        }

        assert_eq!(limiter.try_acquire(&PRIVATE, now + seconds(1.0)), Ok(()));
    }

    #[test]
    fn finish_counts_from_response() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let now = Instant::now();
        limiter.try_acquire(&PRIVATE, now).unwrap();

        limiter.finish(&PRIVATE, now + seconds(0.3));

        assert_eq!(
            limiter.try_acquire(&PRIVATE, now + seconds(1.0)),
            Err(now + seconds(1.3))
        );
    }

    #[test]
    fn pause_holds_back_one_chat() {
        let mut limiter = RateLimiter::new(RateLimits::default());
        let now = Instant::now();

        limiter.pause(&PRIVATE, now + seconds(7.0));
        limiter.pause(&PRIVATE, now + seconds(2.0));

        assert_eq!(limiter.try_acquire(&PRIVATE, now), Err(now + seconds(7.0)));
        assert_eq!(limiter.try_acquire(&GROUP, now), Ok(()));
        assert_eq!(limiter.try_acquire(&PRIVATE, now + seconds(7.0)), Ok(()));
    }

    #[test]
    fn divided_windows_keep_counts() {
        let limits = RateLimits::default().with_windows_divided_by(20);

        assert_eq!(limits.per_group.max_requests, 20);
        assert_eq!(limits.per_group.window, seconds(3.0));
        assert_eq!(limits.per_chat.window, seconds(0.05));
        assert_eq!(limits.overall.window, seconds(0.05));
    }
}
