//! Follows one detector's anomaly stream: reconnects with capped exponential
//! backoff and resumes after the last sequence received.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, StreamAnomaliesRequest};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Endpoint;
use tracing::{debug, error, info, warn};

use crate::backoff::ExponentialBackoff;
use crate::config::ConfigError;
use crate::dedup::RecentEvents;
use crate::error_chain::error_chain;
use crate::notification_log::StreamCursor;
use crate::prometheus_metrics::{
    CURSOR_EPOCH_CHANGED, CURSOR_OUT_OF_RANGE, CURSOR_RESETS_TOTAL, FAILED_DROPPED_AT_SHUTDOWN, REASON, state_label,
};
use crate::readiness::ReadinessTracker;
use crate::stats::NotifierStats;

/// State changes remembered per detector to skip repeats; about 100 bytes each.
const RECENT_EVENTS_CAPACITY: usize = 10_000;

/// HTTP/2 ping interval on an idle stream. Anomaly streams are quiet for long
/// stretches, and the pings detect a detector that vanished without closing
/// the connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Time a ping may go unanswered before the connection counts as lost.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// One event from one detector, on its way to the sinks.
#[derive(Debug)]
pub(crate) struct Received {
    pub detector: Arc<str>,
    pub event: AnomalyEvent,
}

/// Reason a connection to a detector ended.
enum StreamEnd {
    ConnectFailed(String),
    SubscribeFailed(tonic::Status),
    Closed,
    Failed(tonic::Status),
    Cancelled,
    /// The pipeline stopped taking alerts.
    QueueClosed,
}

impl StreamEnd {
    /// Returns the reason for `/readyz`, such as `connecting failed: …`.
    fn describe(&self) -> String {
        match self {
            StreamEnd::ConnectFailed(error) => format!("connecting failed: {error}"),
            StreamEnd::SubscribeFailed(status) => {
                format!("subscribing failed: {:?}: {}", status.code(), status.message())
            }
            StreamEnd::Closed => "the detector closed the stream".to_string(),
            StreamEnd::Failed(status) => format!("the stream failed: {:?}: {}", status.code(), status.message()),
            StreamEnd::Cancelled | StreamEnd::QueueClosed => "stopped".to_string(),
        }
    }
}

/// The subscription to one detector.
pub(crate) struct Subscription {
    detector: Arc<str>,
    endpoint: Endpoint,
    metrics: Vec<String>,
    reconnect: ExponentialBackoff,
    /// Last sequence received, starting from the cursor stored in the
    /// notification log; 0 requests live events only.
    cursor: u64,
    /// `stream_epoch` of the last event received; 0 when unknown.
    epoch: u64,
    /// Events received on the current connection.
    stream_events: u64,
    recent: RecentEvents,
}

impl Subscription {
    /// Validates `address` and prepares the subscription. An address without
    /// a scheme gets `http://`.
    pub(crate) fn new(
        address: &str,
        metrics: Vec<String>,
        reconnect: ExponentialBackoff,
        connect_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let endpoint = detector_endpoint(address, connect_timeout)?;
        Ok(Self {
            detector: Arc::from(endpoint.uri().to_string()),
            endpoint,
            metrics,
            reconnect,
            cursor: 0,
            epoch: 0,
            stream_events: 0,
            recent: RecentEvents::new(RECENT_EVENTS_CAPACITY),
        })
    }

    /// Resumes after `cursor`, the last change a previous run recorded.
    pub(crate) fn resume_after(&mut self, cursor: StreamCursor) {
        self.cursor = cursor.after_sequence;
        self.epoch = cursor.stream_epoch;
    }

    /// Address of the detector, as used in logs and readiness reasons.
    pub(crate) fn detector(&self) -> &Arc<str> {
        &self.detector
    }

    /// Follows the detector until `cancel` fires or `queue` closes, and
    /// reports to `readiness` when its stream opens and ends.
    pub(crate) async fn run(
        mut self,
        queue: mpsc::Sender<Received>,
        stats: Arc<NotifierStats>,
        readiness: Arc<ReadinessTracker>,
        cancel: CancellationToken,
    ) {
        let mut failures: u32 = 0;

        loop {
            let opened_at = Instant::now();
            let end = self.follow_once(&queue, &stats, &readiness, &cancel).await;
            readiness.detector_disconnected(&self.detector, end.describe());
            if matches!(end, StreamEnd::Cancelled | StreamEnd::QueueClosed) {
                break;
            }
            if let StreamEnd::SubscribeFailed(status) = &end
                && status.code() == Code::OutOfRange
                && self.cursor > 0
            {
                self.forget_cursor(status);
            }

            // A stream that carried events, or stayed up longer than the
            // longest backoff, was healthy: the backoff starts over.
            let healthy = self.stream_events > 0 || opened_at.elapsed() >= self.reconnect.max;
            failures = if healthy { 0 } else { failures.saturating_add(1) };
            let delay = self.reconnect.delay(failures.saturating_sub(1));
            self.log_stream_end(&end, failures, delay);

            stats.record_reconnect();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => break,
            }
        }

        info!(detector = %self.detector, after_sequence = self.cursor, "stopped following detector");
    }

    /// Moves the cursor after the detector rejected it, because it no longer
    /// buffers the changes after it or never sent it. Retrying the same cursor
    /// would fail forever. The new cursor is right before the oldest change
    /// the detector still buffers when its message names it, else 0 (live
    /// changes only). The notification log skips what was handled already.
    // NOTE: the oldest available sequence is read from the text of the
    // status message, because the detector API returns it in no other form.
    // The changes between the two cursors are lost either way.
    fn forget_cursor(&mut self, status: &tonic::Status) {
        metrics::counter!(CURSOR_RESETS_TOTAL, REASON => CURSOR_OUT_OF_RANGE).increment(1);
        let oldest_available = oldest_available_sequence(status.message());
        let resume_after = oldest_available.map_or(0, |oldest| oldest.saturating_sub(1));
        error!(
            detector = %self.detector, after_sequence = self.cursor, stream_epoch = self.epoch,
            oldest_available, resume_after,
            error = %status.message(),
            "detector rejected the resume cursor; alerts between the two cursors are lost"
        );
        self.cursor = resume_after;
    }

    /// Logs why the connection ended, with the delay before the reconnect.
    fn log_stream_end(&self, end: &StreamEnd, consecutive_failures: u32, delay: Duration) {
        let retry_in_ms = delay.as_millis() as u64;
        match end {
            StreamEnd::ConnectFailed(error) => warn!(
                detector = %self.detector, consecutive_failures, retry_in_ms, error = %error,
                "connecting to detector failed; retrying"
            ),
            StreamEnd::SubscribeFailed(status) => warn!(
                detector = %self.detector, consecutive_failures, retry_in_ms,
                code = ?status.code(), error = %status.message(),
                "subscribing to detector anomalies failed; retrying"
            ),
            StreamEnd::Closed => info!(
                detector = %self.detector, after_sequence = self.cursor, events = self.stream_events,
                retry_in_ms, "detector closed the anomaly stream; reconnecting"
            ),
            StreamEnd::Failed(status) => warn!(
                detector = %self.detector, after_sequence = self.cursor, events = self.stream_events,
                retry_in_ms, code = ?status.code(), error = %status.message(),
                "detector anomaly stream failed; reconnecting"
            ),
            StreamEnd::Cancelled | StreamEnd::QueueClosed => {}
        }
    }

    /// Connects, subscribes after the cursor and forwards events until the
    /// stream ends.
    async fn follow_once(
        &mut self,
        queue: &mpsc::Sender<Received>,
        stats: &NotifierStats,
        readiness: &ReadinessTracker,
        cancel: &CancellationToken,
    ) -> StreamEnd {
        self.stream_events = 0;
        let connected = tokio::select! {
            connected = self.endpoint.connect() => connected,
            () = cancel.cancelled() => return StreamEnd::Cancelled,
        };
        let channel = match connected {
            Ok(channel) => channel,
            Err(error) => return StreamEnd::ConnectFailed(error_chain(&error)),
        };

        let mut client = DetectorClient::new(channel);
        let request = StreamAnomaliesRequest {
            after_sequence: self.cursor,
            metrics: self.metrics.clone(),
            stream_epoch: self.epoch,
        };
        let subscribed = tokio::select! {
            subscribed = client.stream_anomalies(request) => subscribed,
            () = cancel.cancelled() => return StreamEnd::Cancelled,
        };
        let mut stream = match subscribed {
            Ok(response) => response.into_inner(),
            Err(status) => return StreamEnd::SubscribeFailed(status),
        };
        info!(detector = %self.detector, after_sequence = self.cursor, stream_epoch = self.epoch,
            "subscribed to detector anomalies");
        readiness.detector_connected(&self.detector);

        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                () = cancel.cancelled() => return StreamEnd::Cancelled,
            };
            let event = match message {
                Ok(Some(event)) => event,
                Ok(None) => return StreamEnd::Closed,
                Err(status) => return StreamEnd::Failed(status),
            };

            if let Some(end) = self.accept(event, queue, stats, cancel).await {
                return end;
            }
        }
    }

    /// Moves the cursor, skips a repeated state change and queues the event.
    /// Returns `Some` when the subscription has to stop.
    async fn accept(
        &mut self,
        event: AnomalyEvent,
        queue: &mpsc::Sender<Received>,
        stats: &NotifierStats,
        cancel: &CancellationToken,
    ) -> Option<StreamEnd> {
        stats.record_received(state_label(event.state));
        self.stream_events += 1;
        if event.gap_before {
            // The cursor came from an earlier detector process, whose changes
            // after it were never delivered and are gone with it.
            metrics::counter!(CURSOR_RESETS_TOTAL, REASON => CURSOR_EPOCH_CHANGED).increment(1);
            error!(detector = %self.detector, after_sequence = self.cursor, stream_epoch = self.epoch,
                sequence = event.sequence, new_stream_epoch = event.stream_epoch,
                "detector restarted since the cursor; alerts between the two cursors may be lost");
        } else if self.cursor > 0 && event.sequence <= self.cursor {
            warn!(detector = %self.detector, sequence = event.sequence, after_sequence = self.cursor,
                "detector sequence went back; assuming the detector restarted");
        }
        self.cursor = event.sequence;
        self.epoch = event.stream_epoch;

        if !self.recent.insert(&event) {
            stats.record_duplicate();
            debug!(detector = %self.detector, sequence = event.sequence, episode_id = %event.id,
                state = event.state, "skipping a state change received before");
            return None;
        }

        let received = Received {
            detector: Arc::clone(&self.detector),
            event,
        };
        tokio::select! {
            sent = queue.send(received) => sent.err().map(|_| StreamEnd::QueueClosed),
            () = cancel.cancelled() => {
                stats.record_failed(FAILED_DROPPED_AT_SHUTDOWN);
                warn!(detector = %self.detector, sequence = self.cursor,
                    "alert dropped at shutdown before delivery");
                Some(StreamEnd::Cancelled)
            }
        }
    }
}

/// Reads `N` from "... the oldest available sequence is N ..." in a
/// detector's `OUT_OF_RANGE` message.
fn oldest_available_sequence(message: &str) -> Option<u64> {
    const MARKER: &str = "oldest available sequence is ";
    let start = message.find(MARKER)? + MARKER.len();
    let digits: String = message[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|sequence| *sequence > 0)
}

/// Builds the gRPC endpoint for a detector address.
fn detector_endpoint(address: &str, connect_timeout: Duration) -> Result<Endpoint, ConfigError> {
    let address = address.trim();
    let invalid = |reason: &str| ConfigError::InvalidDetectorAddress {
        value: address.to_string(),
        reason: reason.to_string(),
    };

    if address.is_empty() {
        return Err(invalid("the address is empty"));
    }
    let url = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    if !url.starts_with("http://") {
        return Err(invalid(
            "only plain-text gRPC is supported; use an http:// address such as http://127.0.0.1:50051",
        ));
    }

    let endpoint = Endpoint::from_shared(url)
        .map_err(|error| invalid(&format!("{error}; expected host:port such as 127.0.0.1:50051")))?;
    Ok(endpoint
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[test]
    fn oldest_available_is_read_from_detector_message() {
        let message = "changes after sequence 3 are no longer buffered; the oldest available sequence is 57. Resume with after_sequence = 56 to skip the gap, or 0 to follow live changes only";

        assert_eq!(oldest_available_sequence(message), Some(57));
        assert_eq!(
            oldest_available_sequence("after_sequence 9 is ahead of the latest sequence 4"),
            None
        );
    }

    #[test]
    fn endpoint_adds_http_scheme() {
        let endpoint = detector_endpoint(" 127.0.0.1:50051 ", TIMEOUT).unwrap();
        assert_eq!(endpoint.uri().to_string(), "http://127.0.0.1:50051/");
    }

    #[test]
    fn endpoint_keeps_explicit_http() {
        let endpoint = detector_endpoint("http://detector:7000", TIMEOUT).unwrap();
        assert_eq!(endpoint.uri().to_string(), "http://detector:7000/");
    }

    #[test]
    fn endpoint_rejects_tls_and_garbage() {
        for address in ["https://detector:443", "", "http://bad host:1"] {
            let error = detector_endpoint(address, TIMEOUT).unwrap_err();
            assert!(
                matches!(&error, ConfigError::InvalidDetectorAddress { value, .. } if value == address.trim()),
                "{address}: {error}"
            );
        }
    }
}
