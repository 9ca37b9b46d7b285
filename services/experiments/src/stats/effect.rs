use statrs::distribution::{ContinuousCDF, Normal};

use super::descriptive::{mean, sample_variance};
use super::error::{StatsError, check_probability, check_sample};

/// An estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Relative difference of means mean_t / mean_c − 1 with a delta-method
/// normal confidence interval at level 1 − alpha. The variance estimate is
/// var_t / (n_t·m_c²) + m_t²·var_c / (n_c·m_c⁴).
pub fn relative_difference(control: &[f64], treatment: &[f64], alpha: f64) -> Result<Interval, StatsError> {
    let test = "the relative difference";
    check_sample(test, "control", control, 2)?;
    check_sample(test, "treatment", treatment, 2)?;
    check_probability("alpha", alpha)?;
    let control_mean = mean(control);
    if control_mean == 0.0 {
        return Err(StatsError::InvalidParameter {
            name: "control mean",
            value: 0.0,
            expected: "a non-zero mean to divide by; use the absolute difference",
        });
    }

    let treatment_mean = mean(treatment);
    let variance = sample_variance(treatment) / (treatment.len() as f64 * control_mean.powi(2))
        + treatment_mean.powi(2) * sample_variance(control) / (control.len() as f64 * control_mean.powi(4));
    let estimate = treatment_mean / control_mean - 1.0;
    let half_width = Normal::standard().inverse_cdf(1.0 - alpha / 2.0) * variance.sqrt();
    Ok(Interval {
        estimate,
        lower: estimate - half_width,
        upper: estimate + half_width,
    })
}
