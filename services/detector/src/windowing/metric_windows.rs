//! Open windows and known series of one metric.

use std::collections::{BTreeMap, HashMap};

use seismo_events::Event;

use super::accumulator::{self, Accumulator};
use super::{ClosedWindow, LoadedWindow};
use crate::config::{MetricDefinition, MetricValue, WindowLength, WindowingSettings};
use crate::slice::SliceKey;

/// Window starts, Unix epoch ms, of the first and the latest window in
/// which a series had an event.
#[derive(Debug, Clone, Copy)]
struct SeriesSpan {
    first_start_ms: i64,
    last_start_ms: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    Unmatched,
    Late,
    Counted {
        /// Slices skipped because their dimension reached
        /// `max_slices_per_dimension`.
        slices_rejected: u64,
    },
}

#[derive(Debug)]
pub(crate) struct MetricWindows {
    index: usize,
    window: WindowLength,
    value: MetricValue,
    dimensions: Vec<String>,
    /// Windows starting before this time are closed; `None` before the
    /// first close.
    closed_until_ms: Option<i64>,
    /// Open windows by start time, each with one accumulator per slice that
    /// had events in it.
    open: BTreeMap<i64, BTreeMap<SliceKey, Accumulator>>,
    series: BTreeMap<SliceKey, SeriesSpan>,
    slices_per_dimension: HashMap<String, usize>,
}

impl MetricWindows {
    pub(crate) fn new(index: usize, definition: &MetricDefinition) -> MetricWindows {
        MetricWindows {
            index,
            window: definition.window,
            value: definition.value.clone(),
            dimensions: definition.dimensions.clone(),
            closed_until_ms: None,
            open: BTreeMap::new(),
            series: BTreeMap::new(),
            slices_per_dimension: HashMap::new(),
        }
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series.len()
    }

    pub(crate) fn apply(&mut self, event: &Event, settings: &WindowingSettings) -> Applied {
        if !accumulator::matches(&self.value, event) {
            return Applied::Unmatched;
        }

        let window_start_ms = self.window.start_of(event.event_time_ms());
        if self
            .closed_until_ms
            .is_some_and(|closed_until_ms| window_start_ms < closed_until_ms)
        {
            return Applied::Late;
        }

        let mut slices = vec![SliceKey::total()];
        let mut slices_rejected = 0;
        for index in 0..self.dimensions.len() {
            let Some(value) = event.dimension(&self.dimensions[index]) else {
                continue;
            };
            let slice = SliceKey::single(&self.dimensions[index], value);
            if self.admit_slice(&slice, settings) {
                slices.push(slice);
            } else {
                slices_rejected += 1;
            }
        }

        let window = self.open.entry(window_start_ms).or_default();
        for slice in &slices {
            window
                .entry(slice.clone())
                .or_insert_with(|| Accumulator::new(&self.value))
                .add(&self.value, event);
        }
        for slice in slices {
            self.extend_span(slice, window_start_ms);
        }
        Applied::Counted { slices_rejected }
    }

    /// Closes the windows before `until_ms` with values aggregated elsewhere,
    /// as if their events had been applied, and appends them to `closed`
    /// like [`MetricWindows::close_until`], empty windows included.
    /// `windows` must be sorted by start and lie before `until_ms`, a window
    /// start (`until_ms` itself is not closed). Returns the number of slices
    /// skipped because their dimension reached `max_slices_per_dimension`.
    pub(crate) fn restore(
        &mut self,
        windows: &[LoadedWindow],
        until_ms: i64,
        settings: &WindowingSettings,
        closed: &mut Vec<ClosedWindow>,
    ) -> u64 {
        let mut slices_rejected = 0;
        for loaded in windows {
            debug_assert!(
                loaded.window_start_ms < until_ms,
                "loaded window at or after {until_ms}"
            );
            let window_start_ms = self.window.start_of(loaded.window_start_ms);
            if self
                .closed_until_ms
                .is_some_and(|closed_until_ms| window_start_ms < closed_until_ms)
            {
                continue;
            }
            // Closes the windows before this one, so each is closed once.
            self.close_until(window_start_ms, settings, closed);

            if !self.admit_slice(&loaded.slice, settings) {
                slices_rejected += 1;
                continue;
            }
            self.open
                .entry(window_start_ms)
                .or_default()
                .insert(loaded.slice.clone(), Accumulator::Loaded(loaded.value));
            self.extend_span(loaded.slice.clone(), window_start_ms);
        }

        self.close_until(until_ms, settings, closed);
        slices_rejected
    }

    /// True if `slice` is a known series or its dimension has room for
    /// another value, which it then takes.
    fn admit_slice(&mut self, slice: &SliceKey, settings: &WindowingSettings) -> bool {
        if self.series.contains_key(slice) {
            return true;
        }
        let [(dimension, _)] = slice.dimensions() else {
            return true;
        };
        let known = self.slices_per_dimension.entry(dimension.clone()).or_insert(0);
        if *known >= settings.max_slices_per_dimension {
            return false;
        }
        *known += 1;
        true
    }

    fn extend_span(&mut self, slice: SliceKey, window_start_ms: i64) {
        let span = self.series.entry(slice).or_insert(SeriesSpan {
            first_start_ms: window_start_ms,
            last_start_ms: window_start_ms,
        });
        span.first_start_ms = span.first_start_ms.min(window_start_ms);
        span.last_start_ms = span.last_start_ms.max(window_start_ms);
    }

    /// Closes every window that ends at or before `watermark_ms` and appends
    /// one [`ClosedWindow`] per series to `closed`, in window order. A series
    /// without events in a window gets the metric's empty value (0, or none
    /// for a ratio) until it has been idle for `series_idle_limit`, after
    /// which it is forgotten.
    pub(crate) fn close_until(
        &mut self,
        watermark_ms: i64,
        settings: &WindowingSettings,
        closed: &mut Vec<ClosedWindow>,
    ) {
        let window_ms = self.window.as_ms();
        // Window [s, s + w) is closed when s + w <= watermark, which for
        // aligned starts means s < start_of(watermark).
        let target_ms = self.window.start_of(watermark_ms);

        let first_open_ms = self.open.keys().next().copied();
        let mut start_ms = match (self.closed_until_ms, first_open_ms) {
            (Some(closed_until_ms), _) => closed_until_ms,
            (None, Some(first_open_ms)) => first_open_ms,
            (None, None) => target_ms,
        };

        while start_ms < target_ms {
            if self.series.is_empty() {
                // Nothing to fill: skip straight to the next window with events.
                match self.open.keys().next() {
                    Some(&next_ms) if next_ms < target_ms => start_ms = next_ms,
                    _ => break,
                }
            }

            self.close_window(start_ms, settings, closed);
            start_ms += window_ms;
        }

        self.closed_until_ms = Some(
            self.closed_until_ms
                .map_or(target_ms, |closed_until_ms| closed_until_ms.max(target_ms)),
        );
    }

    fn close_window(&mut self, start_ms: i64, settings: &WindowingSettings, closed: &mut Vec<ClosedWindow>) {
        let accumulators = self.open.remove(&start_ms).unwrap_or_default();
        let empty_value = accumulator::empty_value(&self.value);
        let mut idle = Vec::new();

        for (slice, span) in &self.series {
            if start_ms < span.first_start_ms {
                continue;
            }
            if start_ms - span.last_start_ms > settings.series_idle_limit_ms {
                idle.push(slice.clone());
                continue;
            }

            let value = match accumulators.get(slice) {
                Some(accumulator) => accumulator.value(),
                None => empty_value,
            };
            if let Some(value) = value {
                closed.push(ClosedWindow {
                    metric_index: self.index,
                    slice: slice.clone(),
                    window_start_ms: start_ms,
                    window_end_ms: start_ms + self.window.as_ms(),
                    value,
                });
            }
        }

        for slice in idle {
            self.forget_series(&slice);
        }
    }

    fn forget_series(&mut self, slice: &SliceKey) {
        self.series.remove(slice);
        let [(dimension, _)] = slice.dimensions() else {
            return;
        };
        if let Some(known) = self.slices_per_dimension.get_mut(dimension) {
            *known = known.saturating_sub(1);
        }
    }
}
