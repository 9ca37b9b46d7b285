//! When the daily report runs: a local time of day in a time zone.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Returns the first moment after `now` when the local clock in `time_zone`
/// shows `at`. On a day when `at` does not exist because clocks jump over
/// it, the result is the end of the gap. When `at` exists twice, it is the
/// first of the two.
pub fn next_run(now: DateTime<Utc>, at: NaiveTime, time_zone: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&time_zone).date_naive();
    for offset in 0..=2 {
        let day = today + Days::new(offset);
        let candidate = local_moment(day, at, time_zone);
        if candidate > now {
            return candidate;
        }
    }
    // Unreachable: one of three consecutive days is after `now`.
    now + chrono::TimeDelta::days(1)
}

/// Returns the UTC moment of `day` at `at` in `time_zone`.
fn local_moment(day: NaiveDate, at: NaiveTime, time_zone: Tz) -> DateTime<Utc> {
    let mut time = day.and_time(at);
    // DST gaps are at most two hours; step forward a minute at a time to
    // the first local time that exists.
    for _ in 0..=180 {
        match time_zone.from_local_datetime(&time) {
            LocalResult::Single(moment) | LocalResult::Ambiguous(moment, _) => return moment.with_timezone(&Utc),
            LocalResult::None => time += chrono::TimeDelta::minutes(1),
        }
    }
    Utc.from_utc_datetime(&day.and_time(at))
}

/// Returns the local calendar day before the one `now` falls on, which the
/// report summarises.
pub fn report_day(now: DateTime<Utc>, time_zone: Tz) -> NaiveDate {
    now.with_timezone(&time_zone).date_naive() - Days::new(1)
}

/// Returns the UTC bounds `[start, end)` of a local calendar day.
pub fn day_bounds(day: NaiveDate, time_zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        local_moment(day, NaiveTime::MIN, time_zone),
        local_moment(day + Days::new(1), NaiveTime::MIN, time_zone),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, hour, minute, 0).unwrap()
    }

    fn time(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).unwrap()
    }

    #[test]
    fn next_run_is_today_or_tomorrow() {
        let moscow = chrono_tz::Europe::Moscow;

        // 11:00 in Moscow is 08:00 UTC.
        assert_eq!(next_run(utc(12, 4, 7, 0), time(11, 0), moscow), utc(12, 4, 8, 0));
        assert_eq!(next_run(utc(12, 4, 8, 0), time(11, 0), moscow), utc(12, 5, 8, 0));
        assert_eq!(next_run(utc(12, 4, 22, 0), time(11, 0), moscow), utc(12, 5, 8, 0));
    }

    #[test]
    fn next_run_handles_dst_gap_and_shift() {
        let berlin = chrono_tz::Europe::Berlin;

        // 02:30 does not exist on 29 March 2026; the run moves to 03:00 CEST.
        assert_eq!(next_run(utc(3, 28, 23, 0), time(2, 30), berlin), utc(3, 29, 1, 0));
        // 11:00 is 10:00 UTC before the change and 09:00 UTC after it.
        assert_eq!(next_run(utc(3, 28, 12, 0), time(11, 0), berlin), utc(3, 29, 9, 0));
    }

    #[test]
    fn report_day_is_local_yesterday() {
        let moscow = chrono_tz::Europe::Moscow;

        // 22:30 UTC on 4 December is already 5 December in Moscow.
        assert_eq!(
            report_day(utc(12, 4, 22, 30), moscow),
            NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
        );
        let (start, end) = day_bounds(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(), moscow);
        assert_eq!((start, end), (utc(12, 3, 21, 0), utc(12, 4, 21, 0)));
    }
}
