//! The detector service: Kafka source, pipeline and gRPC server, started
//! together and stopped by one cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::MetricsConfig;
use crate::grpc;
use crate::hub::{AnomalyHub, HubConfig};
use crate::kafka_source::{self, KafkaSettings};
use crate::pipeline::{Pipeline, SharedState};
use crate::stats::DetectorStats;

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
}

/// A started detector.
#[derive(Debug)]
pub struct RunningDetector {
    local_addr: SocketAddr,
    stats: Arc<DetectorStats>,
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

    /// Waits until the detector stopped, after the shutdown token fired or
    /// after the Kafka source or the gRPC server failed (which stops the
    /// other one).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("detector task panicked")?
    }
}

/// Binds the gRPC address, creates the Kafka consumer and starts both.
/// Fails early if the address is taken or the consumer cannot be created.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningDetector> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to listen on {}; choose a free address with --listen", config.listen))?;
    let local_addr = listener.local_addr().context("failed to read the bound gRPC address")?;
    let consumer = kafka_source::create_consumer(&config.kafka)?;

    let hub = Arc::new(AnomalyHub::new(HubConfig::starting_now(config.replay_buffer)));
    let metric_count = config.metrics.metrics.len();
    let shared = SharedState::new(config.metrics, hub);
    let stats = Arc::clone(&shared.stats);
    tracing::info!(
        listen = %local_addr,
        brokers = %config.kafka.brokers,
        topic = %config.kafka.topic,
        group_id = %config.kafka.group_id,
        metrics = metric_count,
        replay_buffer = config.replay_buffer,
        "detector started"
    );

    // Either part stopping (by shutdown or by failure) stops the other.
    let stop = shutdown.child_token();
    let server = tokio::spawn(stop_on_exit(grpc::serve(listener, shared.clone(), stop.clone()), stop.clone()));
    let source = tokio::spawn(stop_on_exit(
        kafka_source::run(consumer, Pipeline::new(shared.clone()), config.kafka, Arc::clone(&stats), stop.clone()),
        stop.clone(),
    ));

    let task = tokio::spawn(async move {
        let (server, source) = tokio::join!(server, source);
        let server = server.context("gRPC server task panicked")?.context("gRPC server failed");
        let source = source.context("Kafka source task panicked")?.context("Kafka source failed");
        tracing::info!("detector stopped");
        server.and(source)
    });

    Ok(RunningDetector { local_addr, stats, task })
}

async fn stop_on_exit<F>(part: F, stop: CancellationToken) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let result = part.await;
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "detector part failed; stopping the detector");
    }
    stop.cancel();
    result
}
