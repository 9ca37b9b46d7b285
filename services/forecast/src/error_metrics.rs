//! Point-forecast error measures. Percentages are on a 0–100 scale
//! (SMAPE on 0–200).

/// Errors of forecasts against actual values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorMetrics {
    /// Number of (actual, forecast) pairs.
    pub count: usize,
    /// Mean absolute error, in the metric's unit.
    pub mae: f64,
    /// Root mean squared error, in the metric's unit.
    pub rmse: f64,
    /// Mean absolute percentage error over the pairs whose actual value is
    /// not zero; `None` when every actual value is zero.
    pub mape: Option<f64>,
    /// Pairs skipped by MAPE because the actual value is zero.
    pub mape_skipped: usize,
    /// Symmetric MAPE: mean of 200·|a − f| / (|a| + |f|), with a pair of two
    /// zeros counted as 0.
    pub smape: f64,
    /// Weighted MAPE: 100·Σ|a − f| / Σ|a|; `None` when Σ|a| is zero.
    pub wmape: Option<f64>,
}

/// Computes the error measures of `forecast` against `actual`, pair by pair.
/// Returns `None` when there are no pairs. Panics when the lengths differ,
/// which is a caller bug.
pub fn error_metrics(actual: &[f64], forecast: &[f64]) -> Option<ErrorMetrics> {
    assert_eq!(
        actual.len(),
        forecast.len(),
        "actual and forecast must have equal lengths"
    );
    if actual.is_empty() {
        return None;
    }
    let count = actual.len();

    let mut absolute_sum = 0.0;
    let mut squared_sum = 0.0;
    let mut percentage_sum = 0.0;
    let mut percentage_count = 0;
    let mut symmetric_sum = 0.0;
    let mut actual_sum = 0.0;
    for (&a, &f) in actual.iter().zip(forecast) {
        let error = (a - f).abs();
        absolute_sum += error;
        squared_sum += error * error;
        actual_sum += a.abs();

        if a != 0.0 {
            percentage_sum += error / a.abs();
            percentage_count += 1;
        }

        let denominator = a.abs() + f.abs();
        if denominator > 0.0 {
            symmetric_sum += 2.0 * error / denominator;
        }
    }

    Some(ErrorMetrics {
        count,
        mae: absolute_sum / count as f64,
        rmse: (squared_sum / count as f64).sqrt(),
        mape: (percentage_count > 0).then(|| 100.0 * percentage_sum / percentage_count as f64),
        mape_skipped: count - percentage_count,
        smape: 100.0 * symmetric_sum / count as f64,
        wmape: (actual_sum > 0.0).then(|| 100.0 * absolute_sum / actual_sum),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
    }

    // Reference values from numpy 2.4.6:
    //   a = np.array([10., 20., 0., 40., 5.]); f = np.array([12., 15., 3., 40., 10.])
    //   e = np.abs(a - f)
    //   e.mean()                                    -> 3.0
    //   np.sqrt((e ** 2).mean())                    -> 3.5496478698597698
    //   nz = a != 0; 100 * (e[nz] / a[nz]).mean()   -> 36.25
    //   100 * (2 * e / (np.abs(a) + np.abs(f))).mean() -> 62.683982683982684
    //   100 * e.sum() / np.abs(a).sum()             -> 20.0
    #[test]
    fn metrics_match_numpy_reference() {
        let actual = [10.0, 20.0, 0.0, 40.0, 5.0];
        let forecast = [12.0, 15.0, 3.0, 40.0, 10.0];

        let metrics = error_metrics(&actual, &forecast).unwrap();

        assert_eq!(metrics.count, 5);
        assert_close(metrics.mae, 3.0);
        assert_close(metrics.rmse, 3.5496478698597698);
        assert_close(metrics.mape.unwrap(), 36.25);
        assert_eq!(metrics.mape_skipped, 1);
        assert_close(metrics.smape, 62.683982683982684);
        assert_close(metrics.wmape.unwrap(), 20.0);
    }

    #[test]
    fn all_zero_actuals_have_no_mape() {
        let metrics = error_metrics(&[0.0, 0.0], &[0.0, 2.0]).unwrap();

        assert_eq!(metrics.mape, None);
        assert_eq!(metrics.mape_skipped, 2);
        assert_eq!(metrics.wmape, None);
        // The (0, 0) pair counts as 0, the (0, 2) pair as 200.
        assert_close(metrics.smape, 100.0);
    }

    #[test]
    fn empty_input_has_no_metrics() {
        assert_eq!(error_metrics(&[], &[]), None);
    }
}
