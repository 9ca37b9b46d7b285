use statrs::distribution::{ContinuousCDF, Normal};

use super::error::{StatsError, check_probability};

/// Minimum detectable effect of a two-sided two-sample test: the smallest
/// absolute difference of means detected with probability `power` at level
/// `alpha`, by the normal approximation
/// (z₁₋α/₂ + z_power) · √(σ_c²/n_c + σ_t²/n_t).
/// Standard deviations are per unit (user or bucket) and sizes are unit
/// counts.
pub fn minimum_detectable_effect(
    control_sd: f64,
    control_n: usize,
    treatment_sd: f64,
    treatment_n: usize,
    alpha: f64,
    power: f64,
) -> Result<f64, StatsError> {
    check_probability("alpha", alpha)?;
    check_probability("power", power)?;
    for (name, n) in [("control size", control_n), ("treatment size", treatment_n)] {
        if n == 0 {
            return Err(StatsError::InvalidParameter {
                name,
                value: 0.0,
                expected: "at least one user",
            });
        }
    }

    let normal = Normal::standard();
    let z_sum = normal.inverse_cdf(1.0 - alpha / 2.0) + normal.inverse_cdf(power);
    let standard_error = (control_sd.powi(2) / control_n as f64 + treatment_sd.powi(2) / treatment_n as f64).sqrt();
    Ok(z_sum * standard_error)
}
