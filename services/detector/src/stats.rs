//! Live counters of a running detector, readable from another task. Every
//! update is also recorded as a `seismo_detector_*` metric through the
//! `metrics` facade (see [`crate::prometheus_metrics`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::prometheus_metrics::{
    ANOMALIES_ESCALATED, ANOMALIES_FIRED, ANOMALIES_RESOLVED, EVENTS_ACCEPTED, EVENTS_HELD_FUTURE, EVENTS_LATE,
    EVENTS_REJECTED_FUTURE, EVENTS_UNMATCHED, INVALID, MESSAGES, METRIC, PARTITIONS_IDLED, REASON, SERIES,
    SLICES_REJECTED, WINDOWS_EVALUATED,
};
use crate::windowing::WindowingCounters;

/// Value of `watermark_ms` before the event-time clock has a watermark.
const NO_WATERMARK: i64 = i64::MIN;

/// Counters since the service started. Updated by the consumer task and
/// read with [`DetectorStats::snapshot`].
///
/// The metrics are updated by the difference to the previous value, so
/// several detectors in one process, as in tests, add up in `/metrics`.
#[derive(Debug)]
pub struct DetectorStats {
    messages_received: AtomicU64,
    partitions_idled: AtomicU64,
    events_invalid: AtomicU64,
    events_accepted: AtomicU64,
    events_late: AtomicU64,
    events_unmatched: AtomicU64,
    events_held_future: AtomicU64,
    events_rejected_future: AtomicU64,
    slices_rejected: AtomicU64,
    windows_evaluated: AtomicU64,
    anomalies_fired: AtomicU64,
    anomalies_escalated: AtomicU64,
    anomalies_resolved: AtomicU64,
    series: AtomicU64,
    /// Unix epoch ms, or [`NO_WATERMARK`].
    watermark_ms: AtomicI64,
}

impl Default for DetectorStats {
    fn default() -> Self {
        DetectorStats {
            messages_received: AtomicU64::new(0),
            partitions_idled: AtomicU64::new(0),
            events_invalid: AtomicU64::new(0),
            events_accepted: AtomicU64::new(0),
            events_late: AtomicU64::new(0),
            events_unmatched: AtomicU64::new(0),
            events_held_future: AtomicU64::new(0),
            events_rejected_future: AtomicU64::new(0),
            slices_rejected: AtomicU64::new(0),
            windows_evaluated: AtomicU64::new(0),
            anomalies_fired: AtomicU64::new(0),
            anomalies_escalated: AtomicU64::new(0),
            anomalies_resolved: AtomicU64::new(0),
            series: AtomicU64::new(0),
            watermark_ms: AtomicI64::new(NO_WATERMARK),
        }
    }
}

/// A copy of [`DetectorStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Kafka messages read from the events topic.
    pub messages_received: u64,
    /// Times a Kafka partition silent for `partition_idle_timeout` stopped
    /// holding the watermark back.
    pub partitions_idled: u64,
    /// Messages skipped because they are not valid events.
    pub events_invalid: u64,
    /// Valid events admitted by the event-time clock.
    pub events_accepted: u64,
    /// Events dropped for at least one metric because its window had closed.
    pub events_late: u64,
    /// Events that no metric counts.
    pub events_unmatched: u64,
    /// Events currently held back as too far in the future.
    pub events_held_future: u64,
    /// Held far-future events dropped because the hold buffer was full.
    pub events_rejected_future: u64,
    /// Slice updates skipped because a dimension had too many values.
    pub slices_rejected: u64,
    /// Closed windows judged by a series detector.
    pub windows_evaluated: u64,
    pub anomalies_fired: u64,
    /// Open episodes whose severity rose.
    pub anomalies_escalated: u64,
    pub anomalies_resolved: u64,
    /// Series the detector keeps history for.
    pub series: u64,
    /// Event-time watermark (latest event time of the slowest Kafka
    /// partition still delivering − allowed lateness), Unix epoch ms; `None`
    /// until the first window could close.
    pub watermark_ms: Option<i64>,
}

impl DetectorStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            messages_received: self.messages_received.load(Ordering::Relaxed),
            partitions_idled: self.partitions_idled.load(Ordering::Relaxed),
            events_invalid: self.events_invalid.load(Ordering::Relaxed),
            events_accepted: self.events_accepted.load(Ordering::Relaxed),
            events_late: self.events_late.load(Ordering::Relaxed),
            events_unmatched: self.events_unmatched.load(Ordering::Relaxed),
            events_held_future: self.events_held_future.load(Ordering::Relaxed),
            events_rejected_future: self.events_rejected_future.load(Ordering::Relaxed),
            slices_rejected: self.slices_rejected.load(Ordering::Relaxed),
            windows_evaluated: self.windows_evaluated.load(Ordering::Relaxed),
            anomalies_fired: self.anomalies_fired.load(Ordering::Relaxed),
            anomalies_escalated: self.anomalies_escalated.load(Ordering::Relaxed),
            anomalies_resolved: self.anomalies_resolved.load(Ordering::Relaxed),
            series: self.series.load(Ordering::Relaxed),
            watermark_ms: self.watermark_ms(),
        }
    }

    /// Event-time watermark, Unix epoch ms; `None` until the first window
    /// could close.
    pub fn watermark_ms(&self) -> Option<i64> {
        let watermark_ms = self.watermark_ms.load(Ordering::Relaxed);
        (watermark_ms != NO_WATERMARK).then_some(watermark_ms)
    }

    pub(crate) fn add_message(&self) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(MESSAGES).increment(1);
    }

    pub(crate) fn add_partition_idled(&self) {
        self.partitions_idled.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(PARTITIONS_IDLED).increment(1);
    }

    /// Counts a message that is not a valid event; `reason` is
    /// [`seismo_events::EventError::kind`].
    pub(crate) fn add_invalid(&self, reason: &'static str) {
        self.events_invalid.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(INVALID, REASON => reason).increment(1);
    }

    pub(crate) fn add_windows_evaluated(&self, count: u64) {
        self.windows_evaluated.fetch_add(count, Ordering::Relaxed);
        metrics::counter!(WINDOWS_EVALUATED).increment(count);
    }

    pub(crate) fn add_fired(&self, metric: &str) {
        self.anomalies_fired.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(ANOMALIES_FIRED, METRIC => metric.to_string()).increment(1);
    }

    pub(crate) fn add_escalated(&self, metric: &str) {
        self.anomalies_escalated.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(ANOMALIES_ESCALATED, METRIC => metric.to_string()).increment(1);
    }

    pub(crate) fn add_resolved(&self, metric: &str) {
        self.anomalies_resolved.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(ANOMALIES_RESOLVED, METRIC => metric.to_string()).increment(1);
    }

    pub(crate) fn set_series(&self, count: u64) {
        let previous = self.series.swap(count, Ordering::Relaxed);
        add_to_gauge(SERIES, previous, count);
    }

    /// Copies the windowing's own running totals, which it keeps as the
    /// source of truth, and its watermark. Called once per event, so the
    /// metrics are touched only for the values that changed.
    pub(crate) fn set_windowing(&self, counters: &WindowingCounters, watermark_ms: Option<i64>) {
        add_to_counter(&self.events_accepted, counters.events_accepted, EVENTS_ACCEPTED);
        add_to_counter(&self.events_late, counters.events_late, EVENTS_LATE);
        add_to_counter(&self.events_unmatched, counters.events_unmatched, EVENTS_UNMATCHED);
        add_to_counter(
            &self.events_rejected_future,
            counters.events_rejected_future,
            EVENTS_REJECTED_FUTURE,
        );
        add_to_counter(&self.slices_rejected, counters.slices_rejected, SLICES_REJECTED);

        let held_before = self.events_held_future.swap(counters.events_held, Ordering::Relaxed);
        add_to_gauge(EVENTS_HELD_FUTURE, held_before, counters.events_held);

        self.watermark_ms
            .store(watermark_ms.unwrap_or(NO_WATERMARK), Ordering::Relaxed);
    }
}

/// Stores the running `total` and adds its growth since the last call to
/// the counter `name`. Totals never decrease.
fn add_to_counter(stored: &AtomicU64, total: u64, name: &'static str) {
    let previous = stored.swap(total, Ordering::Relaxed);
    if total > previous {
        metrics::counter!(name).increment(total - previous);
    }
}

/// Moves the gauge `name` by `current − previous`.
fn add_to_gauge(name: &'static str, previous: u64, current: u64) {
    if current != previous {
        metrics::gauge!(name).increment(current as f64 - previous as f64);
    }
}
