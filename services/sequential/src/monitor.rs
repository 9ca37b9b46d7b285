//! One running experiment watched event by event: its sample ratio and its
//! guardrail metrics.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use serde::Deserialize;

use crate::{MixtureSprt, RatioMoments, SequentialError, SequentialSrm};

/// An experiment to watch, as written in the experiments file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name used in alerts, e.g. `new_feed_ranking`.
    pub name: String,
    /// Value of the event's group field for each group, with the share of
    /// users the assignment is meant to give it. The shares are weights, so
    /// they need not sum to 1. Example: `{ "1" = 0.5, "2" = 0.5 }`.
    pub groups: BTreeMap<String, f64>,
    /// The control group: the guardrails compare every other group with it.
    pub control: String,
    /// Event time range of the experiment, Unix epoch milliseconds, start
    /// inclusive, end exclusive. Events outside it are not counted.
    #[serde(default)]
    pub starts_at_ms: Option<i64>,
    #[serde(default)]
    pub ends_at_ms: Option<i64>,
    /// False-alarm rate the tests keep however often they are checked.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Dirichlet prior concentration of the sample-ratio test.
    #[serde(default = "default_srm_concentration")]
    pub srm_concentration: f64,
    /// Users each compared group needs before a guardrail is judged; the
    /// mSPRT's guarantee is asymptotic (see `MixtureSprt`).
    #[serde(default = "default_min_users")]
    pub min_users_per_group: u64,
    #[serde(default, rename = "guardrail")]
    pub guardrails: Vec<GuardrailConfig>,
}

/// A metric that must not get worse in a treatment group.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Name used in alerts, e.g. `ctr`.
    pub name: String,
    /// Event type counted in the numerator, e.g. `like`.
    pub numerator_event: String,
    /// Event type counted in the denominator, e.g. `view`; without it the
    /// metric is the numerator's count per user.
    #[serde(default)]
    pub denominator_event: Option<String>,
    /// Direction of change that counts as a degradation.
    pub degradation: Degradation,
    /// Scale of the effects the test is tuned to, in the metric's units
    /// (e.g. 0.005 for half a CTR point): the mSPRT mixing standard deviation.
    pub mixture_sd: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Degradation {
    Decrease,
    Increase,
}

fn default_alpha() -> f64 {
    0.05
}

fn default_srm_concentration() -> f64 {
    100.0
}

fn default_min_users() -> u64 {
    200
}

/// Outcome of [`ExperimentMonitor::observe`] for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserveOutcome {
    Counted,
    /// The event's group is not one of the experiment's groups.
    UnknownGroup,
    /// The event time is outside the experiment's range.
    OutsidePeriod,
    /// The user was first seen in another group; the event is not counted.
    GroupConflict,
}

/// Sample-ratio state at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct SrmStatus {
    /// Users per group, in the order of [`ExperimentMonitor::group_names`].
    pub users: Vec<u64>,
    pub expected_shares: Vec<f64>,
    pub p_value: f64,
    /// Event time of the evaluation that first rejected the configured
    /// split; a rejection is final.
    pub mismatch_since_ms: Option<i64>,
}

/// Guardrail state of one treatment group against the control.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardrailStatus {
    pub guardrail: String,
    pub group: String,
    pub control_ratio: f64,
    pub treatment_ratio: f64,
    /// Anytime-valid confidence interval of treatment minus control.
    pub interval: (f64, f64),
    pub p_value: f64,
    /// Event time of the evaluation whose interval first excluded zero on
    /// the degradation side; a degradation is final.
    pub degraded_since_ms: Option<i64>,
}

/// Both tests at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentStatus {
    pub srm: SrmStatus,
    /// One entry per guardrail and treatment group that has enough users.
    pub guardrails: Vec<GuardrailStatus>,
    /// Events not counted because their user was first seen in another
    /// group: a sign of broken assignment.
    pub group_conflicts: u64,
}

/// Per-user state: the user's group and totals per guardrail.
#[derive(Debug, Clone)]
struct UserState {
    group: usize,
    totals: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
struct GuardrailState {
    config: GuardrailConfig,
    /// Moments per group.
    moments: Vec<RatioMoments>,
    /// Test per group; the control's entry is unused.
    tests: Vec<MixtureSprt>,
    degraded_since_ms: Vec<Option<i64>>,
}

/// Watches one experiment: feed it every event with a group, evaluate it
/// when convenient (after each closed window, say).
#[derive(Debug, Clone)]
pub struct ExperimentMonitor {
    config: ExperimentConfig,
    group_names: Vec<String>,
    control: usize,
    srm: SequentialSrm,
    srm_mismatch_since_ms: Option<i64>,
    /// Keyed by a 64-bit hash of the user id, to keep the map small.
    users: HashMap<u64, UserState>,
    guardrails: Vec<GuardrailState>,
    group_conflicts: u64,
}

impl ExperimentMonitor {
    pub fn new(config: ExperimentConfig) -> Result<ExperimentMonitor, SequentialError> {
        let invalid = |reason: String| SequentialError::InvalidExperiment {
            experiment: config.name.clone(),
            reason,
        };
        let group_names: Vec<String> = config.groups.keys().cloned().collect();
        let Some(control) = group_names.iter().position(|name| *name == config.control) else {
            return Err(invalid(format!(
                "control group {:?} is not one of the groups {:?}; name one of them in `control`",
                config.control, group_names
            )));
        };
        if !(config.alpha > 0.0 && config.alpha < 1.0) {
            return Err(SequentialError::InvalidAlpha(config.alpha));
        }
        if let (Some(start), Some(end)) = (config.starts_at_ms, config.ends_at_ms)
            && end <= start
        {
            return Err(invalid(format!(
                "ends_at_ms {end} is not after starts_at_ms {start}; swap or fix them"
            )));
        }

        let shares: Vec<f64> = config.groups.values().copied().collect();
        let srm = SequentialSrm::new(&shares, config.srm_concentration)?;
        let mut guardrails = Vec::with_capacity(config.guardrails.len());
        for guardrail in &config.guardrails {
            let test = MixtureSprt::new(guardrail.mixture_sd)?;
            guardrails.push(GuardrailState {
                config: guardrail.clone(),
                moments: vec![RatioMoments::default(); group_names.len()],
                tests: vec![test; group_names.len()],
                degraded_since_ms: vec![None; group_names.len()],
            });
        }

        Ok(ExperimentMonitor {
            config,
            group_names,
            control,
            srm,
            srm_mismatch_since_ms: None,
            users: HashMap::new(),
            guardrails,
            group_conflicts: 0,
        })
    }

    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// Group names, sorted; indexes of [`SrmStatus::users`].
    pub fn group_names(&self) -> &[String] {
        &self.group_names
    }

    /// Counts one event of `user_id` in `group` at `time_ms`.
    pub fn observe(&mut self, user_id: &str, group: &str, event: &str, time_ms: i64) -> ObserveOutcome {
        if self.config.starts_at_ms.is_some_and(|start| time_ms < start)
            || self.config.ends_at_ms.is_some_and(|end| time_ms >= end)
        {
            return ObserveOutcome::OutsidePeriod;
        }
        let Some(group) = self.group_names.iter().position(|name| name == group) else {
            return ObserveOutcome::UnknownGroup;
        };

        let user = match self.users.entry(user_key(user_id)) {
            Entry::Occupied(entry) => {
                let user = entry.into_mut();
                if user.group != group {
                    self.group_conflicts += 1;
                    return ObserveOutcome::GroupConflict;
                }
                user
            }
            Entry::Vacant(entry) => {
                self.srm.observe(group);
                let totals: Vec<(f64, f64)> = self
                    .guardrails
                    .iter_mut()
                    .map(|guardrail| {
                        // A per-user mean has denominator 1 for every user.
                        let denominator = if guardrail.config.denominator_event.is_none() {
                            1.0
                        } else {
                            0.0
                        };
                        guardrail.moments[group].add_user(0.0, denominator);
                        (0.0, denominator)
                    })
                    .collect();
                entry.insert(UserState { group, totals })
            }
        };

        for (guardrail, totals) in self.guardrails.iter_mut().zip(user.totals.iter_mut()) {
            let before = *totals;
            if event == guardrail.config.numerator_event {
                totals.0 += 1.0;
            }
            if guardrail.config.denominator_event.as_deref() == Some(event) {
                totals.1 += 1.0;
            }
            if *totals != before {
                guardrail.moments[group].update_user(before, *totals);
            }
        }
        ObserveOutcome::Counted
    }

    /// Evaluates both tests; `now_ms` is the event time the evaluation is
    /// stamped with (the end of the window that just closed, say).
    pub fn evaluate(&mut self, now_ms: i64) -> ExperimentStatus {
        let alpha = self.config.alpha;
        if self.srm_mismatch_since_ms.is_none() && self.srm.rejects(alpha) {
            self.srm_mismatch_since_ms = Some(now_ms);
        }
        let srm = SrmStatus {
            users: self.srm.counts().to_vec(),
            expected_shares: self.srm.expected_shares().to_vec(),
            p_value: self.srm.p_value(),
            mismatch_since_ms: self.srm_mismatch_since_ms,
        };

        let mut guardrails = Vec::new();
        for guardrail in &mut self.guardrails {
            let Some(control) = guardrail.moments[self.control].estimate() else {
                continue;
            };
            for group in 0..self.group_names.len() {
                if group == self.control {
                    continue;
                }
                let Some(treatment) = guardrail.moments[group].estimate() else {
                    continue;
                };
                if control.users < self.config.min_users_per_group || treatment.users < self.config.min_users_per_group
                {
                    continue;
                }
                let difference = treatment.ratio - control.ratio;
                let Some(result) =
                    guardrail.tests[group].evaluate(difference, treatment.variance + control.variance, alpha)
                else {
                    continue;
                };

                let worse = match guardrail.config.degradation {
                    Degradation::Decrease => result.interval.1 < 0.0,
                    Degradation::Increase => result.interval.0 > 0.0,
                };
                if worse && guardrail.degraded_since_ms[group].is_none() {
                    guardrail.degraded_since_ms[group] = Some(now_ms);
                }
                guardrails.push(GuardrailStatus {
                    guardrail: guardrail.config.name.clone(),
                    group: self.group_names[group].clone(),
                    control_ratio: control.ratio,
                    treatment_ratio: treatment.ratio,
                    interval: result.interval,
                    p_value: result.p_value,
                    degraded_since_ms: guardrail.degraded_since_ms[group],
                });
            }
        }

        ExperimentStatus {
            srm,
            guardrails,
            group_conflicts: self.group_conflicts,
        }
    }
}

fn user_key(user_id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    user_id.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const CONFIG: &str = r#"
name = "feed_ranking"
groups = { "1" = 0.5, "2" = 0.5 }
control = "1"

[[guardrail]]
name = "ctr"
numerator_event = "like"
denominator_event = "view"
degradation = "decrease"
mixture_sd = 0.02
"#;

    fn monitor() -> ExperimentMonitor {
        ExperimentMonitor::new(toml::from_str(CONFIG).unwrap()).unwrap()
    }

    /// Simulates `users` users split `share_2` into group 2, each with 10
    /// views and a like per view with probability `ctr_1` / `ctr_2`.
    fn simulate(monitor: &mut ExperimentMonitor, users: usize, share_2: f64, ctr_1: f64, ctr_2: f64, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        for user in 0..users {
            let in_2 = rng.random_bool(share_2);
            let (group, ctr) = if in_2 { ("2", ctr_2) } else { ("1", ctr_1) };
            let user_id = format!("user-{user}");
            for _ in 0..10 {
                monitor.observe(&user_id, group, "view", 1_000);
                if rng.random_bool(ctr) {
                    monitor.observe(&user_id, group, "like", 1_000);
                }
            }
        }
    }

    #[test]
    fn config_parses_with_defaults() {
        let config: ExperimentConfig = toml::from_str(CONFIG).unwrap();
        assert_eq!(config.alpha, 0.05);
        assert_eq!(config.min_users_per_group, 200);
        assert_eq!(config.guardrails[0].degradation, Degradation::Decrease);
        assert_eq!(config.guardrails[0].denominator_event.as_deref(), Some("view"));
    }

    #[test]
    fn healthy_experiment_raises_nothing() {
        let mut monitor = monitor();
        simulate(&mut monitor, 6_000, 0.5, 0.1, 0.1, 1);

        let status = monitor.evaluate(2_000);
        assert_eq!(status.srm.mismatch_since_ms, None, "p = {}", status.srm.p_value);
        assert_eq!(status.guardrails.len(), 1);
        assert_eq!(status.guardrails[0].degraded_since_ms, None);
        assert_eq!(status.srm.users.iter().sum::<u64>(), 6_000);
    }

    #[test]
    fn detects_sample_ratio_mismatch() {
        let mut monitor = monitor();
        simulate(&mut monitor, 20_000, 0.46, 0.1, 0.1, 2);

        let status = monitor.evaluate(5_000);
        assert_eq!(status.srm.mismatch_since_ms, Some(5_000), "p = {}", status.srm.p_value);
    }

    #[test]
    fn detects_degraded_ctr_in_treatment() {
        let mut monitor = monitor();
        simulate(&mut monitor, 8_000, 0.5, 0.10, 0.08, 3);

        let status = monitor.evaluate(7_000);
        let guardrail = &status.guardrails[0];
        assert_eq!(guardrail.group, "2");
        assert_eq!(guardrail.degraded_since_ms, Some(7_000), "{guardrail:?}");
        assert!(guardrail.interval.1 < 0.0);
        assert!((guardrail.control_ratio - 0.10).abs() < 0.01);
    }

    #[test]
    fn improvement_is_not_a_degradation() {
        let mut monitor = monitor();
        simulate(&mut monitor, 8_000, 0.5, 0.08, 0.10, 4);

        let status = monitor.evaluate(7_000);
        assert_eq!(status.guardrails[0].degraded_since_ms, None);
        assert!(status.guardrails[0].interval.0 > 0.0, "{:?}", status.guardrails[0]);
    }

    #[test]
    fn rejection_is_final() {
        let mut monitor = monitor();
        simulate(&mut monitor, 8_000, 0.5, 0.10, 0.08, 5);
        assert_eq!(monitor.evaluate(1).guardrails[0].degraded_since_ms, Some(1));

        simulate(&mut monitor, 100, 0.5, 0.10, 0.10, 6);
        assert_eq!(monitor.evaluate(2).guardrails[0].degraded_since_ms, Some(1));
    }

    #[test]
    fn waits_for_minimum_users() {
        let mut monitor = monitor();
        simulate(&mut monitor, 300, 0.5, 0.10, 0.01, 7);

        assert!(monitor.evaluate(1).guardrails.is_empty());
    }

    #[test]
    fn counts_group_conflicts_and_skips_them() {
        let mut monitor = monitor();
        assert_eq!(monitor.observe("u", "1", "view", 0), ObserveOutcome::Counted);
        assert_eq!(monitor.observe("u", "2", "view", 0), ObserveOutcome::GroupConflict);
        assert_eq!(monitor.observe("v", "3", "view", 0), ObserveOutcome::UnknownGroup);

        let status = monitor.evaluate(0);
        assert_eq!(status.group_conflicts, 1);
        assert_eq!(status.srm.users, vec![1, 0]);
    }

    #[test]
    fn ignores_events_outside_the_period() {
        let mut config: ExperimentConfig = toml::from_str(CONFIG).unwrap();
        config.starts_at_ms = Some(100);
        config.ends_at_ms = Some(200);
        let mut monitor = ExperimentMonitor::new(config).unwrap();

        assert_eq!(monitor.observe("u", "1", "view", 99), ObserveOutcome::OutsidePeriod);
        assert_eq!(monitor.observe("u", "1", "view", 200), ObserveOutcome::OutsidePeriod);
        assert_eq!(monitor.observe("u", "1", "view", 100), ObserveOutcome::Counted);
    }

    #[test]
    fn rejects_unknown_control_group() {
        let mut config: ExperimentConfig = toml::from_str(CONFIG).unwrap();
        config.control = "9".to_string();
        let error = ExperimentMonitor::new(config).unwrap_err().to_string();
        assert!(error.contains("control group \"9\""), "{error}");
    }
}
