use std::time::Duration;

/// Exponential backoff between retries: `initial_backoff`, doubled after
/// each failed attempt, capped at `max_backoff`. Retries never stop on their
/// own; only shutdown ends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Returns the wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        // 2^31 times any positive duration exceeds every sensible cap, so
        // clamping the exponent avoids overflow without changing results.
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial_backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn backoff_doubles_from_initial() {
        let policy = policy(100, 10_000);
        let waits: Vec<u128> = (1..=5).map(|attempt| policy.backoff(attempt).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600]);
    }

    #[test]
    fn backoff_caps_at_max() {
        let policy = policy(100, 1_000);
        assert_eq!(policy.backoff(5), Duration::from_millis(1_000));
        assert_eq!(policy.backoff(60), Duration::from_millis(1_000));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(1_000));
    }

    #[test]
    fn backoff_attempt_zero_is_initial() {
        assert_eq!(policy(100, 1_000).backoff(0), Duration::from_millis(100));
    }
}
