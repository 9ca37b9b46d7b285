//! Registry of series detectors: one [`SeriesDetector`] per metric × slice,
//! created on the series' first closed window.

use std::collections::BTreeMap;

use crate::config::{MetricsConfig, WindowLength};
use crate::detection::{DetectionParams, Direction, Evaluation, SeriesDetector, Severity, Transition};
use crate::slice::SliceKey;
use crate::windowing::ClosedWindow;

/// Identity of a series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub metric: String,
    pub slice: SliceKey,
}

/// The episode a series is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenEpisode {
    pub start_ms: i64,
    /// The side of the band of the window that fired it.
    pub direction: Direction,
    /// The highest severity announced: the firing's, raised by escalations.
    pub severity: Severity,
    /// Every severity announced, the firing's and each escalation's. A
    /// notifier sends the resolution to every route one of them took.
    pub announced: SeveritySet,
}

/// A set of severities, one bit each, so an [`OpenEpisode`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeveritySet(u8);

impl SeveritySet {
    pub const fn of(severity: Severity) -> SeveritySet {
        SeveritySet(0).with(severity)
    }

    #[must_use]
    pub const fn with(self, severity: Severity) -> SeveritySet {
        SeveritySet(self.0 | 1 << severity as u8)
    }

    /// Returns the members, lowest first.
    pub fn iter(self) -> impl Iterator<Item = Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .filter(move |severity| self.0 & 1 << *severity as u8 != 0)
    }
}

/// One series' detector with its metric's window length.
#[derive(Debug)]
pub struct TrackedSeries {
    pub window: WindowLength,
    pub detector: SeriesDetector,
    /// Set from a firing until its resolution, so escalations and the
    /// resolution can carry the episode's direction and severities.
    pub open_episode: Option<OpenEpisode>,
}

/// A judged closed window of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub evaluation: Evaluation,
    pub change: Option<EpisodeChange>,
}

/// A change of a series' episode state caused by one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeChange {
    Fired(OpenEpisode),
    /// The open episode, with its new severity.
    Escalated(OpenEpisode),
    Resolved {
        start_ms: i64,
        /// The episode as it ended; `None` only if the detector resolved an
        /// episode it never fired.
        fired: Option<OpenEpisode>,
    },
}

#[derive(Debug)]
struct MetricSettings {
    name: String,
    window: WindowLength,
    detection: DetectionParams,
}

/// All series detectors of a running detector.
#[derive(Debug)]
pub struct SeriesRegistry {
    metrics: Vec<MetricSettings>,
    series: BTreeMap<SeriesKey, TrackedSeries>,
}

impl SeriesRegistry {
    pub fn new(config: &MetricsConfig) -> SeriesRegistry {
        SeriesRegistry {
            metrics: config
                .metrics
                .iter()
                .map(|metric| MetricSettings {
                    name: metric.name.clone(),
                    window: metric.window,
                    detection: metric.detection.clone(),
                })
                .collect(),
            series: BTreeMap::new(),
        }
    }

    /// Judges one closed window with its series' detector, creating the
    /// detector on the series' first window. Returns `None` when the
    /// detector ignores the window (not after its previous one).
    pub fn observe(&mut self, closed: &ClosedWindow) -> Option<Judgement> {
        let metric = &self.metrics[closed.metric_index];
        let key = SeriesKey {
            metric: metric.name.clone(),
            slice: closed.slice.clone(),
        };
        let series = self.series.entry(key).or_insert_with(|| TrackedSeries {
            window: metric.window,
            detector: SeriesDetector::new(&metric.detection, metric.window.as_ms()),
            open_episode: None,
        });

        let learnt_before = series.detector.recurrences_learnt();
        let evaluation = series.detector.observe(closed.window_start_ms, closed.value)?;
        if series.detector.recurrences_learnt() > learnt_before {
            // Tells an operator why a new daily job stops alerting.
            tracing::info!(
                metric = %metric.name,
                slice = %closed.slice,
                window_start_ms = closed.window_start_ms,
                "learnt a new daily shape: this time of day is expected at its new level from now on"
            );
        }
        let change = match evaluation.transition {
            None => None,
            Some(Transition::Fired {
                episode_start_ms,
                direction,
                severity,
            }) => {
                let episode = OpenEpisode {
                    start_ms: episode_start_ms,
                    direction,
                    severity,
                    announced: SeveritySet::of(severity),
                };
                series.open_episode = Some(episode);
                Some(EpisodeChange::Fired(episode))
            }
            // The registry records every firing of its detectors, so an
            // escalated episode is always open here.
            Some(Transition::Escalated { severity, .. }) => series.open_episode.as_mut().map(|open| {
                open.severity = severity;
                open.announced = open.announced.with(severity);
                EpisodeChange::Escalated(*open)
            }),
            Some(Transition::Resolved { episode_start_ms }) => Some(EpisodeChange::Resolved {
                start_ms: episode_start_ms,
                fired: series.open_episode.take(),
            }),
        };
        Some(Judgement { evaluation, change })
    }

    pub fn get(&self, key: &SeriesKey) -> Option<&TrackedSeries> {
        self.series.get(key)
    }

    /// Series of `metric`, or of all metrics when `None`, ordered by metric
    /// name and slice.
    pub fn iter<'a>(
        &'a self,
        metric: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a SeriesKey, &'a TrackedSeries)> + 'a {
        self.series
            .iter()
            .filter(move |(key, _)| metric.is_none_or(|name| key.metric == name))
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Window length of a configured metric.
    pub fn metric_window(&self, metric: &str) -> Option<WindowLength> {
        self.metrics
            .iter()
            .find(|settings| settings.name == metric)
            .map(|settings| settings.window)
    }

    /// Names of the configured metrics, in file order.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.metrics.iter().map(|settings| settings.name.as_str())
    }
}
