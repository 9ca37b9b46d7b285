//! Recognises anomaly state changes a detector sent before.

use std::collections::{HashSet, VecDeque};

use seismo_proto::v1::AnomalyEvent;

use crate::notification_log::escalation_severity;

/// Identity of one state change: an episode fires once, escalates once per
/// severity and resolves once, so episode id, state and an escalation's
/// severity name it, whatever `sequence` it arrives with.
type EventKey = (String, i32, i32);

/// The last `capacity` state changes of one detector, oldest evicted first.
#[derive(Debug)]
pub(crate) struct RecentEvents {
    capacity: usize,
    order: VecDeque<EventKey>,
    keys: HashSet<EventKey>,
}

impl RecentEvents {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            keys: HashSet::with_capacity(capacity),
        }
    }

    /// Records the event and returns `true` when it was not seen before.
    pub(crate) fn insert(&mut self, event: &AnomalyEvent) -> bool {
        let key = (event.id.clone(), event.state, escalation_severity(event));
        if self.keys.contains(&key) {
            return false;
        }

        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.keys.insert(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seismo_proto::v1::{AnomalyState, Severity};

    fn event(id: &str, state: AnomalyState, sequence: u64) -> AnomalyEvent {
        AnomalyEvent {
            id: id.to_string(),
            state: state as i32,
            sequence,
            ..AnomalyEvent::default()
        }
    }

    #[test]
    fn repeated_state_change_is_seen_once() {
        let mut recent = RecentEvents::new(8);

        assert!(recent.insert(&event("ep-1", AnomalyState::Firing, 1)));
        assert!(!recent.insert(&event("ep-1", AnomalyState::Firing, 1)));
        assert!(!recent.insert(&event("ep-1", AnomalyState::Firing, 5)));
    }

    #[test]
    fn firing_and_resolution_are_distinct() {
        let mut recent = RecentEvents::new(8);

        assert!(recent.insert(&event("ep-1", AnomalyState::Firing, 1)));
        assert!(recent.insert(&event("ep-1", AnomalyState::Resolved, 2)));
        assert!(recent.insert(&event("ep-2", AnomalyState::Firing, 3)));
    }

    #[test]
    fn escalations_are_distinct() {
        let mut recent = RecentEvents::new(8);
        let escalation = |severity: Severity, sequence| AnomalyEvent {
            severity: severity as i32,
            ..event("ep-1", AnomalyState::Escalated, sequence)
        };

        assert!(recent.insert(&escalation(Severity::Warning, 2)));
        assert!(recent.insert(&escalation(Severity::Critical, 3)));
        assert!(!recent.insert(&escalation(Severity::Critical, 3)));
    }

    #[test]
    fn oldest_entries_are_evicted_at_capacity() {
        let mut recent = RecentEvents::new(2);
        recent.insert(&event("ep-1", AnomalyState::Firing, 1));
        recent.insert(&event("ep-2", AnomalyState::Firing, 2));
        recent.insert(&event("ep-3", AnomalyState::Firing, 3));

        assert!(recent.insert(&event("ep-1", AnomalyState::Firing, 1)));
        assert!(!recent.insert(&event("ep-3", AnomalyState::Firing, 3)));
    }
}
