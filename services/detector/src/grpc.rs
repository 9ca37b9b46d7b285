//! gRPC server: the `seismo.v1.Detector` service, the standard health
//! service and server reflection.

use std::sync::PoisonError;

use seismo_proto::v1::detector_server::{Detector, DetectorServer};
use seismo_proto::v1::{
    AnomalyEvent, GetSeriesRequest, GetSeriesResponse, ListSeriesRequest, ListSeriesResponse, SeriesInfo, SeriesPoint,
    StreamAnomaliesRequest,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::experiment_watch::alert_metric_names;
use crate::hub::Subscription;
use crate::pipeline::SharedState;
use crate::prometheus_metrics::GRPC_SUBSCRIBERS;
use crate::proto_mapping::{clamp_at_zero, slice_from_proto, slice_to_proto};
use crate::series::{SeriesKey, TrackedSeries};

/// Changes queued per stream before the forwarding task waits for the client.
const STREAM_QUEUE: usize = 64;

/// Implementation of `seismo.v1.Detector` over the shared detector state.
#[derive(Debug, Clone)]
pub struct DetectorService {
    shared: SharedState,
    /// Ends every open anomaly stream, so graceful shutdown does not wait
    /// for clients to hang up.
    shutdown: CancellationToken,
}

impl DetectorService {
    pub fn new(shared: SharedState, shutdown: CancellationToken) -> DetectorService {
        DetectorService { shared, shutdown }
    }

    fn check_metric(&self, metric: &str) -> Result<(), Status> {
        if self.shared.config.metric(metric).is_some() {
            return Ok(());
        }
        let known: Vec<&str> = self
            .shared
            .config
            .metrics
            .iter()
            .map(|metric| metric.name.as_str())
            .collect();
        Err(Status::not_found(format!(
            "metric \"{metric}\" is not configured; configured metrics: {}",
            known.join(", ")
        )))
    }
}

#[tonic::async_trait]
impl Detector for DetectorService {
    type StreamAnomaliesStream = ReceiverStream<Result<AnomalyEvent, Status>>;

    async fn stream_anomalies(
        &self,
        request: Request<StreamAnomaliesRequest>,
    ) -> Result<Response<Self::StreamAnomaliesStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        let request = request.into_inner();
        let experiment_metrics = alert_metric_names(&self.shared.config.experiments);
        for metric in &request.metrics {
            if experiment_metrics.contains(metric) {
                continue;
            }
            self.check_metric(metric)
                .map_err(|status| Status::invalid_argument(format!("invalid `metrics`: {}", status.message())))?;
        }

        let hub = &self.shared.hub;
        let subscription = hub
            .subscribe(request.after_sequence, request.stream_epoch)
            .map_err(|error| {
                tracing::warn!(
                    %peer,
                    after_sequence = request.after_sequence,
                    stream_epoch = request.stream_epoch,
                    %error,
                    "rejected anomaly stream cursor"
                );
                Status::out_of_range(format!("{error} (stream epoch {})", hub.epoch()))
            })?;
        tracing::info!(
            %peer,
            after_sequence = request.after_sequence,
            stream_epoch = request.stream_epoch,
            current_epoch = hub.epoch(),
            metrics = ?request.metrics,
            "anomaly subscriber connected"
        );

        let (sender, receiver) = mpsc::channel(STREAM_QUEUE);
        let open_stream = OpenStream::count();
        tokio::spawn(forward_anomalies(
            subscription,
            request.metrics,
            sender,
            self.shutdown.clone(),
            peer,
            open_stream,
        ));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn get_series(&self, request: Request<GetSeriesRequest>) -> Result<Response<GetSeriesResponse>, Status> {
        let request = request.into_inner();
        self.check_metric(&request.metric)?;
        let slice = slice_from_proto(&request.slice)
            .map_err(|problem| Status::invalid_argument(format!("invalid `slice`: {problem}")))?;
        let key = SeriesKey {
            metric: request.metric.clone(),
            slice,
        };

        let registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let series = registry.get(&key).ok_or_else(|| {
            Status::not_found(format!(
                "series {}{{{}}} is not tracked: it has no closed window yet or the slice does not exist; ListSeries shows the tracked series",
                key.metric, key.slice
            ))
        })?;

        let non_negative = self
            .shared
            .config
            .metric(&key.metric)
            .is_some_and(|metric| metric.value.is_non_negative());
        let points = recent_points(series, request.limit, non_negative);
        Ok(Response::new(GetSeriesResponse {
            metric: key.metric.clone(),
            slice: slice_to_proto(&key.slice),
            window_seconds: series.window.as_seconds(),
            learning: series.detector.is_learning(),
            points,
        }))
    }

    async fn list_series(&self, request: Request<ListSeriesRequest>) -> Result<Response<ListSeriesResponse>, Status> {
        let request = request.into_inner();
        let metric = if request.metric.is_empty() {
            None
        } else {
            self.check_metric(&request.metric)?;
            Some(request.metric.as_str())
        };

        let registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let series = registry
            .iter(metric)
            .map(|(key, series)| SeriesInfo {
                metric: key.metric.clone(),
                slice: slice_to_proto(&key.slice),
                learning: series.detector.is_learning(),
                points: series.detector.points().count() as u32,
            })
            .collect();
        Ok(Response::new(ListSeriesResponse { series }))
    }
}

/// Converts the `limit` most recent points of a series, oldest first, or
/// all of them when `limit` is 0. With `non_negative`, expected values and
/// lower edges below 0 are shown as 0.
fn recent_points(series: &TrackedSeries, limit: u32, non_negative: bool) -> Vec<SeriesPoint> {
    let floor = |value: f64| if non_negative { clamp_at_zero(value) } else { value };
    let window_ms = series.window.as_ms();
    let mut points: Vec<SeriesPoint> = series
        .detector
        .points()
        .map(|point| SeriesPoint {
            window_start_ms: point.window_start_ms,
            window_end_ms: point.window_start_ms + window_ms,
            value: point.value,
            expected: point.band.map(|band| floor(band.expected)),
            lower: point.band.map(|band| floor(band.lower)),
            upper: point.band.map(|band| band.upper),
            anomalous: point.anomalous,
            reference_only: point.reference_only,
        })
        .collect();

    if limit > 0 && points.len() > limit as usize {
        points.drain(..points.len() - limit as usize);
    }
    points
}

/// One open anomaly stream in the subscribers gauge, from creation until
/// drop, so the gauge also goes down if the forwarding task is aborted.
#[derive(Debug)]
struct OpenStream;

impl OpenStream {
    fn count() -> OpenStream {
        metrics::gauge!(GRPC_SUBSCRIBERS).increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(GRPC_SUBSCRIBERS).decrement(1.0);
    }
}

/// Sends a subscription's changes of the requested metrics to one client
/// until the client hangs up, the cursor falls out of the buffer or the
/// service shuts down. `_open_stream` is dropped when forwarding ends.
async fn forward_anomalies(
    mut subscription: Subscription,
    metrics: Vec<String>,
    sender: mpsc::Sender<Result<AnomalyEvent, Status>>,
    shutdown: CancellationToken,
    peer: String,
    _open_stream: OpenStream,
) {
    let reason = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break "shutdown",
            _ = sender.closed() => break "client disconnected",
            next = subscription.next() => next,
        };

        match next {
            Ok(event) => {
                if !metrics.is_empty() && !metrics.contains(&event.metric) {
                    continue;
                }
                if sender.send(Ok(event)).await.is_err() {
                    break "client disconnected";
                }
            }
            Err(error) => {
                tracing::warn!(%peer, %error, "anomaly subscriber fell behind the replay buffer");
                let _ = sender.send(Err(Status::out_of_range(error.to_string()))).await;
                break "fell behind the replay buffer";
            }
        }
    };
    tracing::info!(%peer, delivered_until = subscription.delivered_until(), reason, "anomaly subscriber disconnected");
}

/// Serves the detector, health and reflection services on `listener` until
/// `shutdown` fires. Health reports SERVING while the server runs and
/// NOT_SERVING once shutdown starts. Calls `on_serving` once the services
/// are set up, right before the server accepts connections.
pub async fn serve(
    listener: TcpListener,
    shared: SharedState,
    shutdown: CancellationToken,
    on_serving: impl FnOnce(),
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<DetectorServer<DetectorService>>().await;

    // Both reflection versions: grpcurl before 1.9 and many client libraries
    // still speak only v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(seismo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(seismo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let detector = DetectorServer::new(DetectorService::new(shared, shutdown.clone()));
    let stopping = async move {
        shutdown.cancelled().await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        health_reporter
            .set_not_serving::<DetectorServer<DetectorService>>()
            .await;
    };

    on_serving();
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(detector)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopping)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WindowLength;
    use crate::detection::{DetectionParams, SeriesDetector};

    #[test]
    fn old_points_are_reference_only() {
        const FIVE_MINUTES_MS: i64 = 300_000;
        let params = DetectionParams::default();
        let mut series = TrackedSeries {
            window: WindowLength::from_ms(FIVE_MINUTES_MS).unwrap(),
            detector: SeriesDetector::new(&params, FIVE_MINUTES_MS),
            open_episode: None,
        };
        for number in 0..9 * 288 {
            let value = 100.0 + (number % 288) as f64 + (number % 7) as f64;
            series.detector.observe(number * FIVE_MINUTES_MS, value).unwrap();
        }

        let points = recent_points(&series, 0, true);
        let full = params.residual_windows + 1;
        let (older, newer) = points.split_at(points.len() - full);

        assert!(!older.is_empty());
        assert!(older.iter().all(|point| point.reference_only));
        assert!(
            older
                .iter()
                .all(|point| point.expected.is_none() && point.lower.is_none())
        );
        assert!(newer.iter().all(|point| !point.reference_only));
        assert!(
            newer
                .iter()
                .all(|point| point.expected.is_some() && point.upper.is_some())
        );
        // A limit takes the newest points, which are all kept in full.
        let limited = recent_points(&series, 288, true);
        assert_eq!(limited.len(), 288);
        assert!(limited.iter().all(|point| !point.reference_only));
    }
}
