//! Matching of alerts to labelled anomalies: precision, recall, F1 and
//! detection delay, counted in windows.

/// Alerts of one method on one or more series, matched to their anomalies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchOutcome {
    /// Alerts outside every anomaly's span and the window after it.
    pub false_positives: usize,
    /// One entry per anomaly, in the order of the series and their spans:
    /// windows from the anomaly's first window to its first alert, or
    /// `None` when no alert fell in its span or the window after it.
    pub delays: Vec<Option<usize>>,
}

/// Mean delays of a method and a baseline over the anomalies both detect,
/// so neither is rewarded for detecting only the easy anomalies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedDelay {
    /// Anomalies both detect.
    pub shared: usize,
    /// Mean delay of the method on them, in windows.
    pub method: f64,
    /// Mean delay of the baseline on them, in windows.
    pub baseline: f64,
}

impl MatchOutcome {
    /// Adds another series' outcome.
    pub fn add(&mut self, other: &MatchOutcome) {
        self.false_positives += other.false_positives;
        self.delays.extend_from_slice(&other.delays);
    }

    pub fn anomalies(&self) -> usize {
        self.delays.len()
    }

    /// Anomalies with an alert in their span or the window after it.
    pub fn detected(&self) -> usize {
        self.delays.iter().flatten().count()
    }

    /// Delays of the detected anomalies.
    fn detected_delays(&self) -> impl Iterator<Item = usize> + '_ {
        self.delays.iter().flatten().copied()
    }

    /// Detected anomalies over detected anomalies plus false alerts, so
    /// repeated alerts inside one anomaly neither help nor hurt. 1 without alerts.
    pub fn precision(&self) -> f64 {
        let flagged = self.detected() + self.false_positives;
        if flagged == 0 {
            return 1.0;
        }
        self.detected() as f64 / flagged as f64
    }

    /// Detected anomalies over all anomalies; 1 without anomalies.
    pub fn recall(&self) -> f64 {
        if self.anomalies() == 0 {
            return 1.0;
        }
        self.detected() as f64 / self.anomalies() as f64
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
        let mut delays: Vec<usize> = self.detected_delays().collect();
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
        let detected = self.detected();
        if detected == 0 {
            return None;
        }
        Some(self.detected_delays().sum::<usize>() as f64 / detected as f64)
    }

    /// Mean delays of this outcome and `baseline` over the anomalies both
    /// detect, `None` when they share none. Both must cover the same
    /// anomalies in the same order, as outcomes of one suite do.
    pub fn shared_delay(&self, baseline: &MatchOutcome) -> Option<SharedDelay> {
        assert_eq!(
            self.anomalies(),
            baseline.anomalies(),
            "outcomes to compare must cover the same anomalies"
        );

        let pairs: Vec<(usize, usize)> = self
            .delays
            .iter()
            .zip(&baseline.delays)
            .filter_map(|(&method, &baseline)| Some((method?, baseline?)))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        let shared = pairs.len();
        let mean = |sum: usize| sum as f64 / shared as f64;
        Some(SharedDelay {
            shared,
            method: mean(pairs.iter().map(|&(method, _)| method).sum()),
            baseline: mean(pairs.iter().map(|&(_, baseline)| baseline).sum()),
        })
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

    let delays = anomalies
        .iter()
        .zip(&first_alert)
        .map(|(&(start, _), alert)| alert.map(|alert| alert - start))
        .collect();
    MatchOutcome {
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

        assert_eq!(outcome.anomalies(), 3);
        assert_eq!(outcome.detected(), 2);
        assert_eq!(outcome.false_positives, 2);
        assert_eq!(outcome.delays, vec![Some(1), Some(1), None]);
    }

    #[test]
    fn scores_from_counts() {
        let outcome = MatchOutcome {
            false_positives: 1,
            delays: vec![Some(0), None, Some(2), Some(4)],
        };

        assert_eq!(outcome.precision(), 0.75);
        assert_eq!(outcome.recall(), 0.75);
        assert_eq!(outcome.f1(), 0.75);
        assert_eq!(outcome.mean_delay(), Some(2.0));
        assert_eq!(outcome.median_delay(), Some(2.0));
        let even = MatchOutcome {
            delays: vec![Some(5), Some(0), Some(1), Some(0)],
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

        assert_eq!(total.anomalies(), 2);
        assert_eq!(total.detected(), 1);
        assert_eq!(total.false_positives, 1);
        assert_eq!(total.delays, vec![Some(0), None]);
    }

    #[test]
    fn shared_delay_compares_only_anomalies_both_detect() {
        let method = MatchOutcome {
            false_positives: 0,
            delays: vec![Some(0), Some(3), Some(1), None],
        };
        let baseline = MatchOutcome {
            false_positives: 5,
            delays: vec![Some(0), None, Some(2), Some(0)],
        };

        let shared = method.shared_delay(&baseline).unwrap();

        // Anomalies 0 and 2: the method's 3 on anomaly 1 and the
        // baseline's 0 on anomaly 3 are not compared.
        assert_eq!(
            shared,
            SharedDelay {
                shared: 2,
                method: 0.5,
                baseline: 1.0
            }
        );
        assert_eq!(
            method.shared_delay(&MatchOutcome {
                false_positives: 0,
                delays: vec![None; 4]
            }),
            None
        );
    }
}
