//! The notifier's admin endpoints over HTTP on 127.0.0.1: the notifier runs
//! in-process with the admin server of `seismo-telemetry`, follows an
//! in-test detector gRPC server and sends to the fake Telegram Bot API.
//! Covers readiness without a detector, with one, after Telegram gave up and
//! at shutdown, and the `seismo_notifier_*` metrics after real deliveries.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seismo_notifier::{
    ExponentialBackoff, NotifierConfig, NotifierStats, RateLimits, Readiness, RetryPolicy, TelegramConfig, run,
};
use seismo_proto::v1::detector_server::{Detector, DetectorServer};
use seismo_proto::v1::{
    AnomalyEvent, AnomalyState, Direction, GetSeriesRequest, GetSeriesResponse, ListSeriesRequest, ListSeriesResponse,
    Severity, StreamAnomaliesRequest,
};
use seismo_telemetry::{install_metrics_recorder, start_admin_server};
use seismo_tests::fake_telegram::{FakeTelegram, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Upper bound of the test, far above its expected run time of about 1.5 s.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound of each wait for a condition.
const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";

type EventSender = mpsc::UnboundedSender<Result<AnomalyEvent, Status>>;

/// A detector that streams the events the test publishes to every open
/// subscription, without replay.
#[derive(Clone, Default)]
struct LiveDetector {
    streams: Arc<Mutex<Vec<EventSender>>>,
}

impl LiveDetector {
    fn publish(&self, event: AnomalyEvent) {
        self.streams
            .lock()
            .unwrap()
            .retain(|stream| stream.send(Ok(event.clone())).is_ok());
    }

    fn end_streams(&self) {
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.send(Err(Status::unavailable("detector is stopping")));
        }
    }
}

#[tonic::async_trait]
impl Detector for LiveDetector {
    type StreamAnomaliesStream = UnboundedReceiverStream<Result<AnomalyEvent, Status>>;

    async fn stream_anomalies(
        &self,
        _: Request<StreamAnomaliesRequest>,
    ) -> Result<Response<Self::StreamAnomaliesStream>, Status> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.streams.lock().unwrap().push(sender);
        Ok(Response::new(UnboundedReceiverStream::new(receiver)))
    }

    async fn get_series(&self, _: Request<GetSeriesRequest>) -> Result<Response<GetSeriesResponse>, Status> {
        Err(Status::unimplemented("the notifier does not read series"))
    }

    async fn list_series(&self, _: Request<ListSeriesRequest>) -> Result<Response<ListSeriesResponse>, Status> {
        Err(Status::unimplemented("the notifier does not list series"))
    }
}

/// Serves `detector` on `address` until `stop` fires.
async fn serve_detector(detector: &LiveDetector, address: SocketAddr, stop: CancellationToken) -> JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap_or_else(|error| panic!("binding the test detector to {address} failed: {error}"));
    let service = DetectorServer::new(detector.clone());
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.cancelled_owned())
            .await
            .expect("the test detector serves until stopped");
    })
}

/// Returns a port on 127.0.0.1 that was free a moment ago, so the notifier
/// can be pointed at a detector that is not running yet.
async fn free_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn anomaly(sequence: u64, episode: &str, state: AnomalyState) -> AnomalyEvent {
    let detected_at_ms = chrono::Utc::now().timestamp_millis() - 1_000;
    AnomalyEvent {
        id: episode.to_string(),
        sequence,
        state: state as i32,
        metric: "checkout_conversion".to_string(),
        slice: Vec::new(),
        window_start_ms: detected_at_ms - 301_000,
        window_end_ms: detected_at_ms - 1_000,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        score: 0.9,
        severity: Severity::Warning as i32,
        direction: Direction::Down as i32,
        window_seconds: 300,
        detected_at_ms,
        traceparent: String::new(),
        ..Default::default()
    }
}

fn notifier_config(detector: SocketAddr, fake: &FakeTelegram) -> NotifierConfig {
    let mut telegram = TelegramConfig::new(TOKEN, "1001", &fake.api_url()).expect("test Telegram settings are valid");
    // A 50 ms per-chat limit, so that the per-chat wait does not slow the
    // delivery that the duration histogram expects to be fast.
    telegram.rate_limits = RateLimits::default().with_windows_divided_by(20);
    NotifierConfig {
        detectors: vec![format!("http://{detector}")],
        metrics: Vec::new(),
        telegram: Some(telegram),
        console: false,
        reconnect: ExponentialBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
        connect_timeout: Duration::from_secs(2),
        delivery: RetryPolicy {
            max_attempts: 4,
            backoff: ExponentialBackoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            max_retry_after: Duration::from_secs(30),
        },
        shutdown_grace: Duration::from_secs(5),
        queue_capacity: 1024,
        ..NotifierConfig::default()
    }
}

/// Sends `GET path` over HTTP/1.1 and returns the status and body.
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();

    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Polls `GET /readyz` until its status is `status` and its body contains
/// `reason`, and returns the body. Panics with the last response after [`WAIT`].
async fn wait_for_readyz(admin: SocketAddr, status: u16, reason: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (actual_status, body) = get(admin, "/readyz").await;
        if actual_status == status && body.contains(reason) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not report {status} with `{reason}` within {WAIT:?}; last: {actual_status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scrapes /metrics until the sample `name` with exactly `labels` reaches
/// `value`, and returns that exposition. Panics after [`WAIT`].
async fn wait_for_sample(address: SocketAddr, name: &str, labels: &[(&str, &str)], value: f64) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, metrics) = get(address, "/metrics").await;
        assert_eq!(status, 200);
        if sample(&metrics, name, labels) == Some(value) {
            return metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} {labels:?} did not reach {value} within {WAIT:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns the value of the sample `name` whose labels are exactly `labels`,
/// from the Prometheus text format.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut expected: Vec<String> = labels.iter().map(|(key, value)| format!("{key}=\"{value}\"")).collect();
    expected.sort();

    exposition.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, mut series_labels) = match series.split_once('{') {
            Some((series_name, rest)) => (
                series_name,
                rest.trim_end_matches('}').split(',').map(str::to_string).collect(),
            ),
            None => (series, Vec::new()),
        };
        series_labels.sort();
        (series_name == name && series_labels == expected).then(|| value.parse().unwrap())
    })
}

#[tokio::test]
async fn notifier_admin_reports_readiness_and_metrics() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector_address = free_address().await;
        let stats = Arc::new(NotifierStats::default());
        let readiness = Readiness::default();
        let admin_stop = CancellationToken::new();
        let admin_server = start_admin_server(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            install_metrics_recorder(),
            readiness.clone(),
            admin_stop.clone(),
        )
        .await
        .expect("the admin server starts on an ephemeral port");
        let admin = admin_server.local_addr();
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run(
            notifier_config(detector_address, &fake),
            Arc::clone(&stats),
            readiness,
            cancel.clone(),
        ));

        // No detector listens yet: alive, but not ready, with the connect error.
        let (status, _) = get(admin, "/healthz").await;
        assert_eq!(status, 200);
        let body = wait_for_readyz(admin, 503, "connecting failed").await;
        assert!(body.contains("no detector anomaly stream connected"), "{body}");

        let detector = LiveDetector::default();
        let detector_stop = CancellationToken::new();
        let detector_task = serve_detector(&detector, detector_address, detector_stop.clone()).await;
        wait_for_readyz(admin, 200, "ready").await;

        // One 429 before the first delivery, so a retry is counted.
        fake.push_replies([Reply::RetryAfter(1)]);
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        fake.wait_for_delivered(1, WAIT).await;

        // Telegram rejects the next alert for good: not ready until one is delivered.
        fake.push_replies([Reply::BadRequest("Bad Request: chat not found".to_string())]);
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        let body = wait_for_readyz(admin, 503, "the telegram sink did not deliver the last alert").await;
        assert!(body.contains("1 of 1 Telegram chats"), "{body}");

        detector.publish(anomaly(3, "ep-1", AnomalyState::Resolved));
        fake.wait_for_delivered(2, WAIT).await;
        wait_for_readyz(admin, 200, "ready").await;

        // The sink reports the delivery to readiness before the alert's
        // outcome is counted, so the counters may lag /readyz briefly.
        let metrics = wait_for_sample(admin, "seismo_notifier_sent_total", &[("state", "resolved")], 1.0).await;
        for (state, received, sent) in [("firing", 2.0, 1.0), ("escalated", 0.0, 0.0), ("resolved", 1.0, 1.0)] {
            assert_eq!(
                sample(&metrics, "seismo_notifier_received_total", &[("state", state)]),
                Some(received),
                "received {state}: {metrics}"
            );
            assert_eq!(
                sample(&metrics, "seismo_notifier_sent_total", &[("state", state)]),
                Some(sent),
                "sent {state}: {metrics}"
            );
        }
        assert_eq!(
            sample(&metrics, "seismo_notifier_failed_total", &[("reason", "not_delivered")]),
            Some(1.0),
            "{metrics}"
        );
        assert_eq!(
            sample(&metrics, "seismo_notifier_retries_total", &[("reason", "rate_limited")]),
            Some(1.0),
            "{metrics}"
        );
        assert_eq!(
            sample(&metrics, "seismo_notifier_connected_detectors", &[]),
            Some(1.0),
            "{metrics}"
        );
        assert_eq!(
            sample(
                &metrics,
                "seismo_notifier_delivery_duration_seconds_count",
                &[("sink", "telegram"), ("outcome", "sent")]
            ),
            Some(2.0),
            "{metrics}"
        );
        assert_eq!(
            sample(
                &metrics,
                "seismo_notifier_delivery_duration_seconds_count",
                &[("sink", "telegram"), ("outcome", "failed")]
            ),
            Some(1.0),
            "{metrics}"
        );
        // Only the second delivery took at most 0.5 s, because the first
        // waited out the 1 s `retry_after`.
        let fast_deliveries = sample(
            &metrics,
            "seismo_notifier_delivery_duration_seconds_bucket",
            &[("sink", "telegram"), ("outcome", "sent"), ("le", "0.5")],
        );
        assert_eq!(fast_deliveries, Some(1.0), "{metrics}");
        assert_eq!(
            sample(&metrics, "seismo_notifier_detection_to_delivery_seconds_count", &[]),
            Some(2.0),
            "{metrics}"
        );
        assert!(metrics.contains("# HELP seismo_notifier_received_total "), "{metrics}");

        // The detector goes away: not ready, and the gauge drops to 0.
        detector_stop.cancel();
        let deadline = Instant::now() + WAIT;
        while !detector_task.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the test detector did not stop within {WAIT:?}"
            );
            detector.end_streams();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        wait_for_readyz(admin, 503, "no detector anomaly stream connected").await;
        let (_, metrics) = get(admin, "/metrics").await;
        assert_eq!(
            sample(&metrics, "seismo_notifier_connected_detectors", &[]),
            Some(0.0),
            "{metrics}"
        );

        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        let (status, body) = get(admin, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("shutting down"), "{body}");
        let totals = stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.failed), (3, 2, 1));

        admin_stop.cancel();
        admin_server.wait().await.unwrap();
    })
    .await
    .expect("test finished in time");
}
