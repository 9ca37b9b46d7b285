//! Holiday and event flags. augurs' MSTL takes no regressors, so flags act
//! in two steps around the model:
//!
//! 1. Masking: each flagged training point is replaced by its seasonal-naive
//!    value, the nearest ordinary value a whole number of seasonal periods
//!    earlier, or later when there is no earlier one. The model then learns
//!    the ordinary pattern only.
//! 2. Effect: for each run of consecutive flagged training points (one
//!    holiday, or several adjacent ones), the ratio Σ actual / Σ cleaned
//!    measures how the flagged period differed from an ordinary one. The
//!    mean of these ratios multiplies the point forecast and both interval
//!    bounds of every flagged future step.
//!
//! The effect is a single average over past flagged periods: it ignores
//! differences between holidays and adds no uncertainty of its own to the
//! interval.

/// Training values with flagged points replaced, and which ones were.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedSeries {
    pub values: Vec<f64>,
    /// True where a flagged value was replaced. A flagged point whose phase
    /// has no unflagged value anywhere in the series keeps its value.
    pub replaced: Vec<bool>,
}

/// Replaces flagged values by seasonal-naive values with `period` steps.
/// Panics when `flags` and `values` differ in length, which is a caller bug.
pub fn mask_flagged(values: &[f64], flags: &[bool], period: usize) -> MaskedSeries {
    assert_eq!(values.len(), flags.len(), "one flag per value");
    let mut cleaned = values.to_vec();
    let mut replaced = vec![false; values.len()];
    if period == 0 {
        return MaskedSeries {
            values: cleaned,
            replaced,
        };
    }

    for index in 0..values.len() {
        if !flags[index] {
            continue;
        }

        // Going left to right, earlier points of the same phase are already
        // cleaned, so the nearest earlier one that is unflagged or replaced
        // is an ordinary value.
        let earlier = (1..=index / period)
            .map(|cycles| index - cycles * period)
            .find(|&earlier| !flags[earlier] || replaced[earlier])
            .map(|earlier| cleaned[earlier]);
        let replacement = earlier.or_else(|| {
            (index + period..values.len())
                .step_by(period)
                .find(|&later| !flags[later])
                .map(|later| values[later])
        });
        if let Some(value) = replacement {
            cleaned[index] = value;
            replaced[index] = true;
        }
    }
    MaskedSeries {
        values: cleaned,
        replaced,
    }
}

/// Mean over runs of consecutive flagged points of Σ actual / Σ cleaned,
/// the multiplicative effect of a flagged period. Runs where nothing was
/// replaced or whose cleaned sum is not positive are skipped. Returns
/// `None` when no run remains.
pub fn mean_relative_effect(actual: &[f64], masked: &MaskedSeries, flags: &[bool]) -> Option<f64> {
    let mut ratios = Vec::new();
    let mut index = 0;
    while index < flags.len() {
        if !flags[index] {
            index += 1;
            continue;
        }

        let run_start = index;
        while index < flags.len() && flags[index] {
            index += 1;
        }
        let run = run_start..index;
        if !masked.replaced[run.clone()].iter().any(|&replaced| replaced) {
            continue;
        }
        let actual_sum: f64 = actual[run.clone()].iter().sum();
        let cleaned_sum: f64 = masked.values[run].iter().sum();
        if cleaned_sum > 0.0 {
            ratios.push(actual_sum / cleaned_sum);
        }
    }

    (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_uses_previous_cycle() {
        let values = [1.0, 2.0, 3.0, 1.0, 20.0, 3.0, 1.0, 20.0, 3.0];
        let flags = [false, false, false, false, true, false, false, true, false];

        let masked = mask_flagged(&values, &flags, 3);

        assert_eq!(masked.values, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        assert_eq!(masked.replaced.iter().filter(|&&replaced| replaced).count(), 2);
    }

    #[test]
    fn mask_looks_forward_in_first_cycle() {
        let values = [9.0, 2.0, 1.0, 2.0];
        let flags = [true, false, false, false];

        let masked = mask_flagged(&values, &flags, 2);

        assert_eq!(masked.values, vec![1.0, 2.0, 1.0, 2.0]);
        assert!(masked.replaced[0]);
    }

    #[test]
    fn mask_keeps_value_without_unflagged_phase() {
        let values = [9.0, 2.0, 8.0, 2.0];
        let flags = [true, false, true, false];

        let masked = mask_flagged(&values, &flags, 2);

        assert_eq!(masked.values, values.to_vec());
        assert!(!masked.replaced[0]);
    }

    #[test]
    fn effect_averages_run_ratios() {
        // Two flagged runs: [4, 6] against cleaned [2, 2] gives ratio 2.5,
        // [1] against cleaned [2] gives 0.5; the mean is 1.5.
        let actual = [2.0, 2.0, 2.0, 4.0, 6.0, 2.0, 1.0];
        let flags = [false, false, false, true, true, false, true];

        let masked = mask_flagged(&actual, &flags, 1);
        let effect = mean_relative_effect(&actual, &masked, &flags);

        assert_eq!(masked.values, vec![2.0; 7]);
        assert_eq!(effect, Some(1.5));
    }

    #[test]
    fn effect_without_flags_is_none() {
        let actual = [1.0, 2.0];
        let flags = [false, false];

        let masked = mask_flagged(&actual, &flags, 1);

        assert_eq!(mean_relative_effect(&actual, &masked, &flags), None);
    }
}
