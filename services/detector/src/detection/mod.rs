//! Detection maths for one series of closed windows: the band, the score and
//! the episode state machine. Pure and synchronous: no tokio, Kafka or gRPC.
//!
//! CONTRACT (shared by the live service and `replay`; keep these signatures):
//! - [`DetectionParams`]: tuning, deserialisable from the metric TOML.
//! - [`SeriesDetector::new`] creates the state of one series.
//! - [`SeriesDetector::observe`] takes each closed window once, in window
//!   order (gaps allowed), and returns its [`Evaluation`].
//! - [`SeriesDetector::points`] and [`SeriesDetector::is_learning`] feed
//!   `GetSeries`.

use serde::{Deserialize, Serialize};

/// Tuning of the band and the alert rules of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionParams {}

impl Default for DetectionParams {
    fn default() -> Self {
        DetectionParams {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// The band a window was judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
}

/// A change of the series' episode state caused by one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// An anomaly episode starts at this window.
    Fired {
        /// Start of the episode's first window, Unix epoch ms; with the
        /// series identity it makes a stable episode id.
        episode_start_ms: i64,
        direction: Direction,
        severity: Severity,
    },
    /// The episode that started at `episode_start_ms` ends at this window.
    Resolved { episode_start_ms: i64 },
}

/// The verdict on one closed window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub window_start_ms: i64,
    pub value: f64,
    /// `None` while the series is learning.
    pub band: Option<Band>,
    /// Anomaly score in [0, 1].
    pub score: f64,
    /// The value lies outside the band.
    pub outside: bool,
    pub transition: Option<Transition>,
}

/// One stored closed window with its verdict, for charts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub window_start_ms: i64,
    pub value: f64,
    pub band: Option<Band>,
    pub anomalous: bool,
}

/// State of one series (one metric × slice).
#[derive(Debug, Clone)]
pub struct SeriesDetector {}

impl SeriesDetector {
    /// Creates a series with windows of `window_ms` milliseconds.
    pub fn new(params: &DetectionParams, window_ms: i64) -> SeriesDetector {
        let _ = (params, window_ms);
        todo!("detection maths")
    }

    /// Judges one closed window. Windows must come in increasing
    /// `window_start_ms` order; a window at or before the last one is ignored
    /// and returns `None`.
    pub fn observe(&mut self, window_start_ms: i64, value: f64) -> Option<Evaluation> {
        let _ = (window_start_ms, value);
        todo!("detection maths")
    }

    /// Stored recent windows, oldest first.
    pub fn points(&self) -> impl Iterator<Item = &Point> + '_ {
        std::iter::empty()
    }

    /// True while the series has too little history to alert.
    pub fn is_learning(&self) -> bool {
        todo!("detection maths")
    }
}
