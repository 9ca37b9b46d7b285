//! Alert charts from a detector's GetSeries: the provider renders the
//! series' last day, returns nothing when the detector fails, and delivery
//! sends the chart as a photo with the alert as its caption.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use seismo_notifier::chart::provider::DetectorChartProvider;
use seismo_notifier::{
    ChartProvider, DeliveryHooks, NotifierConfig, NotifierStats, Readiness, SendAll, TelegramConfig, build_sinks,
    run_with_hooks,
};
use seismo_proto::v1::detector_server::{Detector, DetectorServer};
use seismo_proto::v1::{
    AnomalyEvent, AnomalyState, Dimension, Direction, GetSeriesRequest, GetSeriesResponse, ListSeriesRequest,
    ListSeriesResponse, SeriesPoint, Severity, StreamAnomaliesRequest,
};
use seismo_tests::fake_telegram::FakeTelegram;
use seismo_tests::scripted_detector::ScriptedDetector;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

const HOUR_MS: i64 = 3_600_000;
const TIMEOUT: Duration = Duration::from_secs(15);

/// A detector that serves one series: nine days of hourly windows with a
/// daily wave, a band around it, and a drop in the last three windows.
struct SeriesDetector {
    end_ms: i64,
}

#[tonic::async_trait]
impl Detector for SeriesDetector {
    type StreamAnomaliesStream = UnboundedReceiverStream<Result<AnomalyEvent, Status>>;

    async fn stream_anomalies(
        &self,
        _: Request<StreamAnomaliesRequest>,
    ) -> Result<Response<Self::StreamAnomaliesStream>, Status> {
        Err(Status::unimplemented("this detector only serves series"))
    }

    async fn get_series(&self, request: Request<GetSeriesRequest>) -> Result<Response<GetSeriesResponse>, Status> {
        let request = request.into_inner();
        if request.metric != "views" {
            return Err(Status::not_found(format!("series {} is not tracked", request.metric)));
        }
        let points = (0..9 * 24)
            .rev()
            .map(|hours_back| {
                let end = self.end_ms - hours_back * HOUR_MS;
                let phase = (end / HOUR_MS % 24) as f64 / 24.0 * std::f64::consts::TAU;
                let expected = 1000.0 + 400.0 * phase.sin();
                let anomalous = hours_back < 3;
                // Like the detector, only the last day keeps its bands.
                let reference_only = hours_back >= 24;
                let band = |factor: f64| (!reference_only).then_some(expected * factor);
                SeriesPoint {
                    window_start_ms: end - HOUR_MS,
                    window_end_ms: end,
                    value: if anomalous {
                        expected * 0.4
                    } else {
                        expected * (1.0 + 0.02 * ((hours_back % 5) as f64 - 2.0))
                    },
                    expected: band(1.0),
                    lower: band(0.85),
                    upper: band(1.15),
                    anomalous,
                    reference_only,
                }
            })
            .collect();
        Ok(Response::new(GetSeriesResponse {
            metric: request.metric,
            slice: request.slice,
            window_seconds: 3600,
            learning: false,
            points,
        }))
    }

    async fn list_series(&self, _: Request<ListSeriesRequest>) -> Result<Response<ListSeriesResponse>, Status> {
        Err(Status::unimplemented("this detector lists no series"))
    }
}

/// Serves a [`SeriesDetector`] on 127.0.0.1 until `stop` fires; returns its URL.
async fn serve_series(end_ms: i64, stop: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .add_service(DetectorServer::new(SeriesDetector { end_ms }))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.cancelled_owned())
            .await
            .unwrap();
    });
    format!("http://{address}")
}

fn alert_event(metric: &str, end_ms: i64) -> AnomalyEvent {
    AnomalyEvent {
        id: "00000000000000c1".to_string(),
        sequence: 1,
        state: AnomalyState::Firing as i32,
        metric: metric.to_string(),
        slice: vec![Dimension {
            name: "os".to_string(),
            value: "iOS".to_string(),
        }],
        window_start_ms: end_ms - HOUR_MS,
        window_end_ms: end_ms,
        value: 400.0,
        expected: 1000.0,
        lower: 850.0,
        upper: 1150.0,
        score: 0.95,
        severity: Severity::Critical as i32,
        direction: Direction::Down as i32,
        window_seconds: 3600,
        detected_at_ms: end_ms + 1_000,
        ..AnomalyEvent::default()
    }
}

/// Returns how many pixels of the PNG have exactly `color`.
fn count_pixels(png_bytes: &[u8], color: [u8; 3]) -> usize {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels[..info.buffer_size()]
        .chunks(3)
        .filter(|pixel| *pixel == color)
        .count()
}

fn hour_aligned_now() -> i64 {
    Utc::now().timestamp_millis() / HOUR_MS * HOUR_MS
}

#[tokio::test]
async fn chart_renders_detector_series() {
    let end_ms = hour_aligned_now();
    let stop = CancellationToken::new();
    let url = serve_series(end_ms, stop.clone()).await;
    let provider = DetectorChartProvider::new(&[url], Duration::from_secs(5), chrono_tz::Europe::Moscow).unwrap();

    let png = provider
        .chart(&alert_event("views", end_ms))
        .await
        .expect("a chart for a served series");

    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The anomaly markers are drawn in this red, and nothing else is.
    assert!(count_pixels(&png, [210, 40, 40]) > 50, "no anomaly markers");
    // The value line is drawn in this blue.
    assert!(count_pixels(&png, [31, 100, 180]) > 500, "no value line");
    // The week-earlier line is drawn in this grey.
    assert!(count_pixels(&png, [150, 150, 150]) > 500, "no week-earlier line");
    if let Ok(path) = std::env::var("SEISMO_SAMPLE_ALERT_CHART") {
        std::fs::write(path, &png).unwrap();
    }
    stop.cancel();
}

#[tokio::test]
async fn chart_is_none_when_detector_fails() {
    let end_ms = hour_aligned_now();
    let stop = CancellationToken::new();
    let url = serve_series(end_ms, stop.clone()).await;
    // A port that was just free, so nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };

    let unreachable =
        DetectorChartProvider::new(std::slice::from_ref(&closed), Duration::from_secs(2), chrono_tz::UTC).unwrap();
    let started = Instant::now();
    assert!(unreachable.chart(&alert_event("views", end_ms)).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let untracked =
        DetectorChartProvider::new(std::slice::from_ref(&url), Duration::from_secs(2), chrono_tz::UTC).unwrap();
    assert!(untracked.chart(&alert_event("likes", end_ms)).await.is_none());

    // The first detector fails, the second one serves the series.
    let fallback = DetectorChartProvider::new(&[closed, url], Duration::from_secs(2), chrono_tz::UTC).unwrap();
    assert!(fallback.chart(&alert_event("views", end_ms)).await.is_some());
    stop.cancel();
}

#[tokio::test]
async fn alert_goes_out_as_photo_with_caption() {
    let end_ms = hour_aligned_now();
    let stop = CancellationToken::new();
    let series_url = serve_series(end_ms, stop.clone()).await;
    let fake = FakeTelegram::start().await;
    let detector = ScriptedDetector::default();
    let server = detector.serve().await;
    let config = NotifierConfig {
        detectors: vec![server.url()],
        telegram: Some(TelegramConfig::new("123:secret", "-100222", &fake.api_url()).unwrap()),
        shutdown_grace: Duration::from_secs(2),
        ..NotifierConfig::default()
    };
    let hooks = DeliveryHooks {
        gate: Arc::new(SendAll),
        charts: Arc::new(DetectorChartProvider::new(&[series_url], Duration::from_secs(5), chrono_tz::UTC).unwrap()),
        buttons: None,
    };
    let stats = Arc::new(NotifierStats::default());
    let cancel = CancellationToken::new();
    let sinks = build_sinks(&config, &stats);
    let notifier = tokio::spawn(run_with_hooks(
        config,
        sinks,
        hooks,
        Arc::clone(&stats),
        Readiness::default(),
        cancel.clone(),
    ));
    detector.wait_for_subscriptions(1, TIMEOUT).await;

    detector.publish(alert_event("views", end_ms));
    let photos = fake.wait_for_requests("sendphoto", 1, TIMEOUT).await;

    assert_eq!(photos[0].status, 200);
    assert_eq!(photos[0].body["chat_id"], -100_222);
    let caption = photos[0].body["caption"].as_str().unwrap();
    assert!(caption.contains("views"), "{caption}");
    assert!(count_pixels(photos[0].photo.as_deref().unwrap(), [210, 40, 40]) > 50);
    cancel.cancel();
    tokio::time::timeout(TIMEOUT, notifier).await.unwrap().unwrap().unwrap();
    server.stop().await;
    stop.cancel();
}
