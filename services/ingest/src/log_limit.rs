use std::time::{Duration, Instant};

/// Lets one log line through per interval and counts the lines it held
/// back, so a flood of rejected messages or client errors cannot flood the
/// log.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    interval: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            interval,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// Returns `Some(lines suppressed since the last logged one)` when a line
    /// may be logged at `now`, `None` when it must be dropped.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_first_line() {
        let mut limiter = LogLimiter::new(Duration::from_secs(1));
        assert_eq!(limiter.allow(Instant::now()), Some(0));
    }

    #[test]
    fn limiter_counts_suppressed_lines() {
        let start = Instant::now();
        let mut limiter = LogLimiter::new(Duration::from_secs(1));
        limiter.allow(start);

        assert_eq!(limiter.allow(start + Duration::from_millis(10)), None);
        assert_eq!(limiter.allow(start + Duration::from_millis(20)), None);
        assert_eq!(limiter.allow(start + Duration::from_secs(1)), Some(2));
        assert_eq!(limiter.allow(start + Duration::from_millis(1500)), None);
    }
}
