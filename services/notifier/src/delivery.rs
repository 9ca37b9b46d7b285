//! Routes each received anomaly event to its chats, writes it to the
//! notification log and hands it to one queue per sink and chat, so that a
//! slow or rate-limited chat does not hold back the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use seismo_proto::v1::{AnomalyEvent, AnomalyState};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::chat_queue::{Delivery, DestinationQueue, QueueContext, run_queue};
use crate::config::{ChatTarget, parse_chat_targets};
use crate::notification_log::{LogKey, NotificationLog, PendingEntry};
use crate::prometheus_metrics::{
    DETECTION_TO_DELIVERY_SECONDS, FAILED_NOT_DELIVERED, LOG_ERRORS_TOTAL, REPEATS_TOTAL, state_label,
};
use crate::routing::{Route, Routing};
use crate::sink::AlertSink;
use crate::stats::NotifierStats;
use crate::subscription::Received;

/// How often the log is checked for firings due a repeat notification.
const REPEAT_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// How often finished rows older than the retention are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// The outcome of one state change across all its chats: counted in the
/// stats once the last chat has finished.
#[derive(Debug)]
pub(crate) struct EventOutcome {
    remaining: AtomicUsize,
    failed: AtomicBool,
    sent: AtomicBool,
    detected_at_ms: i64,
    /// `state` label of the change, see [`state_label`].
    state: &'static str,
    stats: Arc<NotifierStats>,
}

/// Outcome of one chat's delivery of a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    Sent,
    Failed,
    Suppressed,
}

impl EventOutcome {
    fn new(destinations: usize, event: &AnomalyEvent, stats: Arc<NotifierStats>) -> Arc<Self> {
        Arc::new(Self {
            remaining: AtomicUsize::new(destinations),
            failed: AtomicBool::new(false),
            sent: AtomicBool::new(false),
            detected_at_ms: event.detected_at_ms,
            state: state_label(event.state),
            stats,
        })
    }

    /// Records one chat's result; the last one counts the event as failed
    /// (some chat failed), sent (some chat received it) or suppressed.
    pub(crate) fn finish(&self, finished: Finished) {
        match finished {
            Finished::Sent => self.sent.store(true, Ordering::Relaxed),
            Finished::Failed => self.failed.store(true, Ordering::Relaxed),
            Finished::Suppressed => {}
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }

        if self.failed.load(Ordering::Relaxed) {
            self.stats.record_failed(FAILED_NOT_DELIVERED);
        } else if self.sent.load(Ordering::Relaxed) {
            self.stats.record_sent(self.state);
            if let Some(seconds) = seconds_since_epoch_ms(self.detected_at_ms) {
                metrics::histogram!(DETECTION_TO_DELIVERY_SECONDS).record(seconds);
            }
        } else {
            self.stats.record_suppressed();
        }
    }
}

/// Identity of a destination queue: the sink's index and the chat key.
type DestinationKey = (usize, String);

/// The destination queues, started on first use.
struct Destinations<'a> {
    sinks: &'a [Arc<dyn AlertSink>],
    context: Arc<QueueContext>,
    queues: HashMap<DestinationKey, mpsc::Sender<Delivery>>,
    tasks: JoinSet<()>,
}

impl<'a> Destinations<'a> {
    /// Returns the `(sink index, chat, chat key)` of every destination of
    /// `route`: each chat for a sink that sends to chats, once for the others.
    fn of_route(&self, route: &Route) -> Vec<(usize, Option<ChatTarget>, String)> {
        let mut destinations = Vec::new();
        for (index, sink) in self.sinks.iter().enumerate() {
            if sink.sends_to_chats() {
                for chat in &route.chats {
                    destinations.push((index, Some(chat.clone()), chat.to_string()));
                }
            } else {
                destinations.push((index, None, sink.name().to_string()));
            }
        }
        destinations
    }

    /// Finds the destination of a log row's chat key: a sink without chats
    /// by its name, else the first sink that sends to chats.
    fn of_chat_key(&self, chat_key: &str) -> Option<(usize, Option<ChatTarget>)> {
        if let Some(index) = self
            .sinks
            .iter()
            .position(|sink| !sink.sends_to_chats() && sink.name() == chat_key)
        {
            return Some((index, None));
        }
        let chat = parse_chat_targets(chat_key).ok()?.into_iter().next()?;
        let index = self.sinks.iter().position(|sink| sink.sends_to_chats())?;
        Some((index, Some(chat)))
    }

    /// Queues `delivery`, starting the destination's queue first if needed.
    /// Waits while the queue is full, which holds back the detector streams.
    async fn send(&mut self, sink_index: usize, chat: Option<ChatTarget>, delivery: Delivery) {
        let key = (sink_index, delivery.key.chat.clone());
        let queue = match self.queues.get(&key) {
            Some(queue) => queue.clone(),
            None => {
                let (sender, receiver) = mpsc::channel(self.context.queue_capacity);
                let destination = DestinationQueue {
                    sink: Arc::clone(&self.sinks[sink_index]),
                    chat,
                    chat_key: delivery.key.chat.clone(),
                };
                self.tasks
                    .spawn(run_queue(destination, receiver, Arc::clone(&self.context)));
                self.queues.insert(key, sender.clone());
                sender
            }
        };
        if let Err(unsent) = queue.send(delivery).await {
            // A queue task ends only after its sender is dropped, or by a panic.
            error!(chat = %unsent.0.key.chat, "a chat queue stopped unexpectedly; the alert is not delivered");
            if let Some(outcome) = &unsent.0.outcome {
                outcome.finish(Finished::Failed);
            }
        }
    }

    /// Closes every queue and waits until each has delivered what it holds.
    async fn close(mut self) {
        self.queues.clear();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                error!(error = %error, "a chat queue task panicked");
            }
        }
    }
}

/// Sends the log's pending rows again, then routes each received event until
/// `alerts` closes, and notifies firing episodes again every
/// `repeat_interval` while they have not resolved. Returns once every queue
/// has finished.
pub(crate) async fn deliver_all(
    mut alerts: mpsc::Receiver<Received>,
    sinks: &[Arc<dyn AlertSink>],
    routing: &Routing,
    repeat_interval: Option<Duration>,
    log_retention: Duration,
    context: Arc<QueueContext>,
) {
    let log = Arc::clone(&context.log);
    let stats = Arc::clone(&context.stats);
    let mut destinations = Destinations {
        sinks,
        context,
        queues: HashMap::new(),
        tasks: JoinSet::new(),
    };

    resend_pending(&mut destinations, routing, &log, &stats).await;

    // The first tick fires at once, so the log is pruned on start.
    let mut prune_check = tokio::time::interval(PRUNE_INTERVAL);
    let mut repeat_check = tokio::time::interval(REPEAT_CHECK_INTERVAL.min(repeat_interval.unwrap_or(Duration::MAX)));
    loop {
        tokio::select! {
            received = alerts.recv() => match received {
                Some(received) => dispatch(received, routing, &mut destinations, &log, &stats).await,
                None => break,
            },
            _ = prune_check.tick() => prune(&log, log_retention).await,
            _ = repeat_check.tick(), if repeat_interval.is_some() => {
                if let Some(interval) = repeat_interval {
                    queue_repeats(interval, &mut destinations, routing, &log).await;
                }
            }
        }
    }

    destinations.close().await;
}

/// Writes the event's rows and queues it to every chat of its route whose
/// row is new. An event whose rows all exist was handled before a restart
/// (or is queued already) and counts as a duplicate.
async fn dispatch(
    received: Received,
    routing: &Routing,
    destinations: &mut Destinations<'_>,
    log: &Arc<NotificationLog>,
    stats: &Arc<NotifierStats>,
) {
    let Received { detector, event } = received;
    let routes = routing.routes_of(&event);
    // A chat on several of the routes gets the event once, with the mentions
    // of the first.
    let mut targets: Vec<Target> = Vec::new();
    for route in &routes {
        for (sink_index, chat, chat_key) in destinations.of_route(route) {
            if !targets.iter().any(|(_, _, known, _)| *known == chat_key) {
                targets.push((sink_index, chat, chat_key, Arc::clone(route)));
            }
        }
    }
    if targets.is_empty() {
        let names: Vec<&str> = routes.iter().map(|route| route.name.as_str()).collect();
        warn!(detector = %detector, episode_id = %event.id, routes = %names.join(","), "the alert's routes have no chat; nothing is sent");
        stats.record_suppressed();
        return;
    }

    if event.state == AnomalyState::Resolved as i32 {
        add_notified_chats(&mut targets, log, &detector, &event, routing, destinations).await;
    }

    let chat_keys: Vec<String> = targets.iter().map(|(_, _, key, _)| key.clone()).collect();
    let event = Arc::new(event);
    let inserted = record_received(log, &detector, &event, chat_keys).await;
    let new_targets: Vec<_> = targets
        .into_iter()
        .zip(inserted)
        .filter_map(|(target, new)| new.then_some(target))
        .collect();
    if new_targets.is_empty() {
        info!(detector = %detector, sequence = event.sequence, episode_id = %event.id,
            "skipping a state change the notification log has already");
        stats.record_duplicate();
        return;
    }

    let outcome = EventOutcome::new(new_targets.len(), &event, Arc::clone(stats));
    for (sink_index, chat, chat_key, route) in new_targets {
        let delivery = Delivery {
            key: LogKey::of(&detector, &event, &chat_key),
            event: Arc::clone(&event),
            route,
            outcome: Some(Arc::clone(&outcome)),
            repeat: false,
        };
        destinations.send(sink_index, chat, delivery).await;
    }
}

/// One chat an event goes to: the sink's index, the chat (`None` for a sink
/// without chats), the chat key of its log rows, and the route whose
/// mentions the alert carries.
type Target = (usize, Option<ChatTarget>, String, Arc<Route>);

/// Adds to a resolution's `targets` every chat the log records as notified
/// of its episode. So a chat hears the end of an episode it heard of even
/// when the routes changed since, through another routing file or a
/// detector restarted with other settings. Such a chat gets no mentions.
async fn add_notified_chats(
    targets: &mut Vec<Target>,
    log: &Arc<NotificationLog>,
    detector: &str,
    event: &AnomalyEvent,
    routing: &Routing,
    destinations: &Destinations<'_>,
) {
    let (reader, detector_name, anomaly_id) = (Arc::clone(log), detector.to_string(), event.id.clone());
    let notified = match tokio::task::spawn_blocking(move || reader.chats_notified(&detector_name, &anomaly_id)).await {
        Ok(Ok(notified)) => notified,
        Ok(Err(log_error)) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(detector = %detector, episode_id = %event.id, error = %log_error,
                "reading which chats were notified of the episode failed; sending its resolution to its routes only");
            return;
        }
        Err(join_error) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(detector = %detector, episode_id = %event.id, error = %join_error, "reading the notification log panicked");
            return;
        }
    };

    let mut chat_keys: Vec<&String> = notified
        .iter()
        .filter(|(chat_key, notified)| **notified && !targets.iter().any(|(_, _, known, _)| known == *chat_key))
        .map(|(chat_key, _)| chat_key)
        .collect();
    chat_keys.sort();
    for chat_key in chat_keys {
        if let Some((sink_index, chat)) = destinations.of_chat_key(chat_key) {
            let route = routing.route_for_chat(event, chat_key);
            targets.push((sink_index, chat, chat_key.clone(), route));
        }
    }
}

/// Writes the pending rows and the cursor. When the log fails, the alert is
/// still sent everywhere, because an alert matters more than its record.
async fn record_received(
    log: &Arc<NotificationLog>,
    detector: &str,
    event: &Arc<AnomalyEvent>,
    chat_keys: Vec<String>,
) -> Vec<bool> {
    let chats = chat_keys.len();
    let (log, detector_name, event_copy) = (Arc::clone(log), detector.to_string(), Arc::clone(event));
    let now_ms = chrono::Utc::now().timestamp_millis();
    let written =
        tokio::task::spawn_blocking(move || log.record_received(&detector_name, &event_copy, &chat_keys, now_ms)).await;
    match written {
        Ok(Ok(inserted)) => inserted,
        Ok(Err(log_error)) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(detector = %detector, episode_id = %event.id, error = %log_error,
                "writing the notification log failed; sending the alert without a record");
            vec![true; chats]
        }
        Err(join_error) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(detector = %detector, episode_id = %event.id, error = %join_error,
                "writing the notification log panicked; sending the alert without a record");
            vec![true; chats]
        }
    }
}

/// Queues every row left `pending` by the last run, once. Rows of a chat no
/// sink serves any more are left pending.
async fn resend_pending(
    destinations: &mut Destinations<'_>,
    routing: &Routing,
    log: &Arc<NotificationLog>,
    stats: &Arc<NotifierStats>,
) {
    let reader = Arc::clone(log);
    let pending = match tokio::task::spawn_blocking(move || reader.pending()).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(log_error)) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(error = %log_error, "reading the pending alerts of the notification log failed; they are not sent again");
            return;
        }
        Err(join_error) => {
            error!(error = %join_error, "reading the notification log panicked");
            return;
        }
    };
    if pending.is_empty() {
        return;
    }
    info!(rows = pending.len(), path = %log.path().display(), "sending the alerts left pending by the last run");

    // One outcome per state change, shared by its chats.
    let mut by_event: Vec<(Arc<AnomalyEvent>, Vec<PendingEntry>)> = Vec::new();
    for entry in pending {
        let same_event = by_event.last().is_some_and(|(_, entries)| {
            let first = &entries[0].key;
            first.detector == entry.key.detector
                && first.anomaly_id == entry.key.anomaly_id
                && first.state == entry.key.state
                && first.severity == entry.key.severity
        });
        if same_event {
            by_event.last_mut().expect("checked above").1.push(entry);
        } else {
            by_event.push((Arc::new(entry.event.clone()), vec![entry]));
        }
    }

    for (event, entries) in by_event {
        let routable: Vec<_> = entries
            .into_iter()
            .filter_map(|entry| {
                let destination = destinations.of_chat_key(&entry.key.chat);
                if destination.is_none() {
                    warn!(chat = %entry.key.chat, episode_id = %entry.key.anomaly_id,
                        "a pending alert's chat is no longer configured; leaving it pending");
                }
                destination.map(|destination| (entry, destination))
            })
            .collect();
        if routable.is_empty() {
            continue;
        }
        stats.record_received(state_label(event.state));
        let outcome = EventOutcome::new(routable.len(), &event, Arc::clone(stats));
        for (entry, (sink_index, chat)) in routable {
            let delivery = Delivery {
                // The route as configured now, for its mentions.
                route: routing.route_for_chat(&event, &entry.key.chat),
                key: entry.key,
                event: Arc::clone(&event),
                outcome: Some(Arc::clone(&outcome)),
                repeat: false,
            };
            destinations.send(sink_index, chat, delivery).await;
        }
    }
}

/// Queues a repeat of every firing or escalation sent at least `interval`
/// ago whose episode has not resolved, the latest of each chat.
async fn queue_repeats(
    interval: Duration,
    destinations: &mut Destinations<'_>,
    routing: &Routing,
    log: &Arc<NotificationLog>,
) {
    let notified_before_ms = chrono::Utc::now().timestamp_millis() - interval.as_millis() as i64;
    let reader = Arc::clone(log);
    let due = tokio::task::spawn_blocking(move || reader.firing_unresolved(notified_before_ms)).await;
    let due = match due {
        Ok(Ok(due)) => due,
        Ok(Err(log_error)) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(error = %log_error, "reading the firing alerts of the notification log failed; no repeat is sent");
            return;
        }
        Err(join_error) => {
            error!(error = %join_error, "reading the notification log panicked");
            return;
        }
    };

    let now_ms = chrono::Utc::now().timestamp_millis();
    for entry in due {
        let Some((sink_index, chat)) = destinations.of_chat_key(&entry.key.chat) else {
            continue;
        };
        let (writer, key) = (Arc::clone(log), entry.key.clone());
        let marked = tokio::task::spawn_blocking(move || writer.mark_repeat_queued(&key, now_ms)).await;
        if !matches!(marked, Ok(Ok(()))) {
            // Without the mark the next check would queue the repeat again.
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(chat = %entry.key.chat, episode_id = %entry.key.anomaly_id,
                "recording a queued repeat in the notification log failed; skipping the repeat");
            continue;
        }
        metrics::counter!(REPEATS_TOTAL).increment(1);
        info!(chat = %entry.key.chat, episode_id = %entry.key.anomaly_id, last_notified_at_ms = entry.last_notified_at_ms,
            "episode still firing; notifying again");
        let delivery = Delivery {
            route: routing.route_for_chat(&entry.event, &entry.key.chat),
            key: entry.key,
            event: Arc::new(entry.event),
            outcome: None,
            repeat: true,
        };
        destinations.send(sink_index, chat, delivery).await;
    }
}

/// Deletes the log's finished rows last updated more than `retention` ago.
async fn prune(log: &Arc<NotificationLog>, retention: Duration) {
    let updated_before_ms = chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64;
    let writer = Arc::clone(log);
    match tokio::task::spawn_blocking(move || writer.prune(updated_before_ms)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(deleted)) => info!(
            deleted,
            retention_s = retention.as_secs(),
            "deleted old rows of the notification log"
        ),
        Ok(Err(log_error)) => {
            metrics::counter!(LOG_ERRORS_TOTAL).increment(1);
            error!(error = %log_error, "deleting old rows of the notification log failed; retrying in an hour");
        }
        Err(join_error) => error!(error = %join_error, "deleting old rows of the notification log panicked"),
    }
}

/// Returns the seconds from `epoch_ms` (Unix milliseconds) to now: 0 when
/// `epoch_ms` lies in the future because the clocks of the hosts differ, and
/// `None` when it is unset (0 or negative).
fn seconds_since_epoch_ms(epoch_ms: i64) -> Option<f64> {
    if epoch_ms <= 0 {
        return None;
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let elapsed_ms = now_ms.saturating_sub(epoch_ms).max(0);
    Some(Duration::from_millis(elapsed_ms as u64).as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_since_past_instant() {
        let ten_seconds_ago = chrono::Utc::now().timestamp_millis() - 10_000;

        let elapsed = seconds_since_epoch_ms(ten_seconds_ago).unwrap();

        assert!((10.0..11.0).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn seconds_since_future_instant_is_zero() {
        let in_a_minute = chrono::Utc::now().timestamp_millis() + 60_000;

        assert_eq!(seconds_since_epoch_ms(in_a_minute), Some(0.0));
    }

    #[test]
    fn seconds_since_unset_instant_is_none() {
        assert_eq!(seconds_since_epoch_ms(0), None);
    }
}
