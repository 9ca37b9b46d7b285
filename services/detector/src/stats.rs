//! Live counters of a running detector, readable from another task.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::windowing::WindowingCounters;

/// Counters since the service started. Updated by the consumer task and
/// read with [`DetectorStats::snapshot`].
#[derive(Debug, Default)]
pub struct DetectorStats {
    messages_received: AtomicU64,
    events_invalid: AtomicU64,
    events_accepted: AtomicU64,
    events_late: AtomicU64,
    events_unmatched: AtomicU64,
    events_held_future: AtomicU64,
    events_rejected_future: AtomicU64,
    slices_rejected: AtomicU64,
    windows_evaluated: AtomicU64,
    anomalies_fired: AtomicU64,
    anomalies_resolved: AtomicU64,
    series: AtomicU64,
}

/// A copy of [`DetectorStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Kafka messages read from the events topic.
    pub messages_received: u64,
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
    pub anomalies_resolved: u64,
    /// Series the detector keeps history for.
    pub series: u64,
}

impl DetectorStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            messages_received: self.messages_received.load(Ordering::Relaxed),
            events_invalid: self.events_invalid.load(Ordering::Relaxed),
            events_accepted: self.events_accepted.load(Ordering::Relaxed),
            events_late: self.events_late.load(Ordering::Relaxed),
            events_unmatched: self.events_unmatched.load(Ordering::Relaxed),
            events_held_future: self.events_held_future.load(Ordering::Relaxed),
            events_rejected_future: self.events_rejected_future.load(Ordering::Relaxed),
            slices_rejected: self.slices_rejected.load(Ordering::Relaxed),
            windows_evaluated: self.windows_evaluated.load(Ordering::Relaxed),
            anomalies_fired: self.anomalies_fired.load(Ordering::Relaxed),
            anomalies_resolved: self.anomalies_resolved.load(Ordering::Relaxed),
            series: self.series.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_message(&self) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_invalid(&self) {
        self.events_invalid.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_windows_evaluated(&self, count: u64) {
        self.windows_evaluated.fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn add_fired(&self) {
        self.anomalies_fired.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_resolved(&self) {
        self.anomalies_resolved.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_series(&self, count: u64) {
        self.series.store(count, Ordering::Relaxed);
    }

    /// Copies the windowing's own running totals, which it keeps as the
    /// source of truth.
    pub(crate) fn set_windowing(&self, counters: &WindowingCounters) {
        self.events_accepted.store(counters.events_accepted, Ordering::Relaxed);
        self.events_late.store(counters.events_late, Ordering::Relaxed);
        self.events_unmatched.store(counters.events_unmatched, Ordering::Relaxed);
        self.events_held_future.store(counters.events_held, Ordering::Relaxed);
        self.events_rejected_future.store(counters.events_rejected_future, Ordering::Relaxed);
        self.slices_rejected.store(counters.slices_rejected, Ordering::Relaxed);
    }
}
