//! When the weekly forecast report runs: a weekday and local time of day in
//! a time zone.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::report::schedule::next_run;

/// Returns the first moment after `now` when the local clock in `time_zone`
/// shows `at` on `weekday`. DST gaps and repeats are handled as in
/// [`next_run`].
pub fn next_weekly_run(now: DateTime<Utc>, weekday: Weekday, at: NaiveTime, time_zone: Tz) -> DateTime<Utc> {
    let mut candidate = next_run(now, at, time_zone);
    // Daily candidates visit every weekday within seven steps.
    for _ in 0..7 {
        if candidate.with_timezone(&time_zone).weekday() == weekday {
            return candidate;
        }
        candidate = next_run(candidate, at, time_zone);
    }
    candidate
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, hour, minute, 0).unwrap()
    }

    fn ten() -> NaiveTime {
        NaiveTime::from_hms_opt(10, 0, 0).unwrap()
    }

    #[test]
    fn weekly_run_is_next_matching_weekday() {
        let moscow = chrono_tz::Europe::Moscow;

        // Friday 4 December 2026; the next Monday is 7 December, 10:00 in
        // Moscow is 07:00 UTC.
        assert_eq!(
            next_weekly_run(utc(12, 4, 12, 0), Weekday::Mon, ten(), moscow),
            utc(12, 7, 7, 0)
        );
        // On Monday before 10:00 the run is the same day, after it a week later.
        assert_eq!(
            next_weekly_run(utc(12, 7, 6, 59), Weekday::Mon, ten(), moscow),
            utc(12, 7, 7, 0)
        );
        assert_eq!(
            next_weekly_run(utc(12, 7, 7, 0), Weekday::Mon, ten(), moscow),
            utc(12, 14, 7, 0)
        );
    }

    #[test]
    fn weekly_run_uses_local_weekday() {
        let tokyo = chrono_tz::Asia::Tokyo;

        // 20:00 UTC on Sunday 6 December is already Monday 05:00 in Tokyo,
        // so Monday 10:00 there is 01:00 UTC on 7 December.
        assert_eq!(
            next_weekly_run(utc(12, 6, 20, 0), Weekday::Mon, ten(), tokyo),
            utc(12, 7, 1, 0)
        );
    }
}
