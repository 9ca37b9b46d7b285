//! Delivers each received anomaly event to every sink and records the
//! outcome in the stats, the metrics and the readiness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use seismo_telemetry::set_remote_parent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

use crate::format::format_alert;
use crate::prometheus_metrics::{
    DELIVERY_DURATION_SECONDS, DETECTION_TO_DELIVERY_SECONDS, FAILED_NOT_DELIVERED, OUTCOME, SINK,
};
use crate::readiness::ReadinessTracker;
use crate::sink::{Alert, AlertSink, DeliveryError};
use crate::stats::NotifierStats;
use crate::subscription::Received;

/// Formats each received event and hands it to every sink, until the queue
/// closes. Each alert is delivered inside a `deliver_alert` span that carries
/// the detector, sequence and episode id, so the sinks' logs carry them too.
pub(crate) async fn deliver_all(
    mut alerts: mpsc::Receiver<Received>,
    sinks: &[Arc<dyn AlertSink>],
    stats: &NotifierStats,
    readiness: &ReadinessTracker,
    abort: &CancellationToken,
) {
    while let Some(Received { detector, event }) = alerts.recv().await {
        let span = info_span!(
            "deliver_alert",
            detector = %detector, sequence = event.sequence, episode_id = %event.id,
            metric = %event.metric, state = ?event.state()
        );
        // Continues the trace of the detector's window evaluation, if any.
        if !event.traceparent.is_empty() {
            set_remote_parent(&span, &event.traceparent);
        }
        let alert = Alert {
            detector: detector.to_string(),
            episode_id: event.id.clone(),
            sequence: event.sequence,
            message: format_alert(&event),
        };

        let delivered_everywhere = deliver_one(&alert, sinks, readiness, abort)
            .instrument(span)
            .await;

        if delivered_everywhere {
            stats.record_sent();
            if let Some(seconds) = seconds_since_epoch_ms(event.detected_at_ms) {
                metrics::histogram!(DETECTION_TO_DELIVERY_SECONDS).record(seconds);
            }
        } else {
            stats.record_failed(FAILED_NOT_DELIVERED);
        }
    }
}

/// Delivers `alert` to all sinks at once and returns whether every sink
/// delivered it.
async fn deliver_one(
    alert: &Alert,
    sinks: &[Arc<dyn AlertSink>],
    readiness: &ReadinessTracker,
    abort: &CancellationToken,
) -> bool {
    info!("delivering alert");
    let results = join_all(
        sinks
            .iter()
            .map(|sink| timed_delivery(sink.as_ref(), alert, abort)),
    )
    .await;

    let mut delivered_everywhere = true;
    for (sink, result) in sinks.iter().zip(results) {
        match result {
            Ok(()) => readiness.delivery_finished(sink.name(), None),
            Err(error) => {
                delivered_everywhere = false;
                error!(sink = sink.name(), error = %error, "alert not delivered");
                readiness.delivery_finished(sink.name(), Some(error.to_string()));
            }
        }
    }
    delivered_everywhere
}

/// Runs one sink's delivery and records its duration, retries included.
async fn timed_delivery(
    sink: &dyn AlertSink,
    alert: &Alert,
    abort: &CancellationToken,
) -> Result<(), DeliveryError> {
    let started = Instant::now();
    let result = sink.deliver(alert, abort).await;

    let outcome = if result.is_ok() { "sent" } else { "failed" };
    metrics::histogram!(DELIVERY_DURATION_SECONDS, SINK => sink.name(), OUTCOME => outcome)
        .record(started.elapsed().as_secs_f64());
    result
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
