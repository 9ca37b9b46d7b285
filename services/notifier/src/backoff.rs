//! Capped exponential backoff, shared by detector reconnects and Telegram
//! delivery retries.

use std::time::Duration;

/// Delays of `initial * 2^attempt`, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
}

impl ExponentialBackoff {
    /// Returns the delay before retry number `attempt`, counted from 0.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2_u32.checked_pow(attempt).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).unwrap_or(Duration::MAX).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: ExponentialBackoff = ExponentialBackoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    #[test]
    fn delay_doubles_per_attempt() {
        assert_eq!(BACKOFF.delay(0), Duration::from_millis(500));
        assert_eq!(BACKOFF.delay(1), Duration::from_secs(1));
        assert_eq!(BACKOFF.delay(2), Duration::from_secs(2));
        assert_eq!(BACKOFF.delay(5), Duration::from_secs(16));
    }

    #[test]
    fn delay_is_capped_at_max() {
        assert_eq!(BACKOFF.delay(6), Duration::from_secs(30));
        assert_eq!(BACKOFF.delay(40), Duration::from_secs(30));
        assert_eq!(BACKOFF.delay(u32::MAX), Duration::from_secs(30));
    }
}
