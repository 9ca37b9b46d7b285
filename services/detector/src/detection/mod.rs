//! Detection maths for one series of closed windows: the method that
//! judges each window, the score and the episode state machine. Pure and
//! synchronous: no tokio, Kafka or gRPC.
//!
//! CONTRACT, shared by the live service and `replay` (keep these signatures):
//! - [`DetectionParams`]: tuning, deserialisable from the metric TOML,
//!   including the method (`method = "robust_band"` by default).
//! - [`SeriesDetector::new`] creates the state of one series.
//! - [`SeriesDetector::observe`] takes each closed window once, in window
//!   order (gaps allowed), and returns its [`Evaluation`].
//! - [`SeriesDetector::points`] and [`SeriesDetector::is_learning`] feed
//!   `GetSeries`.
//!
//! How a window is judged:
//! 1. `method.rs`: the [`DetectionMethod`](method::DetectionMethod) trait,
//!    one module per method: `robust_band.rs` (median/MAD band around a
//!    seasonal reference, with `seasonal.rs`, `robust.rs` and `band.rs`),
//!    `iqr.rs`, `percent_change.rs`, `three_sigma.rs`, `forecast.rs`,
//!    `novelty.rs` and `ensemble.rs`. Daily and weekly lags follow local time (`calendar.rs`).
//! 2. This file: the minimum volume and minimum deviation rules, which keep
//!    small slices quiet whatever the method.
//! 3. `episode.rs`: whether the window fires or resolves an episode, with
//!    cool-down, daily cap and re-baselining after a lasting shift.
//! 4. `tail_score.rs`: the calibrated score, which ranks a window's recent
//!    deviation among the series' earlier ones.
//! 5. `history.rs`: the bounded store of past windows the steps read, and
//!    `window_sample.rs`: sorted samples over its most recent windows.

mod band;
mod block_means;
mod calendar;
mod ensemble;
mod episode;
mod forecast;
mod history;
mod iqr;
mod method;
mod method_params;
mod novelty;
mod params;
mod percent_change;
pub mod robust;
mod robust_band;
mod seasonal;
mod tail_score;
mod three_sigma;
mod window_sample;

pub use band::anomaly_score;
pub use params::{
    CombineRule, CooldownStart, DetectionParams, EnsembleParams, ForecastParams, IqrParams, LevelAdjustment,
    MAX_FIRE_LOOKBACK, MethodName, NoveltyParams, PercentChangeParams, ResidualScale, Seasonality, ThreeSigmaParams,
    TimeZone, WeeklyReference,
};

use band::BandSettings;
use calendar::Calendar;
use episode::{AlertRules, EpisodeTracker};
use history::{History, Slot, StoredWindow};
use method::DetectionMethod;
use tail_score::TailScore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// How far out a window is, from its deviation ratio. The order runs from
/// `Info`, the lowest, to `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Critical,
}

/// The band a window was judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
}

/// A change of the series' episode state caused by one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// An anomaly episode starts at this window.
    Fired {
        /// Start of the episode's first window, Unix epoch ms. With the
        /// series identity it makes a stable episode id.
        episode_start_ms: i64,
        direction: Direction,
        severity: Severity,
    },
    /// The open episode that started at `episode_start_ms` reaches a
    /// higher severity at this window.
    Escalated { episode_start_ms: i64, severity: Severity },
    /// The episode that started at `episode_start_ms` ends at this window.
    Resolved { episode_start_ms: i64 },
}

/// The verdict on one closed window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub window_start_ms: i64,
    pub value: f64,
    /// `None` while the series is learning.
    pub band: Option<Band>,
    /// Anomaly score in [0, 1]: 0.5 at the band edge, 0 while learning.
    pub score: f64,
    /// Anomaly score in [0, 1) calibrated on the series' own history: one
    /// minus the tail probability of the mean deviation over the last
    /// `fire_lookback` windows (see `tail_score.rs`). 0 while learning.
    /// Unlike `score`, equal values are equally rare on every series.
    pub calibrated_score: f64,
    /// The value lies outside the band.
    pub outside: bool,
    pub transition: Option<Transition>,
}

/// One stored closed window with its verdict, for charts. Read back from
/// `f32` storage, so `value` and `band` carry about 7 significant digits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub window_start_ms: i64,
    pub value: f64,
    pub band: Option<Band>,
    /// The value was outside its band.
    pub anomalous: bool,
    /// The window is older than the series keeps in full, so `value` is its
    /// stored reference (the value clamped near its expected value, as later
    /// windows compare against it) and `band` is `None`.
    pub reference_only: bool,
}

/// State of one series (one metric × slice).
///
/// Memory: the history keeps the reference of `history_windows` windows at
/// 4 bytes and 2 bits each, and every field of the newest windows (at least
/// a day, and the method's own reach) at 16 bytes more. For the robust band
/// with 5-minute windows that is 2,065 references (one more with
/// `reference_windows = 3`) and 337 full windows, about 14 KiB. The
/// method's own state comes on top, and so do 336 bytes for the
/// calibrated score (280 of them on the heap). `memory_bytes` returns the
/// total. With `weekly_reference = "hourly"` the history keeps 337
/// windows and 174 hourly means of 6 bytes instead, about 11.4 KiB in all.
// TODO: 5-minute windows with weekly seasonality take about 17 KiB per
// series, 11.4 KiB with the hourly weekly reference. Reaching 4 KiB also
// needs charts served from outside the detector's memory (a day of full
// windows is 4.6 KiB) and a residual scale that keeps no 337-window sample.
#[derive(Debug)]
pub struct SeriesDetector {
    window_ms: i64,
    /// Offset of window starts within `window_ms`, taken from the first
    /// window, so windows not aligned to the epoch keep their own grid.
    phase_ms: Option<i64>,
    calendar: Calendar,
    history: History,
    method: Box<dyn DetectionMethod>,
    severity: BandSettings,
    alert_rules: AlertRules,
    min_volume: f64,
    min_absolute_deviation: f64,
    episode: EpisodeTracker,
    tail_score: TailScore,
    /// `DetectionParams::fire_tail_probability`.
    fire_tail_probability: f64,
    /// Windows the method learnt as a new daily shape.
    recurrences_learnt: u64,
}

impl SeriesDetector {
    /// Creates a series with windows of `window_ms` milliseconds.
    ///
    /// # Panics
    /// If `window_ms` is not positive or `params` fails
    /// [`DetectionParams::validate`]. Deserialised params are already valid.
    pub fn new(params: &DetectionParams, window_ms: i64) -> SeriesDetector {
        assert!(window_ms > 0, "window length must be positive, got {window_ms} ms");
        if let Err(problem) = params.validate() {
            panic!("invalid detection parameters: {problem}");
        }

        let calendar = Calendar::new(params.time_zone, window_ms);
        let needed = method::history_needed(params.method, params, &calendar, window_ms);
        let history_windows = params.history_windows.unwrap_or(needed);
        // Charts show the last day in full, so at least a day is kept with
        // every field.
        let day_windows =
            usize::try_from(calendar::DAY_MS.saturating_add(window_ms - 1) / window_ms).unwrap_or(usize::MAX);
        let detail_windows = method::detail_needed(params.method, params, &calendar, window_ms).max(day_windows);
        let flag_windows = method::flags_needed(params.method, params, &calendar, window_ms);
        let mut history = History::with_detail(history_windows, detail_windows).with_flags(flag_windows);
        if let Some((windows_per_block, blocks)) = method::blocks_needed(params.method, params, &calendar, window_ms) {
            history = history.with_blocks(windows_per_block, blocks);
        }

        SeriesDetector {
            window_ms,
            phase_ms: None,
            calendar,
            history,
            method: method::build(params.method, params, &calendar, window_ms, history_windows),
            severity: BandSettings::from(params),
            alert_rules: AlertRules::from(params),
            min_volume: params.min_volume,
            min_absolute_deviation: params.min_absolute_deviation,
            episode: EpisodeTracker::new(),
            tail_score: TailScore::new(params.fire_lookback),
            fire_tail_probability: params.fire_tail_probability,
            recurrences_learnt: 0,
        }
    }

    /// Judges one closed window. Windows must come in increasing
    /// `window_start_ms` order: a window at or before the last one is ignored
    /// and returns `None`. A value that is not finite or does not fit in an
    /// `f32` is ignored the same way.
    ///
    /// A start that is not on the grid of the first window is floored onto
    /// it, so two starts within one window length count as the same window.
    pub fn observe(&mut self, window_start_ms: i64, value: f64) -> Option<Evaluation> {
        if !value.is_finite() || value.abs() > f64::from(f32::MAX) {
            return None;
        }
        let phase_ms = match self.phase_ms {
            Some(phase_ms) => phase_ms,
            None => {
                let phase_ms = window_start_ms.rem_euclid(self.window_ms);
                self.calendar.set_phase(phase_ms);
                *self.phase_ms.insert(phase_ms)
            }
        };
        let number = (window_start_ms - phase_ms).div_euclid(self.window_ms);

        let missing = match self.history.latest() {
            Some(latest) if number <= latest => return None,
            Some(latest) => (number - latest - 1) as u64,
            None => 0,
        };
        self.method.prepare(number, &self.history, &self.calendar);
        self.episode.skip(missing);
        self.tail_score.skip(missing);

        let output = self.method.judge(number, value, &self.history, &self.calendar);
        let judgement = output.verdict.map(|verdict| {
            let mut judgement = band::judgement(
                value,
                verdict.band,
                verdict.deviation_ratio,
                verdict.cleaned,
                &self.severity,
            );
            if judgement.outside && self.is_too_small(value, verdict.band.expected) {
                judgement.outside = false;
                judgement.score = judgement.score.min(0.5);
            }
            judgement
        });

        let calibrated_score = self
            .tail_score
            .observe(judgement.map(|judgement| judgement.deviation_ratio));

        let slot = Slot {
            value: value as f32,
            cleaned: judgement.map_or(value, |judgement| judgement.cleaned) as f32,
            expected: output.expected.map_or(f32::NAN, |expected| expected as f32),
            lower: judgement.map_or(f32::NAN, |judgement| judgement.band.lower as f32),
            upper: judgement.map_or(f32::NAN, |judgement| judgement.band.upper as f32),
            outside: judgement.is_some_and(|judgement| judgement.outside),
        };
        self.history.push(number, slot);
        self.method.record(number, &self.history, &self.calendar);
        if self.method.learn_recurrence(number, &mut self.history, &self.calendar) {
            self.recurrences_learnt += 1;
        }

        let local_day = if self.alert_rules.max_alerts_per_day > 0 {
            self.calendar.local_day(number)
        } else {
            0
        };
        let rare = self.fire_tail_probability > 0.0 && calibrated_score >= 1.0 - self.fire_tail_probability;
        let step = self
            .episode
            .step(window_start_ms, local_day, judgement.as_ref(), rare, &self.alert_rules);
        if let Some(windows) = step.rebaseline_windows {
            let first = number + 1 - windows as i64;
            self.method.rebaseline(first, &mut self.history, &self.calendar);
        }

        Some(Evaluation {
            window_start_ms,
            value,
            band: judgement.map(|judgement| judgement.band),
            score: judgement.map_or(0.0, |judgement| judgement.score),
            calibrated_score,
            outside: judgement.is_some_and(|judgement| judgement.outside),
            transition: step.transition,
        })
    }

    /// Returns true for a deviation too small to alert on: below `min_absolute_deviation`,
    /// or in a window whose value and expected value are both smaller in
    /// magnitude than `min_volume`, so a series below 0 is judged by its size too.
    fn is_too_small(&self, value: f64, expected: f64) -> bool {
        (value - expected).abs() < self.min_absolute_deviation
            || (value.abs() < self.min_volume && expected.abs() < self.min_volume)
    }

    /// Stored windows, oldest first. Windows older than the detail depth
    /// come with their stored reference only (see [`Point::reference_only`]).
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        let phase_ms = self.phase_ms.unwrap_or(0);
        self.history.iter().map(move |(number, kept)| {
            let window_start_ms = number * self.window_ms + phase_ms;
            let slot = match kept {
                StoredWindow::Full(slot) => slot,
                StoredWindow::ReferenceOnly(reference) => {
                    return Point {
                        window_start_ms,
                        value: f64::from(reference.cleaned),
                        band: None,
                        anomalous: reference.outside,
                        reference_only: true,
                    };
                }
            };

            let (expected, lower, upper) = (f64::from(slot.expected), f64::from(slot.lower), f64::from(slot.upper));
            Point {
                window_start_ms,
                value: f64::from(slot.value),
                band: (expected.is_finite() && lower.is_finite() && upper.is_finite()).then_some(Band {
                    expected,
                    lower,
                    upper,
                }),
                anomalous: slot.outside,
                reference_only: false,
            }
        })
    }

    /// Number of windows learnt as a new daily shape, such as a new job
    /// at the same time every day (see `DetectionParams::learn_daily_recurrence`).
    pub fn recurrences_learnt(&self) -> u64 {
        self.recurrences_learnt
    }

    /// True while the series has too little history to alert, e.g. fewer
    /// than `min_history_windows` residuals for the robust band.
    pub fn is_learning(&self) -> bool {
        self.method.is_learning()
    }

    /// Windows of history kept at most.
    pub fn history_windows(&self) -> usize {
        self.history.capacity()
    }

    /// True when the weekly reference reads hour means: `weekly_reference =
    /// "hourly"` in effect for this method, seasonality and window length.
    pub fn reads_hour_means(&self) -> bool {
        self.history.block_reach() > 0
    }

    /// Returns why `weekly_reference = "hourly"` in `params` has no effect
    /// with windows of `window_ms`, or `None` when it is not set or works.
    pub fn hourly_reference_unused(params: &DetectionParams, window_ms: i64) -> Option<String> {
        if params.weekly_reference != WeeklyReference::Hourly
            || SeriesDetector::new(params, window_ms).reads_hour_means()
        {
            return None;
        }
        Some(
            "weekly_reference = \"hourly\" has no effect: it needs the robust band (alone or in an \
             ensemble), seasonality = \"weekly\" and windows of 15 seconds to 15 minutes that divide \
             an hour; change those or remove the key"
                .to_string(),
        )
    }

    /// Windows back from the latest that the series reads: the history,
    /// and the hourly means of a weekly reference by the hour, which reach
    /// further. A warm start loads this many windows.
    pub fn lookback_windows(&self) -> usize {
        self.history.capacity().max(self.history.block_reach())
    }

    /// Bytes this series occupies, heap included.
    pub fn memory_bytes(&self) -> usize {
        size_of::<SeriesDetector>()
            + self.history.heap_bytes()
            + size_of_val(self.method.as_ref())
            + self.method.heap_bytes()
            + self.tail_score.heap_bytes()
    }
}

#[cfg(test)]
mod test_noise;
#[cfg(test)]
mod tests;
