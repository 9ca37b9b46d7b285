//! Runs detection methods and the IQR baseline over the synthetic business
//! series and matches their alerts to the labelled anomalies.

use super::business_match::{MatchOutcome, match_alerts};
use super::business_series::SyntheticSeries;
use super::iqr::{IqrRule, alert_starts, iqr_outliers};
use crate::detection::{DetectionParams, SeriesDetector, Transition};

/// Outcomes of one method on each series of a suite, in suite order.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodOutcomes {
    /// The method's name, or "iqr_rule" for the baseline.
    pub name: String,
    pub series: Vec<MatchOutcome>,
}

impl MethodOutcomes {
    /// Sum over every series.
    pub fn total(&self) -> MatchOutcome {
        let mut total = MatchOutcome::default();
        for outcome in &self.series {
            total.add(outcome);
        }
        total
    }
}

/// Returns the windows where the detector fires an episode, the alerts the
/// live service sends. The series' own time zone replaces the one in
/// `params`, as each metric's configuration would set it.
pub fn detector_alerts(series: &SyntheticSeries, params: &DetectionParams) -> Vec<usize> {
    transitions(series, params)
        .into_iter()
        .filter(|(_, transition)| matches!(transition, Transition::Fired { .. }))
        .map(|(index, _)| index)
        .collect()
}

/// Returns the episode changes of the detector on `series`, each with its
/// window's index, under the series' own time zone.
fn transitions(series: &SyntheticSeries, params: &DetectionParams) -> Vec<(usize, Transition)> {
    let params = DetectionParams {
        time_zone: series
            .time_zone
            .parse()
            .expect("synthetic series use valid time zone names"),
        ..params.clone()
    };
    let mut detector = SeriesDetector::new(&params, series.window_ms);
    let mut transitions = Vec::new();
    for (index, &value) in series.values.iter().enumerate() {
        let window_start_ms = series.start_ms + index as i64 * series.window_ms;
        if let Some(transition) = detector
            .observe(window_start_ms, value)
            .and_then(|evaluation| evaluation.transition)
        {
            transitions.push((index, transition));
        }
    }
    transitions
}

/// Runs the detector with each of `methods`, the settings of one method
/// each, named by it, then the IQR baseline `rule`, which comes last.
pub fn compare(suite: &[SyntheticSeries], methods: &[DetectionParams], rule: &IqrRule) -> Vec<MethodOutcomes> {
    let mut outcomes: Vec<MethodOutcomes> = methods
        .iter()
        .map(|params| MethodOutcomes {
            name: params.method.to_string(),
            series: suite
                .iter()
                .map(|series| match_alerts(&detector_alerts(series, params), &series.anomalies))
                .collect(),
        })
        .collect();

    outcomes.push(MethodOutcomes {
        name: "iqr_rule".to_string(),
        series: suite
            .iter()
            .map(|series| match_alerts(&alert_starts(&iqr_outliers(&series.values, rule)), &series.anomalies))
            .collect(),
    });
    outcomes
}

#[cfg(test)]
mod tests {
    use super::super::business_series::{SyntheticSeries, generate_suite};
    use crate::config::DetectionDefaults;
    use crate::detection::{DetectionParams, Severity, Transition};

    /// One fired episode: its firing window and severity, and the window
    /// and new severity of each escalation.
    struct Episode {
        fired_at: usize,
        fired_as: Severity,
        escalations: Vec<(usize, Severity)>,
    }

    fn episodes(series: &SyntheticSeries, params: &DetectionParams) -> Vec<Episode> {
        let mut episodes: Vec<Episode> = Vec::new();
        for (index, transition) in super::transitions(series, params) {
            match transition {
                Transition::Fired { severity, .. } => episodes.push(Episode {
                    fired_at: index,
                    fired_as: severity,
                    escalations: Vec::new(),
                }),
                Transition::Escalated { severity, .. } => {
                    let episode = episodes.last_mut().expect("an escalation follows a firing");
                    episode.escalations.push((index, severity));
                }
                Transition::Resolved { .. } => {}
            }
        }
        episodes
    }

    /// Prints the escalations on the business suite, seeds 1 to 20, and for
    /// each labelled anomaly whose alert fires at another severity with the
    /// count defaults than with `fire_ratio` at the critical ratio, both
    /// alerts. The figures in docs/benchmarks.md:
    /// `cargo test --release -p seismo-detector --lib escalation_figures -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints figures for the docs"]
    fn escalation_figures() {
        let count = crate::replay::read_params(None, None, DetectionDefaults::Count).unwrap();
        let critical_ratio = DetectionParams {
            fire_ratio: None,
            ..count.clone()
        };
        let plain = crate::replay::read_params(None, None, DetectionDefaults::Plain).unwrap();

        for (name, params) in [("count defaults", &count), ("plain defaults", &plain)] {
            let (mut fired, mut escalations, mut twice) = (0, 0, 0);
            for seed in 1..=20 {
                for series in generate_suite(seed) {
                    let episodes = episodes(&series, params);
                    fired += episodes.len();
                    escalations += episodes.iter().map(|episode| episode.escalations.len()).sum::<usize>();
                    twice += episodes.iter().filter(|episode| episode.escalations.len() == 2).count();
                }
            }
            println!("{name}: {fired} episodes, {escalations} escalations, {twice} episodes escalated twice");
        }

        for seed in 1..=20 {
            for series in generate_suite(seed) {
                let now = episodes(&series, &count);
                let before = episodes(&series, &critical_ratio);
                for &(start, end) in &series.anomalies {
                    let first_alert = |episodes: &[Episode]| {
                        episodes
                            .iter()
                            .position(|episode| episode.fired_at >= start && episode.fired_at < end + 3)
                    };
                    let (Some(now), Some(before)) = (
                        first_alert(&now).map(|index| &now[index]),
                        first_alert(&before).map(|index| &before[index]),
                    ) else {
                        continue;
                    };
                    if now.fired_as != before.fired_as {
                        println!(
                            "seed {seed} {} anomaly at {start}: fires {:?} at {}, escalations {:?}; \
                             at the critical ratio {:?} at {}",
                            series.name, now.fired_as, now.fired_at, now.escalations, before.fired_as, before.fired_at
                        );
                    }
                }
            }
        }
    }
}
