use statrs::distribution::{ContinuousCDF, Normal};

use super::error::{StatsError, check_sample};

const TEST: &str = "the Mann–Whitney U test";

/// Mann–Whitney U test of treatment against control, by the normal
/// approximation with tie correction and continuity correction, as SciPy's
/// `mannwhitneyu(treatment, control, method="asymptotic")`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the treatment sample: the number of (treatment, control) pairs
    /// where treatment is larger, ties counting one half.
    pub u_statistic: f64,
    /// (U − n₁n₂/2) / σ with the tie-corrected σ, without continuity
    /// correction; positive when treatment tends to be larger.
    pub z: f64,
    /// Two-sided p-value with continuity correction.
    pub p_value: f64,
    /// U / (n₁n₂): the probability that a random treatment value exceeds a
    /// random control value, ties counting one half; 0.5 means no shift.
    pub common_language_effect: f64,
}

/// Runs the two-sided Mann–Whitney U test. Needs one value per sample and
/// at least two distinct values overall.
pub fn mann_whitney_u(control: &[f64], treatment: &[f64]) -> Result<MannWhitney, StatsError> {
    check_sample(TEST, "control", control, 1)?;
    check_sample(TEST, "treatment", treatment, 1)?;

    let (ranks, tie_term) = average_ranks(treatment, control);
    let treatment_n = treatment.len() as f64;
    let control_n = control.len() as f64;
    let total_n = treatment_n + control_n;
    let treatment_rank_sum: f64 = ranks[..treatment.len()].iter().sum();
    let u_statistic = treatment_rank_sum - treatment_n * (treatment_n + 1.0) / 2.0;

    let pairs = treatment_n * control_n;
    let mean_u = pairs / 2.0;
    let variance = pairs / 12.0 * ((total_n + 1.0) - tie_term / (total_n * (total_n - 1.0)));
    if variance <= 0.0 {
        return Err(StatsError::AllTied {
            test: TEST,
            count: treatment.len() + control.len(),
            value: treatment[0],
        });
    }
    let sigma = variance.sqrt();

    // SciPy's two-sided form: the larger of U and n₁n₂ − U, shifted by 0.5
    // towards the mean.
    let larger_u = u_statistic.max(pairs - u_statistic);
    let corrected_z = (larger_u - mean_u - 0.5) / sigma;
    let normal = Normal::standard();
    let p_value = (2.0 * normal.sf(corrected_z)).clamp(0.0, 1.0);

    Ok(MannWhitney {
        u_statistic,
        z: (u_statistic - mean_u) / sigma,
        p_value,
        common_language_effect: u_statistic / pairs,
    })
}

/// Ranks `first` followed by `second` together, giving tied values their
/// average rank (1-based). Also returns Σ(t³ − t) over groups of t ties.
fn average_ranks(first: &[f64], second: &[f64]) -> (Vec<f64>, f64) {
    let values: Vec<f64> = first.iter().chain(second).copied().collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));

    let mut ranks = vec![0.0; values.len()];
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }

        // Positions start..end hold equal values, ranks start+1..=end.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = average_rank;
        }
        let ties = (end - start) as f64;
        tie_term += ties.powi(3) - ties;
        start = end;
    }
    (ranks, tie_term)
}
