//! The rolling three-sigma rule: the band is the mean ± `sigmas` standard
//! deviations of the previous `windows` raw values (Shewhart's control
//! limits, W. A. Shewhart 1931, "Economic Control of Quality of
//! Manufactured Product"). Not robust: one large outlier widens the band
//! for the next `windows` windows.

use super::calendar::Calendar;
use super::history::History;
use super::method::{DetectionMethod, MethodOutput, MethodVerdict};
use super::method_params::ThreeSigmaParams;
use super::{Band, band};

#[derive(Debug, Clone)]
pub(crate) struct ThreeSigma {
    windows: usize,
    sigmas: f64,
    /// Values needed before the rule judges: a quarter of `windows`, at least 2.
    min_windows: usize,
    /// Values seen in the latest judgement, for `is_learning`.
    last_count: usize,
}

impl ThreeSigma {
    pub fn new(params: &ThreeSigmaParams) -> ThreeSigma {
        ThreeSigma {
            windows: params.windows,
            sigmas: params.sigmas,
            min_windows: (params.windows / 4).max(2),
            last_count: 0,
        }
    }
}

impl DetectionMethod for ThreeSigma {
    fn judge(&mut self, number: i64, value: f64, history: &History, _calendar: &Calendar) -> MethodOutput {
        // Welford's update keeps the variance accurate for large values.
        let (mut count, mut mean, mut squares) = (0usize, 0.0f64, 0.0f64);
        for back in 1..=self.windows as i64 {
            if let Some(slot) = history.get(number - back) {
                let x = f64::from(slot.value);
                count += 1;
                let delta = x - mean;
                mean += delta / count as f64;
                squares += delta * (x - mean);
            }
        }
        self.last_count = count;
        if count == 0 {
            return MethodOutput::default();
        }
        if count < self.min_windows {
            return MethodOutput {
                expected: Some(mean),
                verdict: None,
            };
        }

        let deviation = (squares / (count - 1) as f64).sqrt();
        let band = Band {
            expected: mean,
            lower: mean - self.sigmas * deviation,
            upper: mean + self.sigmas * deviation,
        };
        MethodOutput {
            expected: Some(mean),
            verdict: Some(MethodVerdict {
                band,
                deviation_ratio: band::deviation_ratio(value, &band),
                cleaned: value,
            }),
        }
    }

    fn is_learning(&self) -> bool {
        self.last_count < self.min_windows
    }

    fn heap_bytes(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
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
    fn band_is_mean_plus_three_deviations() {
        let calendar = Calendar::new(Default::default(), 1_000);
        let mut history = History::new(10);
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample standard deviation √(32/7).
        for (number, value) in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter().enumerate() {
            history.push(number as i64, slot(value));
        }
        let mut rule = ThreeSigma::new(&ThreeSigmaParams {
            windows: 8,
            sigmas: 3.0,
        });
        let verdict = rule.judge(8, 5.0, &history, &calendar).verdict.unwrap();
        let deviation = (32.0f64 / 7.0).sqrt();
        assert!((verdict.band.expected - 5.0).abs() < 1e-12);
        assert!((verdict.band.upper - (5.0 + 3.0 * deviation)).abs() < 1e-12);
        assert!(!rule.is_learning());
    }

    #[test]
    fn learning_until_a_quarter_of_windows() {
        let calendar = Calendar::new(Default::default(), 1_000);
        let mut history = History::new(100);
        history.push(0, slot(1.0));
        let mut rule = ThreeSigma::new(&ThreeSigmaParams {
            windows: 48,
            sigmas: 3.0,
        });
        assert!(rule.judge(1, 1.0, &history, &calendar).verdict.is_none());
        assert!(rule.is_learning());
    }
}
