use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::error::StatsError;

/// Pearson chi-square goodness-of-fit test of group sizes against the
/// configured split, as SciPy's `chisquare(observed, expected)`. A small
/// p-value means a sample ratio mismatch: assignment or logging is broken,
/// and the comparison of the groups cannot be trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRatio {
    pub chi_square: f64,
    pub degrees_of_freedom: usize,
    pub p_value: f64,
    /// Expected users per group under the split.
    pub expected: Vec<f64>,
}

/// Tests `observed` users per group against `expected_shares`, which are
/// relative weights such as `[50.0, 50.0]` and need not sum to 1.
pub fn sample_ratio_mismatch(observed: &[u64], expected_shares: &[f64]) -> Result<SampleRatio, StatsError> {
    if observed.len() < 2 || observed.len() != expected_shares.len() {
        return Err(StatsError::InvalidParameter {
            name: "expected split",
            value: expected_shares.len() as f64,
            expected: "one share per group and at least two groups, e.g. 50,50",
        });
    }
    if let Some(&share) = expected_shares
        .iter()
        .find(|share| !(share.is_finite() && **share > 0.0))
    {
        return Err(StatsError::InvalidParameter {
            name: "expected split share",
            value: share,
            expected: "a positive number, e.g. 50",
        });
    }
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return Err(StatsError::TooFewValues {
            test: "the sample ratio check",
            sample: "all groups".to_string(),
            count: 0,
            required: 1,
        });
    }

    let share_sum: f64 = expected_shares.iter().sum();
    let expected: Vec<f64> = expected_shares
        .iter()
        .map(|share| total as f64 * share / share_sum)
        .collect();
    let chi_square: f64 = observed
        .iter()
        .zip(&expected)
        .map(|(&count, &expected)| (count as f64 - expected).powi(2) / expected)
        .sum();

    let degrees_of_freedom = observed.len() - 1;
    let distribution = ChiSquared::new(degrees_of_freedom as f64).expect("degrees of freedom are at least 1");
    Ok(SampleRatio {
        chi_square,
        degrees_of_freedom,
        p_value: distribution.sf(chi_square),
        expected,
    })
}
