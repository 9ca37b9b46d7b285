//! The interquartile-range rule analysts use as a first anomaly check, as a
//! baseline for the detector: a window is an outlier when its value lies
//! more than `a` IQRs outside the quartiles of the previous `n` windows.

/// Settings of the IQR rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IqrRule {
    /// Previous windows the quartiles are taken over (`n`).
    pub windows: usize,
    /// IQRs beyond the quartiles that make an outlier (`a`, classically 1.5).
    pub coefficient: f64,
    /// Previous windows needed before the rule judges a window; with fewer it
    /// stays quiet. Quartiles of a handful of values are too noisy to use.
    pub min_windows: usize,
}

/// Returns for each window whether it is an outlier against the windows
/// before it.
pub fn iqr_outliers(values: &[f64], rule: &IqrRule) -> Vec<bool> {
    let mut outliers = Vec::with_capacity(values.len());
    let mut previous: Vec<f64> = Vec::with_capacity(rule.windows);

    for (index, &value) in values.iter().enumerate() {
        let first = index.saturating_sub(rule.windows);
        if index - first < rule.min_windows.max(1) {
            outliers.push(false);
            continue;
        }

        previous.clear();
        previous.extend_from_slice(&values[first..index]);
        previous.sort_by(f64::total_cmp);
        let (q1, q3) = (quantile(&previous, 0.25), quantile(&previous, 0.75));
        let spread = rule.coefficient * (q3 - q1);
        outliers.push(value < q1 - spread || value > q3 + spread);
    }
    outliers
}

/// Returns the windows where a run of outliers starts, so one lasting
/// anomaly raises one alert, as an episode of the detector does.
pub fn alert_starts(outliers: &[bool]) -> Vec<usize> {
    (0..outliers.len())
        .filter(|&index| outliers[index] && (index == 0 || !outliers[index - 1]))
        .collect()
}

/// Quantile of sorted values by linear interpolation between closest ranks
/// (R's type 7, NumPy's default).
fn quantile(sorted: &[f64], probability: f64) -> f64 {
    let position = probability * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        // Positions 1.75 and 5.25.
        assert_eq!(quantile(&sorted, 0.25), 2.75);
        assert_eq!(quantile(&sorted, 0.75), 6.25);
        assert_eq!(quantile(&[4.0], 0.75), 4.0);
    }

    #[test]
    fn outliers_beyond_fences() {
        // Previous 8 values 1..=8: Q1 2.75, Q3 6.25, IQR 3.5, fences -2.5 and 11.5.
        let rule = IqrRule {
            windows: 8,
            coefficient: 1.5,
            min_windows: 8,
        };
        let mut values: Vec<f64> = (1..=8).map(f64::from).collect();
        for value in [11.5, 11.6, -2.6] {
            values.truncate(8);
            values.push(value);
            let outliers = iqr_outliers(&values, &rule);
            assert!(outliers[..8].iter().all(|&outlier| !outlier), "{value}: {outliers:?}");
            assert_eq!(outliers[8], value != 11.5, "{value}");
        }
    }

    #[test]
    fn only_last_windows_count() {
        // A huge value 3 windows back leaves a window of 2 previous values.
        let rule = IqrRule {
            windows: 2,
            coefficient: 1.5,
            min_windows: 2,
        };
        let outliers = iqr_outliers(&[1_000.0, 10.0, 10.0, 10.0, 11.0], &rule);

        assert_eq!(outliers, vec![false, false, false, false, true]);
    }

    #[test]
    fn quiet_without_min_history() {
        let rule = IqrRule {
            windows: 48,
            coefficient: 1.5,
            min_windows: 4,
        };
        let outliers = iqr_outliers(&[1.0, 1.0, 1.0, 100.0, 1.0, 100.0], &rule);

        assert_eq!(outliers, vec![false, false, false, false, false, true]);
    }

    #[test]
    fn runs_alert_once() {
        assert_eq!(
            alert_starts(&[true, true, false, true, false, false, true]),
            vec![0, 3, 6]
        );
        assert_eq!(alert_starts(&[]), Vec::<usize>::new());
    }
}
