//! Retry decisions for failed Telegram requests: whether to send again, and
//! after which delay.
//!
//! [`RetryPolicy::decide`] is pure. The Telegram sink classifies the error
//! into a [`FailureKind`], calls it for a [`RetryDecision`] and then sleeps.

use std::fmt;
use std::time::Duration;

use crate::backoff::ExponentialBackoff;

/// Retry class of a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// HTTP 429: Telegram requests a wait of `retry_after` before the next request.
    RateLimited { retry_after: Duration },
    /// Network error, timeout, 5xx or an unreadable response: a later attempt
    /// may succeed.
    Transient,
    /// The request itself is wrong (400 bad request, 401, 403, chat migrated):
    /// repeating it would fail the same way.
    Permanent,
}

/// The outcome of [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Send the request again after `delay`.
    Retry { delay: Duration },
    /// Stop and count the alert as failed.
    GiveUp(GiveUpReason),
}

/// Reason a delivery stopped being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The error is permanent.
    Permanent,
    /// `max_attempts` requests failed.
    AttemptsExhausted,
    /// Telegram requested a wait longer than `max_retry_after`.
    RetryAfterTooLong,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            GiveUpReason::Permanent => "permanent error",
            GiveUpReason::AttemptsExhausted => "attempts exhausted",
            GiveUpReason::RetryAfterTooLong => "retry_after above the configured maximum",
        })
    }
}

/// Retry limits of one message to one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per message and chat, the first included.
    pub max_attempts: u32,
    /// Delays between attempts after transient failures.
    pub backoff: ExponentialBackoff,
    /// Longest `retry_after` of a 429 that is waited for. A longer one gives
    /// up, because delivery is sequential and the wait would hold back every
    /// later alert.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            backoff: ExponentialBackoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            max_retry_after: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// Decides what follows when request number `attempts` (1 for the first)
    /// failed with `failure`. A 429 waits exactly its `retry_after`, and a
    /// transient failure waits `backoff.delay(attempts - 1)`.
    pub fn decide(&self, failure: FailureKind, attempts: u32) -> RetryDecision {
        match failure {
            FailureKind::Permanent => RetryDecision::GiveUp(GiveUpReason::Permanent),
            _ if attempts >= self.max_attempts => RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted),
            FailureKind::RateLimited { retry_after } if retry_after > self.max_retry_after => {
                RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong)
            }
            FailureKind::RateLimited { retry_after } => RetryDecision::Retry { delay: retry_after },
            FailureKind::Transient => RetryDecision::Retry {
                delay: self.backoff.delay(attempts.saturating_sub(1)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            backoff: ExponentialBackoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(3),
            },
            max_retry_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn permanent_failure_gives_up_at_once() {
        assert_eq!(
            policy().decide(FailureKind::Permanent, 1),
            RetryDecision::GiveUp(GiveUpReason::Permanent)
        );
    }

    #[test]
    fn rate_limit_waits_retry_after() {
        let failure = FailureKind::RateLimited {
            retry_after: Duration::from_secs(7),
        };

        assert_eq!(
            policy().decide(failure, 1),
            RetryDecision::Retry {
                delay: Duration::from_secs(7)
            }
        );
        assert_eq!(
            policy().decide(failure, 3),
            RetryDecision::Retry {
                delay: Duration::from_secs(7)
            }
        );
    }

    #[test]
    fn rate_limit_above_maximum_gives_up() {
        let failure = FailureKind::RateLimited {
            retry_after: Duration::from_secs(61),
        };

        assert_eq!(
            policy().decide(failure, 1),
            RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong)
        );
    }

    #[test]
    fn transient_failure_backs_off_up_to_cap() {
        let delays: Vec<RetryDecision> = (1..=3)
            .map(|attempts| policy().decide(FailureKind::Transient, attempts))
            .collect();

        assert_eq!(
            delays,
            [1, 2, 3].map(|seconds| RetryDecision::Retry {
                delay: Duration::from_secs(seconds)
            })
        );
    }

    #[test]
    fn last_attempt_gives_up() {
        assert_eq!(
            policy().decide(FailureKind::Transient, 4),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            policy().decide(
                FailureKind::RateLimited {
                    retry_after: Duration::from_secs(1)
                },
                4
            ),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn single_attempt_policy_never_retries() {
        let policy = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };

        assert_eq!(
            policy.decide(FailureKind::Transient, 1),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }
}
