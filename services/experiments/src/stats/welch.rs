use statrs::distribution::{ContinuousCDF, StudentsT};

use super::descriptive::{mean, sample_variance};
use super::error::{StatsError, check_probability, check_sample};

const TEST: &str = "Welch's t-test";

/// Welch's two-sample t-test of treatment against control, which does not
/// assume equal variances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// t statistic of treatment minus control.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub degrees_of_freedom: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Mean of treatment minus mean of control.
    pub difference: f64,
    pub standard_error: f64,
    /// Confidence interval of `difference` at level 1 − alpha.
    pub ci_lower: f64,
    pub ci_upper: f64,
}

/// Runs Welch's t-test, two-sided. Needs at least two values per sample and
/// a variance above 0 in at least one of them.
pub fn welch_t_test(control: &[f64], treatment: &[f64], alpha: f64) -> Result<TTest, StatsError> {
    check_sample(TEST, "control", control, 2)?;
    check_sample(TEST, "treatment", treatment, 2)?;
    check_probability("alpha", alpha)?;

    let (control_n, treatment_n) = (control.len() as f64, treatment.len() as f64);
    let control_share = sample_variance(control) / control_n;
    let treatment_share = sample_variance(treatment) / treatment_n;
    let standard_error = (control_share + treatment_share).sqrt();
    let difference = mean(treatment) - mean(control);
    // Checked on the values, because rounding leaves a tiny non-zero
    // variance for some constant samples (e.g. ten copies of 0.2).
    if is_constant(control) && is_constant(treatment) {
        return Err(StatsError::ZeroVariance {
            test: TEST,
            control: control[0],
            treatment: treatment[0],
        });
    }

    let degrees_of_freedom = (control_share + treatment_share).powi(2)
        / (control_share.powi(2) / (control_n - 1.0) + treatment_share.powi(2) / (treatment_n - 1.0));
    let statistic = difference / standard_error;
    let distribution =
        StudentsT::new(0.0, 1.0, degrees_of_freedom).expect("degrees of freedom are positive and finite");
    let p_value = (2.0 * distribution.sf(statistic.abs())).min(1.0);

    let critical = distribution.inverse_cdf(1.0 - alpha / 2.0);
    Ok(TTest {
        statistic,
        degrees_of_freedom,
        p_value,
        difference,
        standard_error,
        ci_lower: difference - critical * standard_error,
        ci_upper: difference + critical * standard_error,
    })
}

fn is_constant(values: &[f64]) -> bool {
    values.iter().all(|&value| value == values[0])
}
