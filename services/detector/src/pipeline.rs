//! The detector's processing core: event -> windows -> series detectors ->
//! anomaly hub. Synchronous; the Kafka source calls it for each event.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use seismo_events::Event;
use seismo_proto::v1::AnomalyState;
use seismo_telemetry::{MAX_SPAN_LINKS, link_message_contexts, span_traceparent};

use crate::config::MetricsConfig;
use crate::experiment_watch::ExperimentWatch;
use crate::hub::AnomalyHub;
use crate::prometheus_metrics::{
    EVALUATION_DURATION, EXPERIMENT_EVENTS, EXPERIMENT_GROUP_CONFLICTS, EXPERIMENT_UNKNOWN_GROUPS,
};
use crate::proto_mapping::{anomaly_event, clamp_at_zero, contributions_to_proto};
use crate::root_cause::{MAX_CONTRIBUTORS, SliceOutcome, rank_contributors};
use crate::series::{Judgement, SeriesRegistry};
use crate::stats::DetectorStats;
use crate::windowing::{ClosedWindow, LoadedWindow, Windower};

/// Shared handles the pipeline writes to and the gRPC server reads.
#[derive(Debug, Clone)]
pub struct SharedState {
    pub config: Arc<MetricsConfig>,
    pub registry: Arc<Mutex<SeriesRegistry>>,
    pub hub: Arc<AnomalyHub>,
    pub stats: Arc<DetectorStats>,
}

impl SharedState {
    pub fn new(config: MetricsConfig, hub: Arc<AnomalyHub>) -> SharedState {
        SharedState {
            registry: Arc::new(Mutex::new(SeriesRegistry::new(&config))),
            config: Arc::new(config),
            hub,
            stats: Arc::new(DetectorStats::default()),
        }
    }
}

#[derive(Debug)]
pub struct Pipeline {
    shared: SharedState,
    windower: Windower,
    /// Reused buffer of the windows one event closes.
    closed: Vec<ClosedWindow>,
    /// Distinct `traceparent` values of the messages since the last
    /// evaluation, at most `MAX_SPAN_LINKS + 1` (one parent plus links).
    trace_contexts: Vec<String>,
    /// Sequential tests of the configured experiments.
    experiments: ExperimentWatch,
}

impl Pipeline {
    pub fn new(shared: SharedState) -> Pipeline {
        Pipeline {
            windower: Windower::new(&shared.config),
            experiments: ExperimentWatch::new(&shared.config.experiments),
            shared,
            closed: Vec::new(),
            trace_contexts: Vec::new(),
        }
    }

    /// Returns the metric definitions this pipeline windows and judges.
    pub fn config(&self) -> &MetricsConfig {
        &self.shared.config
    }

    /// Records the `traceparent` header of the message whose event was just
    /// processed, so the next window evaluation continues its trace.
    ///
    /// NOTE: an evaluation takes the contexts of all messages since the
    /// previous one, which matches the closed windows' events only while
    /// events arrive in time order and all windows close together.
    pub fn record_trace_context(&mut self, traceparent: &str) {
        let full = self.trace_contexts.len() > MAX_SPAN_LINKS;
        if full || self.trace_contexts.iter().any(|known| known == traceparent) {
            return;
        }
        self.trace_contexts.push(traceparent.to_string());
    }

    /// Adds one event of a source without partitions; judges every window
    /// it closes and publishes each firing, escalation and resolution to
    /// the hub.
    pub fn process(&mut self, event: Event) {
        self.process_arrival(None, event);
    }

    /// Adds one event read from Kafka `partition`, as [`Pipeline::process`].
    pub fn process_from(&mut self, partition: i32, event: Event) {
        self.process_arrival(Some(partition), event);
    }

    /// Sets the Kafka partitions the events come from, after a rebalance,
    /// and evaluates the windows a revoked partition no longer holds open.
    pub fn assign_partitions(&mut self, partitions: &[i32]) {
        self.closed.clear();
        self.windower.assign_partitions(partitions, &mut self.closed);
        self.evaluate_newly_closed();
    }

    /// Lets the watermark pass `partition` until its next event (the
    /// consumer reached its end, or it stayed silent too long) and
    /// evaluates the windows this closes.
    pub fn release_partition(&mut self, partition: i32) {
        self.closed.clear();
        self.windower.release_partition(partition, &mut self.closed);
        self.evaluate_newly_closed();
    }

    /// True when `partition` is assigned and holds the watermark back.
    pub fn is_partition_holding(&self, partition: i32) -> bool {
        self.windower.is_partition_holding(partition)
    }

    fn process_arrival(&mut self, partition: Option<i32>, event: Event) {
        if !self.experiments.is_empty() {
            let outcome = self.experiments.observe(&event);
            if outcome.counted {
                metrics::counter!(EXPERIMENT_EVENTS).increment(1);
            }
            if outcome.group_conflicts > 0 {
                metrics::counter!(EXPERIMENT_GROUP_CONFLICTS).increment(outcome.group_conflicts);
            }
            if outcome.unknown_groups > 0 {
                metrics::counter!(EXPERIMENT_UNKNOWN_GROUPS).increment(outcome.unknown_groups);
            }
        }

        self.closed.clear();
        match partition {
            Some(partition) => self.windower.push_from(partition, event, &mut self.closed),
            None => self.windower.push(event, &mut self.closed),
        }
        self.evaluate_newly_closed();
    }

    /// Judges the windows in `self.closed`, publishes their changes and
    /// updates the windowing stats.
    fn evaluate_newly_closed(&mut self) {
        self.shared
            .stats
            .set_windowing(&self.windower.counters(), self.windower.watermark_ms());
        if self.closed.is_empty() {
            return;
        }

        let started = Instant::now();
        let span = tracing::info_span!(
            "evaluate_windows",
            windows = self.closed.len(),
            first_window_start_ms = self.closed.iter().map(|closed| closed.window_start_ms).min(),
            last_window_end_ms = self.closed.iter().map(|closed| closed.window_end_ms).max(),
            evaluated = tracing::field::Empty,
            fired = tracing::field::Empty,
            escalated = tracing::field::Empty,
            resolved = tracing::field::Empty,
        );
        link_message_contexts(&span, self.trace_contexts.iter().map(String::as_str));
        self.trace_contexts.clear();
        let _entered = span.enter();

        let mut counts = self.evaluate_closed();
        counts.fired += self.evaluate_experiments();

        span.record("evaluated", counts.evaluated);
        span.record("fired", counts.fired);
        span.record("escalated", counts.escalated);
        span.record("resolved", counts.resolved);
        metrics::histogram!(EVALUATION_DURATION).record(started.elapsed());
    }

    /// Runs the experiments' sequential tests at the latest closed window's
    /// end and publishes each new rejection. Returns the number published.
    fn evaluate_experiments(&mut self) -> u64 {
        if self.experiments.is_empty() {
            return 0;
        }
        let Some(now_ms) = self.closed.iter().map(|closed| closed.window_end_ms).max() else {
            return 0;
        };

        let detected_at_ms = chrono::Utc::now().timestamp_millis();
        let anomalies = self.experiments.evaluate(now_ms, detected_at_ms);
        let published = anomalies.len() as u64;
        for anomaly in anomalies {
            let (id, metric, value, expected) = (
                anomaly.id.clone(),
                anomaly.metric.clone(),
                anomaly.value,
                anomaly.expected,
            );
            let sequence = self.shared.hub.publish(anomaly);
            self.shared.stats.add_fired(&metric);
            tracing::warn!(
                anomaly_id = %id,
                sequence,
                metric = %metric,
                value,
                expected,
                "experiment test rejected"
            );
        }
        published
    }

    /// Restores metric `metric_index`'s windows before `until_ms` from
    /// history aggregated elsewhere (a warm start) and judges them without
    /// publishing anything, so the series leave learning and keep their open
    /// episodes. `windows` must be sorted by start. Returns the number of
    /// windows judged.
    pub fn restore_history(&mut self, metric_index: usize, windows: &[LoadedWindow], until_ms: i64) -> u64 {
        self.closed.clear();
        self.windower
            .restore_history(metric_index, windows, until_ms, &mut self.closed);
        self.judge_silently()
    }

    /// Adds one event of restored history and judges the windows it closes
    /// without publishing. Returns the number of windows judged.
    pub fn restore_event(&mut self, event: Event) -> u64 {
        self.closed.clear();
        self.windower.push(event, &mut self.closed);
        self.judge_silently()
    }

    /// Moves the event-time clock to the latest event time of restored
    /// history; see [`Windower::resume_clock`].
    pub fn resume_clock(&mut self, max_event_ms: i64) {
        self.windower.resume_clock(max_event_ms);
    }

    /// Keeps the watermark at or below `watermark_ms` while restored events
    /// are replayed; see [`Windower::hold_restored_until`].
    pub fn hold_restored_until(&mut self, watermark_ms: i64) {
        self.windower.hold_restored_until(watermark_ms);
    }

    /// Ends a restore: the watermark follows the live partitions, and the
    /// windowing counters start again from zero, so they count live events
    /// only.
    pub fn finish_restore(&mut self) {
        self.windower.end_restore();
        self.windower.reset_counters();
        self.shared
            .stats
            .set_windowing(&self.windower.counters(), self.windower.watermark_ms());
    }

    /// Series whose last judged window left an episode open.
    pub fn open_episodes(&self) -> usize {
        let registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        registry
            .iter(None)
            .filter(|(_, series)| series.open_episode.is_some())
            .count()
    }

    fn judge_silently(&self) -> u64 {
        let mut registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let judged = self.closed.iter().filter_map(|closed| registry.observe(closed)).count() as u64;
        self.shared.stats.set_series(registry.len() as u64);
        judged
    }

    /// Judges the windows in `self.closed` and publishes every anomaly
    /// change to the hub. A firing or escalation of a metric's total carries
    /// the slices that contributed most, which needs the judgements of every
    /// slice of the window first.
    fn evaluate_closed(&self) -> EvaluationCounts {
        let detected_at_ms = chrono::Utc::now().timestamp_millis();
        let mut registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counts = EvaluationCounts::default();
        let judged: Vec<(&ClosedWindow, Judgement)> = self
            .closed
            .iter()
            .filter_map(|closed| registry.observe(closed).map(|judgement| (closed, judgement)))
            .collect();
        counts.evaluated = judged.len() as u64;

        // The evaluation span's context, rendered once at the first anomaly change.
        let mut traceparent: Option<String> = None;
        for (closed, judgement) in &judged {
            let metric = &self.shared.config.metrics[closed.metric_index];
            let Some(mut anomaly) = anomaly_event(&metric.name, metric.window, closed, judgement, detected_at_ms)
            else {
                continue;
            };
            if metric.value.is_non_negative() {
                anomaly.expected = clamp_at_zero(anomaly.expected);
                anomaly.lower = clamp_at_zero(anomaly.lower);
            }
            if matches!(anomaly.state(), AnomalyState::Firing | AnomalyState::Escalated) && closed.slice.is_total() {
                anomaly.contributors = contributions_to_proto(&contributors(closed, judgement, &judged));
            }
            anomaly.traceparent = traceparent
                .get_or_insert_with(|| span_traceparent(&tracing::Span::current()).unwrap_or_default())
                .clone();
            let state = anomaly.state();
            let id = anomaly.id.clone();
            let sequence = self.shared.hub.publish(anomaly);
            match state {
                AnomalyState::Firing => {
                    counts.fired += 1;
                    self.shared.stats.add_fired(&metric.name);
                }
                AnomalyState::Escalated => {
                    counts.escalated += 1;
                    self.shared.stats.add_escalated(&metric.name);
                }
                _ => {
                    counts.resolved += 1;
                    self.shared.stats.add_resolved(&metric.name);
                }
            }
            tracing::info!(
                anomaly_id = %id,
                sequence,
                state = state.as_str_name(),
                metric = %metric.name,
                slice = %closed.slice,
                window_start_ms = closed.window_start_ms,
                value = closed.value,
                "anomaly state changed"
            );
        }

        self.shared.stats.add_windows_evaluated(counts.evaluated);
        self.shared.stats.set_series(registry.len() as u64);
        counts
    }
}

/// Ranks the slices judged in the same window as the total `closed` by
/// their share of its deviation. Slices without a band (still learning)
/// are left out.
fn contributors(
    closed: &ClosedWindow,
    judgement: &Judgement,
    judged: &[(&ClosedWindow, Judgement)],
) -> Vec<crate::root_cause::Contribution> {
    let Some(total_band) = judgement.evaluation.band else {
        return Vec::new();
    };
    let slices = judged
        .iter()
        .filter(|(other, _)| {
            other.metric_index == closed.metric_index
                && other.window_start_ms == closed.window_start_ms
                && !other.slice.is_total()
        })
        .filter_map(|(other, other_judgement)| {
            let band = other_judgement.evaluation.band?;
            Some(SliceOutcome {
                slice: other.slice.clone(),
                value: other_judgement.evaluation.value,
                expected: band.expected,
            })
        });
    rank_contributors(
        judgement.evaluation.value,
        total_band.expected,
        slices,
        MAX_CONTRIBUTORS,
    )
}

/// Counts of one [`Pipeline::evaluate_closed`] call.
#[derive(Debug, Default)]
struct EvaluationCounts {
    /// Closed windows judged by a series detector.
    evaluated: u64,
    fired: u64,
    escalated: u64,
    resolved: u64,
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use seismo_proto::v1::{self, AnomalyEvent};

    use super::*;
    use crate::hub::HubConfig;

    const MINUTE_MS: i64 = 60_000;
    /// A minute boundary: 2023-11-14T22:14:00Z.
    const BASE_MS: i64 = 1_700_000_040_000;
    const FIRST_SEQUENCE: u64 = 1_000;

    const METRICS: &str = r#"
[windowing]
allowed_lateness = "0s"
future_confirmations = 1

[detection]
min_history_windows = 30

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
"#;

    fn view(time_ms: i64) -> Event {
        Event {
            event_time: Utc.timestamp_millis_opt(time_ms).unwrap(),
            event: "view".to_string(),
            user_id: "user".to_string(),
            event_id: None,
            post_id: None,
            receiver_id: None,
            os: None,
            country: None,
            city: None,
            source: None,
            gender: None,
            age: None,
            exp_group: None,
            value: None,
            extra: String::new(),
        }
    }

    /// 90 minutes of about 20 views, 3 minutes of 200, 20 minutes of about
    /// 20, and one event that closes the last minute.
    fn spike_scenario() -> Vec<Event> {
        let mut events = Vec::new();
        for minute in 0..113 {
            let count = if (90..93).contains(&minute) {
                200
            } else {
                20 + (minute * 7) % 5 - 2
            };
            for index in 0..count {
                events.push(view(BASE_MS + minute * MINUTE_MS + index * (MINUTE_MS / count)));
            }
        }
        events.push(view(BASE_MS + 113 * MINUTE_MS));
        events
    }

    /// Runs `events` through a fresh pipeline and returns every anomaly
    /// change it published, with the final counters.
    async fn run(events: Vec<Event>) -> (Vec<AnomalyEvent>, crate::stats::StatsSnapshot) {
        run_with(METRICS, events).await
    }

    /// Like `run`, with the metrics file `metrics`.
    async fn run_with(metrics: &str, events: Vec<Event>) -> (Vec<AnomalyEvent>, crate::stats::StatsSnapshot) {
        let hub = Arc::new(AnomalyHub::new(HubConfig {
            replay_capacity: 1_000,
            live_capacity: 16,
            first_sequence: FIRST_SEQUENCE,
        }));
        let shared = SharedState::new(MetricsConfig::parse(metrics).unwrap(), Arc::clone(&hub));
        let stats = Arc::clone(&shared.stats);
        let mut pipeline = Pipeline::new(shared);

        for event in events {
            pipeline.process(event);
        }

        let published = hub.latest_sequence() + 1 - FIRST_SEQUENCE;
        let mut subscription = hub.subscribe(FIRST_SEQUENCE - 1, 0).unwrap();
        let mut changes = Vec::new();
        for _ in 0..published {
            changes.push(subscription.next().await.unwrap());
        }
        (changes, stats.snapshot())
    }

    #[tokio::test]
    async fn spike_fires_then_resolves() {
        let (changes, stats) = run(spike_scenario()).await;

        let states: Vec<AnomalyState> = changes.iter().map(AnomalyEvent::state).collect();
        assert_eq!(
            states,
            vec![AnomalyState::Firing, AnomalyState::Resolved],
            "{changes:?}"
        );
        assert_eq!(changes[0].id, changes[1].id);
        assert_eq!(changes[0].window_start_ms, BASE_MS + 90 * MINUTE_MS);
        assert_eq!(changes[0].value, 200.0);
        assert_eq!(changes[1].direction(), changes[0].direction());
        assert_eq!(stats.anomalies_fired, 1);
        assert_eq!(stats.anomalies_resolved, 1);
        assert_eq!(stats.windows_evaluated, 113);
        assert_eq!(stats.series, 1);
        assert_eq!(
            stats.watermark_ms,
            Some(BASE_MS + 113 * MINUTE_MS),
            "last event time, no allowed lateness"
        );
    }

    /// 90 minutes of about 20 views, then a rise that grows: 6 minutes of
    /// 60, 3 of 200, and 20 minutes of about 20 again.
    fn growing_scenario() -> Vec<Event> {
        let mut events = Vec::new();
        for minute in 0..119 {
            let count = match minute {
                90..96 => 60,
                96..99 => 200,
                _ => 20 + (minute * 7) % 5 - 2,
            };
            for index in 0..count {
                events.push(view(BASE_MS + minute * MINUTE_MS + index * (MINUTE_MS / count)));
            }
        }
        events.push(view(BASE_MS + 119 * MINUTE_MS));
        events
    }

    #[tokio::test]
    async fn growing_episode_escalates_once() {
        let (changes, stats) = run(growing_scenario()).await;

        let states: Vec<AnomalyState> = changes.iter().map(AnomalyEvent::state).collect();
        assert_eq!(
            states,
            vec![AnomalyState::Firing, AnomalyState::Escalated, AnomalyState::Resolved],
            "{changes:?}"
        );
        let (firing, escalation, resolution) = (&changes[0], &changes[1], &changes[2]);
        assert!(firing.severity() < v1::Severity::Critical, "{firing:?}");
        assert_eq!(escalation.id, firing.id);
        assert_eq!(escalation.window_start_ms, BASE_MS + 96 * MINUTE_MS);
        assert_eq!(escalation.severity(), v1::Severity::Critical);
        assert_eq!(escalation.direction(), firing.direction());
        assert_eq!(resolution.id, firing.id);
        assert_eq!(resolution.severity(), v1::Severity::Critical);
        assert_eq!(
            resolution.announced_severities,
            vec![firing.severity, v1::Severity::Critical as i32]
        );
        assert_eq!(
            (
                stats.anomalies_fired,
                stats.anomalies_escalated,
                stats.anomalies_resolved
            ),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn escalate_false_keeps_the_firing_severity() {
        let metrics = METRICS.replace("min_history_windows = 30", "min_history_windows = 30\nescalate = false");

        let (changes, stats) = run_with(&metrics, growing_scenario()).await;

        let states: Vec<AnomalyState> = changes.iter().map(AnomalyEvent::state).collect();
        assert_eq!(
            states,
            vec![AnomalyState::Firing, AnomalyState::Resolved],
            "{changes:?}"
        );
        assert_eq!(changes[1].severity, changes[0].severity);
        assert_eq!(changes[1].announced_severities, vec![changes[0].severity]);
        assert_eq!(stats.anomalies_escalated, 0);
    }

    #[tokio::test]
    async fn restored_escalation_is_not_sent_again() {
        let hub = Arc::new(AnomalyHub::new(HubConfig {
            replay_capacity: 1_000,
            live_capacity: 16,
            first_sequence: FIRST_SEQUENCE,
        }));
        let shared = SharedState::new(MetricsConfig::parse(METRICS).unwrap(), Arc::clone(&hub));
        let mut pipeline = Pipeline::new(shared);
        let (restored, live): (Vec<Event>, Vec<Event>) = growing_scenario()
            .into_iter()
            .partition(|event| event.event_time.timestamp_millis() < BASE_MS + 98 * MINUTE_MS);

        for event in restored {
            pipeline.restore_event(event);
        }
        pipeline.finish_restore();
        for event in live {
            pipeline.process(event);
        }

        assert_eq!(hub.latest_sequence(), FIRST_SEQUENCE, "one change published");
        let mut subscription = hub.subscribe(FIRST_SEQUENCE - 1, 0).unwrap();
        let resolution = subscription.next().await.unwrap();
        assert_eq!(resolution.state(), AnomalyState::Resolved);
        assert_eq!(resolution.severity(), v1::Severity::Critical);
        assert_eq!(resolution.announced_severities.len(), 2, "{resolution:?}");
    }

    #[tokio::test]
    async fn same_history_reproduces_ids() {
        let (first, _) = run(spike_scenario()).await;
        let (second, _) = run(spike_scenario()).await;

        let ids = |changes: &[AnomalyEvent]| {
            changes
                .iter()
                .map(|change| (change.id.clone(), change.state()))
                .collect::<Vec<_>>()
        };
        assert!(!first.is_empty());
        assert_eq!(ids(&first), ids(&second));
    }
}
