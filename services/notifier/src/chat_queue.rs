//! The queue of one destination (one Telegram chat, or the console). It
//! calls the send gate, groups alerts that arrive close together, sends them
//! and records each outcome in the notification log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seismo_proto::v1::{AnomalyEvent, AnomalyState};
use seismo_telemetry::set_remote_parent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

use crate::config::ChatTarget;
use crate::delivery::{EventOutcome, Finished};
use crate::format::format_alert;
use crate::group_format::{format_group, format_repeat, push_mentions};
use crate::hooks::{DeliveryHooks, SendDecision};
use crate::notification_log::{LogKey, LogStatus, NotificationLog};
use crate::prometheus_metrics::{
    DELIVERY_DURATION_SECONDS, GROUPED_TOTAL, LOG_ERRORS_TOTAL, OUTCOME, SINK, SUPPRESSED_TOTAL,
};
use crate::readiness::ReadinessTracker;
use crate::routing::Route;
use crate::sink::{Alert, AlertSink, DeliveryError};
use crate::stats::NotifierStats;
use crate::templates::TemplateSet;

/// State shared by every destination queue.
pub(crate) struct QueueContext {
    pub log: Arc<NotificationLog>,
    pub hooks: DeliveryHooks,
    pub stats: Arc<NotifierStats>,
    pub readiness: Arc<ReadinessTracker>,
    /// Template set per chat key; other chats get the built-in format.
    pub chat_templates: HashMap<String, Arc<TemplateSet>>,
    /// Time the first alert of a group waits for others; zero sends each
    /// alert on its own.
    pub grouping_window: Duration,
    /// Alerts each destination queue buffers before the dispatcher waits.
    pub queue_capacity: usize,
    /// Fires when shutdown starts: a group stops waiting for more alerts.
    pub cancel: CancellationToken,
    /// Fires when the shutdown grace has passed: sends are abandoned.
    pub abort: CancellationToken,
}

/// One state change (or a repeat of a firing) for one destination.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub key: LogKey,
    pub event: Arc<AnomalyEvent>,
    pub route: Arc<Route>,
    /// `None` for a repeat, which the stats do not count as an event.
    pub outcome: Option<Arc<EventOutcome>>,
    pub repeat: bool,
}

/// The sink and chat a queue sends to.
pub(crate) struct DestinationQueue {
    pub sink: Arc<dyn AlertSink>,
    pub chat: Option<ChatTarget>,
    /// `chat` as written in the log, or the sink name for a sink without chats.
    pub chat_key: String,
}

/// Sends the queued alerts in order until the queue closes and is empty.
pub(crate) async fn run_queue(
    destination: DestinationQueue,
    mut queue: mpsc::Receiver<Delivery>,
    context: Arc<QueueContext>,
) {
    while let Some(first) = queue.recv().await {
        let batch = collect_batch(first, &mut queue, &context).await;
        for group in group_by_metric_and_state(batch) {
            deliver_group(&destination, group, &context).await;
        }
    }
}

/// Returns `first` and every alert that arrives within the grouping window
/// after it, or only `first` when grouping is off. Alerts queued while the
/// previous send waited (rate limits, a 429) are taken at once.
async fn collect_batch(first: Delivery, queue: &mut mpsc::Receiver<Delivery>, context: &QueueContext) -> Vec<Delivery> {
    let mut batch = vec![first];
    if context.grouping_window.is_zero() {
        return batch;
    }

    let deadline = tokio::time::Instant::now() + context.grouping_window;
    loop {
        tokio::select! {
            next = queue.recv() => match next {
                Some(delivery) => batch.push(delivery),
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
            () = context.cancel.cancelled() => {
                while let Ok(delivery) = queue.try_recv() {
                    batch.push(delivery);
                }
                break;
            }
        }
    }
    batch
}

/// Splits a batch into groups of one metric and state (firing, resolved,
/// repeat), in order of each group's first alert. The changes of one
/// episode keep their order.
fn group_by_metric_and_state(batch: Vec<Delivery>) -> Vec<Vec<Delivery>> {
    let mut groups: Vec<Vec<Delivery>> = Vec::new();
    for delivery in batch {
        let same = |group: &Vec<Delivery>| {
            let first = &group[0];
            first.event.metric == delivery.event.metric
                && first.event.state == delivery.event.state
                && first.repeat == delivery.repeat
                && Arc::ptr_eq(&first.route, &delivery.route)
        };
        let same_episode =
            |other: &Delivery| other.key.detector == delivery.key.detector && other.event.id == delivery.event.id;
        // Joining an earlier group must not send this change before an
        // earlier change of its episode in a later group.
        let joinable = groups
            .iter()
            .position(same)
            .filter(|&index| !groups[index + 1..].iter().any(|group| group.iter().any(same_episode)));
        match joinable {
            Some(index) => groups[index].push(delivery),
            None => groups.push(vec![delivery]),
        }
    }
    groups
}

/// Reason recorded for a resolution held back from a chat that received no
/// firing or escalation of its episode.
const UNNOTIFIED_REASON: &str =
    "every firing and escalation of this episode was held back in this chat (a silence or quiet hours)";

/// Returns whether `delivery` is a resolution for a chat where every firing
/// and escalation row of its episode is `suppressed`. The chat's queue is in
/// order, groups keep the order of each episode's changes, and statuses are
/// written before the next group, so those rows are final by now. A chat
/// without such rows, or a log that cannot be read, gets the resolution.
async fn resolves_unnotified_episode(log: &Arc<NotificationLog>, delivery: &Delivery) -> bool {
    if delivery.event.state != AnomalyState::Resolved as i32 {
        return false;
    }

    let (reader, detector, anomaly_id) = (
        Arc::clone(log),
        delivery.key.detector.clone(),
        delivery.key.anomaly_id.clone(),
    );
    match tokio::task::spawn_blocking(move || reader.chats_notified(&detector, &anomaly_id)).await {
        Ok(Ok(notified)) => notified.get(&delivery.key.chat) == Some(&false),
        Ok(Err(log_error)) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(chat = %delivery.key.chat, episode_id = %delivery.event.id, error = %log_error,
                "reading which chats were notified of the episode failed; sending its resolution");
            false
        }
        Err(join_error) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(chat = %delivery.key.chat, episode_id = %delivery.event.id, error = %join_error,
                "reading the notification log panicked; sending the resolution");
            false
        }
    }
}

/// Asks the gate about each alert, sends the rest as one message and records
/// the outcomes.
async fn deliver_group(destination: &DestinationQueue, group: Vec<Delivery>, context: &QueueContext) {
    let now = chrono::Utc::now();
    let mut to_send = Vec::with_capacity(group.len());
    for delivery in group {
        let decision = match &destination.chat {
            Some(_) if !delivery.repeat && resolves_unnotified_episode(&context.log, &delivery).await => {
                context.hooks.gate.observe_held_back(&delivery.event);
                SendDecision::Suppress {
                    reason: UNNOTIFIED_REASON.to_string(),
                }
            }
            Some(chat) => context.hooks.gate.decide(&delivery.event, chat, now),
            None => SendDecision::Send,
        };
        match decision {
            SendDecision::Send => to_send.push(delivery),
            SendDecision::Suppress { reason } => {
                info!(chat = %destination.chat_key, episode_id = %delivery.event.id, reason = %reason, "alert suppressed");
                metrics::counter!(SUPPRESSED_TOTAL).increment(1);
                if !delivery.repeat {
                    set_status(&context.log, &delivery.key, LogStatus::Suppressed, Some(reason)).await;
                }
                if let Some(outcome) = &delivery.outcome {
                    outcome.finish(Finished::Suppressed);
                }
            }
        }
    }
    let Some(first) = to_send.first() else {
        return;
    };

    let span = info_span!(
        "deliver_alert",
        detector = %first.key.detector, sequence = first.event.sequence, episode_id = %first.event.id,
        metric = %first.event.metric, state = ?first.event.state(), chat = %destination.chat_key,
        alerts = to_send.len()
    );
    // Continues the trace of the detector's window evaluation, if any.
    if !first.event.traceparent.is_empty() {
        set_remote_parent(&span, &first.event.traceparent);
    }
    let alert = build_alert(destination, &to_send, context).await;
    if to_send.len() > 1 {
        metrics::counter!(GROUPED_TOTAL).increment(to_send.len() as u64);
    }

    let result = timed_delivery(destination.sink.as_ref(), &alert, &context.abort)
        .instrument(span)
        .await;
    let finished = match &result {
        Ok(()) => {
            context.readiness.delivery_finished(destination.sink.name(), None);
            Finished::Sent
        }
        Err(error) => {
            error!(sink = destination.sink.name(), chat = %destination.chat_key, episode_id = %alert.episode_id, error = %error, "alert not delivered");
            context
                .readiness
                .delivery_finished(destination.sink.name(), Some(error.to_string()));
            Finished::Failed
        }
    };

    // An alert abandoned at shutdown stays pending, so the next start sends
    // it. A failed repeat leaves the firing as sent, so it is repeated later.
    let abandoned = finished == Finished::Failed && context.abort.is_cancelled();
    for delivery in to_send {
        let status = if finished == Finished::Sent {
            LogStatus::Sent
        } else {
            LogStatus::Failed
        };
        let failed_repeat = delivery.repeat && status == LogStatus::Failed;
        if !abandoned && !failed_repeat {
            set_status(&context.log, &delivery.key, status, None).await;
        }
        if let Some(outcome) = &delivery.outcome {
            outcome.finish(finished);
        }
    }
}

/// Returns the events of `deliveries` to show, in order: two escalations of
/// one episode of one detector in a batch show as the higher.
fn latest_per_episode(deliveries: &[Delivery]) -> Vec<&AnomalyEvent> {
    let mut events_with_detector: Vec<(&str, &AnomalyEvent)> = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let (detector, event) = (delivery.key.detector.as_str(), delivery.event.as_ref());
        let earlier = events_with_detector.iter_mut().find(|(earlier_detector, earlier)| {
            event.state == AnomalyState::Escalated as i32
                && earlier.state == event.state
                && earlier.id == event.id
                && *earlier_detector == detector
        });
        match earlier {
            Some((_, earlier)) if event.severity > earlier.severity => *earlier = event,
            Some(_) => {}
            None => events_with_detector.push((detector, event)),
        }
    }
    events_with_detector.into_iter().map(|(_, event)| event).collect()
}

/// Formats one alert, or one message for a group, with the route's mentions.
/// A single alert also gets a chart and buttons from the hooks.
async fn build_alert(destination: &DestinationQueue, to_send: &[Delivery], context: &QueueContext) -> Alert {
    let first = &to_send[0];
    let events = latest_per_episode(to_send);
    let single = events.len() == 1;
    let template = context.chat_templates.get(&destination.chat_key);
    let rendered = template.and_then(|template| {
        if single {
            template.render(events[0], first.repeat)
        } else {
            template.render_grouped(&events, first.repeat)
        }
    });
    let mut message = match (rendered, single, first.repeat) {
        (Some(rendered), _, _) => rendered,
        (None, true, false) => format_alert(events[0]),
        (None, true, true) => format_repeat(events[0]),
        (None, false, _) => format_group(&events, first.repeat),
    };
    push_mentions(&mut message, &first.route.mentions);

    let mut alert = Alert::new(
        first.key.detector.clone(),
        first.event.id.clone(),
        first.event.sequence,
        message,
    );
    alert.chat = destination.chat.clone();
    if single && destination.sink.sends_to_chats() {
        alert.chart = context.hooks.charts.chart(events[0]).await;
        alert.buttons = context
            .hooks
            .buttons
            .map(|buttons| buttons(&first.event.id, &first.event.metric));
    }
    alert
}

/// Runs one sink's delivery and records its duration, retries included.
async fn timed_delivery(sink: &dyn AlertSink, alert: &Alert, abort: &CancellationToken) -> Result<(), DeliveryError> {
    info!("delivering alert");
    let started = Instant::now();
    let result = sink.deliver(alert, abort).await;

    let outcome = if result.is_ok() { "sent" } else { "failed" };
    metrics::histogram!(DELIVERY_DURATION_SECONDS, SINK => sink.name(), OUTCOME => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Updates one log row; a failure is logged and counted, because the alert's
/// delivery already happened (or failed) either way.
async fn set_status(log: &Arc<NotificationLog>, key: &LogKey, status: LogStatus, reason: Option<String>) {
    let (writer, row) = (Arc::clone(log), key.clone());
    let now_ms = chrono::Utc::now().timestamp_millis();
    let written = tokio::task::spawn_blocking(move || writer.set_status(&row, status, reason.as_deref(), now_ms)).await;
    let failure = match written {
        Ok(Ok(())) => return,
        Ok(Err(log_error)) => log_error.to_string(),
        Err(join_error) => join_error.to_string(),
    };
    metrics::counter!(crate::prometheus_metrics::LOG_ERRORS_TOTAL).increment(1);
    error!(chat = %key.chat, episode_id = %key.anomaly_id, status = ?status, error = %failure,
        "updating the notification log failed; after a restart the alert may be sent again");
}

#[cfg(test)]
mod tests {
    use seismo_proto::v1::{AnomalyState, Severity};

    use super::*;

    fn delivery(id: &str, severity: Severity) -> Delivery {
        from_detector("http://d:1/", id, AnomalyState::Escalated, severity)
    }

    fn from_detector(detector: &str, id: &str, state: AnomalyState, severity: Severity) -> Delivery {
        let event = AnomalyEvent {
            id: id.to_string(),
            state: state as i32,
            severity: severity as i32,
            ..AnomalyEvent::default()
        };
        Delivery {
            key: LogKey::of(detector, &event, "1"),
            event: Arc::new(event),
            route: Arc::new(Route {
                name: "default".to_string(),
                chats: Vec::new(),
                mentions: Vec::new(),
            }),
            outcome: None,
            repeat: false,
        }
    }

    #[test]
    fn batch_shows_highest_escalation_per_episode() {
        let batch = [
            delivery("ep-1", Severity::Warning),
            delivery("ep-2", Severity::Warning),
            delivery("ep-1", Severity::Critical),
        ];

        let shown: Vec<(&str, i32)> = latest_per_episode(&batch)
            .iter()
            .map(|event| (event.id.as_str(), event.severity))
            .collect();

        assert_eq!(
            shown,
            [("ep-1", Severity::Critical as i32), ("ep-2", Severity::Warning as i32)]
        );
    }

    #[test]
    fn batch_keeps_firings_and_other_detectors() {
        let batch = [
            from_detector("http://a:1/", "ep-1", AnomalyState::Firing, Severity::Warning),
            from_detector("http://b:1/", "ep-1", AnomalyState::Firing, Severity::Critical),
            from_detector("http://a:1/", "ep-2", AnomalyState::Escalated, Severity::Warning),
            from_detector("http://b:1/", "ep-2", AnomalyState::Escalated, Severity::Critical),
        ];

        assert_eq!(latest_per_episode(&batch).len(), 4);
    }

    #[test]
    fn batch_keeps_firings_of_one_episode() {
        let batch = [
            from_detector("http://a:1/", "ep-1", AnomalyState::Firing, Severity::Warning),
            from_detector("http://a:1/", "ep-1", AnomalyState::Firing, Severity::Critical),
        ];

        assert_eq!(latest_per_episode(&batch).len(), 2);
    }

    #[test]
    fn grouping_keeps_each_episode_in_order() {
        let route = Arc::new(Route {
            name: "default".to_string(),
            chats: Vec::new(),
            mentions: Vec::new(),
        });
        let change = |id: &str, state: AnomalyState| Delivery {
            route: Arc::clone(&route),
            ..from_detector("http://a:1/", id, state, Severity::Warning)
        };
        let batch = vec![
            change("x", AnomalyState::Resolved),
            change("y", AnomalyState::Firing),
            change("y", AnomalyState::Resolved),
            change("z", AnomalyState::Resolved),
        ];

        let groups: Vec<Vec<String>> = group_by_metric_and_state(batch)
            .iter()
            .map(|group| group.iter().map(|delivery| delivery.event.id.clone()).collect())
            .collect();

        assert_eq!(groups, [vec!["x", "z"], vec!["y"], vec!["y"]]);
    }
}
