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
    let params = DetectionParams {
        time_zone: series
            .time_zone
            .parse()
            .expect("synthetic series use valid time zone names"),
        ..params.clone()
    };
    let mut detector = SeriesDetector::new(&params, series.window_ms);
    let mut alerts = Vec::new();
    for (index, &value) in series.values.iter().enumerate() {
        let window_start_ms = series.start_ms + index as i64 * series.window_ms;
        let transition = detector
            .observe(window_start_ms, value)
            .and_then(|evaluation| evaluation.transition);
        if matches!(transition, Some(Transition::Fired { .. })) {
            alerts.push(index);
        }
    }
    alerts
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
