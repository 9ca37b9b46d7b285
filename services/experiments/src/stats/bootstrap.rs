use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::descriptive::quantile_sorted;
use super::error::{StatsError, check_probability};
use super::ratio::RatioCounts;

/// Poisson bootstrap of the difference of global ratios, treatment minus
/// control.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioBootstrap {
    pub control_ratio: f64,
    pub treatment_ratio: f64,
    /// treatment_ratio − control_ratio on the original data.
    pub difference: f64,
    /// Percentile interval of the difference at level 1 − alpha.
    pub ci_lower: f64,
    pub ci_upper: f64,
    /// 2 · min(share of replicates ≤ 0, share ≥ 0), capped at 1.
    pub p_value: f64,
    /// Percentile interval of treatment_ratio / control_ratio − 1.
    pub relative_ci_lower: f64,
    pub relative_ci_upper: f64,
    /// Global ratio of each group in each replicate, for charts.
    pub control_replicates: Vec<f64>,
    pub treatment_replicates: Vec<f64>,
}

/// Resamples users with independent Poisson(1) weights `iterations` times
/// from `seed`; the same seed gives the same result with the same `rand`
/// version. Replicates whose weights leave a group without denominator
/// events are skipped.
pub fn poisson_bootstrap_ratio(
    control: &[RatioCounts],
    treatment: &[RatioCounts],
    iterations: usize,
    alpha: f64,
    seed: u64,
) -> Result<RatioBootstrap, StatsError> {
    check_probability("alpha", alpha)?;
    if iterations < 100 {
        return Err(StatsError::InvalidParameter {
            name: "bootstrap iterations",
            value: iterations as f64,
            expected: "at least 100, e.g. 2000",
        });
    }
    let control_ratio = super::ratio::global_ratio("control", control)?;
    let treatment_ratio = super::ratio::global_ratio("treatment", treatment)?;

    let mut rng = StdRng::seed_from_u64(seed);
    let mut control_replicates = Vec::with_capacity(iterations);
    let mut treatment_replicates = Vec::with_capacity(iterations);
    let mut differences = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let control_weights = poisson_one_weights(&mut rng, control.len());
        let treatment_weights = poisson_one_weights(&mut rng, treatment.len());
        let (Some(control_value), Some(treatment_value)) = (
            weighted_ratio(control, &control_weights),
            weighted_ratio(treatment, &treatment_weights),
        ) else {
            continue;
        };
        control_replicates.push(control_value);
        treatment_replicates.push(treatment_value);
        differences.push(treatment_value - control_value);
    }

    if differences.is_empty() {
        return Err(StatsError::TooFewValues {
            test: "the Poisson bootstrap",
            sample: "replicates with views in both groups".to_string(),
            count: 0,
            required: 1,
        });
    }
    differences.sort_by(f64::total_cmp);
    let mut relative: Vec<f64> = treatment_replicates
        .iter()
        .zip(&control_replicates)
        .filter(|(_, control)| **control > 0.0)
        .map(|(treatment, control)| treatment / control - 1.0)
        .collect();
    relative.sort_by(f64::total_cmp);
    if relative.is_empty() {
        // Every replicate's control ratio was 0, so no relative change exists.
        relative.push(f64::NAN);
    }
    let replicates = differences.len() as f64;
    let at_most_zero = differences.iter().filter(|&&difference| difference <= 0.0).count() as f64;
    let at_least_zero = differences.iter().filter(|&&difference| difference >= 0.0).count() as f64;
    Ok(RatioBootstrap {
        control_ratio,
        treatment_ratio,
        difference: treatment_ratio - control_ratio,
        ci_lower: quantile_sorted(&differences, alpha / 2.0),
        ci_upper: quantile_sorted(&differences, 1.0 - alpha / 2.0),
        p_value: (2.0 * at_most_zero.min(at_least_zero) / replicates).min(1.0),
        relative_ci_lower: quantile_sorted(&relative, alpha / 2.0),
        relative_ci_upper: quantile_sorted(&relative, 1.0 - alpha / 2.0),
        control_replicates,
        treatment_replicates,
    })
}

/// Σ wᵢ·numeratorᵢ / Σ wᵢ·denominatorᵢ, or `None` when the weighted
/// denominator is 0.
pub fn weighted_ratio(users: &[RatioCounts], weights: &[f64]) -> Option<f64> {
    let mut numerator = 0.0;
    let mut denominator = 0.0;
    for (user, weight) in users.iter().zip(weights) {
        numerator += weight * user.numerator;
        denominator += weight * user.denominator;
    }
    (denominator > 0.0).then(|| numerator / denominator)
}

/// Draws `count` Poisson(1) weights by inversion of the CDF.
fn poisson_one_weights(rng: &mut StdRng, count: usize) -> Vec<f64> {
    let e_inverse = (-1.0f64).exp();
    (0..count)
        .map(|_| {
            let uniform: f64 = rng.random();
            let mut k = 0u32;
            let mut probability = e_inverse;
            let mut cumulative = probability;
            // Past k = 20 the remaining mass is below 1e-19, beneath f64's
            // resolution near 1, so the loop always ends.
            while uniform > cumulative && k < 20 {
                k += 1;
                probability /= f64::from(k);
                cumulative += probability;
            }
            f64::from(k)
        })
        .collect()
}
