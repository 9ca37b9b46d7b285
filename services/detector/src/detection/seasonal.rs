//! Expected value of a window from the series' own history.
//!
//! Method, in order of preference:
//! 1. Seasonal reference: the cleaned value of the same window one week
//!    earlier (weekly seasonality), else one day earlier. Lags are counted
//!    in window numbers, so a gap in the data never shifts them.
//! 2. Level adjustment: the reference plus the median, over the last
//!    `level_windows` windows, of each window's cleaned value minus the
//!    cleaned value one lag before it. This carries a trend or a level shift
//!    that happened since the reference week into the expectation.
//! 3. Without a seasonal reference: the median of the last
//!    `rolling_windows` cleaned values.
//!
//! Every input is a cleaned value (see `band.rs`): an anomalous window is
//! stored clamped near its own expected value, so a holiday neither becomes
//! next week's reference nor drags the level adjustment far. A lasting
//! change still gets through, at up to `cleaning_sigmas` robust standard
//! deviations per window, because each clamped value moves the medians.

use std::cell::RefCell;

use super::history::History;
use super::params::Seasonality;
use super::robust::median;

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// Seasonal lags of a series in windows, most preferred first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lags {
    lags: [Option<i64>; 2],
}

impl Lags {
    /// Lags for `window_ms` windows: one week and one day for weekly
    /// seasonality, one day for daily. A lag is dropped when the window does
    /// not divide it or when the lag plus the level windows would not fit in
    /// `history_windows`.
    pub fn new(seasonality: Seasonality, window_ms: i64, level_windows: usize, history_windows: usize) -> Lags {
        let lag = |period_ms: i64| {
            let windows = period_ms / window_ms;
            let fits = windows as usize + level_windows <= history_windows;
            (period_ms % window_ms == 0 && windows > 0 && fits).then_some(windows)
        };
        let lags = match seasonality {
            Seasonality::Weekly => [lag(WEEK_MS), lag(DAY_MS)],
            Seasonality::Daily => [lag(DAY_MS), None],
            Seasonality::None => [None, None],
        };
        Lags { lags }
    }

    /// Windows of history the lags need, level adjustment included.
    pub fn history_needed(seasonality: Seasonality, window_ms: i64, level_windows: usize) -> usize {
        let period_ms = match seasonality {
            Seasonality::Weekly => WEEK_MS,
            Seasonality::Daily => DAY_MS,
            Seasonality::None => return 0,
        };
        if period_ms % window_ms == 0 {
            (period_ms / window_ms) as usize + level_windows
        } else {
            0
        }
    }

    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.lags.iter().flatten().copied()
    }
}

/// Expected value of window `number` from the windows before it, or `None`
/// when the history has no window to go by.
pub(crate) fn expected_value(
    history: &History,
    number: i64,
    lags: &Lags,
    level_windows: usize,
    rolling_windows: usize,
) -> Option<f64> {
    for lag in lags.iter() {
        if let Some(reference) = history.get(number - lag) {
            let level = level_offset(history, number, lag, level_windows);
            return Some(f64::from(reference.cleaned) + level);
        }
    }
    rolling_median(history, number, rolling_windows)
}

/// Median of (cleaned value − cleaned value `lag` windows earlier) over the
/// `level_windows` windows before `number`, or 0 when no pair exists.
fn level_offset(history: &History, number: i64, lag: i64, level_windows: usize) -> f64 {
    let offsets = (1..=level_windows as i64).filter_map(|back| {
        let recent = history.get(number - back)?;
        let reference = history.get(number - back - lag)?;
        Some(f64::from(recent.cleaned) - f64::from(reference.cleaned))
    });
    median_of(offsets).unwrap_or(0.0)
}

fn rolling_median(history: &History, number: i64, rolling_windows: usize) -> Option<f64> {
    let recent = (1..=rolling_windows as i64).filter_map(|back| history.get(number - back));
    median_of(recent.map(|slot| f64::from(slot.cleaned)))
}

thread_local! {
    /// Buffer reused by every median here, so judging a window does not allocate.
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

fn median_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    SCRATCH.with_borrow_mut(|buffer| {
        buffer.clear();
        buffer.extend(values);
        median(buffer)
    })
}

#[cfg(test)]
mod tests {
    use super::super::history::Slot;
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn slot(value: f32) -> Slot {
        Slot {
            value,
            cleaned: value,
            expected: f32::NAN,
            half_width: f32::NAN,
            outside: false,
        }
    }

    #[test]
    fn lags_of_hourly_windows() {
        let weekly = Lags::new(Seasonality::Weekly, HOUR_MS, 4, 1_000);
        assert_eq!(weekly.iter().collect::<Vec<_>>(), vec![168, 24]);
        let daily = Lags::new(Seasonality::Daily, HOUR_MS, 4, 1_000);
        assert_eq!(daily.iter().collect::<Vec<_>>(), vec![24]);
        let none = Lags::new(Seasonality::None, HOUR_MS, 4, 1_000);
        assert_eq!(none.iter().count(), 0);
    }

    #[test]
    fn lags_dropped_when_history_too_short() {
        // 168 + 4 windows do not fit in 100, but 24 + 4 do.
        let lags = Lags::new(Seasonality::Weekly, HOUR_MS, 4, 100);
        assert_eq!(lags.iter().collect::<Vec<_>>(), vec![24]);
    }

    #[test]
    fn lags_dropped_when_window_does_not_divide_day() {
        let lags = Lags::new(Seasonality::Weekly, 7 * 60_000 * 11, 4, 100_000);
        assert_eq!(lags.iter().count(), 0);
    }

    #[test]
    fn weekly_reference_preferred_over_daily() {
        let lags = Lags::new(Seasonality::Weekly, HOUR_MS, 1, 1_000);
        let mut history = History::new(1_000);
        history.push(0, slot(70.0)); // one week before window 168
        history.push(144, slot(10.0)); // one day before window 168
        assert_eq!(expected_value(&history, 168, &lags, 1, 3), Some(70.0));
        // Window 169 has no weekly reference, so it takes the daily one (20)
        // plus the level offset of window 168 over window 144 (30 - 10).
        history.push(145, slot(20.0));
        history.push(168, slot(30.0));
        assert_eq!(expected_value(&history, 169, &lags, 1, 3), Some(40.0));
    }

    #[test]
    fn lookup_by_time_across_gaps() {
        // Hourly windows, so the day before window 100 is window 76. Windows
        // 50..=99 are missing except 76, so an index-based lookup ("24
        // stored windows back") would land on the wrong window.
        let lags = Lags::new(Seasonality::Daily, HOUR_MS, 1, 1_000);
        let mut history = History::new(1_000);
        for number in 0..50 {
            history.push(number, slot(1.0));
        }
        history.push(76, slot(42.0));
        assert_eq!(expected_value(&history, 100, &lags, 1, 3), Some(42.0));
    }

    #[test]
    fn level_adjustment_follows_shift() {
        // Daily lag of 24 hourly windows. The last three windows are 10
        // above the day before, so window 50 is expected 10 above its reference.
        let lags = Lags::new(Seasonality::Daily, HOUR_MS, 3, 1_000);
        let mut history = History::new(1_000);
        for number in 0..50 {
            let value = if number >= 47 { 110.0 } else { 100.0 };
            history.push(number, slot(value));
        }
        assert_eq!(expected_value(&history, 50, &lags, 3, 3), Some(110.0));
    }

    #[test]
    fn level_adjustment_is_a_median() {
        // One of three recent windows is far off, and the median ignores it.
        let lags = Lags::new(Seasonality::Daily, HOUR_MS, 3, 1_000);
        let mut history = History::new(1_000);
        for number in 0..50 {
            let value = if number == 48 { 1_000.0 } else { 100.0 };
            history.push(number, slot(value));
        }
        assert_eq!(expected_value(&history, 50, &lags, 3, 3), Some(100.0));
    }

    #[test]
    fn rolling_median_without_seasonal_history() {
        let lags = Lags::new(Seasonality::Weekly, HOUR_MS, 3, 1_000);
        let mut history = History::new(1_000);
        for (number, value) in [(0, 5.0), (1, 1.0), (2, 3.0), (3, 100.0)] {
            history.push(number, slot(value));
        }
        // The last three windows: 1, 3, 100.
        assert_eq!(expected_value(&history, 4, &lags, 3, 3), Some(3.0));
    }

    #[test]
    fn no_expected_value_without_history() {
        let lags = Lags::new(Seasonality::Weekly, HOUR_MS, 3, 1_000);
        let mut history = History::new(1_000);
        assert_eq!(expected_value(&history, 0, &lags, 3, 3), None);
        history.push(0, slot(1.0));
        // Window 10 is further back than the rolling windows reach.
        assert_eq!(expected_value(&history, 10, &lags, 3, 3), None);
    }

    #[test]
    fn cleaned_values_are_the_references() {
        let lags = Lags::new(Seasonality::Daily, HOUR_MS, 1, 1_000);
        let mut history = History::new(1_000);
        history.push(
            0,
            Slot {
                cleaned: 12.0,
                ..slot(500.0)
            },
        );
        assert_eq!(expected_value(&history, 24, &lags, 1, 3), Some(12.0));
    }
}
