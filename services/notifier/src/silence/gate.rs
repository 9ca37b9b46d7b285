//! The send gate the notifier installs: silences first, then quiet hours.
//! It also records each alert's series for the buttons and updates the
//! `/status` view.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use seismo_proto::v1::AnomalyEvent;
use tracing::{debug, error};

use crate::commands::acknowledgements::AcknowledgementStore;
use crate::commands::status_view::StatusView;
use crate::config::ChatTarget;
use crate::hooks::{SendDecision, SendGate};
use crate::quiet_hours::QuietHours;
use crate::silence::store::SilenceStore;

/// Suppresses alerts of silenced series and, during quiet hours, alerts
/// below the quiet hours' severity. A resolution of a silenced series is
/// suppressed too. When the silence table cannot be read, the alert is sent:
/// a missed silence costs a message, a missed alert costs an incident.
pub struct AlertGate {
    pub silences: Arc<SilenceStore>,
    pub acknowledgements: Arc<AcknowledgementStore>,
    pub quiet_hours: Option<QuietHours>,
    pub status: Arc<StatusView>,
}

impl SendGate for AlertGate {
    fn observe_held_back(&self, event: &AnomalyEvent) {
        self.status.observe(event);
    }

    fn decide(&self, event: &AnomalyEvent, chat: &ChatTarget, now: DateTime<Utc>) -> SendDecision {
        self.status.observe(event);
        if let Err(error) = self
            .acknowledgements
            .remember_series(&event.id, &event.metric, &event.slice, now)
        {
            error!(episode_id = %event.id, error = %error, "recording the alert's series failed; its Mute buttons will not work");
        }

        match self.silences.find_match(&event.metric, &event.slice, now) {
            Ok(Some(silence)) => {
                debug!(episode_id = %event.id, chat = %chat, silence_id = silence.id, "alert silenced");
                return SendDecision::Suppress {
                    reason: format!(
                        "silence #{} ({}) until {}",
                        silence.id,
                        silence.selector,
                        silence.expires_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                };
            }
            Ok(None) => {}
            Err(error) => {
                error!(episode_id = %event.id, error = %error, "reading silences failed; sending the alert");
            }
        }

        if let Some(quiet_hours) = &self.quiet_hours {
            let decision = quiet_hours.decide(event, chat, now);
            if decision != SendDecision::Send {
                return decision;
            }
        }
        self.status.record_cleared(now);
        SendDecision::Send
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use seismo_proto::v1::{AnomalyState, Severity};

    use super::*;
    use crate::silence::selector::SeriesSelector;
    use crate::silence::store::{NewSilence, SilenceSource};

    fn gate(dir: &tempfile::TempDir, quiet_hours: Option<QuietHours>) -> AlertGate {
        let path = dir.path().join("notifier.sqlite3");
        AlertGate {
            silences: Arc::new(SilenceStore::open(&path).unwrap()),
            acknowledgements: Arc::new(AcknowledgementStore::open(&path).unwrap()),
            quiet_hours,
            status: Arc::new(StatusView::default()),
        }
    }

    fn event(metric: &str, severity: Severity) -> AnomalyEvent {
        AnomalyEvent {
            id: format!("{metric}-1"),
            metric: metric.to_string(),
            state: AnomalyState::Firing as i32,
            severity: severity as i32,
            ..AnomalyEvent::default()
        }
    }

    #[test]
    fn gate_suppresses_silenced_series_until_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(&dir, None);
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        gate.silences
            .add(NewSilence {
                selector: SeriesSelector::parse("views").unwrap(),
                starts_at: now,
                expires_at: now + TimeDelta::hours(1),
                created_by: "alice".to_string(),
                source: SilenceSource::Command,
            })
            .unwrap();
        let chat = ChatTarget::Id(1);

        let silenced = gate.decide(&event("views", Severity::Critical), &chat, now);
        let other = gate.decide(&event("likes", Severity::Critical), &chat, now);
        let expired = gate.decide(&event("views", Severity::Critical), &chat, now + TimeDelta::hours(1));

        assert!(
            matches!(silenced, SendDecision::Suppress { ref reason } if reason.contains("views")),
            "{silenced:?}"
        );
        assert_eq!(other, SendDecision::Send);
        assert_eq!(expired, SendDecision::Send);
        assert_eq!(gate.status.snapshot().firing.len(), 2);
        assert!(gate.acknowledgements.series_of("views-1").unwrap().is_some());
    }

    #[test]
    fn gate_applies_quiet_hours_after_silences() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(&dir, Some(QuietHours::parse("22:00-08:00", "UTC").unwrap()));
        let night = Utc.with_ymd_and_hms(2026, 12, 4, 23, 0, 0).unwrap();
        let chat = ChatTarget::Id(1);

        assert!(matches!(
            gate.decide(&event("views", Severity::Warning), &chat, night),
            SendDecision::Suppress { .. }
        ));
        assert_eq!(
            gate.decide(&event("views", Severity::Critical), &chat, night),
            SendDecision::Send
        );
        assert_eq!(gate.status.snapshot().last_alert_cleared_at, Some(night));
    }
}
