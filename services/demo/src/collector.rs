//! A gRPC subscriber that records every anomaly event a detector streams.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, StreamAnomaliesRequest};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Anomaly events received so far, in stream order.
#[derive(Debug, Clone, Default)]
pub struct CollectedAnomalies(Arc<Mutex<Vec<AnomalyEvent>>>);

impl CollectedAnomalies {
    pub fn snapshot(&self) -> Vec<AnomalyEvent> {
        self.0.lock().expect("collector lock is never poisoned").clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().expect("collector lock is never poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Subscribes to the detector at `endpoint` (`http://host:port`) from the
/// start of its replay buffer and records every event until `shutdown`.
pub async fn collect_anomalies(
    endpoint: String,
    shutdown: CancellationToken,
) -> anyhow::Result<(CollectedAnomalies, JoinHandle<anyhow::Result<()>>)> {
    let mut client = connect_with_retry(&endpoint, Duration::from_secs(30)).await?;
    let mut stream = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: 0,
            metrics: Vec::new(),
            ..Default::default()
        })
        .await?
        .into_inner();

    let collected = CollectedAnomalies::default();
    let sink = collected.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                message = stream.message() => match message? {
                    Some(event) => sink.0.lock().expect("collector lock is never poisoned").push(event),
                    None => return Ok(()),
                },
            }
        }
    });
    Ok((collected, task))
}

async fn connect_with_retry(
    endpoint: &str,
    timeout: Duration,
) -> anyhow::Result<DetectorClient<tonic::transport::Channel>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match DetectorClient::connect(endpoint.to_string()).await {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(endpoint, %error, "detector not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "cannot connect to the detector at {endpoint} within {} s: {error}",
                    timeout.as_secs()
                ));
            }
        }
    }
}
