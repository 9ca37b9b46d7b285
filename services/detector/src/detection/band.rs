//! Judgement of one window against its band: half-width, score, severity
//! and the cleaned value stored for later references.
//!
//! Method, with σ the robust standard deviation of recent residuals
//! (`robust.rs`):
//! - half-width h = max(band_sigmas · σ, min_relative_width · |expected|,
//!   min_absolute_width). The floors keep a flat series (σ ≈ 0) from
//!   alerting on tiny changes.
//! - deviation ratio d = |value − expected| / h, the deviation in band
//!   half-widths. The window is outside the band when d > 1.
//! - score = d² / (1 + d²): 0 at the expected value, 0.5 at the band edge,
//!   approaching 1 far outside, and increasing in |value − expected|.
//! - severity from d: info below `warning_ratio` (default 1.5), warning
//!   below `critical_ratio` (default 2.5), critical from there on.
//! - cleaned value = expected + clamp(value − expected, ±c), with
//!   c = cleaning_sigmas · h / band_sigmas, i.e. `cleaning_sigmas` standard
//!   deviations, floors included. This is Huber-type pre-cleaning as in
//!   Gelper, Fried & Croux (2010), "Robust forecasting with exponential and
//!   Holt–Winters smoothing", Journal of Forecasting 29(3): the standard
//!   method runs on cleaned data, so one anomaly moves the references by at
//!   most c.

use super::params::DetectionParams;
use super::{Band, Direction, Severity};

/// The band and severity settings of [`judge`], copied from [`DetectionParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BandSettings {
    pub band_sigmas: f64,
    pub min_relative_width: f64,
    pub min_absolute_width: f64,
    pub cleaning_sigmas: f64,
    pub warning_ratio: f64,
    pub critical_ratio: f64,
}

impl From<&DetectionParams> for BandSettings {
    fn from(params: &DetectionParams) -> Self {
        BandSettings {
            band_sigmas: params.band_sigmas,
            min_relative_width: params.min_relative_width,
            min_absolute_width: params.min_absolute_width,
            cleaning_sigmas: params.cleaning_sigmas,
            warning_ratio: params.warning_ratio,
            critical_ratio: params.critical_ratio,
        }
    }
}

/// The verdict on one window of a series that is not learning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Judgement {
    pub band: Band,
    /// |value − expected| in band half-widths.
    pub deviation_ratio: f64,
    pub score: f64,
    pub outside: bool,
    pub direction: Direction,
    pub severity: Severity,
    /// The value to store as a reference for later windows.
    pub cleaned: f64,
}

/// Judges `value` against `expected` with residual scale `sigma` (≥ 0).
pub(crate) fn judge(value: f64, expected: f64, sigma: f64, params: &BandSettings) -> Judgement {
    let half_width = half_width(expected, sigma, params);
    let band = Band {
        expected,
        lower: expected - half_width,
        upper: expected + half_width,
    };

    let residual = value - expected;
    let cleaning_limit = params.cleaning_sigmas * half_width / params.band_sigmas;
    let cleaned = expected + residual.clamp(-cleaning_limit, cleaning_limit);
    judgement(value, band, deviation_ratio(value, &band), cleaned, params)
}

/// Half-width h of the band around `expected` for the robust standard
/// deviation `sigma`, floors included.
pub(crate) fn half_width(expected: f64, sigma: f64, params: &BandSettings) -> f64 {
    (params.band_sigmas * sigma)
        .max(params.min_relative_width * expected.abs())
        .max(params.min_absolute_width)
}

/// |value − expected| in half-widths of the band on the value's side, so
/// 1 at either edge of a band that need not be symmetric. Infinite for a
/// value off a zero-width side, 0 at the expected value.
pub(crate) fn deviation_ratio(value: f64, band: &Band) -> f64 {
    let residual = value - band.expected;
    let half_width = if residual >= 0.0 {
        band.upper - band.expected
    } else {
        band.expected - band.lower
    };
    if residual == 0.0 {
        0.0
    } else if half_width > 0.0 {
        residual.abs() / half_width
    } else {
        f64::INFINITY
    }
}

/// The verdict on `value` given its band, its deviation ratio and the value
/// to store as a reference.
pub(crate) fn judgement(
    value: f64,
    band: Band,
    deviation_ratio: f64,
    cleaned: f64,
    params: &BandSettings,
) -> Judgement {
    Judgement {
        band,
        deviation_ratio,
        score: anomaly_score(deviation_ratio),
        outside: deviation_ratio > 1.0,
        direction: if value >= band.expected {
            Direction::Up
        } else {
            Direction::Down
        },
        severity: severity(deviation_ratio, params),
        cleaned,
    }
}

/// Anomaly score in [0, 1] of a deviation of `deviation_ratio` band
/// half-widths: d² / (1 + d²), so 0.5 at the band edge.
pub fn anomaly_score(deviation_ratio: f64) -> f64 {
    // Written as 1 / (1 + d⁻²) so a huge or infinite d gives 1, not ∞ / ∞.
    let inverse_squared = 1.0 / (deviation_ratio * deviation_ratio);
    1.0 / (1.0 + inverse_squared)
}

fn severity(deviation_ratio: f64, params: &BandSettings) -> Severity {
    if deviation_ratio >= params.critical_ratio {
        Severity::Critical
    } else if deviation_ratio >= params.warning_ratio {
        Severity::Warning
    } else {
        Severity::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BandSettings {
        BandSettings {
            band_sigmas: 4.0,
            min_relative_width: 0.0,
            min_absolute_width: 0.0,
            cleaning_sigmas: 2.0,
            warning_ratio: 1.5,
            critical_ratio: 3.0,
        }
    }

    #[test]
    fn band_is_sigmas_times_scale() {
        let judgement = judge(100.0, 100.0, 2.5, &params());
        assert_eq!(
            judgement.band,
            Band {
                expected: 100.0,
                lower: 90.0,
                upper: 110.0
            }
        );
        assert!(!judgement.outside);
        assert_eq!(judgement.score, 0.0);
    }

    #[test]
    fn relative_floor_widens_flat_band() {
        let params = BandSettings {
            min_relative_width: 0.05,
            ..params()
        };
        let judgement = judge(104.0, 100.0, 0.0, &params);
        assert_eq!(judgement.band.upper, 105.0);
        assert_eq!(judgement.band.lower, 95.0);
        assert!(!judgement.outside);
    }

    #[test]
    fn absolute_floor_widens_flat_band() {
        let params = BandSettings {
            min_relative_width: 0.05,
            min_absolute_width: 3.0,
            ..params()
        };
        let judgement = judge(2.0, 0.0, 0.0, &params);
        assert_eq!(judgement.band.upper, 3.0);
        assert!(!judgement.outside);
    }

    #[test]
    fn zero_width_band() {
        let same = judge(5.0, 5.0, 0.0, &params());
        assert!(!same.outside);
        assert_eq!(same.score, 0.0);

        let different = judge(5.5, 5.0, 0.0, &params());
        assert!(different.outside);
        assert_eq!(different.score, 1.0);
        assert_eq!(different.severity, Severity::Critical);
        assert_eq!(different.cleaned, 5.0);
    }

    #[test]
    fn outside_beyond_edge_only() {
        // Half-width 10 around 100.
        assert!(!judge(110.0, 100.0, 2.5, &params()).outside);
        assert!(judge(110.001, 100.0, 2.5, &params()).outside);
        assert!(!judge(90.0, 100.0, 2.5, &params()).outside);
        assert!(judge(89.999, 100.0, 2.5, &params()).outside);
    }

    #[test]
    fn direction_follows_sign() {
        assert_eq!(judge(130.0, 100.0, 2.5, &params()).direction, Direction::Up);
        assert_eq!(judge(70.0, 100.0, 2.5, &params()).direction, Direction::Down);
    }

    #[test]
    fn severity_thresholds() {
        // Half-width 10: ratios 1.2, 1.5, 2.9, 3.0.
        assert_eq!(judge(112.0, 100.0, 2.5, &params()).severity, Severity::Info);
        assert_eq!(judge(115.0, 100.0, 2.5, &params()).severity, Severity::Warning);
        assert_eq!(judge(71.0, 100.0, 2.5, &params()).severity, Severity::Warning);
        assert_eq!(judge(130.0, 100.0, 2.5, &params()).severity, Severity::Critical);
    }

    #[test]
    fn score_bounds_and_monotonicity() {
        let mut previous = -1.0;
        for step in 0..=10_000 {
            let ratio = step as f64 * 0.01;
            let score = anomaly_score(ratio);
            assert!((0.0..=1.0).contains(&score), "score {score} at ratio {ratio}");
            assert!(score > previous, "score not increasing at ratio {ratio}");
            previous = score;
        }
        assert_eq!(anomaly_score(0.0), 0.0);
        assert_eq!(anomaly_score(1.0), 0.5);
        assert_eq!(anomaly_score(f64::INFINITY), 1.0);
        assert!(anomaly_score(1e300) <= 1.0);
    }

    #[test]
    fn score_monotone_in_value() {
        let mut previous = -1.0;
        for step in 0..200 {
            let value = 100.0 + step as f64;
            let score = judge(value, 100.0, 2.5, &params()).score;
            assert!(score > previous, "score {score} at {value} not above {previous}");
            previous = score;
        }
    }

    #[test]
    fn asymmetric_band_ratio_per_side() {
        let band = Band {
            expected: 10.0,
            lower: 8.0,
            upper: 20.0,
        };
        assert_eq!(deviation_ratio(15.0, &band), 0.5);
        assert_eq!(deviation_ratio(7.0, &band), 1.5);
        assert_eq!(deviation_ratio(10.0, &band), 0.0);
        let flat = Band {
            expected: 10.0,
            lower: 10.0,
            upper: 12.0,
        };
        assert_eq!(deviation_ratio(9.0, &flat), f64::INFINITY);
    }

    #[test]
    fn cleaning_clamps_at_cleaning_sigmas() {
        // σ = 2.5, cleaning at 2σ = 5.
        assert_eq!(judge(200.0, 100.0, 2.5, &params()).cleaned, 105.0);
        assert_eq!(judge(0.0, 100.0, 2.5, &params()).cleaned, 95.0);
        assert_eq!(judge(103.0, 100.0, 2.5, &params()).cleaned, 103.0);
    }
}
