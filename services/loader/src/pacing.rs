use std::time::Duration;

use chrono::{DateTime, Utc};

/// Maps event times to wall-clock offsets from the start of a replay, so that
/// `speedup` seconds of event time pass per second of wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacer {
    first_event_time: DateTime<Utc>,
    speedup: f64,
}

impl Pacer {
    /// `speedup` of 0 (or below) replays as fast as the producer goes.
    pub fn new(first_event_time: DateTime<Utc>, speedup: f64) -> Pacer {
        Pacer {
            first_event_time,
            speedup,
        }
    }

    /// Wall-clock offset from the start at which an event of `event_time` is
    /// due, or `None` when the replay is unpaced.
    pub fn due_after(&self, event_time: DateTime<Utc>) -> Option<Duration> {
        if self.speedup <= 0.0 {
            return None;
        }
        let event_offset_ms = (event_time - self.first_event_time).num_milliseconds().max(0) as f64;
        Some(Duration::from_secs_f64(event_offset_ms / 1000.0 / self.speedup))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn speedup_scales_event_time() {
        let start = Utc.with_ymd_and_hms(2014, 7, 1, 0, 0, 0).unwrap();
        let pacer = Pacer::new(start, 3600.0);

        let due = pacer.due_after(start + chrono::Duration::hours(2)).unwrap();

        assert_eq!(due, Duration::from_secs(2));
    }

    #[test]
    fn zero_speedup_is_unpaced() {
        let start = Utc.with_ymd_and_hms(2014, 7, 1, 0, 0, 0).unwrap();

        assert_eq!(Pacer::new(start, 0.0).due_after(start), None);
    }

    #[test]
    fn events_before_start_due_at_once() {
        let start = Utc.with_ymd_and_hms(2014, 7, 1, 0, 0, 0).unwrap();
        let pacer = Pacer::new(start, 10.0);

        assert_eq!(
            pacer.due_after(start - chrono::Duration::hours(1)),
            Some(Duration::ZERO)
        );
    }
}
