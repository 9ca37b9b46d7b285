//! The robust band: a median/MAD band around a seasonal reference.
//!
//! 1. `seasonal.rs`: the expected value from the window at the same local
//!    time a week or a day earlier plus a level adjustment, else the rolling
//!    median of the last `rolling_windows` windows. With
//!    `seasonality = "none"` this is a plain rolling median/MAD band.
//! 2. `robust.rs`: the robust scale (MAD × 1.4826) of the last
//!    `residual_windows` residuals: absolute, divided by √|expected| for
//!    count noise, or relative to the expected value (`residual_scale`).
//! 3. `band.rs`: band, score and the cleaned value that later windows use
//!    as their reference (Huber-type cleaning, Gelper, Fried & Croux 2010).
//! 4. Here: a window outside on the same side at the same local time on 4
//!    days in a row becomes the reference at that time of day
//!    (`learn_daily_recurrence`), so a new daily job is learnt in days.

use super::band::{BandSettings, half_width, judge};
use super::calendar::{Calendar, DAY_MS};
use super::history::History;
use super::method::{DetectionMethod, MethodOutput, MethodVerdict};
use super::params::{DetectionParams, ResidualScale};
use super::robust::{MadHint, median};
use super::seasonal::{SeasonalModel, SeasonalSettings};
use super::window_sample::WindowSample;

#[derive(Debug, Clone)]
pub(crate) struct RobustBand {
    settings: BandSettings,
    daily_fallback_width: f64,
    residual_scale: ResidualScale,
    min_history_windows: usize,
    level_windows: usize,
    seasonal: SeasonalModel,
    /// Residuals of the last `residual_windows` windows, for the robust scale.
    residuals: WindowSample,
    /// Robust scale of the residuals when the latest window was judged,
    /// which sets how far a neighbour may join the seasonal reference.
    judged_sigma: Option<f64>,
    /// Search start for the residuals' MAD: the places where it was found
    /// for the last window.
    mad_hint: MadHint,
    /// `DetectionParams::learn_daily_recurrence`, off for windows longer
    /// than [`JOB_SPAN_MS`] or that do not divide a day.
    learn_daily_recurrence: bool,
    /// Window length in ms.
    window_ms: i64,
}

impl RobustBand {
    pub fn new(params: &DetectionParams, calendar: &Calendar, window_ms: i64, history_windows: usize) -> RobustBand {
        RobustBand {
            settings: BandSettings::from(params),
            daily_fallback_width: params.daily_fallback_width,
            residual_scale: params.effective_residual_scale(),
            min_history_windows: params.min_history_windows,
            level_windows: params.level_windows,
            seasonal: SeasonalModel::new(&SeasonalSettings::from(params), calendar, window_ms, history_windows),
            residuals: WindowSample::new(params.residual_windows),
            judged_sigma: None,
            mad_hint: MadHint::default(),
            learn_daily_recurrence: params.learn_daily_recurrence
                && window_ms <= JOB_SPAN_MS
                && DAY_MS % window_ms == 0,
            window_ms,
        }
    }

    /// Windows of history the band reads. The residual sample reads the
    /// window it retires, one window before the `residual_windows` it covers.
    pub fn history_needed(params: &DetectionParams, calendar: &Calendar, window_ms: i64) -> usize {
        (params.residual_windows + 1)
            .max(params.rolling_windows)
            .max(SeasonalModel::history_needed(
                &SeasonalSettings::from(params),
                calendar,
                window_ms,
            ))
    }

    /// Windows whose outside bits the history must keep beyond its values:
    /// those of the days a new daily shape must recur on, when the values
    /// kept cover only a day because the weekly reference reads hour means.
    /// 0 otherwise.
    pub fn flags_needed(params: &DetectionParams, calendar: &Calendar, window_ms: i64) -> usize {
        let learns = params.learn_daily_recurrence && window_ms <= JOB_SPAN_MS && DAY_MS % window_ms == 0;
        let hourly = SeasonalSettings::from(params).hourly_blocks(window_ms).is_some();
        if learns && hourly {
            ((RECURRENCE_DAYS - 1) * DAY_MS / window_ms) as usize + calendar.lag_slack() + 1
        } else {
            0
        }
    }

    /// Windows per block and blocks of hourly means the history must keep,
    /// or `None` when the weekly reference does not read them.
    pub fn blocks_needed(params: &DetectionParams, calendar: &Calendar, window_ms: i64) -> Option<(i64, usize)> {
        SeasonalModel::blocks_needed(&SeasonalSettings::from(params), calendar, window_ms)
    }

    /// True when the level offsets' samples match what was recorded, for tests.
    #[cfg(test)]
    pub fn offsets_consistent(&self) -> bool {
        self.seasonal.offsets_consistent()
    }

    /// Number of residuals and level offsets held, for tests.
    #[cfg(test)]
    pub fn sample_lengths(&self) -> (usize, Vec<usize>) {
        (self.residuals.sample().len(), self.seasonal.lag_sample_lengths())
    }

    /// True when the level offsets equal those rebuilt from the stored
    /// references of the last `level_windows` windows, for tests.
    #[cfg(test)]
    pub fn offsets_match_history(&self, history: &History, calendar: &Calendar) -> bool {
        let Some(latest) = history.latest() else {
            return true;
        };
        let mut rebuilt = self.seasonal.clone();
        let limit = neighbour_limit(self.judged_sigma, self.residual_scale, self.settings);
        rebuilt.rebaseline(latest - self.level_windows as i64, history, calendar, &limit);
        rebuilt.lag_offsets() == self.seasonal.lag_offsets()
    }
}

/// Days in a row, the latest included, on which a window at the same local
/// time must be outside its band on the same side before its value becomes
/// the normal at that time of day. Fewer days could be a passing event, such
/// as three nights of the same outage, which would alert again when it ends.
const RECURRENCE_DAYS: i64 = 4;

/// Days before a learnt window whose references at the same local time are
/// rewritten: all the weekly and daily lags read until the window's own
/// value becomes the week-old reference.
const REWRITTEN_DAYS: i64 = 7;

/// Maximum length of a new job that is learnt, in ms, counted in whole
/// windows, and of the windows the rule applies to. A longer window is a
/// large part of the day, and a change in it is a change of level rather
/// than a new job.
const JOB_SPAN_MS: i64 = 3 * 3_600_000;

/// The windows of the last day further than [`JOB_SPAN_MS`] from this
/// window's time of day that may be outside, as a fraction of those
/// present. A level shift, a holiday or a series that is outside here
/// and there all day leaves more of them outside than the band's false
/// alarms do.
const MAX_OUTSIDE_SHARE: f64 = 1.0 / 32.0;

/// Change a re-baseline applies to the stored references.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shift {
    Factor(f64),
    Difference(f64),
}

/// Returns the median ratio of value to expected value over windows `first` to
/// `latest`, or the median difference when an expected value is not positive.
fn shift_of(history: &History, first: i64, latest: i64) -> Shift {
    let slots = (first..=latest).filter_map(|number| history.get(number));
    let pairs: Vec<(f64, f64)> = slots
        .filter(|slot| slot.expected.is_finite())
        .map(|slot| (f64::from(slot.value), f64::from(slot.expected)))
        .collect();

    if pairs.iter().all(|&(_, expected)| expected > 0.0) {
        let mut ratios: Vec<f64> = pairs.iter().map(|&(value, expected)| value / expected).collect();
        if let Some(factor) = median(&mut ratios) {
            return Shift::Factor(factor);
        }
    }
    let mut differences: Vec<f64> = pairs.iter().map(|&(value, expected)| value - expected).collect();
    Shift::Difference(median(&mut differences).unwrap_or(0.0))
}

/// Returns the limit on a neighbour's distance from a reference window,
/// as a function of the reference window's cleaned value. The limit is the
/// band's half-width at that value for the robust scale `sigma`, so only a
/// neighbour the band would not tell apart from the reference is averaged
/// in. There is no limit before the series has a scale.
fn neighbour_limit(sigma: Option<f64>, scale: ResidualScale, settings: BandSettings) -> impl Fn(f32) -> f32 {
    move |reference| match sigma {
        Some(sigma) => {
            let reference = f64::from(reference);
            half_width(reference, scale.band_scale(sigma, reference), &settings) as f32
        }
        None => f32::INFINITY,
    }
}

impl DetectionMethod for RobustBand {
    fn prepare(&mut self, number: i64, history: &History, _calendar: &Calendar) {
        // The residual sample reads the window that leaves it, so it retires
        // before the new window can push that window out of the history.
        let scale = self.residual_scale;
        self.residuals.retire_before(number, history, |history, leaving| {
            history.get(leaving).and_then(|slot| slot.residual(scale))
        });
        self.seasonal.retire_before(number);
    }

    fn judge(&mut self, number: i64, value: f64, history: &History, calendar: &Calendar) -> MethodOutput {
        self.judged_sigma = self.residuals.sample().sigma_near(&mut self.mad_hint);
        let limit = neighbour_limit(self.judged_sigma, self.residual_scale, self.settings);
        let expected = self.seasonal.expected_value(history, number, calendar, &limit);
        let Some(expected) = expected else {
            return MethodOutput::default();
        };
        let sigma = match self.judged_sigma {
            Some(sigma) if !self.is_learning() => sigma,
            _ => {
                return MethodOutput {
                    expected: Some(expected.value),
                    verdict: None,
                };
            }
        };

        let sigma = self.residual_scale.band_scale(sigma, expected.value);
        let mut settings = self.settings;
        if expected.fallback {
            settings.min_relative_width = settings.min_relative_width.max(self.daily_fallback_width);
        }
        let judgement = judge(value, expected.value, sigma, &settings);

        // A value is stored cleaned only when its expected value is worth
        // clamping to. Not when a seasonal series fell back to the rolling
        // median (its first day, or after a gap): that guess misses the
        // daily shape, and clamped values would become wrong references.
        // Not when the reference window was itself outside the band either:
        // an anomaly that recurs there is a lasting change of shape, which
        // must become the reference or it would alert forever.
        // A new daily job is learnt sooner by `learn_recurrence`, whose
        // spent windows are references like any inside one.
        let modelled = expected.seasonal || !self.seasonal.is_seasonal();
        let cleaned = if modelled && !expected.reference_outside {
            judgement.cleaned
        } else {
            value
        };

        MethodOutput {
            expected: Some(expected.value),
            verdict: Some(MethodVerdict {
                band: judgement.band,
                deviation_ratio: judgement.deviation_ratio,
                cleaned,
            }),
        }
    }

    fn record(&mut self, number: i64, history: &History, calendar: &Calendar) {
        // The window that leaves before the next one is judged leaves now,
        // in the same shift of the sorted residuals.
        let scale = self.residual_scale;
        let residual = history.get(number).and_then(|slot| slot.residual(scale));
        self.residuals.advance(number, residual, history, |history, leaving| {
            history.get(leaving).and_then(|slot| slot.residual(scale))
        });
        let limit = neighbour_limit(self.judged_sigma, self.residual_scale, self.settings);
        self.seasonal.record(number, history, calendar, &limit);
    }

    /// Re-baselines on a shift that started at window `first`: the shift
    /// factor is the median of value / expected over the shifted windows.
    /// Older stored references are scaled by it, the shifted windows keep
    /// their raw values, and the level adjustment is rebuilt from the
    /// rescaled history, so the expected value moves to the new level at
    /// once for every time of day. Without positive expected values the
    /// shift is applied as the median difference instead.
    fn rebaseline(&mut self, first: i64, history: &mut History, calendar: &Calendar) {
        let Some(latest) = history.latest() else {
            return;
        };
        let shift = shift_of(history, first, latest);

        // The shifted windows are within the detail depth, which covers
        // `rebaseline_windows`, so their raw values are kept.
        let oldest = history.oldest().unwrap_or(first);
        for number in oldest..=latest {
            let cleaned = if number >= first {
                history.get(number).map(|slot| slot.value)
            } else {
                history.reference(number).map(|reference| match shift {
                    Shift::Factor(factor) => reference.cleaned * factor as f32,
                    Shift::Difference(difference) => reference.cleaned + difference as f32,
                })
            };
            if let Some(cleaned) = cleaned {
                history.set_cleaned(number, cleaned);
            }
        }
        history.change_older_blocks(|mean| match shift {
            Shift::Factor(factor) => mean * factor as f32,
            Shift::Difference(difference) => mean + difference as f32,
        });
        let limit = neighbour_limit(self.judged_sigma, self.residual_scale, self.settings);
        self.seasonal
            .rebaseline(latest - self.level_windows as i64, history, calendar, &limit);
    }

    /// Learns a new daily shape, such as a job that starts to run at 03:00
    /// every day. That is a window outside its band on the same side at the
    /// same local time on [`RECURRENCE_DAYS`] days in a row, while the rest
    /// of the last day stayed inside apart from at most [`JOB_SPAN_MS`]
    /// around that time. The references at that time on the
    /// [`REWRITTEN_DAYS`] days before are rewritten to contain it. Otherwise
    /// the week-old reference keeps the old shape for a week, and the
    /// clamped values of the first week keep it for another.
    ///
    /// A day of the recurrence gets its raw value where it is kept. Any other
    /// day gets its stored value plus this window's deviation, because a
    /// job adds about the same amount every day. With residuals scaled to
    /// the level (`residual_scale = "sqrt"` or `"relative"`), a drop scales
    /// the stored value by this window's ratio to its expected value
    /// instead. With the count noise model the result stops at 0. The
    /// rewritten windows that were outside, and this one, are then spent:
    /// still outside for charts, but no evidence for the next recurrence
    /// and no bar to clamping. The 8 days after a clock change are left
    /// alone, because the rewritten days would not all be 24 hours.
    fn learn_recurrence(&mut self, number: i64, history: &mut History, calendar: &Calendar) -> bool {
        if !self.learn_daily_recurrence || !self.seasonal.is_seasonal() {
            return false;
        }
        let Some(slot) = history
            .get(number)
            .filter(|slot| slot.outside && slot.expected.is_finite())
        else {
            return false;
        };
        let above = slot.value > slot.expected;
        if calendar.clock_changed(number, (REWRITTEN_DAYS + 1) * DAY_MS) {
            return false;
        }

        let recurs = (1..RECURRENCE_DAYS).all(|day| {
            history
                .unspent_outside(calendar.lag(number, day * DAY_MS))
                .is_some_and(|was_above| was_above == above)
        });
        if !recurs {
            return false;
        }
        // A job of k windows leaves k − 1 of them outside between this
        // window and the same time yesterday, the two ends left out.
        let yesterday = calendar.lag(number, DAY_MS);
        let span = JOB_SPAN_MS / self.window_ms;
        let (outside_far, present_far) = history.outside_between(yesterday + span, number - span);
        let (outside, _) = history.outside_between(yesterday, number);
        if outside_far as f64 > MAX_OUTSIDE_SHARE * present_far as f64 || outside as i64 >= span {
            return false;
        }

        // A job adds about the same amount every day. Where the noise scales
        // with the level, a drop is taken as a share of the traffic instead.
        // A count stays at 0 or more.
        let deviation = slot.value - slot.expected;
        let count_model = self.residual_scale == ResidualScale::Sqrt;
        let proportional = matches!(self.residual_scale, ResidualScale::Sqrt | ResidualScale::Relative);
        let ratio = (proportional && !above && slot.expected > 0.0).then(|| (slot.value / slot.expected).max(0.0));
        let change = |base: f32| {
            let changed = match ratio {
                Some(ratio) => base * ratio,
                None => base + deviation,
            };
            if count_model { changed.max(0.0) } else { changed }
        };
        for day in 1..=REWRITTEN_DAYS {
            let target = calendar.lag(number, day * DAY_MS);
            let Some(reference) = history.reference(target) else {
                // The value is gone, but the mean of its hour may still be
                // kept for the weekly reference, so that mean takes the change.
                history.change_block_share(target, change);
                history.mark_spent(target);
                continue;
            };
            // NOTE: a day of the recurrence whose raw value is gone (days 2
            // and 3 with 5-minute windows) was stored clamped towards the
            // job. Its new reference is off by about `cleaning_sigmas` /
            // `band_sigmas` (0.3) of that day's band half-width.
            let raw = history.get(target).filter(|_| day < RECURRENCE_DAYS);
            let learnt = match raw {
                Some(raw) => raw.value,
                None => change(reference.cleaned),
            };
            history.set_cleaned(target, learnt);
            history.mark_spent(target);
        }
        history.set_cleaned(number, slot.value);
        history.mark_spent(number);

        // The level offsets of the last windows read the rewritten references.
        let limit = neighbour_limit(self.judged_sigma, self.residual_scale, self.settings);
        self.seasonal
            .rebaseline(number - self.level_windows as i64, history, calendar, &limit);
        true
    }

    fn is_learning(&self) -> bool {
        self.residuals.sample().len() < self.min_history_windows
    }

    fn heap_bytes(&self) -> usize {
        self.seasonal.heap_bytes() + self.residuals.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Slot;
    use super::super::params::{LevelAdjustment, Seasonality};
    use super::*;

    /// Takes window `number` with `value` through the band's steps, as
    /// `SeriesDetector::observe` does. Returns true when the window was
    /// learnt as a new daily shape.
    fn feed(band: &mut RobustBand, history: &mut History, calendar: &Calendar, number: i64, value: f64) -> bool {
        band.prepare(number, history, calendar);
        let output = band.judge(number, value, history, calendar);
        let edges = output.verdict.map(|verdict| (verdict.band.lower, verdict.band.upper));
        history.push(
            number,
            Slot {
                value: value as f32,
                cleaned: output.verdict.map_or(value, |verdict| verdict.cleaned) as f32,
                expected: output.expected.map_or(f32::NAN, |expected| expected as f32),
                lower: edges.map_or(f32::NAN, |(lower, _)| lower as f32),
                upper: edges.map_or(f32::NAN, |(_, upper)| upper as f32),
                outside: edges.is_some_and(|(lower, upper)| value < lower || value > upper),
            },
        );
        band.record(number, history, calendar);
        band.learn_recurrence(number, history, calendar)
    }

    #[test]
    fn samples_stay_at_their_length() {
        let window_ms = 30 * 60 * 1000;
        for params in [
            DetectionParams::default(),
            DetectionParams {
                history_windows: Some(337),
                ..DetectionParams::default()
            },
            DetectionParams {
                seasonality: Seasonality::Daily,
                ..DetectionParams::default()
            },
            DetectionParams {
                reference_windows: 5,
                ..DetectionParams::default()
            },
            DetectionParams {
                reference_windows: 3,
                level_adjustment: LevelAdjustment::Multiplicative,
                ..DetectionParams::default()
            },
        ] {
            let calendar = Calendar::new(params.time_zone, window_ms);
            let history_windows = params
                .history_windows
                .unwrap_or_else(|| RobustBand::history_needed(&params, &calendar, window_ms));
            let mut history = History::new(history_windows);
            let mut band = RobustBand::new(&params, &calendar, window_ms, history_windows);
            for number in 0..5_000 {
                let value = 100.0 + (number % 48) as f64 + (number % 7) as f64;
                feed(&mut band, &mut history, &calendar, number, value);
            }

            // After a window is recorded, the samples already cover the
            // windows the next one is judged on.
            let (residuals, lags) = band.sample_lengths();
            assert_eq!(residuals, params.residual_windows, "{params:?}");
            for lag in &lags {
                assert_eq!(*lag, params.level_windows, "{params:?}");
            }
        }
    }

    #[test]
    fn offsets_consistent_through_gaps_and_rebaselines() {
        // Berlin's clock change on 2026-03-29 moves the lags by a window,
        // short gaps and one longer than the history remove windows, and
        // re-baselines and a daily job that is learnt rewrite the stored
        // references. After every window the level offsets' sorted samples
        // must hold exactly the recorded offsets.
        let window_ms = 30 * 60 * 1000;
        let start = 1_772_323_200_000 / window_ms; // 2026-03-01T00:00Z
        let mut noise = super::super::test_noise::Noise(3);
        for adjustment in [LevelAdjustment::Additive, LevelAdjustment::Multiplicative] {
            let params = DetectionParams {
                reference_windows: 3,
                level_adjustment: adjustment,
                time_zone: "Europe/Berlin".parse().unwrap(),
                ..DetectionParams::default()
            };
            let calendar = Calendar::new(params.time_zone, window_ms);
            let history_windows = RobustBand::history_needed(&params, &calendar, window_ms);
            let mut history = History::new(history_windows);
            let mut band = RobustBand::new(&params, &calendar, window_ms, history_windows);

            let mut number = start;
            let mut learnt = 0;
            for step in 0..4_000 {
                number += if step == 2_500 { history_windows as i64 + 10 } else { 1 };
                if noise.next() > 0.9 {
                    continue;
                }
                let job = if step > 1_000 && number % 48 == 20 { 300.0 } else { 0.0 };
                let value = 100.0 + 50.0 * ((number % 48) as f64 / 8.0).sin() + 5.0 * noise.next() + job;

                if feed(&mut band, &mut history, &calendar, number, value) {
                    learnt += 1;
                    assert!(
                        band.offsets_match_history(&history, &calendar),
                        "{adjustment:?}, window {number}: level offsets not rebuilt after learning"
                    );
                }
                if step % 700 == 699 {
                    band.rebaseline(number - 20, &mut history, &calendar);
                }

                assert!(band.offsets_consistent(), "{adjustment:?}, window {number}");
            }
            assert!(learnt > 0, "{adjustment:?}: the daily job was never learnt");
        }
    }
}
