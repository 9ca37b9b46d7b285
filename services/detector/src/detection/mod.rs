//! Detection maths for one series of closed windows: the band, the score and
//! the episode state machine. Pure and synchronous: no tokio, Kafka or gRPC.
//!
//! CONTRACT, shared by the live service and `replay` (keep these signatures):
//! - [`DetectionParams`]: tuning, deserialisable from the metric TOML.
//! - [`SeriesDetector::new`] creates the state of one series.
//! - [`SeriesDetector::observe`] takes each closed window once, in window
//!   order (gaps allowed), and returns its [`Evaluation`].
//! - [`SeriesDetector::points`] and [`SeriesDetector::is_learning`] feed
//!   `GetSeries`.
//!
//! How a window is judged, one file per step:
//! 1. `seasonal.rs`: the expected value from the same window a week or a day
//!    earlier plus a level adjustment, else the rolling median.
//! 2. `robust.rs`: the robust scale (MAD) of the last `residual_windows`
//!    residuals.
//! 3. `band.rs`: band, score, severity and the cleaned value that later
//!    windows use as their reference.
//! 4. `episode.rs`: whether the window fires or resolves an episode.
//! 5. `history.rs`: the bounded store of past windows the steps read, and
//!    `window_sample.rs`: sorted samples over its most recent windows.

mod band;
mod episode;
mod history;
mod params;
pub mod robust;
mod seasonal;
mod window_sample;

pub use band::anomaly_score;
pub use params::{DetectionParams, MAX_FIRE_LOOKBACK, Seasonality};

use episode::EpisodeTracker;
use history::{History, Slot};
use seasonal::SeasonalModel;
use window_sample::WindowSample;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
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
}

/// State of one series (one metric × slice).
///
/// Memory: the history keeps `history_windows` windows at 20 bytes each
/// (one week plus `level_windows` + 1 by default: 385 windows, 7.5 KiB, for
/// 30-minute windows), plus 4 bytes per value of the residual and level
/// samples. `memory_bytes` returns the total.
// TODO: 5-minute windows with weekly seasonality keep 2065 windows (≈ 42 KiB).
// Reaching 4 KiB per series needs a coarser weekly reference or no stored bands.
#[derive(Debug, Clone)]
pub struct SeriesDetector {
    params: DetectionParams,
    window_ms: i64,
    /// Offset of window starts within `window_ms`, taken from the first
    /// window, so windows not aligned to the epoch keep their own grid.
    phase_ms: Option<i64>,
    history: History,
    seasonal: SeasonalModel,
    /// Residuals of the last `residual_windows` windows, for the robust scale.
    residuals: WindowSample,
    episode: EpisodeTracker,
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

        // The residual sample reads the window it retires, one window before
        // the `residual_windows` it covers.
        let needed = (params.residual_windows + 1)
            .max(params.rolling_windows)
            .max(SeasonalModel::history_needed(
                params.seasonality,
                window_ms,
                params.level_windows,
            ));
        let history_windows = params.history_windows.unwrap_or(needed);

        SeriesDetector {
            params: params.clone(),
            window_ms,
            phase_ms: None,
            history: History::new(history_windows),
            seasonal: SeasonalModel::new(
                params.seasonality,
                window_ms,
                params.level_windows,
                params.rolling_windows,
                history_windows,
            ),
            residuals: WindowSample::new(params.residual_windows),
            episode: EpisodeTracker::new(),
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
        let phase_ms = *self.phase_ms.get_or_insert(window_start_ms.rem_euclid(self.window_ms));
        let number = (window_start_ms - phase_ms).div_euclid(self.window_ms);

        let missing = match self.history.latest() {
            Some(latest) if number <= latest => return None,
            Some(latest) => (number - latest - 1) as u64,
            None => 0,
        };
        // Both samples read the windows that leave them, so they retire
        // before `history.push` can drop those windows.
        self.residuals.retire_before(number, &self.history, |history, leaving| {
            history.get(leaving).and_then(Slot::residual)
        });
        self.seasonal.retire_before(number, &self.history);
        self.episode.skip(missing);

        let expected = self.seasonal.expected_value(&self.history, number);
        let judgement = match (expected, self.residuals.sample().sigma()) {
            (Some(expected), Some(sigma)) if !self.is_learning() => {
                Some(band::judge(value, expected.value, sigma, &self.params))
            }
            _ => None,
        };

        // A value is stored cleaned only when its expected value is worth
        // clamping to. Not when a seasonal series fell back to the rolling
        // median (its first day, or after a gap): that guess misses the
        // daily shape, and clamped values would become wrong references.
        // Not when the reference window was itself outside the band either:
        // an anomaly that recurs there is a lasting change of shape, which
        // must become the reference or it would alert forever.
        // TODO: with weekly seasonality a lasting change of the daily shape,
        // such as users shifting by an hour at a DST change, still alerts
        // daily for up to two weeks. The daily lag could confirm it sooner.
        let trusted = expected.is_some_and(|expected| {
            let modelled = expected.seasonal || !self.seasonal.is_seasonal();
            let reference_was_outside = self.history.get(expected.reference).is_some_and(|slot| slot.outside);
            modelled && !reference_was_outside
        });
        let cleaned = match judgement {
            Some(judgement) if trusted => judgement.cleaned,
            _ => value,
        };

        let slot = Slot {
            value: value as f32,
            cleaned: cleaned as f32,
            expected: expected.map_or(f32::NAN, |expected| expected.value as f32),
            half_width: judgement.map_or(f32::NAN, |judgement| {
                ((judgement.band.upper - judgement.band.lower) / 2.0) as f32
            }),
            outside: judgement.is_some_and(|judgement| judgement.outside),
        };
        self.history.push(number, slot);
        if let Some(residual) = slot.residual() {
            self.residuals.insert(residual);
        }
        self.seasonal.record(number, &self.history);

        let transition = self.episode.step(window_start_ms, judgement.as_ref(), &self.params);
        Some(Evaluation {
            window_start_ms,
            value,
            band: judgement.map(|judgement| judgement.band),
            score: judgement.map_or(0.0, |judgement| judgement.score),
            outside: judgement.is_some_and(|judgement| judgement.outside),
            transition,
        })
    }

    /// Stored recent windows, oldest first.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        let phase_ms = self.phase_ms.unwrap_or(0);
        self.history.iter().map(move |(number, slot)| {
            let half_width = f64::from(slot.half_width);
            let expected = f64::from(slot.expected);
            Point {
                window_start_ms: number * self.window_ms + phase_ms,
                value: f64::from(slot.value),
                band: (half_width.is_finite() && expected.is_finite()).then_some(Band {
                    expected,
                    lower: expected - half_width,
                    upper: expected + half_width,
                }),
                anomalous: slot.outside,
            }
        })
    }

    /// True while the series has too little history to alert: fewer than
    /// `min_history_windows` residuals in the scale sample.
    pub fn is_learning(&self) -> bool {
        self.residuals.sample().len() < self.params.min_history_windows
    }

    /// Windows of history kept at most.
    pub fn history_windows(&self) -> usize {
        self.history.capacity()
    }

    /// Bytes this series occupies, heap included.
    pub fn memory_bytes(&self) -> usize {
        size_of::<SeriesDetector>()
            + self.history.heap_bytes()
            + self.seasonal.heap_bytes()
            + self.residuals.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `windows` 30-minute windows of a daily cycle through a detector.
    fn detector_after(params: &DetectionParams, windows: i64) -> SeriesDetector {
        let window_ms = 30 * 60 * 1000;
        let mut detector = SeriesDetector::new(params, window_ms);
        for i in 0..windows {
            let value = 100.0 + (i % 48) as f64 + (i % 7) as f64;
            detector.observe(i * window_ms, value).unwrap();
        }
        detector
    }

    #[test]
    fn samples_stay_at_their_length() {
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
        ] {
            let detector = detector_after(&params, 5_000);
            assert_eq!(
                detector.residuals.sample().len(),
                params.residual_windows + 1,
                "{params:?}"
            );
            for lag in &detector.seasonal.lag_sample_lengths() {
                assert_eq!(*lag, params.level_windows + 1, "{params:?}");
            }
        }
    }
}
