//! Names, labels and descriptions of the metrics the notifier records through
//! the `metrics` facade. The admin server of `seismo-telemetry` exports them
//! in the Prometheus format.

use seismo_proto::v1::AnomalyState;

/// Counter of anomaly events received from all detectors, labelled by
/// [`STATE`].
pub(crate) const RECEIVED_TOTAL: &str = "seismo_notifier_received_total";
/// Counter of alerts that every sink delivered, labelled by [`STATE`].
pub(crate) const SENT_TOTAL: &str = "seismo_notifier_sent_total";
/// Counter of alerts that did not reach every sink, labelled by [`REASON`].
pub(crate) const FAILED_TOTAL: &str = "seismo_notifier_failed_total";
/// Counter of repeated Telegram requests, labelled by [`REASON`].
pub(crate) const RETRIES_TOTAL: &str = "seismo_notifier_retries_total";
/// Counter of Telegram messages sent again as plain text after Telegram could
/// not parse their HTML.
pub(crate) const PLAIN_TEXT_FALLBACKS_TOTAL: &str = "seismo_notifier_plain_text_fallbacks_total";
/// Counter of repeated state changes that were skipped.
pub(crate) const DUPLICATES_TOTAL: &str = "seismo_notifier_duplicates_total";
/// Counter of reconnects to detectors.
pub(crate) const RECONNECTS_TOTAL: &str = "seismo_notifier_reconnects_total";
/// Histogram of the time one sink took to deliver one alert, retries
/// included, labelled by [`SINK`] and [`OUTCOME`].
pub(crate) const DELIVERY_DURATION_SECONDS: &str = "seismo_notifier_delivery_duration_seconds";
/// Histogram of the time from detection to the end of delivery.
pub(crate) const DETECTION_TO_DELIVERY_SECONDS: &str = "seismo_notifier_detection_to_delivery_seconds";
/// Gauge of detectors whose anomaly stream is open.
pub(crate) const CONNECTED_DETECTORS: &str = "seismo_notifier_connected_detectors";

/// Counter of alerts a send gate held back (silences, quiet hours), per chat.
pub(crate) const SUPPRESSED_TOTAL: &str = "seismo_notifier_suppressed_total";
/// Counter of alerts sent as part of a grouped message.
pub(crate) const GROUPED_TOTAL: &str = "seismo_notifier_grouped_alerts_total";
/// Counter of repeat notifications queued for episodes still firing.
pub(crate) const REPEATS_TOTAL: &str = "seismo_notifier_repeats_total";
/// Counter of failed reads and writes of the notification log.
pub(crate) const LOG_ERRORS_TOTAL: &str = "seismo_notifier_log_errors_total";
/// Counter of resume cursors that lost changes, labelled by [`REASON`]:
/// rejected as too old, or from a detector process that has since restarted.
pub(crate) const CURSOR_RESETS_TOTAL: &str = "seismo_notifier_cursor_resets_total";

/// Label with the cause of a failure or a retry.
pub(crate) const REASON: &str = "reason";
/// Label with the sink name, such as `telegram`.
pub(crate) const SINK: &str = "sink";
/// Label with `sent` or `failed`.
pub(crate) const OUTCOME: &str = "outcome";
/// Label with the anomaly state change: `firing`, `escalated` or
/// `resolved` (`unspecified` for a detector that sent none).
pub(crate) const STATE: &str = "state";

/// `state` values that exist from the start.
const STATES: [&str; 3] = ["firing", "escalated", "resolved"];

/// Returns the [`STATE`] label value of an `AnomalyEvent.state`.
pub(crate) fn state_label(state: i32) -> &'static str {
    match AnomalyState::try_from(state) {
        Ok(AnomalyState::Firing) => "firing",
        Ok(AnomalyState::Escalated) => "escalated",
        Ok(AnomalyState::Resolved) => "resolved",
        Ok(AnomalyState::Unspecified) | Err(_) => "unspecified",
    }
}

/// `reason` of an alert that a sink did not deliver.
pub(crate) const FAILED_NOT_DELIVERED: &str = "not_delivered";
/// `reason` of an alert dropped at shutdown before delivery started.
pub(crate) const FAILED_DROPPED_AT_SHUTDOWN: &str = "dropped_at_shutdown";
/// `reason` of a cursor the detector rejected with `OUT_OF_RANGE`.
pub(crate) const CURSOR_OUT_OF_RANGE: &str = "out_of_range";
/// `reason` of a cursor from an earlier detector process (`gap_before`).
pub(crate) const CURSOR_EPOCH_CHANGED: &str = "epoch_changed";
/// `reason` of a retry after a Telegram 429.
pub(crate) const RETRY_RATE_LIMITED: &str = "rate_limited";
/// `reason` of a retry after a network error, timeout or 5xx.
pub(crate) const RETRY_TRANSIENT: &str = "transient";

/// Registers the descriptions shown as `# HELP` lines. Call it after the
/// metrics recorder is installed, because the facade drops descriptions sent
/// before.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        RECEIVED_TOTAL,
        "Anomaly events received from all detectors, by state (firing, escalated, resolved)."
    );
    metrics::describe_counter!(
        SENT_TOTAL,
        "Alerts that every sink delivered, by state (firing, escalated, resolved); repeats are not counted."
    );
    metrics::describe_counter!(
        FAILED_TOTAL,
        "Alerts that at least one sink did not deliver (not_delivered) or that shutdown dropped before delivery (dropped_at_shutdown)."
    );
    metrics::describe_counter!(
        RETRIES_TOTAL,
        "Repeated Telegram requests after a 429 (rate_limited) or a network error, timeout or 5xx (transient)."
    );
    metrics::describe_counter!(
        PLAIN_TEXT_FALLBACKS_TOTAL,
        "Telegram messages sent again as plain text after Telegram rejected their HTML with \"can't parse entities\"."
    );
    metrics::describe_counter!(
        DUPLICATES_TOTAL,
        "Anomaly state changes skipped because the same detector sent them before or the notification log has them."
    );
    metrics::describe_counter!(
        RECONNECTS_TOTAL,
        "Reconnects to detectors after a failed connect or a lost stream."
    );
    metrics::describe_histogram!(
        DELIVERY_DURATION_SECONDS,
        "Time one sink took to deliver one alert, retries included, in seconds."
    );
    metrics::describe_histogram!(
        DETECTION_TO_DELIVERY_SECONDS,
        "Time from the detector's detected_at_ms to the end of delivery, in seconds; includes clock skew between the hosts."
    );
    metrics::describe_gauge!(CONNECTED_DETECTORS, "Detectors whose anomaly stream is open.");

    // Incremented by 0, not set, so the series exist from the start (a
    // dashboard shows 0, not "no data") and another notifier in the same
    // process keeps its counts.
    for counter in [RECEIVED_TOTAL, SENT_TOTAL] {
        for state in STATES {
            metrics::counter!(counter, STATE => state).increment(0);
        }
    }
    for counter in [PLAIN_TEXT_FALLBACKS_TOTAL, DUPLICATES_TOTAL, RECONNECTS_TOTAL] {
        metrics::counter!(counter).increment(0);
    }
    for reason in [FAILED_NOT_DELIVERED, FAILED_DROPPED_AT_SHUTDOWN] {
        metrics::counter!(FAILED_TOTAL, REASON => reason).increment(0);
    }
    for reason in [CURSOR_OUT_OF_RANGE, CURSOR_EPOCH_CHANGED] {
        metrics::counter!(CURSOR_RESETS_TOTAL, REASON => reason).increment(0);
    }
    for reason in [RETRY_RATE_LIMITED, RETRY_TRANSIENT] {
        metrics::counter!(RETRIES_TOTAL, REASON => reason).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_label_names_each_state() {
        assert_eq!(state_label(AnomalyState::Firing as i32), "firing");
        assert_eq!(state_label(AnomalyState::Escalated as i32), "escalated");
        assert_eq!(state_label(AnomalyState::Resolved as i32), "resolved");
        assert_eq!(state_label(AnomalyState::Unspecified as i32), "unspecified");
        assert_eq!(state_label(99), "unspecified");
    }
}
