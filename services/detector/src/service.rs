//! The detector service: Kafka source, pipeline and gRPC server, started
//! together and stopped by one cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use seismo_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{MetricDefinition, MetricsConfig, WindowingSettings, format_duration_ms};
use crate::detection::{MethodName, ResidualScale, SeriesDetector};
use crate::grpc;
use crate::hub::{AnomalyHub, HubConfig};
use crate::kafka_source::{self, KafkaSettings};
use crate::pipeline::{Pipeline, SharedState};
use crate::prometheus_metrics::{WATERMARK_LAG, register_metrics};
use crate::readiness::ReadinessTracker;
use crate::stats::DetectorStats;
use crate::warm_start::{self, WarmStartOutcome, WarmStartSettings};

/// Interval of the watermark lag gauge's update. The lag grows while no
/// events arrive, so the gauge is set on a timer, not per event.
const WATERMARK_LAG_INTERVAL: Duration = Duration::from_secs(1);

/// Everything a detector needs to run.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub metrics: MetricsConfig,
    pub kafka: KafkaSettings,
    /// gRPC listen address; port 0 picks a free port, see
    /// [`RunningDetector::local_addr`].
    pub listen: SocketAddr,
    /// Anomaly changes kept for clients that resume with `after_sequence`.
    pub replay_buffer: usize,
    /// History to load from ClickHouse before consuming; `None` starts
    /// without history, so every series learns first.
    pub warm_start: Option<WarmStartSettings>,
}

/// A started detector.
#[derive(Debug)]
pub struct RunningDetector {
    local_addr: SocketAddr,
    stats: Arc<DetectorStats>,
    warm_start: watch::Receiver<Option<WarmStartOutcome>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningDetector {
    /// Address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Live counters, readable while the detector runs.
    pub fn stats(&self) -> Arc<DetectorStats> {
        Arc::clone(&self.stats)
    }

    /// Waits until the warm start ended and returns its outcome; `None`
    /// without a configured warm start, or if the detector stopped first.
    pub async fn warm_start_outcome(&self) -> Option<WarmStartOutcome> {
        let mut receiver = self.warm_start.clone();
        let outcome = receiver.wait_for(Option::is_some).await.ok()?;
        outcome.clone()
    }

    /// Waits until the detector stopped, after the shutdown token fired or
    /// after the Kafka source or the gRPC server failed (which stops the
    /// other one).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("detector task panicked")?
    }
}

/// Binds the gRPC address, creates the Kafka consumer and starts both.
/// Fails early if the address is taken, the consumer cannot be created or
/// the warm start settings are invalid.
///
/// With `config.warm_start` set, the history is loaded before the consumer
/// subscribes (see [`crate::warm_start`]), while gRPC already serves. A
/// ClickHouse or Kafka failure during it does not fail the start, because
/// after its retry budget the detector starts without history.
///
/// `readiness` becomes ready once the gRPC server serves and the consumer
/// got its first partition assignment from the group. It is not ready for
/// good from the moment shutdown starts or a part fails. Pass
/// `Readiness::default()` when nothing reads it.
///
/// Metrics named `seismo_detector_*` are recorded through the `metrics`
/// facade. Install the recorder before this call, because the facade drops
/// the descriptions registered here when no recorder is installed.
pub async fn start(
    config: ServiceConfig,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningDetector> {
    register_metrics();
    warm_start::register_metrics();
    if let Some(warm_start) = &config.warm_start {
        warm_start.validate().map_err(anyhow::Error::msg)?;
    }
    let readiness = Arc::new(ReadinessTracker::new(readiness));
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "failed to listen on {}; choose a free address with --listen",
            config.listen
        )
    })?;
    let local_addr = listener.local_addr().context("failed to read the bound gRPC address")?;
    let consumer = kafka_source::create_consumer(&config.kafka, Arc::clone(&readiness))?;

    let hub = Arc::new(AnomalyHub::new(HubConfig::starting_now(config.replay_buffer)));
    let metric_count = config.metrics.metrics.len();
    let experiment_names: Vec<String> = config
        .metrics
        .experiments
        .iter()
        .map(|experiment| experiment.name.clone())
        .collect();
    log_windowing_settings(&config.metrics.windowing);
    for metric in &config.metrics.metrics {
        log_metric_settings(metric);
    }
    let shared = SharedState::new(config.metrics, Arc::clone(&hub));
    let stats = Arc::clone(&shared.stats);
    tracing::info!(
        listen = %local_addr,
        brokers = %config.kafka.brokers,
        topic = %config.kafka.topic,
        group_id = %config.kafka.group_id,
        metrics = metric_count,
        experiments = ?experiment_names,
        replay_buffer = config.replay_buffer,
        stream_epoch = hub.epoch(),
        warm_start = config.warm_start.is_some(),
        "detector started"
    );

    // Either part stopping (by shutdown or by failure) stops the other.
    let stop = shutdown.child_token();
    let on_serving = {
        let readiness = Arc::clone(&readiness);
        move || readiness.grpc_serving()
    };
    let server = tokio::spawn(stop_on_exit(
        grpc::serve(listener, shared.clone(), stop.clone(), on_serving),
        stop.clone(),
    ));
    let (warm_start_sender, warm_start) = watch::channel(None);
    let source = tokio::spawn(stop_on_exit(
        consume(
            consumer,
            Pipeline::new(shared.clone()),
            config.kafka,
            config.warm_start.map(|settings| (settings, warm_start_sender)),
            Arc::clone(&stats),
            stop.clone(),
        ),
        stop.clone(),
    ));

    let task = tokio::spawn(supervise(server, source, readiness, Arc::clone(&stats), stop));

    Ok(RunningDetector {
        local_addr,
        stats,
        warm_start,
        task,
    })
}

/// Logs the `[windowing]` settings in effect, defaults included.
fn log_windowing_settings(windowing: &WindowingSettings) {
    tracing::info!(
        allowed_lateness = %format_duration_ms(windowing.allowed_lateness_ms),
        max_future_jump = %format_duration_ms(windowing.max_future_jump_ms),
        future_confirmations = windowing.future_confirmations,
        max_held_events = windowing.max_held_events,
        series_idle_limit = %format_duration_ms(windowing.series_idle_limit_ms),
        max_slices_per_dimension = windowing.max_slices_per_dimension,
        partition_idle_timeout = %format_duration_ms(windowing.partition_idle_timeout_ms),
        "windowing configured"
    );
}

/// Logs the detection settings in effect for `metric`, which defaults for
/// its aggregation may have filled in, so an operator can check them.
fn log_metric_settings(metric: &MetricDefinition) {
    let detection = &metric.detection;
    let detector = SeriesDetector::new(detection, metric.window.as_ms());
    tracing::info!(
        metric = %metric.name,
        window_ms = metric.window.as_ms(),
        dimensions = ?metric.dimensions,
        method = %detection.method,
        residual_scale = detection.effective_residual_scale().as_str(),
        level_adjustment = detection.level_adjustment.as_str(),
        reference_windows = detection.reference_windows,
        seasonality = detection.seasonality.as_str(),
        weekly_reference = detection.weekly_reference.as_str(),
        reads_hour_means = detector.reads_hour_means(),
        history_windows = detector.history_windows(),
        learn_daily_recurrence = detection.learn_daily_recurrence,
        fire_outside = detection.fire_outside,
        fire_lookback = detection.fire_lookback,
        fire_ratio = detection.fire_ratio.unwrap_or(detection.critical_ratio),
        critical_ratio = detection.critical_ratio,
        escalate = detection.escalate,
        fire_tail_probability = detection.fire_tail_probability,
        "metric configured"
    );
    if let Some(problem) = SeriesDetector::hourly_reference_unused(detection, metric.window.as_ms()) {
        tracing::warn!(metric = %metric.name, window_ms = metric.window.as_ms(), "{problem}");
    }

    let reads_scale = matches!(
        detection.method,
        MethodName::RobustBand | MethodName::Forecast | MethodName::Ensemble
    );
    if reads_scale && detection.effective_residual_scale() == ResidualScale::Sqrt && !metric.value.counts_events() {
        tracing::warn!(
            metric = %metric.name,
            "residual_scale = \"sqrt\" is meant for counts of events, but this metric is a sum or a ratio: \
             its values count as at least 1, so its band is at least band_sigmas wide on each side; \
             give it residual_scale = \"absolute\", and if [detection] sets sqrt, move that to the count metrics"
        );
    }
}

/// Runs the warm start, if configured, and sends its outcome, then runs
/// the Kafka source.
async fn consume(
    consumer: kafka_source::SourceConsumer,
    mut pipeline: Pipeline,
    kafka: KafkaSettings,
    warm_start: Option<(WarmStartSettings, watch::Sender<Option<WarmStartOutcome>>)>,
    stats: Arc<DetectorStats>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    if let Some((settings, outcome_sender)) = warm_start {
        let outcome = warm_start::run(&settings, &kafka, &mut pipeline, &stop).await;
        let cancelled = outcome == WarmStartOutcome::Cancelled;
        outcome_sender.send_replace(Some(outcome));
        if cancelled {
            return Ok(());
        }
    }
    kafka_source::run(consumer, pipeline, kafka, stats, stop).await
}

/// Waits until both parts stopped, meanwhile marks readiness shutting down
/// once `stop` fires and updates the watermark lag gauge. Returns the
/// parts' errors.
async fn supervise(
    server: JoinHandle<anyhow::Result<()>>,
    source: JoinHandle<anyhow::Result<()>>,
    readiness: Arc<ReadinessTracker>,
    stats: Arc<DetectorStats>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let parts = async { tokio::join!(server, source) };
    let stopping = async {
        stop.cancelled().await;
        readiness.stopping("shutting down".to_string());
    };
    let ((server, source), (), ()) = tokio::join!(parts, stopping, update_watermark_lag(&stats, &stop));

    let server = server
        .context("gRPC server task panicked")?
        .context("gRPC server failed");
    let source = source
        .context("Kafka source task panicked")?
        .context("Kafka source failed");
    let result = server.and(source);
    let reason = match &result {
        Ok(()) => "stopped".to_string(),
        Err(error) => format!("stopped: {error:#}"),
    };
    readiness.stopping(reason);
    tracing::info!("detector stopped");
    result
}

/// Sets the watermark lag gauge to wall clock − watermark, in seconds,
/// every [`WATERMARK_LAG_INTERVAL`] until `stop` fires. The gauge stays
/// absent until the first window could close, so also while a Kafka
/// partition that never delivered holds every window open. It is negative
/// while the watermark is ahead of this host's clock.
async fn update_watermark_lag(stats: &DetectorStats, stop: &CancellationToken) {
    let mut ticks = tokio::time::interval(WATERMARK_LAG_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }

        if let Some(watermark_ms) = stats.watermark_ms() {
            let lag_ms = chrono::Utc::now().timestamp_millis() - watermark_ms;
            metrics::gauge!(WATERMARK_LAG).set(lag_ms as f64 / 1_000.0);
        }
    }
}

async fn stop_on_exit<F>(part: F, stop: CancellationToken) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let result = part.await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "detector part failed; stopping the detector"
        );
    }
    stop.cancel();
    result
}
