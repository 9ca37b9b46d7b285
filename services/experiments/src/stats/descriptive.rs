/// Arithmetic mean; NaN for an empty slice.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample variance with Bessel's correction (n − 1 in the denominator), as
/// NumPy's `var(ddof=1)`; NaN for fewer than two values.
pub fn sample_variance(values: &[f64]) -> f64 {
    let center = mean(values);
    let squares: f64 = values.iter().map(|value| (value - center).powi(2)).sum();
    squares / (values.len() as f64 - 1.0)
}

/// Quantile with linear interpolation between order statistics, as NumPy's
/// default `quantile(method="linear")`. `sorted` must be sorted ascending
/// and non-empty; `probability` lies in [0, 1].
pub fn quantile_sorted(sorted: &[f64], probability: f64) -> f64 {
    let position = probability * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
}
