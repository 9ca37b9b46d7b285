//! Expected value of a window from the series' own history.
//!
//! Method, in order of preference:
//! 1. Seasonal reference: the cleaned value of the window at the same local
//!    time one week earlier (weekly seasonality), else one day earlier.
//!    Lags are window numbers from `calendar.rs`, so neither a gap in the
//!    data nor a daylight saving change shifts them. With
//!    `reference_windows` above 1 the reference is the mean of that window
//!    and its neighbours on each side, which averages out the noise of
//!    counts of a few hundred events. With `weekly_reference = "hourly"`
//!    the weekly reference is the mean of the window's hour a week earlier,
//!    times the ratio of yesterday's reference to the mean of its own hour.
//!    With an additive level adjustment it is that mean plus their
//!    difference. The history then keeps a day of windows and a week of
//!    hourly means instead of a week of windows.
//! 2. Level adjustment: the reference plus the median, over the last
//!    `level_windows` windows, of each window's cleaned value minus its own
//!    reference one lag before it. This carries a trend or a level shift
//!    that happened since the reference week into the expectation. With
//!    `level_adjustment = "multiplicative"` the reference is multiplied by
//!    the median ratio of those cleaned values instead, so a change in
//!    proportion to the level moves quiet and busy hours alike. For an odd
//!    count the median ratio equals the exponential of the median log
//!    ratio, so no logarithm is needed. An even count averages the two
//!    middle ratios rather than their logarithms.
//! 3. Without a seasonal reference: the median of the last
//!    `rolling_windows` cleaned values.
//!
//! Every input is a cleaned value (see `band.rs`): an anomalous window is
//! stored clamped near its own expected value, so a holiday neither becomes
//! next week's reference nor drags the level adjustment far. A lasting
//! change still gets through, at up to `cleaning_sigmas` robust standard
//! deviations per window, because each clamped value moves the medians.
//!
//! The level offsets of each lag are kept in a [`RecordedSample`], so their
//! median costs O(log n) per window instead of a pass over `level_windows`.

use std::cell::RefCell;

use super::calendar::{Calendar, DAY_MS, WEEK_MS};
use super::history::History;
use super::params::{DetectionParams, LevelAdjustment, Seasonality, WeeklyReference};
use super::robust::median;
use super::window_sample::RecordedSample;

/// Expected value of a window and the window it was derived from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Expected {
    pub value: f64,
    /// The seasonal reference window (yesterday's for an hourly weekly
    /// reference), or the latest window for the rolling median.
    pub reference: i64,
    /// The value came from a seasonal reference, not the rolling median.
    pub seasonal: bool,
    /// The window the reference's level came from was outside its band and
    /// is not spent. For an hourly weekly reference: more than half the
    /// windows of its hour a week earlier were.
    pub reference_outside: bool,
    /// The reference is a shorter lag than the preferred one: the day
    /// before when the week before is missing.
    pub fallback: bool,
}

/// Largest distance, in the metric's unit, of a neighbour from the
/// reference window for the neighbour to join the reference mean, given
/// the reference window's cleaned value. A neighbour further away is part
/// of a sharp shape, such as a job that runs at the same minute every day,
/// and averaging it in would blur that shape into alerts.
pub(crate) type NeighbourLimit<'a> = &'a dyn Fn(f32) -> f32;

/// The settings of [`SeasonalModel`], copied from [`DetectionParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SeasonalSettings {
    pub seasonality: Seasonality,
    pub level_windows: usize,
    pub rolling_windows: usize,
    /// Odd count of windows averaged into a reference.
    pub reference_windows: usize,
    pub level_adjustment: LevelAdjustment,
    pub weekly_reference: WeeklyReference,
}

/// Length of a block of the hourly weekly reference, in ms.
const HOUR_MS: i64 = 3_600_000;

/// Minimum windows per hour for an hourly weekly reference. Longer
/// windows make a small week, whose hourly means would cost more than they
/// save: with 30-minute windows a series keeps 337 windows for its
/// residuals anyway.
const MIN_WINDOWS_PER_HOUR: i64 = 4;

/// Maximum windows per hour for an hourly weekly reference (windows of 15
/// seconds), because a mean counts its windows in a byte.
const MAX_WINDOWS_PER_HOUR: i64 = 240;

impl SeasonalSettings {
    /// Windows per hour when the weekly reference reads hourly means:
    /// weekly seasonality, `weekly_reference = "hourly"` and a window that
    /// divides an hour into [`MIN_WINDOWS_PER_HOUR`] to
    /// [`MAX_WINDOWS_PER_HOUR`]. `None` otherwise.
    pub fn hourly_blocks(&self, window_ms: i64) -> Option<i64> {
        let hourly = self.seasonality == Seasonality::Weekly
            && self.weekly_reference == WeeklyReference::Hourly
            && window_ms * MIN_WINDOWS_PER_HOUR <= HOUR_MS
            && window_ms * MAX_WINDOWS_PER_HOUR >= HOUR_MS
            && HOUR_MS % window_ms == 0;
        hourly.then(|| HOUR_MS / window_ms)
    }

    /// Windows on each side of a reference window averaged with it.
    fn reference_reach(&self) -> i64 {
        (self.reference_windows.max(1) as i64 - 1) / 2
    }
}

impl From<&DetectionParams> for SeasonalSettings {
    fn from(params: &DetectionParams) -> Self {
        SeasonalSettings {
            seasonality: params.seasonality,
            level_windows: params.level_windows,
            rolling_windows: params.rolling_windows,
            reference_windows: params.reference_windows,
            level_adjustment: params.level_adjustment,
            weekly_reference: params.weekly_reference,
        }
    }
}

/// Seasonal references of one series: its lags and their level offsets.
#[derive(Debug, Clone)]
pub(crate) struct SeasonalModel {
    /// Most preferred first.
    lags: Vec<Lag>,
    rolling_windows: usize,
    /// Windows on each side of a reference window averaged with it:
    /// (`reference_windows` − 1) / 2.
    reference_reach: i64,
    level_adjustment: LevelAdjustment,
    /// The last reference `expected_value` found: (index of its lag, judged
    /// window, reference). `record` of the judged window needs the same
    /// reference for its offset, so it is not computed twice.
    last_reference: Option<(usize, i64, f32)>,
}

#[derive(Debug, Clone)]
struct Lag {
    period_ms: i64,
    /// A weekly lag that reads the mean of the hour a week earlier, shaped
    /// by yesterday's window (`WeeklyReference::Hourly`), instead of the
    /// window a week earlier.
    hourly: bool,
    /// Offsets (cleaned value − seasonal reference one period earlier, or
    /// their ratio) of the last `level_windows` windows. Kept, because
    /// computing one again reads `reference_windows` windows.
    offsets: RecordedSample,
}

impl SeasonalModel {
    /// Creates the model for `window_ms` windows: lags of one week and one
    /// day for weekly seasonality, one day for daily. A lag is dropped when
    /// the window does not divide it or when the history would not reach
    /// back far enough for it (see [`SeasonalModel::history_needed`]).
    pub fn new(
        settings: &SeasonalSettings,
        calendar: &Calendar,
        window_ms: i64,
        history_windows: usize,
    ) -> SeasonalModel {
        let reference_reach = settings.reference_reach();
        let periods_ms: &[i64] = match settings.seasonality {
            Seasonality::Weekly => &[WEEK_MS, DAY_MS],
            Seasonality::Daily => &[DAY_MS],
            Seasonality::None => &[],
        };
        let hourly = settings.hourly_blocks(window_ms).is_some();
        let lags = periods_ms
            .iter()
            .filter(|&&period_ms| period_ms % window_ms == 0)
            .filter(|&&period_ms| {
                // An hourly weekly lag reads windows a day back.
                let windows_back = if hourly { DAY_MS } else { period_ms } / window_ms;
                let reach = lag_reach(windows_back, settings) + calendar.lag_slack();
                period_ms / window_ms > 0 && reach <= history_windows
            })
            .map(|&period_ms| Lag {
                period_ms,
                hourly: hourly && period_ms == WEEK_MS,
                offsets: RecordedSample::new(settings.level_windows),
            })
            .collect();
        SeasonalModel {
            lags,
            rolling_windows: settings.rolling_windows,
            reference_reach,
            level_adjustment: settings.level_adjustment,
            last_reference: None,
        }
    }

    /// Windows of history the seasonality needs, level adjustment and
    /// clock changes included, or 0 when the window does not divide the period.
    pub fn history_needed(settings: &SeasonalSettings, calendar: &Calendar, window_ms: i64) -> usize {
        let period_ms = match settings.seasonality {
            Seasonality::Weekly => WEEK_MS,
            Seasonality::Daily => DAY_MS,
            Seasonality::None => return 0,
        };
        let windows_back = if settings.hourly_blocks(window_ms).is_some() {
            DAY_MS
        } else {
            period_ms
        };
        if period_ms % window_ms == 0 {
            lag_reach(windows_back / window_ms, settings) + calendar.lag_slack()
        } else {
            0
        }
    }

    /// Windows per block and blocks of hourly means the history must keep
    /// for an hourly weekly reference, or `None` without one. The oldest
    /// level offset a re-baseline rebuilds reads the hour a week before it.
    pub fn blocks_needed(settings: &SeasonalSettings, calendar: &Calendar, window_ms: i64) -> Option<(i64, usize)> {
        let windows_per_block = settings.hourly_blocks(window_ms)?;
        let windows_back = lag_reach(WEEK_MS / window_ms, settings) + calendar.lag_slack();
        Some((windows_per_block, windows_back.div_ceil(windows_per_block as usize) + 1))
    }

    /// True when the series has at least one seasonal lag.
    pub fn is_seasonal(&self) -> bool {
        !self.lags.is_empty()
    }

    /// Drops the level offsets that window `number` no longer uses.
    pub fn retire_before(&mut self, number: i64) {
        for lag in &mut self.lags {
            lag.offsets.retire_before(number);
        }
    }

    /// Adds the level offsets of window `number`, just stored in `history`,
    /// and drops those that window `number + 1` no longer uses. `limit` is
    /// as for [`SeasonalModel::expected_value`].
    pub fn record(&mut self, number: i64, history: &History, calendar: &Calendar, limit: NeighbourLimit) {
        let recent = history.reference(number).map(|reference| reference.cleaned);
        let last = self.last_reference;
        let (reach, adjustment) = (self.reference_reach, self.level_adjustment);
        for (index, lag) in self.lags.iter_mut().enumerate() {
            let reference = match last {
                Some((last_index, judged, reference)) if (last_index, judged) == (index, number) => Some(reference),
                _ => lag
                    .reference(number, history, calendar, reach, adjustment, limit)
                    .map(|(_, reference)| reference),
            };
            lag.offsets.advance(number, offset(recent, reference, adjustment));
        }
    }

    /// Rebuilds the level offsets from the windows from `first` to the
    /// latest only, after a re-baseline rewrote cleaned values.
    pub fn rebaseline(&mut self, first: i64, history: &History, calendar: &Calendar, limit: NeighbourLimit) {
        let Some(latest) = history.latest() else {
            return;
        };
        self.last_reference = None;
        let (reach, adjustment) = (self.reference_reach, self.level_adjustment);
        for lag in &mut self.lags {
            lag.offsets.clear();
            for number in first..=latest {
                let recent = history.reference(number).map(|reference| reference.cleaned);
                let reference = lag
                    .reference(number, history, calendar, reach, adjustment, limit)
                    .map(|(_, reference)| reference);
                lag.offsets.advance(number, offset(recent, reference, adjustment));
            }
        }
    }

    /// Expected value of window `number` from the windows before it, or
    /// `None` when the history has no window to go by. A neighbour of the
    /// reference window joins its mean only within `limit(reference
    /// window's value)` of it.
    pub fn expected_value(
        &mut self,
        history: &History,
        number: i64,
        calendar: &Calendar,
        limit: NeighbourLimit,
    ) -> Option<Expected> {
        for (index, lag) in self.lags.iter().enumerate() {
            let found = lag.reference(
                number,
                history,
                calendar,
                self.reference_reach,
                self.level_adjustment,
                limit,
            );
            if let Some((reference_number, reference)) = found {
                self.last_reference = Some((index, number, reference));
                let reference_outside = if lag.hourly {
                    history.block_mostly_outside(calendar.lag(number, lag.period_ms))
                } else {
                    history
                        .reference(reference_number)
                        .is_some_and(|reference| reference.outside && !reference.spent)
                };
                let value = match self.level_adjustment {
                    LevelAdjustment::Additive => f64::from(reference) + lag.offsets.sample().median().unwrap_or(0.0),
                    LevelAdjustment::Multiplicative => {
                        f64::from(reference) * lag.offsets.sample().median().unwrap_or(1.0)
                    }
                };
                return Some(Expected {
                    value,
                    reference: reference_number,
                    seasonal: true,
                    reference_outside,
                    fallback: index > 0,
                });
            }
        }

        let value = rolling_median(history, number, self.rolling_windows)?;
        let reference = history.latest()?;
        Some(Expected {
            value,
            reference,
            seasonal: false,
            reference_outside: history
                .reference(reference)
                .is_some_and(|reference| reference.outside && !reference.spent),
            fallback: false,
        })
    }

    /// True when every lag's sorted offsets are exactly its recorded ones.
    #[cfg(test)]
    pub fn offsets_consistent(&self) -> bool {
        self.lags.iter().all(|lag| lag.offsets.is_consistent())
    }

    /// Number of level offsets held per lag.
    #[cfg(test)]
    pub fn lag_sample_lengths(&self) -> Vec<usize> {
        self.lags.iter().map(|lag| lag.offsets.sample().len()).collect()
    }

    /// Sorted level offsets held per lag.
    #[cfg(test)]
    pub fn lag_offsets(&self) -> Vec<Vec<f32>> {
        self.lags
            .iter()
            .map(|lag| lag.offsets.sample().as_slice().to_vec())
            .collect()
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.lags.capacity() * size_of::<Lag>() + self.lags.iter().map(|lag| lag.offsets.heap_bytes()).sum::<usize>()
    }
}

impl Lag {
    /// Returns the seasonal reference of window `number` and the window it
    /// was read from, or `None` when the history lacks what it needs. A
    /// plain lag takes the mean of the window one period earlier and its
    /// neighbours (see [`History::reference_mean`]). An hourly weekly lag
    /// takes the mean of the hour a week earlier and moves it by how
    /// yesterday's reference stood in its own hour. That is their ratio for
    /// a multiplicative level adjustment (`None` unless yesterday's hour is
    /// positive), else their difference.
    fn reference(
        &self,
        number: i64,
        history: &History,
        calendar: &Calendar,
        reach: i64,
        adjustment: LevelAdjustment,
        limit: NeighbourLimit,
    ) -> Option<(i64, f32)> {
        if !self.hourly {
            let centre = calendar.lag(number, self.period_ms);
            return history
                .reference_mean(centre, reach, number, limit)
                .map(|reference| (centre, reference));
        }

        // NOTE: a shape within the hour that comes once a week, such as a
        // 10-minute weekly job, is spread over its hour mean, so it is never
        // learnt and alerts every week. Hours are UTC hours, so in a zone
        // offset by half an hour a mean spans two local hours.
        let yesterday = calendar.lag(number, DAY_MS);
        let base = history.reference_mean(yesterday, reach, number, limit)?;
        let yesterday_hour = history.block_mean(yesterday)?;
        let week_hour = history.block_mean(calendar.lag(number, self.period_ms))?;
        let reference = match adjustment {
            LevelAdjustment::Additive => week_hour + (base - yesterday_hour),
            LevelAdjustment::Multiplicative if yesterday_hour > 0.0 => week_hour * (base / yesterday_hour),
            LevelAdjustment::Multiplicative => return None,
        };
        reference.is_finite().then_some((yesterday, reference))
    }
}

/// Windows of history a lag of `lag` windows reads: a re-baseline rebuilds
/// the offsets of the last `level_windows` + 1 windows, and the oldest of
/// them reads the window `lag` before it and the oldest window averaged
/// with that one.
fn lag_reach(lag: i64, settings: &SeasonalSettings) -> usize {
    lag as usize + settings.level_windows + 1 + settings.reference_reach() as usize
}

/// Level offset of a window whose cleaned value is `recent` against its
/// seasonal reference: their difference, or their ratio for a
/// multiplicative adjustment (`None` unless both are positive). `None`
/// when either is missing.
fn offset(recent: Option<f32>, reference: Option<f32>, adjustment: LevelAdjustment) -> Option<f32> {
    let (recent, reference) = (recent?, reference?);
    match adjustment {
        LevelAdjustment::Additive => Some(recent - reference),
        LevelAdjustment::Multiplicative => (recent > 0.0 && reference > 0.0).then(|| recent / reference),
    }
}

fn rolling_median(history: &History, number: i64, rolling_windows: usize) -> Option<f64> {
    let recent = (1..=rolling_windows as i64).filter_map(|back| history.reference(number - back));
    median_of(recent.map(|reference| f64::from(reference.cleaned)))
}

thread_local! {
    /// Buffer reused by the rolling median, so judging a window does not allocate.
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
            lower: f32::NAN,
            upper: f32::NAN,
            outside: false,
        }
    }

    /// Feeds `windows` (number, value) to `model` and `history` in the
    /// detector's order.
    fn feed(model: &mut SeasonalModel, history: &mut History, windows: impl IntoIterator<Item = (i64, f32)>) {
        for (number, value) in windows {
            model.retire_before(number);
            history.push(number, slot(value));
            model.record(number, history, &utc(), &no_limit);
        }
    }

    fn no_limit(_: f32) -> f32 {
        f32::INFINITY
    }

    fn utc() -> Calendar {
        Calendar::new(Default::default(), HOUR_MS)
    }

    fn settings(seasonality: Seasonality, level: usize, rolling: usize) -> SeasonalSettings {
        SeasonalSettings {
            seasonality,
            level_windows: level,
            rolling_windows: rolling,
            reference_windows: 1,
            level_adjustment: LevelAdjustment::Additive,
            weekly_reference: WeeklyReference::Window,
        }
    }

    fn model(seasonality: Seasonality, window_ms: i64, level: usize, rolling: usize, history: usize) -> SeasonalModel {
        SeasonalModel::new(
            &settings(seasonality, level, rolling),
            &Calendar::new(Default::default(), window_ms),
            window_ms,
            history,
        )
    }

    fn expected(model: &SeasonalModel, history: &History, number: i64) -> Option<f64> {
        model
            .clone()
            .expected_value(history, number, &utc(), &no_limit)
            .map(|expected| expected.value)
    }

    fn lags(model: &SeasonalModel) -> Vec<i64> {
        model.lags.iter().map(|lag| lag.period_ms / HOUR_MS).collect()
    }

    #[test]
    fn multiplicative_level_moves_in_proportion() {
        // Day 1 is 10 % below day 0 at every hour, so the last 24 offsets
        // are all 0.9. Day 2 is then expected at 0.9 × day 1 at the
        // trough (100) and at the peak (1000). An additive level moves both
        // by the same amount instead.
        let cycle = |hour: i64| if hour % 24 < 12 { 100.0_f32 } else { 1000.0 };
        let mut multiplicative = SeasonalModel::new(
            &SeasonalSettings {
                level_adjustment: LevelAdjustment::Multiplicative,
                ..settings(Seasonality::Daily, 24, 3)
            },
            &utc(),
            HOUR_MS,
            1_000,
        );
        let mut additive = model(Seasonality::Daily, HOUR_MS, 24, 3, 1_000);
        let mut history = History::new(1_000);
        let days = (0..48).map(|number| (number, cycle(number) * if number < 24 { 1.0 } else { 0.9 }));
        for (number, value) in days {
            multiplicative.retire_before(number);
            additive.retire_before(number);
            history.push(number, slot(value));
            multiplicative.record(number, &history, &utc(), &no_limit);
            additive.record(number, &history, &utc(), &no_limit);
        }

        let trough = expected(&multiplicative, &history, 48).unwrap();
        let peak = expected(&multiplicative, &history, 60).unwrap();
        assert!((trough - 81.0).abs() < 0.01, "trough {trough}");
        assert!((peak - 810.0).abs() < 0.1, "peak {peak}");
        // The median difference is −55 (−10 at the trough, −100 at the peak).
        let additive_trough = expected(&additive, &history, 48).unwrap();
        assert!(
            (additive_trough - 35.0).abs() < 0.01,
            "additive trough {additive_trough}"
        );
    }

    #[test]
    fn reference_averages_its_neighbours() {
        let settings = SeasonalSettings {
            reference_windows: 3,
            ..settings(Seasonality::Daily, 4, 30)
        };
        let mut model = SeasonalModel::new(&settings, &utc(), HOUR_MS, 1_000);
        let mut history = History::new(1_000);
        // Windows 23 to 25 are the reference of window 48 and its
        // neighbours; none has a reference of its own, so no level offset.
        feed(&mut model, &mut history, [(23, 10.0), (24, 20.0), (25, 60.0)]);
        assert_eq!(expected(&model, &history, 48), Some(30.0));

        // A missing neighbour is left out of the mean.
        assert_eq!(expected(&model, &history, 49), Some(40.0));
        // A missing centre falls back to the rolling median of 10, 20, 60.
        let fallback = model.expected_value(&history, 50, &utc(), &no_limit).unwrap();
        assert!(!fallback.seasonal, "{fallback:?}");
        assert_eq!(fallback.value, 20.0);
    }

    #[test]
    fn level_offsets_use_averaged_reference() {
        let settings = SeasonalSettings {
            reference_windows: 3,
            ..settings(Seasonality::Daily, 1, 3)
        };
        let mut model = SeasonalModel::new(&settings, &utc(), HOUR_MS, 1_000);
        let mut history = History::new(1_000);
        // Window 48's reference is the mean of windows 23 to 25, 30, so its
        // offset is 45 − 30 = 15 (not 45 − 20 against window 24 alone).
        feed(
            &mut model,
            &mut history,
            [(23, 10.0), (24, 20.0), (25, 60.0), (48, 45.0)],
        );

        // Window 49: the mean of windows 24 and 25 (26 is missing) plus 15.
        assert_eq!(expected(&model, &history, 49), Some(55.0));
    }

    #[test]
    fn reference_skips_judged_window() {
        // With daily windows the daily lag is one window, so the reference
        // window's later neighbour is the window being judged.
        let day_ms = 24 * HOUR_MS;
        let calendar = Calendar::new(Default::default(), day_ms);
        let settings = SeasonalSettings {
            reference_windows: 3,
            ..settings(Seasonality::Daily, 1, 3)
        };
        let mut model = SeasonalModel::new(&settings, &calendar, day_ms, 100);
        let mut history = History::new(100);
        history.push(0, slot(10.0));
        history.push(1, slot(20.0));
        let value = model
            .expected_value(&history, 2, &calendar, &no_limit)
            .map(|expected| expected.value);
        assert_eq!(value, Some(15.0));
    }

    #[test]
    fn lags_of_hourly_windows() {
        let weekly = model(Seasonality::Weekly, HOUR_MS, 4, 3, 1_000);
        assert_eq!(lags(&weekly), vec![168, 24]);
        assert!(weekly.is_seasonal());
        let daily = model(Seasonality::Daily, HOUR_MS, 4, 3, 1_000);
        assert_eq!(lags(&daily), vec![24]);
        let none = model(Seasonality::None, HOUR_MS, 4, 3, 1_000);
        assert_eq!(lags(&none), Vec::<i64>::new());
        assert!(!none.is_seasonal());
    }

    #[test]
    fn lags_dropped_when_history_too_short() {
        // 168 + 4 + 1 windows do not fit in 100, but 24 + 4 + 1 do.
        let model = model(Seasonality::Weekly, HOUR_MS, 4, 3, 100);
        assert_eq!(lags(&model), vec![24]);
    }

    #[test]
    fn lags_dropped_when_window_does_not_divide_day() {
        let model = model(Seasonality::Weekly, 77 * 60_000, 4, 3, 100_000);
        assert_eq!(lags(&model), Vec::<i64>::new());
    }

    #[test]
    fn weekly_reference_preferred_over_daily() {
        let mut model = model(Seasonality::Weekly, HOUR_MS, 1, 3, 1_000);
        let mut history = History::new(1_000);
        // Window 0 is one week and window 144 one day before window 168.
        feed(&mut model, &mut history, [(0, 70.0), (144, 10.0)]);
        assert_eq!(expected(&model, &history, 168), Some(70.0));

        // Window 169 has no weekly reference, so it takes the daily one (20)
        // plus the level offset of window 168 over window 144 (30 - 10).
        feed(&mut model, &mut history, [(145, 20.0), (168, 30.0)]);
        assert_eq!(expected(&model, &history, 169), Some(40.0));
    }

    /// Feeds 15 days of 15-minute windows, with a level per weekday and a
    /// shape within each hour, to an hourly weekly reference, and returns
    /// the expected value of every window of day 15 with its true value.
    fn hourly_day_15(adjustment: LevelAdjustment, value: impl Fn(i64, i64) -> f32) -> Vec<(f64, f32)> {
        const WINDOW_MS: i64 = 15 * 60_000;
        let settings = SeasonalSettings {
            weekly_reference: WeeklyReference::Hourly,
            level_adjustment: adjustment,
            ..settings(Seasonality::Weekly, 8, 3)
        };
        let calendar = Calendar::new(Default::default(), WINDOW_MS);
        let (windows_per_block, blocks) = SeasonalModel::blocks_needed(&settings, &calendar, WINDOW_MS).unwrap();
        let capacity = SeasonalModel::history_needed(&settings, &calendar, WINDOW_MS);
        let mut model = SeasonalModel::new(&settings, &calendar, WINDOW_MS, capacity);
        let mut history = History::new(capacity).with_blocks(windows_per_block, blocks);
        let per_day = DAY_MS / WINDOW_MS;
        let window = |number: i64| value(number / per_day, number % 4);
        for number in 0..15 * per_day {
            model.retire_before(number);
            history.push(number, slot(window(number)));
            model.record(number, &history, &calendar, &no_limit);
        }

        (15 * per_day..16 * per_day)
            .map(|number| {
                let expected = model.expected_value(&history, number, &calendar, &no_limit).unwrap();
                assert!(expected.seasonal, "window {number}: {expected:?}");
                assert!(!expected.fallback, "window {number}: {expected:?}");
                model.retire_before(number);
                history.push(number, slot(window(number)));
                model.record(number, &history, &calendar, &no_limit);
                (expected.value, window(number))
            })
            .collect()
    }

    #[test]
    fn hourly_reference_weekday_level_daily_shape() {
        // Each weekday has its own level, so yesterday's windows alone
        // would miss day 15 by a whole weekday step.
        let level = |day: i64| 100.0 + 10.0 * (day % 7) as f32;
        let shape = [1.0, 2.0, 3.0, 2.0];

        let multiplicative = hourly_day_15(LevelAdjustment::Multiplicative, |day, quarter| {
            level(day) * shape[quarter as usize]
        });
        let additive = hourly_day_15(LevelAdjustment::Additive, |day, quarter| {
            level(day) + 50.0 * shape[quarter as usize]
        });

        for (expected, value) in multiplicative.into_iter().chain(additive) {
            assert!(
                (expected - f64::from(value)).abs() < 1e-3,
                "expected {expected}, value {value}"
            );
        }
    }

    #[test]
    fn hourly_reference_history_sizes() {
        let settings = SeasonalSettings {
            weekly_reference: WeeklyReference::Hourly,
            ..settings(Seasonality::Weekly, 48, 12)
        };
        let calendar = Calendar::new(Default::default(), 300_000);

        // Windows: a day of 288, the 48 level windows and the one a
        // re-baseline reads before them. Blocks: a week of windows and
        // those 49.
        assert_eq!(
            SeasonalModel::history_needed(&settings, &calendar, 300_000),
            288 + 48 + 1
        );
        assert_eq!(
            SeasonalModel::blocks_needed(&settings, &calendar, 300_000),
            Some((12, 174))
        );
        // Windows of 15 seconds to 15 minutes read hour means.
        assert!(SeasonalModel::blocks_needed(&settings, &calendar, 15 * 60_000).is_some());
        assert!(SeasonalModel::blocks_needed(&settings, &calendar, 15_000).is_some());

        // Longer ones read the window a week earlier. So do shorter ones,
        // because a mean counts at most 255 windows.
        assert_eq!(SeasonalModel::blocks_needed(&settings, &calendar, 30 * 60_000), None);
        assert_eq!(SeasonalModel::blocks_needed(&settings, &calendar, HOUR_MS), None);
        assert_eq!(SeasonalModel::blocks_needed(&settings, &calendar, 12_000), None);
    }

    #[test]
    fn reference_window_reported() {
        let mut model = model(Seasonality::Weekly, HOUR_MS, 1, 3, 1_000);
        let mut history = History::new(1_000);
        feed(&mut model, &mut history, [(0, 1.0), (150, 1.0)]);
        let mut reference = |number| {
            model
                .expected_value(&history, number, &utc(), &no_limit)
                .map(|expected| (expected.reference, expected.seasonal))
        };

        assert_eq!(reference(168), Some((0, true)), "weekly");
        assert_eq!(reference(174), Some((150, true)), "daily");
        assert_eq!(reference(151), Some((150, false)), "rolling median");
    }

    #[test]
    fn lookup_by_time_across_gaps() {
        // Hourly windows, so the day before window 100 is window 76. Windows
        // 50..=99 are missing except 76, so an index-based lookup ("24
        // stored windows back") would land on the wrong window.
        let mut model = model(Seasonality::Daily, HOUR_MS, 1, 3, 1_000);
        let mut history = History::new(1_000);
        feed(&mut model, &mut history, (0..50).map(|number| (number, 1.0)));
        feed(&mut model, &mut history, [(76, 42.0)]);
        model.retire_before(100);
        assert_eq!(expected(&model, &history, 100), Some(42.0));
    }

    #[test]
    fn level_adjustment_follows_shift() {
        // Daily lag of 24 hourly windows. The last three windows are 10
        // above the day before, so window 50 is expected 10 above its reference.
        let mut model = model(Seasonality::Daily, HOUR_MS, 3, 3, 1_000);
        let mut history = History::new(1_000);
        feed(
            &mut model,
            &mut history,
            (0..50).map(|number| (number, if number >= 47 { 110.0 } else { 100.0 })),
        );
        model.retire_before(50);
        assert_eq!(expected(&model, &history, 50), Some(110.0));
    }

    #[test]
    fn level_adjustment_is_a_median() {
        // One of three recent windows is far off, and the median ignores it.
        let mut model = model(Seasonality::Daily, HOUR_MS, 3, 3, 1_000);
        let mut history = History::new(1_000);
        feed(
            &mut model,
            &mut history,
            (0..50).map(|number| (number, if number == 48 { 1_000.0 } else { 100.0 })),
        );
        model.retire_before(50);
        assert_eq!(expected(&model, &history, 50), Some(100.0));
    }

    #[test]
    fn level_offsets_leave_after_level_windows() {
        // Windows 24..=26 are 10 above the day before, later ones are not.
        // Window 30 only looks at windows 27..=29.
        let mut model = model(Seasonality::Daily, HOUR_MS, 3, 3, 1_000);
        let mut history = History::new(1_000);
        feed(&mut model, &mut history, (0..24).map(|number| (number, 100.0)));
        feed(&mut model, &mut history, (24..27).map(|number| (number, 110.0)));
        model.retire_before(27);
        assert_eq!(expected(&model, &history, 27), Some(110.0));

        feed(&mut model, &mut history, (27..30).map(|number| (number, 100.0)));
        model.retire_before(30);
        assert_eq!(expected(&model, &history, 30), Some(100.0));
    }

    #[test]
    fn rolling_median_without_seasonal_history() {
        let mut model = model(Seasonality::Weekly, HOUR_MS, 3, 3, 1_000);
        let mut history = History::new(1_000);
        feed(&mut model, &mut history, [(0, 5.0), (1, 1.0), (2, 3.0), (3, 100.0)]);
        // The last three windows: 1, 3, 100.
        assert_eq!(expected(&model, &history, 4), Some(3.0));
    }

    #[test]
    fn no_expected_value_without_history() {
        let mut model = model(Seasonality::Weekly, HOUR_MS, 3, 3, 1_000);
        let mut history = History::new(1_000);
        assert_eq!(expected(&model, &history, 0), None);
        feed(&mut model, &mut history, [(0, 1.0)]);
        // Window 10 is further back than the rolling windows reach.
        assert_eq!(expected(&model, &history, 10), None);
    }

    #[test]
    fn cleaned_values_are_the_references() {
        let model = model(Seasonality::Daily, HOUR_MS, 1, 3, 1_000);
        let mut history = History::new(1_000);
        history.push(
            0,
            Slot {
                cleaned: 12.0,
                ..slot(500.0)
            },
        );
        assert_eq!(expected(&model, &history, 24), Some(12.0));
    }
}
