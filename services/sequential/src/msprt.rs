//! Mixture sequential probability ratio test (mSPRT) for a difference of
//! two groups' means.
//!
//! Method: R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always Valid
//! Inference: Continuous Monitoring of A/B Tests", Operations Research 70(3),
//! 2022. For an estimate `d` of the difference `θ` with variance `V`, and a
//! normal mixing distribution `N(0, τ²)` over the alternative, the mixture
//! likelihood ratio against `θ = 0` is
//!
//! ```text
//! Λ = sqrt(V / (V + τ²)) · exp(τ² d² / (2 V (V + τ²)))
//! ```
//!
//! With normal data of known variance `Λ` is a martingale under the null, so
//! `p_n = min(1, min_{m<=n} 1/Λ_m)` is an anytime-valid p-value and
//! `d ± sqrt(V (V + τ²) / τ² · (ln((V + τ²) / V) − 2 ln alpha))` an
//! anytime-valid confidence interval.
//!
//! NOTE: callers plug in estimated variances of large-sample means, as the
//! paper does for A/B tests. The guarantee is then asymptotic. It is close
//! once each group has a few hundred users, but not for the first few.
//!
//! `τ` is the scale of effects the test is tuned to, in the metric's units:
//! it detects effects near `τ` soonest. It must be fixed before the data are
//! seen, or the guarantee is lost.

use crate::SequentialError;

/// The running test: remembers the smallest `1/Λ` so far.
#[derive(Debug, Clone)]
pub struct MixtureSprt {
    mixture_variance: f64,
    log_p_value: f64,
}

/// One evaluation of the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MsprtResult {
    /// The mixture likelihood ratio `Λ` at this evaluation.
    pub likelihood_ratio: f64,
    /// Anytime-valid p-value: the smallest `1/Λ` of all evaluations, at most 1.
    pub p_value: f64,
    /// Anytime-valid confidence interval of the difference at the requested
    /// level, from this evaluation alone.
    pub interval: (f64, f64),
}

impl MixtureSprt {
    /// Creates the test with mixing standard deviation `mixture_sd` (`τ`, in
    /// the metric's units).
    pub fn new(mixture_sd: f64) -> Result<MixtureSprt, SequentialError> {
        if !mixture_sd.is_finite() || mixture_sd <= 0.0 {
            return Err(SequentialError::InvalidMixtureSd(mixture_sd));
        }
        Ok(MixtureSprt {
            mixture_variance: mixture_sd * mixture_sd,
            log_p_value: 0.0,
        })
    }

    /// Evaluates the test on the current estimate `difference` and its
    /// variance, with the confidence interval at level `1 − alpha`.
    /// Returns `None`, and leaves the test unchanged, when the variance is
    /// not a finite positive number (too few users or no spread yet).
    pub fn evaluate(&mut self, difference: f64, variance: f64, alpha: f64) -> Option<MsprtResult> {
        if !variance.is_finite() || variance <= 0.0 || !difference.is_finite() {
            return None;
        }

        let tau2 = self.mixture_variance;
        let log_ratio = 0.5 * (variance / (variance + tau2)).ln()
            + tau2 * difference * difference / (2.0 * variance * (variance + tau2));
        self.log_p_value = self.log_p_value.min(-log_ratio);

        let half_width_squared =
            variance * (variance + tau2) / tau2 * (((variance + tau2) / variance).ln() - 2.0 * alpha.ln());
        let half_width = half_width_squared.sqrt();

        Some(MsprtResult {
            likelihood_ratio: log_ratio.exp(),
            p_value: self.log_p_value.exp(),
            interval: (difference - half_width, difference + half_width),
        })
    }

    /// Anytime-valid p-value so far.
    pub fn p_value(&self) -> f64 {
        self.log_p_value.exp()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn likelihood_ratio_matches_formula() {
        // Python 3.11: import math; V, t2, d = 0.04, 0.25, 0.5
        //   math.sqrt(V / (V + t2)) * math.exp(t2 * d * d / (2 * V * (V + t2)))
        let mut test = MixtureSprt::new(0.5).unwrap();
        let result = test.evaluate(0.5, 0.04, 0.05).unwrap();
        let expected = 5.492_946_325_124_936;
        assert!((result.likelihood_ratio - expected).abs() < 1e-9 * expected);
        assert!((result.p_value - 1.0 / expected).abs() < 1e-12);
    }

    #[test]
    fn interval_edge_has_ratio_one_over_alpha() {
        let alpha = 0.05;
        let mut test = MixtureSprt::new(0.3).unwrap();
        let result = test.evaluate(0.2, 0.01, alpha).unwrap();

        // Testing θ = interval edge: shift the estimate by it.
        let mut at_edge = MixtureSprt::new(0.3).unwrap();
        let edge = at_edge.evaluate(0.2 - result.interval.0, 0.01, alpha).unwrap();
        assert!((edge.likelihood_ratio - 1.0 / alpha).abs() < 1e-6);
    }

    #[test]
    fn p_value_keeps_its_minimum() {
        let mut test = MixtureSprt::new(1.0).unwrap();
        let strong = test.evaluate(3.0, 0.5, 0.05).unwrap().p_value;
        let later = test.evaluate(0.0, 0.5, 0.05).unwrap().p_value;
        assert_eq!(later, strong);
    }

    #[test]
    fn skips_undefined_variance() {
        let mut test = MixtureSprt::new(1.0).unwrap();
        assert!(test.evaluate(1.0, 0.0, 0.05).is_none());
        assert!(test.evaluate(1.0, f64::NAN, 0.05).is_none());
        assert_eq!(test.p_value(), 1.0);
    }

    /// Two groups with the same normal mean, checked after every pair of
    /// users: at most alpha of the runs ever reject.
    #[test]
    fn false_positive_rate_holds_under_continuous_monitoring() {
        let alpha = 0.05;
        let runs = 300;
        let mut rng = StdRng::seed_from_u64(5);
        let mut rejected_runs = 0;
        for _ in 0..runs {
            let mut test = MixtureSprt::new(0.1).unwrap();
            let (mut sum_a, mut sum_b) = (0.0, 0.0);
            for n in 1..=2_000 {
                sum_a += standard_normal(&mut rng);
                sum_b += standard_normal(&mut rng);
                // Known unit variance: Var(mean_b - mean_a) = 2 / n.
                let difference = sum_b / n as f64 - sum_a / n as f64;
                if test.evaluate(difference, 2.0 / n as f64, alpha).unwrap().p_value <= alpha {
                    rejected_runs += 1;
                    break;
                }
            }
        }

        let rate = rejected_runs as f64 / runs as f64;
        assert!(rate <= alpha + 0.02, "false-positive rate {rate}");
    }

    #[test]
    fn detects_a_shifted_mean() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut test = MixtureSprt::new(0.1).unwrap();
        let (mut sum_a, mut sum_b) = (0.0, 0.0);
        let mut rejected_at = None;
        for n in 1..=20_000 {
            sum_a += standard_normal(&mut rng);
            sum_b += standard_normal(&mut rng) - 0.1;
            let difference = sum_b / n as f64 - sum_a / n as f64;
            if test.evaluate(difference, 2.0 / n as f64, 0.05).unwrap().p_value <= 0.05 {
                rejected_at = Some(n);
                break;
            }
        }
        assert!(
            rejected_at.is_some(),
            "a 0.1 sd shift was not detected in 20 000 users per group"
        );
    }

    #[test]
    fn rejects_invalid_mixture_sd() {
        assert_eq!(
            MixtureSprt::new(0.0).unwrap_err(),
            SequentialError::InvalidMixtureSd(0.0)
        );
        assert!(MixtureSprt::new(f64::INFINITY).is_err());
    }

    /// Box–Muller: keeps the tests free of an extra distribution crate.
    fn standard_normal(rng: &mut StdRng) -> f64 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}
