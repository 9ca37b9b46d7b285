//! The A/B comparison of two groups: which tests run for which metric, and
//! the effect sizes and minimum detectable effect around them. Pure: the
//! caller fetches the per-user aggregates.

use crate::stats::bootstrap::{RatioBootstrap, poisson_bootstrap_ratio};
use crate::stats::bucket::bucket_of;
use crate::stats::descriptive::{mean, sample_variance};
use crate::stats::effect::{Interval, relative_difference};
use crate::stats::error::StatsError;
use crate::stats::mann_whitney::mann_whitney_u;
use crate::stats::power::minimum_detectable_effect;
use crate::stats::ratio::{RatioCounts, bucket_ratios, global_ratio, linearize, per_user_ratios, smooth};
use crate::stats::srm::{SampleRatio, sample_ratio_mismatch};
use crate::stats::welch::{TTest, welch_t_test};

/// The per-user value the groups are compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Likes per view, a ratio metric.
    Ctr,
    /// Likes per user.
    Likes,
    /// Views per user.
    Views,
}

impl Metric {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ctr => "ctr",
            Metric::Likes => "likes",
            Metric::Views => "views",
        }
    }
}

/// Views and likes of one user in the analysed period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAggregate {
    pub user_id: String,
    pub views: u64,
    pub likes: u64,
}

/// The users of one experiment group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSample {
    /// The `exp_group` value.
    pub name: String,
    pub users: Vec<UserAggregate>,
}

/// Settings of one comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSettings {
    pub metric: Metric,
    /// Significance level of every test and 1 − confidence of intervals.
    pub alpha: f64,
    /// Power for the minimum detectable effect.
    pub power: f64,
    /// Expected shares of control and treatment users, e.g. `[50.0, 50.0]`.
    pub expected_split: [f64; 2],
    /// Buckets per group for the bucketed CTR.
    pub buckets: u32,
    /// Salt of the bucket hash. It must differ from the salt that assigns
    /// groups, or every user of a group would land in few buckets.
    pub bucket_salt: String,
    /// Strength a of the smoothed CTR, in views.
    pub smoothing: f64,
    /// Replicates of the Poisson bootstrap; 0 skips the bootstrap.
    pub bootstrap_iterations: usize,
    pub seed: u64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            metric: Metric::Ctr,
            alpha: 0.05,
            power: 0.8,
            expected_split: [50.0, 50.0],
            buckets: 50,
            bucket_salt: "seismo-buckets".to_string(),
            smoothing: 5.0,
            bootstrap_iterations: 2000,
            seed: 1,
        }
    }
}

/// Size and totals of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    pub name: String,
    pub users: usize,
    pub views: u64,
    pub likes: u64,
    /// likes / views; NaN without views.
    pub ctr: f64,
    /// Mean and sample standard deviation of the per-user metric.
    pub metric_mean: f64,
    pub metric_sd: f64,
}

/// Values of a test that could be computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestValues {
    /// t, U or NaN for the bootstrap.
    pub statistic: f64,
    pub p_value: f64,
    /// Treatment minus control in the metric's unit (CTR for ratio tests).
    pub effect: Option<Interval>,
    /// Effect relative to the control value.
    pub relative: Option<Interval>,
}

/// One test of treatment against control.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// Stable identifier, e.g. `welch_t`.
    pub name: &'static str,
    /// Human-readable name for reports.
    pub label: &'static str,
    /// The values, or why this test could not run on this data.
    pub result: Result<TestValues, StatsError>,
}

/// Smallest effect the sample detects at the settings' alpha and power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectableEffect {
    /// In the metric's unit (CTR points for `ctr`).
    pub absolute: f64,
    /// Relative to the control value.
    pub relative: f64,
}

/// Full result of one A/B comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct AbAnalysis {
    pub metric: Metric,
    pub alpha: f64,
    pub power: f64,
    pub control: GroupStats,
    pub treatment: GroupStats,
    pub expected_split: [f64; 2],
    pub sample_ratio: SampleRatio,
    pub tests: Vec<TestOutcome>,
    pub detectable_effect: Result<DetectableEffect, StatsError>,
    /// Per-user metric values of each group, for charts.
    pub control_values: Vec<f64>,
    pub treatment_values: Vec<f64>,
    /// Bootstrap replicates of each group's global CTR, for charts.
    pub bootstrap: Option<RatioBootstrap>,
}

/// Compares `treatment` with `control`. Fails only when a group has no
/// users or a setting is invalid. A test that cannot run on this data
/// reports its error in its [`TestOutcome`].
pub fn analyze(
    control: &GroupSample,
    treatment: &GroupSample,
    settings: &AnalysisSettings,
) -> Result<AbAnalysis, StatsError> {
    check_settings(settings)?;
    for group in [control, treatment] {
        if group.users.is_empty() {
            return Err(StatsError::TooFewValues {
                test: "the A/B analysis",
                sample: group.name.clone(),
                count: 0,
                required: 1,
            });
        }
    }

    let sample_ratio = sample_ratio_mismatch(
        &[control.users.len() as u64, treatment.users.len() as u64],
        &settings.expected_split,
    )?;
    let (tests, bootstrap) = run_tests(control, treatment, settings);
    let control_values = metric_values(control, settings.metric);
    let treatment_values = metric_values(treatment, settings.metric);

    Ok(AbAnalysis {
        metric: settings.metric,
        alpha: settings.alpha,
        power: settings.power,
        control: group_stats(control, &control_values),
        treatment: group_stats(treatment, &treatment_values),
        expected_split: settings.expected_split,
        sample_ratio,
        tests,
        detectable_effect: detectable_effect(control, treatment, settings),
        control_values,
        treatment_values,
        bootstrap,
    })
}

/// Runs every test of the settings' metric. Also returns the bootstrap, when
/// it ran, for its replicates.
pub fn run_tests(
    control: &GroupSample,
    treatment: &GroupSample,
    settings: &AnalysisSettings,
) -> (Vec<TestOutcome>, Option<RatioBootstrap>) {
    let control_values = metric_values(control, settings.metric);
    let treatment_values = metric_values(treatment, settings.metric);
    let per_user_label = match settings.metric {
        Metric::Ctr => ("Welch t, per-user CTR", "Mann–Whitney U, per-user CTR"),
        Metric::Likes => ("Welch t, likes per user", "Mann–Whitney U, likes per user"),
        Metric::Views => ("Welch t, views per user", "Mann–Whitney U, views per user"),
    };

    let mut tests = vec![
        TestOutcome {
            name: "welch_t",
            label: per_user_label.0,
            result: mean_difference(&control_values, &treatment_values, settings.alpha),
        },
        TestOutcome {
            name: "mann_whitney_u",
            label: per_user_label.1,
            result: mann_whitney_u(&control_values, &treatment_values).map(|result| TestValues {
                statistic: result.u_statistic,
                p_value: result.p_value,
                effect: None,
                relative: None,
            }),
        },
    ];
    if settings.metric != Metric::Ctr {
        return (tests, None);
    }

    let control_counts = ratio_counts(control);
    let treatment_counts = ratio_counts(treatment);
    let control_ctr = global_ratio(&control.name, &control_counts);
    tests.push(TestOutcome {
        name: "linearized",
        label: "Welch t, linearised likes",
        result: control_ctr
            .clone()
            .and_then(|ctr| linearized_test(&control_counts, &treatment_counts, ctr, settings.alpha)),
    });
    tests.push(TestOutcome {
        name: "bucketed",
        label: "Welch t, bucket CTR",
        result: bucketed_test(control, treatment, settings),
    });
    tests.push(TestOutcome {
        name: "smoothed",
        label: "Welch t, smoothed CTR",
        result: control_ctr.clone().and_then(|ctr| {
            let control_smoothed = smooth(&control_counts, ctr, settings.smoothing)?;
            let treatment_smoothed = smooth(&treatment_counts, ctr, settings.smoothing)?;
            mean_difference(&control_smoothed, &treatment_smoothed, settings.alpha)
        }),
    });
    if settings.bootstrap_iterations == 0 {
        return (tests, None);
    }

    let bootstrap = poisson_bootstrap_ratio(
        &control_counts,
        &treatment_counts,
        settings.bootstrap_iterations,
        settings.alpha,
        settings.seed,
    );
    tests.push(TestOutcome {
        name: "poisson_bootstrap",
        label: "Poisson bootstrap, global CTR",
        result: bootstrap.as_ref().map_err(Clone::clone).map(|result| TestValues {
            statistic: f64::NAN,
            p_value: result.p_value,
            effect: Some(Interval {
                estimate: result.difference,
                lower: result.ci_lower,
                upper: result.ci_upper,
            }),
            relative: Some(Interval {
                estimate: result.difference / result.control_ratio,
                lower: result.relative_ci_lower,
                upper: result.relative_ci_upper,
            }),
        }),
    });
    (tests, bootstrap.ok())
}

fn check_settings(settings: &AnalysisSettings) -> Result<(), StatsError> {
    crate::stats::error::check_probability("alpha", settings.alpha)?;
    crate::stats::error::check_probability("power", settings.power)?;
    if settings.buckets < 2 {
        return Err(StatsError::InvalidParameter {
            name: "buckets",
            value: f64::from(settings.buckets),
            expected: "at least 2 buckets per group, e.g. 50",
        });
    }
    Ok(())
}

/// Returns the per-user values of `metric`, for CTR only of users with
/// views.
pub fn metric_values(group: &GroupSample, metric: Metric) -> Vec<f64> {
    match metric {
        Metric::Ctr => per_user_ratios(&ratio_counts(group)),
        Metric::Likes => group.users.iter().map(|user| user.likes as f64).collect(),
        Metric::Views => group.users.iter().map(|user| user.views as f64).collect(),
    }
}

fn ratio_counts(group: &GroupSample) -> Vec<RatioCounts> {
    group
        .users
        .iter()
        .map(|user| RatioCounts {
            numerator: user.likes as f64,
            denominator: user.views as f64,
        })
        .collect()
}

fn group_stats(group: &GroupSample, values: &[f64]) -> GroupStats {
    let views: u64 = group.users.iter().map(|user| user.views).sum();
    let likes: u64 = group.users.iter().map(|user| user.likes).sum();
    GroupStats {
        name: group.name.clone(),
        users: group.users.len(),
        views,
        likes,
        ctr: if views > 0 {
            likes as f64 / views as f64
        } else {
            f64::NAN
        },
        metric_mean: mean(values),
        metric_sd: sample_variance(values).sqrt(),
    }
}

/// Welch's t-test with the relative difference of means beside it.
fn mean_difference(control: &[f64], treatment: &[f64], alpha: f64) -> Result<TestValues, StatsError> {
    let test = welch_t_test(control, treatment, alpha)?;
    Ok(TestValues {
        statistic: test.statistic,
        p_value: test.p_value,
        effect: Some(difference_interval(&test)),
        relative: relative_difference(control, treatment, alpha).ok(),
    })
}

fn difference_interval(test: &TTest) -> Interval {
    Interval {
        estimate: test.difference,
        lower: test.ci_lower,
        upper: test.ci_upper,
    }
}

/// Welch's t-test on the linearised likes. The effect is rescaled from likes
/// per user to CTR points by dividing by the treatment's mean views, which
/// is exact for the estimate (mean L_t / mean views_t = CTR_t − CTR_c) and
/// treats mean views as fixed for the interval.
fn linearized_test(
    control: &[RatioCounts],
    treatment: &[RatioCounts],
    control_ctr: f64,
    alpha: f64,
) -> Result<TestValues, StatsError> {
    let test = welch_t_test(
        &linearize(control, control_ctr),
        &linearize(treatment, control_ctr),
        alpha,
    )?;
    let treatment_views = mean(&treatment.iter().map(|user| user.denominator).collect::<Vec<_>>());
    let scale = |value: f64| value / treatment_views;

    let effect = Interval {
        estimate: scale(test.difference),
        lower: scale(test.ci_lower),
        upper: scale(test.ci_upper),
    };
    Ok(TestValues {
        statistic: test.statistic,
        p_value: test.p_value,
        effect: Some(effect),
        relative: Some(Interval {
            estimate: effect.estimate / control_ctr,
            lower: effect.lower / control_ctr,
            upper: effect.upper / control_ctr,
        }),
    })
}

fn bucketed_test(
    control: &GroupSample,
    treatment: &GroupSample,
    settings: &AnalysisSettings,
) -> Result<TestValues, StatsError> {
    let ratios = |group: &GroupSample| {
        let buckets: Vec<u32> = group
            .users
            .iter()
            .map(|user| bucket_of(&user.user_id, &settings.bucket_salt, settings.buckets))
            .collect();
        bucket_ratios(&ratio_counts(group), &buckets, settings.buckets)
    };
    mean_difference(&ratios(control), &ratios(treatment), settings.alpha)
}

/// MDE of the per-user metric; for CTR, of the linearised likes converted to
/// CTR points by the control's mean views.
fn detectable_effect(
    control: &GroupSample,
    treatment: &GroupSample,
    settings: &AnalysisSettings,
) -> Result<DetectableEffect, StatsError> {
    let (control_values, treatment_values, scale, baseline) = match settings.metric {
        Metric::Ctr => {
            let control_counts = ratio_counts(control);
            let ctr = global_ratio(&control.name, &control_counts)?;
            let control_views = mean(&control_counts.iter().map(|user| user.denominator).collect::<Vec<_>>());
            (
                linearize(&control_counts, ctr),
                linearize(&ratio_counts(treatment), ctr),
                control_views,
                ctr,
            )
        }
        metric => {
            let control_values = metric_values(control, metric);
            let baseline = mean(&control_values);
            (control_values, metric_values(treatment, metric), 1.0, baseline)
        }
    };

    let absolute = minimum_detectable_effect(
        sample_variance(&control_values).sqrt(),
        control_values.len(),
        sample_variance(&treatment_values).sqrt(),
        treatment_values.len(),
        settings.alpha,
        settings.power,
    )? / scale;
    Ok(DetectableEffect {
        absolute,
        relative: absolute / baseline,
    })
}
