//! The A/A check: random re-splits of one population into two halves, each
//! analysed like an A/B test. Every test should reject in about an alpha
//! share of the splits. A clearly higher rate means that the test's
//! assumptions do not hold for this data.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::analysis::{AnalysisSettings, GroupSample, UserAggregate, run_tests};
use crate::stats::error::StatsError;

/// Settings of one A/A check.
#[derive(Debug, Clone, PartialEq)]
pub struct AaSettings {
    /// Number of random splits.
    pub simulations: usize,
    /// Seed of the splits, from which the bootstrap seeds derive.
    pub seed: u64,
    /// Tests and alpha of each split's analysis.
    pub analysis: AnalysisSettings,
}

/// How often one test rejected at alpha over the splits where it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct FalsePositiveRate {
    pub name: &'static str,
    pub label: &'static str,
    /// Splits with p < alpha.
    pub rejections: usize,
    /// Splits where the test could run.
    pub runs: usize,
    pub rate: f64,
    /// Wilson score interval of `rate` at 95 %.
    pub ci_lower: f64,
    pub ci_upper: f64,
}

/// Result of an A/A check.
#[derive(Debug, Clone, PartialEq)]
pub struct AaCheck {
    pub users: usize,
    pub simulations: usize,
    pub alpha: f64,
    pub rates: Vec<FalsePositiveRate>,
}

/// Splits `users` `settings.simulations` times into two random halves and
/// counts, per test, the splits with p < alpha.
pub fn simulate_aa(users: &[UserAggregate], settings: &AaSettings) -> Result<AaCheck, StatsError> {
    if users.len() < 4 {
        return Err(StatsError::TooFewValues {
            test: "the A/A check",
            sample: "all requested groups together".to_string(),
            count: users.len(),
            required: 4,
        });
    }
    if settings.simulations == 0 {
        return Err(StatsError::InvalidParameter {
            name: "simulations",
            value: 0.0,
            expected: "at least 1 split, e.g. 1000",
        });
    }
    crate::stats::error::check_probability("alpha", settings.analysis.alpha)?;

    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..users.len()).collect();
    let mut rates: Vec<FalsePositiveRate> = Vec::new();
    for simulation in 0..settings.simulations {
        order.shuffle(&mut rng);
        let half = users.len() / 2;
        let pick = |indices: &[usize], name: &str| GroupSample {
            name: name.to_string(),
            users: indices.iter().map(|&index| users[index].clone()).collect(),
        };
        let first = pick(&order[..half], "A");
        let second = pick(&order[half..], "B");

        let split_settings = AnalysisSettings {
            seed: settings.seed.wrapping_add(simulation as u64 + 1),
            ..settings.analysis.clone()
        };
        let (tests, _) = run_tests(&first, &second, &split_settings);
        for test in tests {
            let rate = match rates.iter_mut().find(|rate| rate.name == test.name) {
                Some(rate) => rate,
                None => {
                    rates.push(FalsePositiveRate {
                        name: test.name,
                        label: test.label,
                        rejections: 0,
                        runs: 0,
                        rate: f64::NAN,
                        ci_lower: f64::NAN,
                        ci_upper: f64::NAN,
                    });
                    rates.last_mut().expect("pushed above")
                }
            };
            if let Ok(values) = test.result {
                rate.runs += 1;
                rate.rejections += usize::from(values.p_value < settings.analysis.alpha);
            }
        }
    }

    for rate in &mut rates {
        (rate.rate, rate.ci_lower, rate.ci_upper) = wilson_interval(rate.rejections, rate.runs);
    }
    Ok(AaCheck {
        users: users.len(),
        simulations: settings.simulations,
        alpha: settings.analysis.alpha,
        rates,
    })
}

/// Share `successes / trials` with its 95 % Wilson score interval; NaN for
/// no trials.
pub fn wilson_interval(successes: usize, trials: usize) -> (f64, f64, f64) {
    if trials == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let z = Normal::standard().inverse_cdf(0.975);
    let n = trials as f64;
    let share = successes as f64 / n;

    let center = (share + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half_width = z / (1.0 + z * z / n) * (share * (1.0 - share) / n + z * z / (4.0 * n * n)).sqrt();
    (share, center - half_width, center + half_width)
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    /// Users with a per-user CTR between 0.05 and 0.35 and 1 to 30 views.
    fn random_users(count: usize, seed: u64) -> Vec<UserAggregate> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count)
            .map(|index| {
                let views: u64 = rng.random_range(1..=30);
                let ctr: f64 = rng.random_range(0.05..0.35);
                let likes = (0..views).filter(|_| rng.random::<f64>() < ctr).count() as u64;
                UserAggregate {
                    user_id: format!("user-{index}"),
                    views,
                    likes,
                }
            })
            .collect()
    }

    #[test]
    fn wilson_matches_reference() {
        // wilson(12, 200) in reference/scipy_reference.py: the Wilson score
        // formula with stats.norm.ppf(0.975).
        let (rate, lower, upper) = wilson_interval(12, 200);

        assert_eq!(rate, 0.06);
        assert!((lower - 0.03465219425433187).abs() < 1e-9, "{lower}");
        assert!((upper - 0.1019316929576627).abs() < 1e-9, "{upper}");
    }

    #[test]
    fn aa_rates_near_alpha() {
        let users = random_users(600, 3);
        let settings = AaSettings {
            simulations: 300,
            seed: 11,
            analysis: AnalysisSettings {
                bootstrap_iterations: 100,
                buckets: 20,
                ..AnalysisSettings::default()
            },
        };

        let check = simulate_aa(&users, &settings).unwrap();

        assert_eq!(check.rates.len(), 6, "{check:?}");
        for rate in &check.rates {
            assert_eq!(rate.runs, 300, "{} ran on every split", rate.name);
            // 300 splits at alpha 0.05: a 99.9 % binomial range is about
            // 0.015..0.10; the bootstrap's 100 replicates add some noise.
            assert!(
                (0.01..=0.11).contains(&rate.rate),
                "{} rejected in {} of 300 A/A splits",
                rate.name,
                rate.rejections
            );
        }
    }

    #[test]
    fn aa_is_seeded() {
        let users = random_users(100, 5);
        let settings = AaSettings {
            simulations: 20,
            seed: 2,
            analysis: AnalysisSettings {
                bootstrap_iterations: 100,
                ..AnalysisSettings::default()
            },
        };

        assert_eq!(
            simulate_aa(&users, &settings).unwrap(),
            simulate_aa(&users, &settings).unwrap()
        );
    }

    #[test]
    fn aa_needs_users() {
        let settings = AaSettings {
            simulations: 10,
            seed: 1,
            analysis: AnalysisSettings::default(),
        };

        let message = simulate_aa(&random_users(3, 1), &settings).unwrap_err().to_string();

        assert!(
            message.contains("group `all requested groups together` has 3 values"),
            "{message}"
        );
    }
}
