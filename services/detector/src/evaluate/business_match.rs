//! Matching of alerts to labelled anomalies: precision, recall, F1 and
//! detection delay, counted in windows.

/// Alerts of one method on one or more series, matched to their anomalies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchOutcome {
    pub anomalies: usize,
    /// Anomalies with an alert in their span or the window after it.
    pub detected: usize,
    /// Alerts outside every anomaly's span and the window after it.
    pub false_positives: usize,
    /// Windows from each detected anomaly's first window to its first alert.
    pub delays: Vec<usize>,
}

impl MatchOutcome {
    /// Adds another series' outcome.
    pub fn add(&mut self, other: &MatchOutcome) {
        self.anomalies += other.anomalies;
        self.detected += other.detected;
        self.false_positives += other.false_positives;
        self.delays.extend_from_slice(&other.delays);
    }

    /// Detected anomalies over detected anomalies plus false alerts, so
    /// repeated alerts inside one anomaly neither help nor hurt. 1 without alerts.
    pub fn precision(&self) -> f64 {
        let flagged = self.detected + self.false_positives;
        if flagged == 0 {
            return 1.0;
        }
        self.detected as f64 / flagged as f64
    }

    /// Detected anomalies over all anomalies; 1 without anomalies.
    pub fn recall(&self) -> f64 {
        if self.anomalies == 0 {
            return 1.0;
        }
        self.detected as f64 / self.anomalies as f64
    }

    pub fn f1(&self) -> f64 {
        let (precision, recall) = (self.precision(), self.recall());
        if precision + recall == 0.0 {
            return 0.0;
        }
        2.0 * precision * recall / (precision + recall)
    }

    /// Median delay in windows over detected anomalies (the mean of the two
    /// middle delays for an even count), `None` if none was detected.
    pub fn median_delay(&self) -> Option<f64> {
        let mut delays = self.delays.clone();
        delays.sort_unstable();
        let n = delays.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(delays[n / 2] as f64),
            _ => Some((delays[n / 2 - 1] + delays[n / 2]) as f64 / 2.0),
        }
    }

    /// Mean delay in windows over detected anomalies, `None` if none was detected.
    pub fn mean_delay(&self) -> Option<f64> {
        if self.delays.is_empty() {
            return None;
        }
        Some(self.delays.iter().sum::<usize>() as f64 / self.delays.len() as f64)
    }
}

/// Matches alert windows to anomaly spans (inclusive window index ranges).
/// An alert from a span's first window to one window past its last detects
/// that anomaly. Any other alert is a false positive.
pub fn match_alerts(alerts: &[usize], anomalies: &[(usize, usize)]) -> MatchOutcome {
    let mut first_alert: Vec<Option<usize>> = vec![None; anomalies.len()];
    let mut false_positives = 0;

    for &alert in alerts {
        let matched = anomalies
            .iter()
            .position(|&(start, end)| (start..=end + 1).contains(&alert));
        match matched {
            Some(anomaly) => {
                let first = first_alert[anomaly].get_or_insert(alert);
                *first = (*first).min(alert);
            }
            None => false_positives += 1,
        }
    }

    let delays: Vec<usize> = anomalies
        .iter()
        .zip(&first_alert)
        .filter_map(|(&(start, _), alert)| alert.map(|alert| alert - start))
        .collect();
    MatchOutcome {
        anomalies: anomalies.len(),
        detected: delays.len(),
        false_positives,
        delays,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_in_span_or_next_window_detect() {
        let anomalies = [(10, 12), (30, 30), (50, 55)];
        // 13 is one past the first span; 31 one past the second; 14 and 40 are outside.
        let outcome = match_alerts(&[13, 11, 14, 31, 40], &anomalies);

        assert_eq!(outcome.anomalies, 3);
        assert_eq!(outcome.detected, 2);
        assert_eq!(outcome.false_positives, 2);
        assert_eq!(outcome.delays, vec![1, 1]);
    }

    #[test]
    fn scores_from_counts() {
        let outcome = MatchOutcome {
            anomalies: 4,
            detected: 3,
            false_positives: 1,
            delays: vec![0, 2, 4],
        };

        assert_eq!(outcome.precision(), 0.75);
        assert_eq!(outcome.recall(), 0.75);
        assert_eq!(outcome.f1(), 0.75);
        assert_eq!(outcome.mean_delay(), Some(2.0));
        assert_eq!(outcome.median_delay(), Some(2.0));
        let even = MatchOutcome {
            delays: vec![5, 0, 1, 0],
            ..outcome
        };
        assert_eq!(even.median_delay(), Some(0.5));
    }

    #[test]
    fn empty_outcomes() {
        let outcome = match_alerts(&[], &[(1, 2)]);

        assert_eq!(outcome.precision(), 1.0);
        assert_eq!(outcome.recall(), 0.0);
        assert_eq!(outcome.f1(), 0.0);
        assert_eq!(outcome.mean_delay(), None);
    }

    #[test]
    fn outcomes_add_up() {
        let mut total = match_alerts(&[1], &[(1, 2)]);
        total.add(&match_alerts(&[9], &[(1, 2)]));

        assert_eq!(total.anomalies, 2);
        assert_eq!(total.detected, 1);
        assert_eq!(total.false_positives, 1);
        assert_eq!(total.delays, vec![0]);
    }
}
