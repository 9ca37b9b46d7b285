//! Live counters of a running notifier, readable from other tasks and
//! exported as Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::prometheus_metrics::{
    DUPLICATES_TOTAL, FAILED_TOTAL, PLAIN_TEXT_FALLBACKS_TOTAL, REASON, RECEIVED_TOTAL, RECONNECTS_TOTAL,
    RETRIES_TOTAL, SENT_TOTAL, STATE,
};

/// Counters shared between [`crate::run`] and its caller through an `Arc`.
/// Each update also increments the matching `seismo_notifier_*_total`
/// counter of the `metrics` facade, which counts across all instances in the
/// process.
///
/// Once the notifier has stopped,
/// `received = sent + failed + duplicates + suppressed`.
/// While it runs, the difference is the alerts still queued or in delivery.
#[derive(Debug, Default)]
pub struct NotifierStats {
    received: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    duplicates: AtomicU64,
    reconnects: AtomicU64,
    plain_text_fallbacks: AtomicU64,
    suppressed: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Anomaly events received from all detectors.
    pub received: u64,
    /// Alerts every sink delivered (to each configured chat, for Telegram).
    pub sent: u64,
    /// Alerts at least one sink failed to deliver, or that shutdown dropped.
    pub failed: u64,
    /// Repeated Telegram requests after a 429, 5xx or network error.
    pub retries: u64,
    /// Events skipped because the same episode state change was already
    /// received from that detector, or is in the notification log.
    pub duplicates: u64,
    /// Reconnect attempts to detectors after a failed connect or a lost stream.
    pub reconnects: u64,
    /// Telegram messages sent again as plain text after Telegram could not
    /// parse their HTML.
    pub plain_text_fallbacks: u64,
    /// Events no chat received because a send gate held them back in every
    /// chat of their route, or because the route has no chat.
    pub suppressed: u64,
}

impl NotifierStats {
    /// Reads all counters. Each is read atomically on its own, so a snapshot
    /// taken during delivery may be one step apart between counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            plain_text_fallbacks: self.plain_text_fallbacks.load(Ordering::Relaxed),
            suppressed: self.suppressed.load(Ordering::Relaxed),
        }
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn plain_text_fallbacks(&self) -> u64 {
        self.plain_text_fallbacks.load(Ordering::Relaxed)
    }

    /// Counts a received state change. `state` is a
    /// [`crate::prometheus_metrics::state_label`].
    pub(crate) fn record_received(&self, state: &'static str) {
        self.received.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(RECEIVED_TOTAL, STATE => state).increment(1);
    }

    /// Counts a delivered state change. `state` is a
    /// [`crate::prometheus_metrics::state_label`].
    pub(crate) fn record_sent(&self, state: &'static str) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(SENT_TOTAL, STATE => state).increment(1);
    }

    /// Counts an alert as failed. `reason` is one of the `FAILED_*` label
    /// values of [`crate::prometheus_metrics`].
    pub(crate) fn record_failed(&self, reason: &'static str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(FAILED_TOTAL, REASON => reason).increment(1);
    }

    /// Counts a repeated request. `reason` is one of the `RETRY_*` label
    /// values of [`crate::prometheus_metrics`].
    pub(crate) fn record_retry(&self, reason: &'static str) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(RETRIES_TOTAL, REASON => reason).increment(1);
    }

    pub(crate) fn record_plain_text_fallback(&self) {
        self.plain_text_fallbacks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(PLAIN_TEXT_FALLBACKS_TOTAL).increment(1);
    }

    pub(crate) fn record_suppressed(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(DUPLICATES_TOTAL).increment(1);
    }

    pub(crate) fn record_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(RECONNECTS_TOTAL).increment(1);
    }
}
