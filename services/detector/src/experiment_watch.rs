//! Real-time guardrails of running experiments: feeds each event with an
//! experiment group to the sequential tests of `seismo-sequential` and turns
//! a sample-ratio mismatch or a degraded guardrail metric into an anomaly on
//! the usual stream.
//!
//! The metrics file lists experiments as `[[experiment]]` tables (see
//! `seismo_sequential::ExperimentConfig`). Alerts use the metric names
//! `experiment.<name>.sample_ratio` and `experiment.<name>.<guardrail>`, with
//! the slice `exp_group = <group>`. A sequential rejection is final, so each
//! alert fires once and never resolves while the detector runs.

use std::collections::HashSet;

use seismo_events::Event;
use seismo_proto::v1::{self, AnomalyEvent, AnomalyState};
use seismo_sequential::{ExperimentConfig, ExperimentMonitor, ExperimentStatus, ObserveOutcome};

use crate::anomaly_id::anomaly_id;
use crate::proto_mapping::slice_to_proto;
use crate::slice::SliceKey;

/// Event field that carries the experiment group.
pub const GROUP_FIELD: &str = "exp_group";

/// Metric names of every alert `experiments` can raise, for validating a
/// client's stream filter.
pub fn alert_metric_names(experiments: &[ExperimentConfig]) -> Vec<String> {
    let mut names = Vec::new();
    for experiment in experiments {
        names.push(sample_ratio_metric(&experiment.name));
        for guardrail in &experiment.guardrails {
            names.push(guardrail_metric(&experiment.name, &guardrail.name));
        }
    }
    names
}

fn sample_ratio_metric(experiment: &str) -> String {
    format!("experiment.{experiment}.sample_ratio")
}

fn guardrail_metric(experiment: &str, guardrail: &str) -> String {
    format!("experiment.{experiment}.{guardrail}")
}

/// Outcome of [`ExperimentWatch::observe`] for one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOutcome {
    /// At least one experiment counted the event.
    pub counted: bool,
    /// Experiments that skipped it because its user was first seen in
    /// another group.
    pub group_conflicts: u64,
    /// Experiments that skipped it because its `exp_group` value matches
    /// none of their groups, inside their time range.
    pub unknown_groups: u64,
}

/// Identity of one experiment alert, so each is announced once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AlertKey {
    SampleRatio {
        experiment: String,
    },
    Guardrail {
        experiment: String,
        guardrail: String,
        group: String,
    },
}

/// The experiments the detector watches and the alerts already sent.
#[derive(Debug)]
pub struct ExperimentWatch {
    monitors: Vec<ExperimentMonitor>,
    announced: HashSet<AlertKey>,
    /// Events counted by at least one experiment.
    counted: u64,
    /// Users' events not counted because the user was first seen in another
    /// group.
    group_conflicts: u64,
}

impl ExperimentWatch {
    /// Starts watching `experiments`, which the metrics file's validation
    /// has checked.
    ///
    /// # Panics
    /// If an experiment's settings are invalid.
    pub fn new(experiments: &[ExperimentConfig]) -> ExperimentWatch {
        let monitors = experiments
            .iter()
            .map(|experiment| ExperimentMonitor::new(experiment.clone()).expect("validated with the metrics file"))
            .collect();
        ExperimentWatch {
            monitors,
            announced: HashSet::new(),
            counted: 0,
            group_conflicts: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.monitors.is_empty()
    }

    pub fn counted(&self) -> u64 {
        self.counted
    }

    pub fn group_conflicts(&self) -> u64 {
        self.group_conflicts
    }

    /// Feeds one event to every experiment; events without a group are
    /// ignored. Returns what happened to it.
    pub fn observe(&mut self, event: &Event) -> WatchOutcome {
        let Some(group) = event.exp_group.as_deref() else {
            return WatchOutcome::default();
        };
        let time_ms = event.event_time_ms();
        let mut outcome = WatchOutcome::default();
        for monitor in &mut self.monitors {
            match monitor.observe(&event.user_id, group, &event.event, time_ms) {
                ObserveOutcome::Counted => outcome.counted = true,
                ObserveOutcome::GroupConflict => outcome.group_conflicts += 1,
                ObserveOutcome::UnknownGroup => outcome.unknown_groups += 1,
                ObserveOutcome::OutsidePeriod => {}
            }
        }
        self.counted += u64::from(outcome.counted);
        self.group_conflicts += outcome.group_conflicts;
        outcome
    }

    /// Evaluates every experiment at event time `now_ms` and returns the
    /// anomalies not announced before; the hub assigns their sequences.
    pub fn evaluate(&mut self, now_ms: i64, detected_at_ms: i64) -> Vec<AnomalyEvent> {
        let mut anomalies = Vec::new();
        for monitor in &mut self.monitors {
            let status = monitor.evaluate(now_ms);
            let config = monitor.config();
            let alerts = alerts_of(
                &config.name,
                monitor.group_names(),
                &config.control,
                &status,
                now_ms,
                detected_at_ms,
            );
            for (key, anomaly) in alerts {
                if self.announced.insert(key) {
                    anomalies.push(anomaly);
                }
            }
        }
        anomalies
    }
}

/// Builds the anomaly of every rejected test in `status`.
fn alerts_of(
    experiment: &str,
    groups: &[String],
    control: &str,
    status: &ExperimentStatus,
    now_ms: i64,
    detected_at_ms: i64,
) -> Vec<(AlertKey, AnomalyEvent)> {
    let mut alerts = Vec::new();

    if let Some(since_ms) = status.srm.mismatch_since_ms {
        // The treatment group whose observed share is furthest from its
        // configured one: with two groups both deviate equally, and the
        // treatment is the one to name.
        let total: u64 = status.srm.users.iter().sum();
        let (group, observed, expected) = groups
            .iter()
            .zip(&status.srm.users)
            .zip(&status.srm.expected_shares)
            .filter(|((group, _), _)| *group != control)
            .map(|((group, &users), &expected)| (group, users as f64 / total.max(1) as f64, expected))
            .max_by(|left, right| (left.1 - left.2).abs().total_cmp(&(right.1 - right.2).abs()))
            .expect("an experiment has a group besides its control");
        let metric = sample_ratio_metric(experiment);
        alerts.push((
            AlertKey::SampleRatio {
                experiment: experiment.to_string(),
            },
            anomaly(AnomalyParts {
                metric,
                group,
                since_ms,
                now_ms,
                detected_at_ms,
                value: observed,
                expected,
                band: (expected, expected),
                p_value: status.srm.p_value,
            }),
        ));
    }

    for guardrail in &status.guardrails {
        let Some(since_ms) = guardrail.degraded_since_ms else {
            continue;
        };
        // Treatment values inside this band would not have rejected "no
        // difference" at this evaluation.
        let half_width = (guardrail.interval.1 - guardrail.interval.0) / 2.0;
        alerts.push((
            AlertKey::Guardrail {
                experiment: experiment.to_string(),
                guardrail: guardrail.guardrail.clone(),
                group: guardrail.group.clone(),
            },
            anomaly(AnomalyParts {
                metric: guardrail_metric(experiment, &guardrail.guardrail),
                group: &guardrail.group,
                since_ms,
                now_ms,
                detected_at_ms,
                value: guardrail.treatment_ratio,
                expected: guardrail.control_ratio,
                band: (
                    guardrail.control_ratio - half_width,
                    guardrail.control_ratio + half_width,
                ),
                p_value: guardrail.p_value,
            }),
        ));
    }
    alerts
}

struct AnomalyParts<'a> {
    metric: String,
    group: &'a str,
    since_ms: i64,
    now_ms: i64,
    detected_at_ms: i64,
    value: f64,
    expected: f64,
    band: (f64, f64),
    p_value: f64,
}

fn anomaly(parts: AnomalyParts<'_>) -> AnomalyEvent {
    let slice = SliceKey::from_pairs([(GROUP_FIELD.to_string(), parts.group.to_string())])
        .expect("a single dimension cannot repeat");
    let direction = if parts.value >= parts.expected {
        v1::Direction::Up
    } else {
        v1::Direction::Down
    };

    AnomalyEvent {
        id: anomaly_id(&parts.metric, &slice, parts.since_ms),
        sequence: 0,
        state: AnomalyState::Firing.into(),
        metric: parts.metric,
        slice: slice_to_proto(&slice),
        // A sequential test has no window: both bounds are the evaluation time.
        window_start_ms: parts.now_ms,
        window_end_ms: parts.now_ms,
        value: parts.value,
        expected: parts.expected,
        lower: parts.band.0,
        upper: parts.band.1,
        score: 1.0 - parts.p_value,
        // A mismatch or a degraded guardrail invalidates or endangers the
        // experiment: someone should look now.
        severity: v1::Severity::Critical.into(),
        direction: direction.into(),
        window_seconds: 0,
        detected_at_ms: parts.detected_at_ms,
        ..AnomalyEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::MetricsConfig;

    const EXPERIMENTS: &str = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"

[[experiment]]
name = "feed"
groups = { "1" = 0.5, "2" = 0.5 }
control = "1"
min_users_per_group = 100

[[experiment.guardrail]]
name = "ctr"
numerator_event = "like"
denominator_event = "view"
degradation = "decrease"
mixture_sd = 0.02
"#;

    fn event(user: usize, group: &str, kind: &str) -> Event {
        Event {
            event_time: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
            event: kind.to_string(),
            user_id: format!("user-{user}"),
            event_id: None,
            post_id: None,
            receiver_id: None,
            os: None,
            country: None,
            city: None,
            source: None,
            gender: None,
            age: None,
            exp_group: Some(group.to_string()),
            value: None,
            extra: String::new(),
        }
    }

    fn watch() -> ExperimentWatch {
        ExperimentWatch::new(&MetricsConfig::parse(EXPERIMENTS).unwrap().experiments)
    }

    #[test]
    fn metrics_file_validates_experiments() {
        assert_eq!(MetricsConfig::parse(EXPERIMENTS).unwrap().experiments.len(), 1);

        let twice = EXPERIMENTS.replacen(
            "[[experiment]]",
            "[[experiment]]\nname = \"feed\"\ngroups = { a = 1.0, b = 1.0 }\ncontrol = \"a\"\n\n[[experiment]]",
            1,
        );
        let error = MetricsConfig::parse(&twice).unwrap_err().to_string();
        assert!(error.contains("`feed`: the name appears twice"), "{error}");

        let bad_control = EXPERIMENTS.replace("control = \"1\"", "control = \"3\"");
        let error = MetricsConfig::parse(&bad_control).unwrap_err().to_string();
        assert!(error.contains("control group \"3\""), "{error}");

        let bad_sd = EXPERIMENTS.replace("mixture_sd = 0.02", "mixture_sd = -1");
        let error = MetricsConfig::parse(&bad_sd).unwrap_err().to_string();
        assert!(error.contains("mixture standard deviation -1"), "{error}");
    }

    #[test]
    fn sample_ratio_mismatch_fires_once() {
        let mut watch = watch();
        // Two users in group 2 for every one in group 1.
        for user in 0..3_000 {
            let group = if user % 3 == 0 { "1" } else { "2" };
            watch.observe(&event(user, group, "view"));
        }

        let anomalies = watch.evaluate(1_000, 2_000);
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        let srm = &anomalies[0];
        assert_eq!(srm.metric, "experiment.feed.sample_ratio");
        assert_eq!(srm.slice[0].value, "2");
        assert!((srm.value - 2.0 / 3.0).abs() < 1e-3);
        assert_eq!(srm.expected, 0.5);
        assert_eq!(srm.severity(), v1::Severity::Critical);
        assert_eq!(srm.direction(), v1::Direction::Up);

        assert!(watch.evaluate(2_000, 3_000).is_empty(), "a rejection is announced once");
    }

    #[test]
    fn degraded_guardrail_fires_with_band() {
        let mut watch = watch();
        // 2 000 users alternating between groups with 10 to 16 views each;
        // group 1 likes about every 5th view, group 2 about every 10th.
        let mut events = 0;
        for user in 0..2_000 {
            let (group, every) = if user % 2 == 0 { ("1", 5) } else { ("2", 10) };
            for view in 0..10 + user % 7 {
                watch.observe(&event(user, group, "view"));
                events += 1;
                if (view + user / 2) % every == 0 {
                    watch.observe(&event(user, group, "like"));
                    events += 1;
                }
            }
        }

        let anomalies = watch.evaluate(5_000, 6_000);
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        let ctr = &anomalies[0];
        assert_eq!(ctr.metric, "experiment.feed.ctr");
        assert_eq!(ctr.slice[0].value, "2");
        assert!((ctr.value - 0.1).abs() < 0.01, "{}", ctr.value);
        assert!((ctr.expected - 0.2).abs() < 0.01, "{}", ctr.expected);
        assert!(ctr.value < ctr.lower, "{ctr:?}");
        assert_eq!(ctr.direction(), v1::Direction::Down);
        assert_eq!(watch.counted(), events);
    }

    #[test]
    fn lists_alert_metric_names() {
        let config = MetricsConfig::parse(EXPERIMENTS).unwrap();
        assert_eq!(
            alert_metric_names(&config.experiments),
            vec!["experiment.feed.sample_ratio", "experiment.feed.ctr"]
        );
    }

    #[test]
    fn counts_unknown_groups() {
        let mut watch = watch();
        let outcome = watch.observe(&event(1, "3", "view"));

        assert!(!outcome.counted);
        assert_eq!(outcome.unknown_groups, 1);
    }

    #[test]
    fn events_without_group_are_ignored() {
        let mut watch = watch();
        let mut plain = event(1, "1", "view");
        plain.exp_group = None;
        watch.observe(&plain);
        assert_eq!(watch.counted(), 0);
    }
}
