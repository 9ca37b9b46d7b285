//! Tumbling event-time windows per metric and slice. Pure and synchronous.
//!
//! - Windows are aligned to the Unix epoch: a 5-minute window starts at a
//!   multiple of 300 000 ms.
//! - Watermark = latest accepted event time − `allowed_lateness`. A window
//!   is evaluated exactly once, when the watermark reaches its end. An event
//!   for a window that is already closed is counted as late and dropped.
//! - With Kafka partitions, the latest event time is that of the slowest
//!   partition still delivering (see [`partitions`]), so a partition that
//!   lags the others while the detector catches up loses no events.
//! - Far-future events are held back until confirmed (see [`clock`]), so one
//!   bad timestamp cannot close every open window.
//! - Windows close on event time: a quiet stream closes nothing, and the
//!   last windows stay open until later events arrive. Without partitions
//!   (a replay) the results do not depend on processing speed, so the same
//!   events yield the same windows. With partitions, the end of a
//!   partition's log and its idle timeout (wall-clock time) also release
//!   windows, up to the event time already read, so which events count as
//!   late can depend on the order and timing of fetches.
//! - A series (metric × slice) exists from its first event. Each closed
//!   window yields one value per existing series; a series without events
//!   in that window gets 0 (no value for a ratio, whose denominator is then
//!   0), so a drop to zero is seen. A series idle for `series_idle_limit`
//!   stops getting windows until its next event.

mod accumulator;
mod clock;
mod metric_windows;
mod partitions;

use seismo_events::Event;

use crate::config::{MetricsConfig, WindowingSettings};
use crate::slice::SliceKey;
use clock::{Arrival, EventClock};
use metric_windows::{Applied, MetricWindows};
use partitions::{Limit, PartitionProgress};

/// The value of one series over one closed window.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    /// Position of the metric in [`MetricsConfig::metrics`].
    pub metric_index: usize,
    pub slice: SliceKey,
    /// Window bounds, Unix epoch ms, start inclusive, end exclusive.
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub value: f64,
}

/// The value of one series over one window, aggregated outside the
/// windowing (a warm start's SQL), for [`Windower::restore_history`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedWindow {
    /// Window start, Unix epoch ms.
    pub window_start_ms: i64,
    pub slice: SliceKey,
    /// `None` for a ratio whose denominator is 0.
    pub value: Option<f64>,
}

/// Running totals of the windowing, since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowingCounters {
    /// Events admitted by the event-time clock, including released held ones.
    pub events_accepted: u64,
    /// Accepted events that came too late for at least one metric's window.
    pub events_late: u64,
    /// Accepted events that no metric counts.
    pub events_unmatched: u64,
    /// Events held back as too far in the future, now.
    pub events_held: u64,
    /// Held events dropped because the hold buffer was full.
    pub events_rejected_future: u64,
    /// Slice updates skipped because a dimension had too many values.
    pub slices_rejected: u64,
    /// Closed windows emitted, one per series and window.
    pub windows_closed: u64,
}

/// Turns events into closed windows for every configured metric.
#[derive(Debug)]
pub struct Windower {
    settings: WindowingSettings,
    clock: EventClock,
    /// Kafka partitions feeding the windows.
    partitions: PartitionProgress,
    /// Events received so far, the sequence number of the next one.
    arrivals: u64,
    /// Windows ending at or before this time (Unix epoch ms) are closed.
    /// Never moves back, also when a new partition holds the next ones.
    watermark_ms: Option<i64>,
    /// Highest watermark while restored events are replayed, set by
    /// [`Windower::hold_restored_until`].
    restore_limit_ms: Option<i64>,
    metrics: Vec<MetricWindows>,
    counters: WindowingCounters,
}

impl Windower {
    pub fn new(config: &MetricsConfig) -> Windower {
        Windower {
            settings: config.windowing.clone(),
            clock: EventClock::new(&config.windowing),
            partitions: PartitionProgress::default(),
            arrivals: 0,
            watermark_ms: None,
            restore_limit_ms: None,
            metrics: config
                .metrics
                .iter()
                .enumerate()
                .map(|(index, definition)| MetricWindows::new(index, definition))
                .collect(),
            counters: WindowingCounters::default(),
        }
    }

    /// Takes one event of a source without partitions and appends the
    /// windows it closes to `closed`, in window order per metric.
    pub fn push(&mut self, event: Event, closed: &mut Vec<ClosedWindow>) {
        self.admit(None, event, closed);
    }

    /// Takes one event read from Kafka `partition` and appends the windows
    /// it closes to `closed`, in window order per metric.
    pub fn push_from(&mut self, partition: i32, event: Event, closed: &mut Vec<ClosedWindow>) {
        self.admit(Some(partition), event, closed);
    }

    /// Sets the Kafka partitions the events come from, after a rebalance. A
    /// new partition holds back every window until its first event or its
    /// release; a revoked one no longer counts, which may close windows.
    pub fn assign_partitions(&mut self, partitions: &[i32], closed: &mut Vec<ClosedWindow>) {
        self.partitions.assign(partitions);
        self.close_ready(closed);
    }

    /// Lets the watermark pass `partition` until its next event: the
    /// consumer reached its end, or it stayed silent too long. Appends the
    /// windows this closes to `closed`.
    pub fn release_partition(&mut self, partition: i32, closed: &mut Vec<ClosedWindow>) {
        self.partitions.release(partition, self.arrivals);
        self.close_ready(closed);
    }

    /// True when `partition` is assigned and holds the watermark back.
    pub fn is_partition_holding(&self, partition: i32) -> bool {
        self.partitions.is_holding(partition)
    }

    fn admit(&mut self, partition: Option<i32>, event: Event, closed: &mut Vec<ClosedWindow>) {
        let arrival = Arrival {
            partition,
            sequence: self.arrivals,
            event,
        };
        self.arrivals += 1;
        let admission = self.clock.admit(arrival);
        self.counters.events_rejected_future += admission.rejected;
        self.counters.events_held = self.clock.held_count() as u64;

        for arrival in &admission.released {
            self.apply(&arrival.event);
            if let Some(partition) = arrival.partition {
                self.partitions
                    .observe(partition, arrival.event.event_time_ms(), arrival.sequence);
            }
        }

        self.close_ready(closed);
    }

    /// Moves the watermark as far as the clock and the partitions allow and
    /// closes the windows it passes.
    fn close_ready(&mut self, closed: &mut Vec<ClosedWindow>) {
        let Some(max_event_ms) = self.clock.max_event_ms() else {
            return;
        };
        let reached_ms = match self.partitions.limit() {
            Limit::None => max_event_ms,
            Limit::At(limit_ms) => max_event_ms.min(limit_ms),
            Limit::Blocked => return,
        };
        let mut candidate_ms = reached_ms.saturating_sub(self.settings.allowed_lateness_ms);
        if let Some(limit_ms) = self.restore_limit_ms {
            candidate_ms = candidate_ms.min(limit_ms);
        }
        let watermark_ms = self
            .watermark_ms
            .map_or(candidate_ms, |current| current.max(candidate_ms));
        self.watermark_ms = Some(watermark_ms);

        let before = closed.len();
        for metric in &mut self.metrics {
            metric.close_until(watermark_ms, &self.settings, closed);
        }
        self.counters.windows_closed += (closed.len() - before) as u64;
    }

    /// Closes the windows of metric `metric_index` before `until_ms` with
    /// values aggregated elsewhere and appends them to `closed` exactly as
    /// live events would have closed them: in window order, with empty
    /// windows of known series, idle series forgotten. `windows` must be
    /// sorted by start and lie before `until_ms`, a window start of the
    /// metric. Events for windows before `until_ms` count as late afterwards.
    ///
    /// Restoring does not move the event-time clock; see
    /// [`Windower::resume_clock`].
    pub fn restore_history(
        &mut self,
        metric_index: usize,
        windows: &[LoadedWindow],
        until_ms: i64,
        closed: &mut Vec<ClosedWindow>,
    ) {
        let before = closed.len();
        let rejected = self.metrics[metric_index].restore(windows, until_ms, &self.settings, closed);
        self.counters.slices_rejected += rejected;
        self.counters.windows_closed += (closed.len() - before) as u64;
    }

    /// Sets the event-time clock to at least `max_event_ms`, the latest event
    /// time of restored history, so later events are judged against it
    /// instead of waiting for confirmation. Closes nothing by itself.
    pub fn resume_clock(&mut self, max_event_ms: i64) {
        self.clock.resume_at(max_event_ms);
    }

    /// Keeps the watermark at or below `watermark_ms` until
    /// [`Windower::end_restore`], so restored events replayed through
    /// [`Windower::push`] close no window that a lagging partition's unread
    /// events still belong to.
    pub fn hold_restored_until(&mut self, watermark_ms: i64) {
        self.restore_limit_ms = Some(watermark_ms);
    }

    /// Ends a restore: the partitions of the live source decide how far the
    /// watermark goes from now on.
    pub fn end_restore(&mut self) {
        self.restore_limit_ms = None;
    }

    /// Zeroes the counters, e.g. so they count only live events after a
    /// warm start.
    pub fn reset_counters(&mut self) {
        self.counters = WindowingCounters {
            events_held: self.clock.held_count() as u64,
            ..WindowingCounters::default()
        };
    }

    /// The latest event time every holding partition reached (or the
    /// latest accepted one without partitions) − allowed lateness, Unix
    /// epoch ms: windows ending at or before it are closed. `None` until
    /// the first window could close.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }

    pub fn counters(&self) -> WindowingCounters {
        self.counters
    }

    /// Number of series the windowing currently tracks, over all metrics.
    pub fn series_count(&self) -> usize {
        self.metrics.iter().map(MetricWindows::series_count).sum()
    }

    fn apply(&mut self, event: &Event) {
        self.counters.events_accepted += 1;

        let mut matched = false;
        let mut late = false;
        for metric in &mut self.metrics {
            match metric.apply(event, &self.settings) {
                Applied::Unmatched => {}
                Applied::Late => {
                    matched = true;
                    late = true;
                }
                Applied::Counted { slices_rejected } => {
                    matched = true;
                    self.counters.slices_rejected += slices_rejected;
                }
            }
        }

        if !matched {
            self.counters.events_unmatched += 1;
        }
        if late {
            self.counters.events_late += 1;
        }
    }
}

#[cfg(test)]
mod tests;
