//! The trait every detection method implements, and the construction of a
//! series' method from its [`DetectionParams`].
//!
//! A method sees one series' windows in order. For each window the series
//! calls `prepare` before the window enters the history, `judge` with its
//! value, then `record` once the window is stored. The episode rules, alert
//! hygiene and storage are the series' job, the same for every method.

use std::fmt::Debug;

use super::Band;
use super::calendar::{Calendar, DAY_MS};
use super::ensemble::Ensemble;
use super::forecast::Forecast;
use super::history::History;
use super::iqr::Iqr;
use super::novelty::Novelty;
use super::params::{DetectionParams, MethodName};
use super::percent_change::{PastValues, PercentChange};
use super::robust_band::RobustBand;
use super::three_sigma::ThreeSigma;

/// Result of a method for one window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct MethodOutput {
    /// The expected value, stored even while the method cannot judge yet.
    pub expected: Option<f64>,
    /// `None` while the method is learning.
    pub verdict: Option<MethodVerdict>,
}

/// A method's judgement of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MethodVerdict {
    pub band: Band,
    /// Deviation from the expected value in half-widths of the band's side
    /// (1 at the edge). The ensemble's combines its methods' scores.
    pub deviation_ratio: f64,
    /// The value later windows use as their reference.
    pub cleaned: f64,
}

/// A detection method of one series. No I/O: every input comes from the
/// arguments and the method's own state.
pub(crate) trait DetectionMethod: Debug + Send + Sync {
    /// Drops state that window `number` no longer uses. Called before the
    /// window enters `history`.
    fn prepare(&mut self, _number: i64, _history: &History, _calendar: &Calendar) {}

    /// Judges `value` of window `number` against the windows before it.
    fn judge(&mut self, number: i64, value: f64, history: &History, calendar: &Calendar) -> MethodOutput;

    /// Takes in window `number`, now stored in `history`.
    fn record(&mut self, _number: i64, _history: &History, _calendar: &Calendar) {}

    /// Accepts the windows from `first` to the latest as the new normal
    /// after a sustained shift.
    fn rebaseline(&mut self, _first: i64, _history: &mut History, _calendar: &Calendar) {}

    /// Accepts window `number`, just recorded, as the new normal at its
    /// local time of day when it shows a new daily shape (see `RobustBand`).
    /// Returns true when it rewrote stored references.
    fn learn_recurrence(&mut self, _number: i64, _history: &mut History, _calendar: &Calendar) -> bool {
        false
    }

    /// True while the method has too little history to judge.
    fn is_learning(&self) -> bool;

    /// Bytes the method allocated on the heap.
    fn heap_bytes(&self) -> usize;
}

/// Windows of history `method` reads with `params` for `window_ms` windows.
pub(crate) fn history_needed(
    method: MethodName,
    params: &DetectionParams,
    calendar: &Calendar,
    window_ms: i64,
) -> usize {
    match method {
        MethodName::RobustBand => RobustBand::history_needed(params, calendar, window_ms),
        MethodName::Iqr => params.iqr.windows + 1,
        MethodName::PercentChange => PercentChange::history_needed(calendar, window_ms),
        MethodName::ThreeSigma => params.three_sigma.windows,
        MethodName::Forecast => params.forecast.fit_windows.max(params.residual_windows + 1),
        // The method keeps the values it compares itself; the history
        // only serves the day of chart.
        MethodName::Novelty => usize::try_from(DAY_MS / window_ms).unwrap_or(1).max(1),
        MethodName::Ensemble => params
            .ensemble
            .methods
            .iter()
            .map(|&method| history_needed(method, params, calendar, window_ms))
            .max()
            .unwrap_or(1),
    }
}

/// Windows whose outside bits the history must keep for `method`, beyond
/// its values: 0 when it reads no older bits.
pub(crate) fn flags_needed(method: MethodName, params: &DetectionParams, calendar: &Calendar, window_ms: i64) -> usize {
    match method {
        MethodName::RobustBand => RobustBand::flags_needed(params, calendar, window_ms),
        // An ensemble learns no daily shape.
        _ => 0,
    }
}

/// Windows per block and blocks of means the history must keep for
/// `method`, or `None` when it reads no block means.
pub(crate) fn blocks_needed(
    method: MethodName,
    params: &DetectionParams,
    calendar: &Calendar,
    window_ms: i64,
) -> Option<(i64, usize)> {
    match method {
        MethodName::RobustBand => RobustBand::blocks_needed(params, calendar, window_ms),
        MethodName::Ensemble => params
            .ensemble
            .methods
            .iter()
            .filter_map(|&method| blocks_needed(method, params, calendar, window_ms))
            .max(),
        _ => None,
    }
}

/// Windows of history whose every field `method` reads with `params`: raw
/// values, expected values and band edges. Older windows only need their
/// reference (see `history.rs`).
pub(crate) fn detail_needed(
    method: MethodName,
    params: &DetectionParams,
    calendar: &Calendar,
    window_ms: i64,
) -> usize {
    match method {
        // Alone, the rule stores every value uncleaned, so the references
        // it reads are its raw values.
        MethodName::PercentChange => 1,
        MethodName::Ensemble => params
            .ensemble
            .methods
            .iter()
            .map(|&method| member_detail_needed(method, params, calendar, window_ms))
            .max()
            .unwrap_or(1),
        _ => member_detail_needed(method, params, calendar, window_ms),
    }
}

/// Returns [`detail_needed`] for `method` as a member of an ensemble, whose stored
/// references are the first judging method's cleaned values.
fn member_detail_needed(method: MethodName, params: &DetectionParams, calendar: &Calendar, window_ms: i64) -> usize {
    match method {
        // Residuals and re-baselines read raw and expected values; the
        // seasonal references a week back read references only.
        MethodName::RobustBand => (params.residual_windows + 1).max(params.rebaseline_windows),
        MethodName::Forecast => params.residual_windows + 1,
        // These rules compare raw values over their whole reach.
        MethodName::Iqr | MethodName::PercentChange | MethodName::ThreeSigma | MethodName::Ensemble => {
            history_needed(method, params, calendar, window_ms)
        }
        MethodName::Novelty => 1,
    }
}

/// Creates `method` for a series whose history keeps `history_windows` windows.
pub(crate) fn build(
    method: MethodName,
    params: &DetectionParams,
    calendar: &Calendar,
    window_ms: i64,
    history_windows: usize,
) -> Box<dyn DetectionMethod> {
    build_reading(
        method,
        params,
        calendar,
        window_ms,
        history_windows,
        PastValues::Reference,
    )
}

/// Creates `method`, whose percent-change rule reads `past_values`: the
/// stored references alone, the raw values as an ensemble member (see
/// [`member_detail_needed`]).
fn build_reading(
    method: MethodName,
    params: &DetectionParams,
    calendar: &Calendar,
    window_ms: i64,
    history_windows: usize,
    past_values: PastValues,
) -> Box<dyn DetectionMethod> {
    match method {
        MethodName::RobustBand => Box::new(RobustBand::new(params, calendar, window_ms, history_windows)),
        MethodName::Iqr => Box::new(Iqr::new(&params.iqr)),
        MethodName::PercentChange => Box::new(PercentChange::new(&params.percent_change, window_ms, past_values)),
        MethodName::ThreeSigma => Box::new(ThreeSigma::new(&params.three_sigma)),
        MethodName::Forecast => Box::new(Forecast::new(params, window_ms)),
        MethodName::Novelty => Box::new(Novelty::new(params)),
        MethodName::Ensemble => {
            let methods = params
                .ensemble
                .methods
                .iter()
                .map(|&member| build_reading(member, params, calendar, window_ms, history_windows, PastValues::Raw))
                .collect();
            Box::new(Ensemble::new(methods, &params.ensemble))
        }
    }
}
