//! The detector's processing core: event -> windows -> series detectors ->
//! anomaly hub. Synchronous; the Kafka source calls it for each event.

use std::sync::{Arc, Mutex, PoisonError};

use seismo_events::Event;
use seismo_proto::v1::AnomalyState;

use crate::config::MetricsConfig;
use crate::hub::AnomalyHub;
use crate::proto_mapping::anomaly_event;
use crate::series::SeriesRegistry;
use crate::stats::DetectorStats;
use crate::windowing::{ClosedWindow, Windower};

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
}

impl Pipeline {
    pub fn new(shared: SharedState) -> Pipeline {
        Pipeline {
            windower: Windower::new(&shared.config),
            shared,
            closed: Vec::new(),
        }
    }

    /// Adds one event; judges every window it closes and publishes each
    /// firing and resolution to the hub.
    pub fn process(&mut self, event: Event) {
        self.closed.clear();
        self.windower.push(event, &mut self.closed);
        self.shared.stats.set_windowing(&self.windower.counters());
        if self.closed.is_empty() {
            return;
        }

        let detected_at_ms = chrono::Utc::now().timestamp_millis();
        let mut registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut evaluated = 0;
        for closed in &self.closed {
            let Some(judgement) = registry.observe(closed) else {
                continue;
            };
            evaluated += 1;

            let metric = &self.shared.config.metrics[closed.metric_index];
            let Some(anomaly) = anomaly_event(&metric.name, metric.window, closed, &judgement, detected_at_ms) else {
                continue;
            };
            let state = anomaly.state();
            let id = anomaly.id.clone();
            let sequence = self.shared.hub.publish(anomaly);
            match state {
                AnomalyState::Firing => self.shared.stats.add_fired(),
                _ => self.shared.stats.add_resolved(),
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

        self.shared.stats.add_windows_evaluated(evaluated);
        self.shared.stats.set_series(registry.len() as u64);
    }
}
