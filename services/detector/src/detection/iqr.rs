//! The analysts' interquartile-range rule as a method: the band is
//! `[Q1 − a·IQR, Q3 + a·IQR]` of the previous `windows` raw values (Tukey's
//! fences, J. W. Tukey 1977, "Exploratory Data Analysis"), around their
//! median. Quartiles interpolate between closest ranks (R's type 7).

use super::calendar::Calendar;
use super::history::History;
use super::method::{DetectionMethod, MethodOutput, MethodVerdict};
use super::method_params::IqrParams;
use super::window_sample::WindowSample;
use super::{Band, band};

#[derive(Debug, Clone)]
pub(crate) struct Iqr {
    coefficient: f64,
    /// Values needed before the rule judges: a quarter of `windows`, at
    /// least 8, because quartiles of a handful of values swing too much.
    min_windows: usize,
    values: WindowSample,
}

impl Iqr {
    pub fn new(params: &IqrParams) -> Iqr {
        Iqr {
            coefficient: params.coefficient,
            min_windows: (params.windows / 4).max(8).min(params.windows),
            values: WindowSample::new(params.windows),
        }
    }
}

impl DetectionMethod for Iqr {
    fn prepare(&mut self, number: i64, history: &History, _calendar: &Calendar) {
        self.values.retire_before(number, history, |history, leaving| {
            history.get(leaving).map(|slot| slot.value)
        });
    }

    fn judge(&mut self, _number: i64, value: f64, _history: &History, _calendar: &Calendar) -> MethodOutput {
        let sorted = self.values.sample().as_slice();
        let Some(median) = self.values.sample().median() else {
            return MethodOutput::default();
        };
        if self.is_learning() {
            return MethodOutput {
                expected: Some(median),
                verdict: None,
            };
        }

        let (q1, q3) = (quantile(sorted, 0.25), quantile(sorted, 0.75));
        let spread = self.coefficient * (q3 - q1);
        let band = Band {
            expected: median,
            lower: q1 - spread,
            upper: q3 + spread,
        };
        MethodOutput {
            expected: Some(median),
            verdict: Some(MethodVerdict {
                band,
                deviation_ratio: band::deviation_ratio(value, &band),
                cleaned: value,
            }),
        }
    }

    fn record(&mut self, number: i64, history: &History, _calendar: &Calendar) {
        if let Some(slot) = history.get(number) {
            self.values.insert(slot.value);
        }
    }

    fn is_learning(&self) -> bool {
        self.values.sample().len() < self.min_windows
    }

    fn heap_bytes(&self) -> usize {
        self.values.heap_bytes()
    }
}

/// Quantile of ascending values by linear interpolation between closest
/// ranks (R's type 7, NumPy's default). `sorted` must not be empty.
pub(crate) fn quantile(sorted: &[f32], probability: f64) -> f64 {
    let position = probability * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let (low, high) = (f64::from(sorted[lower]), f64::from(sorted[upper]));
    low + (high - low) * (position - lower as f64)
}

#[cfg(test)]
mod tests {
    use super::super::calendar::Calendar;
    use super::super::history::Slot;
    use super::*;

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

    #[test]
    fn quantiles_interpolate() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.25), 1.75);
        assert_eq!(quantile(&sorted, 0.75), 3.25);
        assert_eq!(quantile(&[5.0], 0.25), 5.0);
    }

    #[test]
    fn band_is_tukey_fences_of_previous_windows() {
        let calendar = Calendar::new(Default::default(), 1_000);
        let mut history = History::new(100);
        let mut iqr = Iqr::new(&IqrParams {
            windows: 8,
            coefficient: 1.5,
        });
        // Values 1..=8: Q1 = 2.75, Q3 = 6.25, IQR = 3.5, fences -2.5 and 11.5.
        for number in 0..8 {
            iqr.prepare(number, &history, &calendar);
            assert!(iqr.judge(number, 1.0, &history, &calendar).verdict.is_none());
            history.push(number, slot(number as f32 + 1.0));
            iqr.record(number, &history, &calendar);
        }

        iqr.prepare(8, &history, &calendar);
        let verdict = iqr.judge(8, 11.5, &history, &calendar).verdict.unwrap();
        assert_eq!(verdict.band.lower, -2.5);
        assert_eq!(verdict.band.upper, 11.5);
        assert_eq!(verdict.band.expected, 4.5);
        assert_eq!(verdict.deviation_ratio, 1.0);
        let outside = iqr.judge(8, 12.0, &history, &calendar).verdict.unwrap();
        assert!(outside.deviation_ratio > 1.0);
    }
}
