//! Tracks what the notifier needs to do its work (an open detector stream,
//! sinks that deliver) and publishes it as the service's readiness and the
//! connected-detectors gauge.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use seismo_telemetry::Readiness;

use crate::prometheus_metrics::CONNECTED_DETECTORS;

/// Inputs of the readiness decision.
#[derive(Debug, Default)]
struct Conditions {
    /// Per detector address: `None` while its anomaly stream is open, else
    /// why it is not.
    detectors: BTreeMap<Arc<str>, Option<String>>,
    /// Per sink name: the error of its last delivery, if that failed.
    failing_sinks: BTreeMap<&'static str, String>,
    stopping: bool,
}

impl Conditions {
    fn connected_detectors(&self) -> usize {
        self.detectors.values().filter(|reason| reason.is_none()).count()
    }

    /// Returns `None` when the notifier is ready, else every reason it is not.
    ///
    /// Ready means: not shutting down, at least one detector stream open, and
    /// every sink delivered its last alert. A sink that gave up stays failing
    /// until it delivers an alert again, because nothing else shows that it
    /// recovered.
    fn not_ready_reason(&self) -> Option<String> {
        if self.stopping {
            return Some("shutting down".to_string());
        }

        let mut reasons = Vec::new();
        if self.connected_detectors() == 0 {
            // No stream is open, so every detector has a reason.
            let detectors: Vec<String> = self
                .detectors
                .iter()
                .filter_map(|(detector, reason)| reason.as_ref().map(|reason| format!("{detector}: {reason}")))
                .collect();
            reasons.push(format!(
                "no detector anomaly stream connected ({})",
                detectors.join(", ")
            ));
        }
        for (sink, error) in &self.failing_sinks {
            reasons.push(format!("the {sink} sink did not deliver the last alert: {error}"));
        }

        if reasons.is_empty() {
            None
        } else {
            Some(reasons.join("; "))
        }
    }
}

/// Readiness inputs shared by the subscriptions and the delivery loop. Every
/// change updates the [`Readiness`] that `/readyz` reports.
#[derive(Debug)]
pub(crate) struct ReadinessTracker {
    readiness: Readiness,
    conditions: Mutex<Conditions>,
}

impl ReadinessTracker {
    /// Starts with every detector in `detectors` connecting. Leaves
    /// `readiness` unchanged until the first update, so that it keeps the
    /// caller's `starting` reason while the first connects run.
    pub(crate) fn new(readiness: Readiness, detectors: impl IntoIterator<Item = Arc<str>>) -> Self {
        let detectors = detectors
            .into_iter()
            .map(|detector| (detector, Some("connecting".to_string())))
            .collect();
        metrics::gauge!(CONNECTED_DETECTORS).set(0.0);
        Self {
            readiness,
            conditions: Mutex::new(Conditions {
                detectors,
                ..Conditions::default()
            }),
        }
    }

    pub(crate) fn detector_connected(&self, detector: &Arc<str>) {
        let mut conditions = self.lock();
        conditions.detectors.insert(Arc::clone(detector), None);
        self.publish(&conditions);
    }

    /// Records that the stream of `detector` is not open, with the reason.
    pub(crate) fn detector_disconnected(&self, detector: &Arc<str>, reason: String) {
        let mut conditions = self.lock();
        conditions.detectors.insert(Arc::clone(detector), Some(reason));
        self.publish(&conditions);
    }

    /// Records the outcome of one delivery by the sink `sink`.
    pub(crate) fn delivery_finished(&self, sink: &'static str, error: Option<String>) {
        let mut conditions = self.lock();
        let changed = match error {
            Some(error) => conditions.failing_sinks.insert(sink, error).is_none(),
            None => conditions.failing_sinks.remove(sink).is_some(),
        };
        if changed {
            self.publish(&conditions);
        }
    }

    /// Marks the notifier not ready for good: it is shutting down.
    pub(crate) fn stopping(&self) {
        let mut conditions = self.lock();
        conditions.stopping = true;
        self.publish(&conditions);
    }

    fn publish(&self, conditions: &Conditions) {
        metrics::gauge!(CONNECTED_DETECTORS).set(conditions.connected_detectors() as f64);
        match conditions.not_ready_reason() {
            None => self.readiness.set_ready(),
            Some(reason) => self.readiness.set_not_ready(reason),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Conditions> {
        // Every update leaves the conditions consistent, so a poisoned lock is still usable.
        self.conditions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(detectors: &[&str]) -> (ReadinessTracker, Readiness, Vec<Arc<str>>) {
        let readiness = Readiness::default();
        let addresses: Vec<Arc<str>> = detectors.iter().map(|detector| Arc::from(*detector)).collect();
        let tracker = ReadinessTracker::new(readiness.clone(), addresses.clone());
        (tracker, readiness, addresses)
    }

    #[test]
    fn starting_until_first_update() {
        let (_tracker, readiness, _) = tracker(&["http://a/"]);

        assert_eq!(readiness.status(), Err("starting".to_string()));
    }

    #[test]
    fn one_connected_detector_is_enough() {
        let (tracker, readiness, detectors) = tracker(&["http://a/", "http://b/"]);

        tracker.detector_connected(&detectors[1]);

        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn no_connected_detector_names_each_reason() {
        let (tracker, readiness, detectors) = tracker(&["http://a/", "http://b/"]);
        tracker.detector_connected(&detectors[0]);

        tracker.detector_disconnected(&detectors[0], "connection refused".to_string());

        assert_eq!(
            readiness.status(),
            Err(
                "no detector anomaly stream connected (http://a/: connection refused, http://b/: connecting)"
                    .to_string()
            )
        );
    }

    #[test]
    fn failed_delivery_until_next_success() {
        let (tracker, readiness, detectors) = tracker(&["http://a/"]);
        tracker.detector_connected(&detectors[0]);

        tracker.delivery_finished(
            "telegram",
            Some("1 of 1 Telegram chats did not receive the alert".to_string()),
        );
        assert_eq!(
            readiness.status(),
            Err(
                "the telegram sink did not deliver the last alert: 1 of 1 Telegram chats did not receive the alert"
                    .to_string()
            )
        );

        tracker.delivery_finished("console", None);
        assert!(readiness.status().is_err(), "another sink's success does not clear it");

        tracker.delivery_finished("telegram", None);
        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn both_reasons_are_reported() {
        let (tracker, readiness, _) = tracker(&["http://a/"]);

        tracker.delivery_finished("console", Some("broken pipe".to_string()));

        assert_eq!(
            readiness.status(),
            Err("no detector anomaly stream connected (http://a/: connecting); the console sink did not deliver the last alert: broken pipe".to_string())
        );
    }

    #[test]
    fn stopping_overrides_everything() {
        let (tracker, readiness, detectors) = tracker(&["http://a/"]);
        tracker.detector_connected(&detectors[0]);

        tracker.stopping();
        tracker.detector_connected(&detectors[0]);

        assert_eq!(readiness.status(), Err("shutting down".to_string()));
    }
}
