/// Forecasts `horizon` steps by repeating the last full cycle of `period`
/// steps: step h (from 0) gets `values[n − period + h mod period]`.
/// Falls back to the last value when the series is shorter than `period`,
/// and returns nothing for an empty series.
pub fn seasonal_naive(values: &[f64], period: usize, horizon: usize) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    if period == 0 || n < period {
        return vec![values[n - 1]; horizon];
    }

    let last_cycle = &values[n - period..];
    (0..horizon).map(|step| last_cycle[step % period]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_last_cycle() {
        let values = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0];

        assert_eq!(
            seasonal_naive(&values, 3, 7),
            vec![10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 10.0]
        );
    }

    #[test]
    fn short_series_repeats_last_value() {
        assert_eq!(seasonal_naive(&[4.0, 5.0], 3, 2), vec![5.0, 5.0]);
        assert_eq!(seasonal_naive(&[], 3, 2), Vec::<f64>::new());
    }
}
