//! Synthetic seasonal series with known structure, for tests, examples and
//! timing runs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Shape of a synthetic series: value at step t is
/// `level + slope·t + Σ amplitude·sin(2πt / period) + noise`, with noise
/// drawn from a normal distribution with standard deviation `noise`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonalShape {
    pub level: f64,
    /// Trend per step.
    pub slope: f64,
    /// `(period in steps, amplitude)` of each seasonal component.
    pub seasons: Vec<(usize, f64)>,
    pub noise: f64,
}

impl SeasonalShape {
    /// Returns the shape of an hourly product metric: daily and weekly
    /// cycles and an upward trend.
    pub fn hourly_traffic() -> SeasonalShape {
        SeasonalShape {
            level: 200.0,
            slope: 0.05,
            seasons: vec![(24, 60.0), (168, 25.0)],
            noise: 8.0,
        }
    }

    /// Value without noise at step `t`.
    pub fn expected(&self, t: usize) -> f64 {
        let seasonal: f64 = self
            .seasons
            .iter()
            .map(|&(period, amplitude)| amplitude * (std::f64::consts::TAU * t as f64 / period as f64).sin())
            .sum();
        self.level + self.slope * t as f64 + seasonal
    }

    /// `len` values with noise from a generator seeded with `seed`.
    pub fn generate(&self, len: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len)
            .map(|t| self.expected(t) + self.noise * standard_normal(&mut rng))
            .collect()
    }
}

/// Draws a standard normal value by the Box–Muller transform.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 − u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
