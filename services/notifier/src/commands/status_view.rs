//! The notifier's view of what is firing, kept in memory for `/status`. The
//! send gate updates it with every state change delivery is about to send,
//! so it shows the episodes this process has seen since it started.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use seismo_proto::v1::{AnomalyEvent, AnomalyState};

/// One episode that fired and has not resolved yet.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringEpisode {
    pub anomaly_id: String,
    pub metric: String,
    /// `dimension=value` pairs, empty for the metric's total.
    pub slice: Vec<(String, String)>,
    pub value: f64,
    pub expected: f64,
    /// The window end of the firing event.
    pub since: DateTime<Utc>,
}

/// A copy of the view at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusSnapshot {
    /// Firing episodes, oldest first.
    pub firing: Vec<FiringEpisode>,
    /// When the gate last cleared an alert to be sent. Delivery may still
    /// have failed; the delivery counters tell.
    pub last_alert_cleared_at: Option<DateTime<Utc>>,
}

/// Firing episodes by id and the time of the last alert let through.
#[derive(Debug, Default)]
pub struct StatusView {
    last_alert_cleared_at: Mutex<Option<DateTime<Utc>>>,
    firing: Mutex<BTreeMap<String, FiringEpisode>>,
}

impl StatusView {
    /// Applies one state change: a firing or escalation adds its episode,
    /// because an escalation is the first change of an episode that a chat
    /// with a higher `min_severity` route gets. A resolution removes it.
    /// Repeats of the same change are harmless, because the gate is asked
    /// once per chat for each change.
    pub fn observe(&self, event: &AnomalyEvent) {
        let mut firing = self.firing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event.state() {
            AnomalyState::Firing | AnomalyState::Escalated => {
                firing.entry(event.id.clone()).or_insert_with(|| FiringEpisode {
                    anomaly_id: event.id.clone(),
                    metric: event.metric.clone(),
                    slice: event
                        .slice
                        .iter()
                        .map(|dimension| (dimension.name.clone(), dimension.value.clone()))
                        .collect(),
                    value: event.value,
                    expected: event.expected,
                    // The end of the window that fired the episode, also when
                    // an escalation is the first change seen.
                    since: DateTime::from_timestamp_millis(
                        crate::format::episode_start_ms(event) + (event.window_end_ms - event.window_start_ms),
                    )
                    .unwrap_or_default(),
                });
            }
            AnomalyState::Resolved => {
                firing.remove(&event.id);
            }
            AnomalyState::Unspecified => {}
        }
    }

    /// Records that the gate cleared an alert to be sent at `now`.
    pub fn record_cleared(&self, now: DateTime<Utc>) {
        let mut last = self
            .last_alert_cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = Some(last.map_or(now, |last| last.max(now)));
    }

    /// Returns the current view.
    pub fn snapshot(&self) -> StatusSnapshot {
        let mut firing: Vec<FiringEpisode> = self
            .firing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        firing.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.anomaly_id.cmp(&b.anomaly_id)));
        let last_alert_cleared_at = *self
            .last_alert_cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        StatusSnapshot {
            firing,
            last_alert_cleared_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, state: AnomalyState, end_ms: i64) -> AnomalyEvent {
        AnomalyEvent {
            id: id.to_string(),
            state: state as i32,
            metric: "views".to_string(),
            window_end_ms: end_ms,
            ..AnomalyEvent::default()
        }
    }

    #[test]
    fn status_tracks_firing_until_resolved() {
        let view = StatusView::default();
        view.observe(&event("b", AnomalyState::Firing, 2_000));
        view.observe(&event("a", AnomalyState::Firing, 1_000));
        view.observe(&event("a", AnomalyState::Firing, 1_000));

        let ids: Vec<String> = view
            .snapshot()
            .firing
            .into_iter()
            .map(|episode| episode.anomaly_id)
            .collect();
        assert_eq!(ids, vec!["a", "b"]);

        view.observe(&event("a", AnomalyState::Resolved, 3_000));
        let ids: Vec<String> = view
            .snapshot()
            .firing
            .into_iter()
            .map(|episode| episode.anomaly_id)
            .collect();
        assert_eq!(ids, vec!["b"]);
    }

    #[test]
    fn escalation_seen_first_dates_from_the_firing_window() {
        let view = StatusView::default();
        let escalation = AnomalyEvent {
            window_start_ms: 3_600_000,
            episode_start_ms: 600_000,
            ..event("a", AnomalyState::Escalated, 3_900_000)
        };

        view.observe(&escalation);

        let firing = view.snapshot().firing;
        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0].since.timestamp_millis(), 900_000);
    }
}
