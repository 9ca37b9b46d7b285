//! Runs the detector and the IQR rule over the synthetic business series
//! and matches their alerts to the labelled anomalies.

use super::business_match::{MatchOutcome, match_alerts};
use super::business_series::{SyntheticSeries, WINDOW_MS};
use super::iqr::{IqrRule, alert_starts, iqr_outliers};
use crate::detection::{DetectionParams, SeriesDetector, Transition};

/// Outcomes of both methods on one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesComparison {
    pub name: &'static str,
    pub description: &'static str,
    pub detector: MatchOutcome,
    pub iqr: MatchOutcome,
}

/// Returns the windows where the detector fires an episode, the alerts the
/// live service sends.
pub fn detector_alerts(series: &SyntheticSeries, params: &DetectionParams) -> Vec<usize> {
    let mut detector = SeriesDetector::new(params, WINDOW_MS);
    let mut alerts = Vec::new();
    for (index, &value) in series.values.iter().enumerate() {
        let window_start_ms = series.start_ms + index as i64 * WINDOW_MS;
        let transition = detector
            .observe(window_start_ms, value)
            .and_then(|evaluation| evaluation.transition);
        if matches!(transition, Some(Transition::Fired { .. })) {
            alerts.push(index);
        }
    }
    alerts
}

/// Compares the detector with `params` and the IQR rule on each series.
pub fn compare(suite: &[SyntheticSeries], params: &DetectionParams, rule: &IqrRule) -> Vec<SeriesComparison> {
    suite
        .iter()
        .map(|series| {
            let detector = match_alerts(&detector_alerts(series, params), &series.anomalies);
            let iqr_alerts = alert_starts(&iqr_outliers(&series.values, rule));
            let iqr = match_alerts(&iqr_alerts, &series.anomalies);
            SeriesComparison {
                name: series.name,
                description: series.description,
                detector,
                iqr,
            }
        })
        .collect()
}

/// Sums the outcomes of every series, detector first.
pub fn totals(comparisons: &[SeriesComparison]) -> (MatchOutcome, MatchOutcome) {
    let mut detector = MatchOutcome::default();
    let mut iqr = MatchOutcome::default();
    for comparison in comparisons {
        detector.add(&comparison.detector);
        iqr.add(&comparison.iqr);
    }
    (detector, iqr)
}
