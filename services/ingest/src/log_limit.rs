use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;

/// Shortest time between two logged Kafka client errors. librdkafka reports
/// an unreachable broker many times a second.
const CLIENT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);

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

/// Kafka client errors (such as all brokers down), logged at most once per
/// [`CLIENT_ERROR_LOG_INTERVAL`] with the number held back since.
#[derive(Debug)]
pub(crate) struct ClientErrorLog {
    limiter: Mutex<LogLimiter>,
    /// Name of the reporting client in the log, e.g. `consumer`.
    client: &'static str,
}

impl ClientErrorLog {
    pub fn new(client: &'static str) -> ClientErrorLog {
        ClientErrorLog {
            limiter: Mutex::new(LogLimiter::new(CLIENT_ERROR_LOG_INTERVAL)),
            client,
        }
    }

    pub fn log(&self, error: &KafkaError, reason: &str) {
        let allowed = self
            .limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .allow(Instant::now());
        if let Some(suppressed) = allowed {
            tracing::error!(client = self.client, %error, reason, suppressed, "Kafka client error");
        }
    }
}

/// Producer context whose only change from the default is the
/// rate-limited error log.
impl ClientContext for ClientErrorLog {
    fn error(&self, error: KafkaError, reason: &str) {
        self.log(&error, reason);
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
