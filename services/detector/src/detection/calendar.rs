//! Window numbers of "the same local time one day or one week earlier" in a
//! configured time zone, so a daylight saving change does not move a
//! series' daily reference by an hour.
//!
//! Window n starts at `n · window_ms + phase_ms` (UTC). Its reference one
//! period p earlier is the window whose local start time is p before n's
//! local start time. With offsets o(t) = local − UTC, that window starts at
//! r with r + o(r) = t + o(t) − p. One correction step from r₀ = t − p
//! solves this except inside the hour a clock change skips or repeats,
//! where it lands on the nearest existing time. The start is then rounded
//! to the nearest window, so daily windows stay on their day.

use chrono::{DateTime, Offset, TimeZone as _};

use super::params::TimeZone;

pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const WEEK_MS: i64 = 7 * DAY_MS;

/// Converts window numbers to local times and back for one series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calendar {
    time_zone: TimeZone,
    window_ms: i64,
    phase_ms: i64,
}

impl Calendar {
    pub fn new(time_zone: TimeZone, window_ms: i64) -> Calendar {
        Calendar {
            time_zone,
            window_ms,
            phase_ms: 0,
        }
    }

    /// Sets the offset of window starts within `window_ms`, taken from the
    /// series' first window.
    pub fn set_phase(&mut self, phase_ms: i64) {
        self.phase_ms = phase_ms;
    }

    /// True when local time is UTC, so every lag is a fixed number of windows.
    pub fn is_utc(&self) -> bool {
        self.time_zone.is_utc()
    }

    /// Offset of local time from UTC at `utc_ms`, in ms.
    pub fn offset_ms(&self, utc_ms: i64) -> i64 {
        if self.is_utc() {
            return 0;
        }
        let Some(time) = DateTime::from_timestamp_millis(utc_ms) else {
            return 0;
        };
        let offset = self.time_zone.0.offset_from_utc_datetime(&time.naive_utc());
        i64::from(offset.fix().local_minus_utc()) * 1000
    }

    /// Number of the window at the same local time `period_ms` before window `number`.
    pub fn lag(&self, number: i64, period_ms: i64) -> i64 {
        let fixed = number - period_ms / self.window_ms;
        if self.is_utc() {
            return fixed;
        }

        let start_ms = number * self.window_ms + self.phase_ms;
        let guess_ms = start_ms - period_ms;
        let reference_ms = guess_ms + self.offset_ms(start_ms) - self.offset_ms(guess_ms);
        let shift_ms = reference_ms - guess_ms;
        fixed + round_div(shift_ms, self.window_ms)
    }

    /// True when local time moved against UTC within the `period_ms` before
    /// the start of window `number`, so that span had a clock change.
    pub fn clock_changed(&self, number: i64, period_ms: i64) -> bool {
        if self.is_utc() {
            return false;
        }
        let start_ms = number * self.window_ms + self.phase_ms;
        self.offset_ms(start_ms) != self.offset_ms(start_ms - period_ms)
    }

    /// Index of the local calendar day containing the start of window `number`.
    pub fn local_day(&self, number: i64) -> i64 {
        let start_ms = number * self.window_ms + self.phase_ms;
        (start_ms + self.offset_ms(start_ms)).div_euclid(DAY_MS)
    }

    /// Most windows a lag can reach beyond its fixed length: one hour of
    /// clock change, rounded up to whole windows. 0 in UTC.
    pub fn lag_slack(&self) -> usize {
        if self.is_utc() {
            0
        } else {
            (3_600_000 + self.window_ms - 1).div_euclid(self.window_ms) as usize
        }
    }
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero.
fn round_div(numerator: i64, denominator: i64) -> i64 {
    let half = denominator / 2;
    if numerator >= 0 {
        (numerator + half).div_euclid(denominator)
    } else {
        -((-numerator + half).div_euclid(denominator))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF_HOUR_MS: i64 = 1_800_000;
    /// Berlin switches to summer time on 2026-03-29 at 01:00 UTC.
    const BERLIN_SUMMER_TIME_MS: i64 = 1_774_746_000_000;
    /// Berlin switches back to winter time on 2026-10-25 at 01:00 UTC.
    const BERLIN_WINTER_TIME_MS: i64 = 1_792_890_000_000;

    fn berlin(window_ms: i64) -> Calendar {
        Calendar::new("Europe/Berlin".parse().unwrap(), window_ms)
    }

    fn number_at(utc_ms: i64, window_ms: i64) -> i64 {
        utc_ms.div_euclid(window_ms)
    }

    #[test]
    fn utc_lags_are_fixed() {
        let calendar = Calendar::new(TimeZone::default(), HALF_HOUR_MS);
        assert_eq!(calendar.lag(1_000, DAY_MS), 952);
        assert_eq!(calendar.lag(1_000, WEEK_MS), 664);
        assert_eq!(calendar.lag_slack(), 0);
    }

    #[test]
    fn day_after_spring_change_keeps_local_time() {
        // 2026-03-29 12:00 Berlin summer time is 10:00 UTC; a day earlier
        // 12:00 Berlin winter time was 11:00 UTC, 23 hours before.
        let calendar = berlin(HALF_HOUR_MS);
        let noon_ms = BERLIN_SUMMER_TIME_MS + 9 * 3_600_000;
        let number = number_at(noon_ms, HALF_HOUR_MS);
        assert_eq!(calendar.lag(number, DAY_MS), number - 46);
        assert_eq!(calendar.lag(number, WEEK_MS), number - 7 * 48 + 2);
    }

    #[test]
    fn day_after_autumn_change_keeps_local_time() {
        // 2026-10-25 12:00 Berlin winter time is 11:00 UTC; a day earlier
        // 12:00 summer time was 10:00 UTC, 25 hours before.
        let calendar = berlin(HALF_HOUR_MS);
        let noon_ms = BERLIN_WINTER_TIME_MS + 10 * 3_600_000;
        let number = number_at(noon_ms, HALF_HOUR_MS);
        assert_eq!(calendar.lag(number, DAY_MS), number - 50);
    }

    #[test]
    fn lags_away_from_changes_are_fixed() {
        let calendar = berlin(HALF_HOUR_MS);
        let number = number_at(BERLIN_SUMMER_TIME_MS + 3 * DAY_MS, HALF_HOUR_MS);
        assert_eq!(calendar.lag(number, DAY_MS), number - 48);
        assert_eq!(calendar.lag(number, WEEK_MS), number - 336 + 2);
        let number = number_at(BERLIN_SUMMER_TIME_MS + 8 * DAY_MS, HALF_HOUR_MS);
        assert_eq!(calendar.lag(number, WEEK_MS), number - 336);
    }

    #[test]
    fn daily_windows_stay_on_their_day() {
        let calendar = berlin(DAY_MS);
        let number = number_at(BERLIN_SUMMER_TIME_MS + DAY_MS, DAY_MS);
        assert_eq!(calendar.lag(number, DAY_MS), number - 1);
        assert_eq!(calendar.lag(number, WEEK_MS), number - 7);
    }

    #[test]
    fn clock_change_found_within_period() {
        let calendar = berlin(HALF_HOUR_MS);
        let change = number_at(BERLIN_SUMMER_TIME_MS, HALF_HOUR_MS);
        let windows_per_day = DAY_MS / HALF_HOUR_MS;

        assert!(calendar.clock_changed(change, DAY_MS));
        assert!(calendar.clock_changed(change + 7 * windows_per_day, 8 * DAY_MS));
        assert!(!calendar.clock_changed(change + 9 * windows_per_day, 8 * DAY_MS));
        assert!(!calendar.clock_changed(change - 1, 8 * DAY_MS));
        assert!(!Calendar::new(TimeZone::default(), HALF_HOUR_MS).clock_changed(change, 8 * DAY_MS));
    }

    #[test]
    fn local_day_changes_at_local_midnight() {
        // 2026-03-29 22:00 UTC is 00:00 on 2026-03-30 in Berlin.
        let calendar = berlin(HALF_HOUR_MS);
        let before = number_at(BERLIN_SUMMER_TIME_MS + 20 * 3_600_000 + HALF_HOUR_MS, HALF_HOUR_MS);
        let after = number_at(BERLIN_SUMMER_TIME_MS + 21 * 3_600_000, HALF_HOUR_MS);
        assert_eq!(calendar.local_day(after), calendar.local_day(before) + 1);
        assert_eq!(calendar.lag_slack(), 2);
    }
}
