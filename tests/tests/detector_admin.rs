//! The detector's admin endpoints over HTTP on 127.0.0.1: the detector runs
//! in-process with `seismo_telemetry::start_admin_server`, as the binary
//! wires it, and consumes from librdkafka's mock Kafka cluster. Covers
//! readiness at startup, when ready, without reachable brokers and after
//! shutdown, and the `seismo_detector_*` metrics after real detection work.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use rdkafka::mocking::MockCluster;
use seismo_detector::{KafkaSettings, MetricsConfig, Readiness, RunningDetector, ServiceConfig};
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyState, StreamAnomaliesRequest};
use seismo_telemetry::{AdminServer, install_metrics_recorder, start_admin_server};
use seismo_tests::admin_http::{get, metric_value, scrape, wait_for_readyz};
use seismo_tests::kafka::produce_all;
use seismo_tests::wait::wait_for;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Upper bound of one whole test, so a hang fails instead of blocking CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Upper bound of one awaited condition. The mock cluster's first group
/// join alone takes about 3 s; the rest is slack for a loaded machine.
const WAIT_TIMEOUT: Duration = Duration::from_secs(90);

const MINUTE_MS: i64 = 60_000;

/// Windows of normal traffic before the spike, enough to leave learning.
const HISTORY_WINDOWS: i64 = 90;
const SPIKE_WINDOWS: i64 = 3;
const RECOVERY_WINDOWS: i64 = 20;

/// One-minute windows of `view` counts, no lateness, a learning period far
/// shorter than the history above.
const METRICS: &str = r#"
[windowing]
allowed_lateness = "0s"

[detection]
min_history_windows = 30

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("seismo_detector=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Views per minute: about 20 with a fixed wobble, 200 during the spike.
fn views_in_minute(minute: i64) -> i64 {
    if (HISTORY_WINDOWS..HISTORY_WINDOWS + SPIKE_WINDOWS).contains(&minute) {
        return 200;
    }
    20 + (minute * 7) % 5 - 2
}

fn event_json(time_ms: i64, event: &str, os: &str) -> String {
    serde_json::json!({"event_time": time_ms, "event": event, "user_id": "user", "os": os}).to_string()
}

/// Event JSON messages for every minute of the spike scenario plus one
/// event that closes the last window, in time order. Returns them with the
/// time of the closing event.
fn scenario_messages(base_ms: i64) -> (Vec<String>, i64) {
    let total_minutes = HISTORY_WINDOWS + SPIKE_WINDOWS + RECOVERY_WINDOWS;
    let mut messages = Vec::new();
    for minute in 0..total_minutes {
        let count = views_in_minute(minute);
        for index in 0..count {
            let time_ms = base_ms + minute * MINUTE_MS + index * (MINUTE_MS / count);
            let os = if index % 2 == 0 { "iOS" } else { "Android" };
            messages.push(event_json(time_ms, "view", os));
        }
    }

    let closing_ms = base_ms + total_minutes * MINUTE_MS;
    messages.push(event_json(closing_ms, "view", "iOS"));
    (messages, closing_ms)
}

fn kafka_settings(brokers: &str, topic: &str, group: &str) -> KafkaSettings {
    let mut kafka = KafkaSettings::new(brokers);
    kafka.topic = topic.to_string();
    kafka.group_id = group.to_string();
    kafka.commit_interval = Duration::from_secs(1);
    kafka
}

/// Starts the admin server on a free port of 127.0.0.1, then the detector
/// with the same readiness, as the binary does.
async fn start_with_admin(
    kafka: KafkaSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<(RunningDetector, AdminServer, CancellationToken)> {
    let readiness = Readiness::default();
    let admin_shutdown = CancellationToken::new();
    let admin = start_admin_server(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        install_metrics_recorder(),
        readiness.clone(),
        admin_shutdown.clone(),
    )
    .await?;

    // Before the detector starts, the default reason shows.
    let (status, body) = get(admin.local_addr(), "/readyz").await?;
    ensure!(
        status == 503 && body.contains("starting"),
        "/readyz before start: {status} {body}"
    );

    let config = ServiceConfig {
        metrics: MetricsConfig::parse(METRICS)?,
        kafka,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        replay_buffer: 1_000,
        warm_start: None,
    };
    let detector = seismo_detector::start(config, readiness, shutdown).await?;
    Ok((detector, admin, admin_shutdown))
}

/// Waits until the gauge `series` in `/metrics` equals `expected`.
async fn wait_for_gauge(address: SocketAddr, series: &str, expected: f64) -> anyhow::Result<()> {
    wait_for(&format!("{series} = {expected}"), async || {
        let value = metric_value(&scrape(address).await?, series);
        Ok((value == Some(expected), format!("{value:?}")))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_admin_reports_work_and_shutdown() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, reports_work_and_shutdown())
        .await
        .context("test timed out")?
}

async fn reports_work_and_shutdown() -> anyhow::Result<()> {
    let topic = "detector-admin-events";
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(topic, 1, 1)?;
    let brokers = cluster.bootstrap_servers();

    let shutdown = CancellationToken::new();
    let kafka = kafka_settings(&brokers, topic, "detector-admin-test");
    let (detector, admin, admin_shutdown) = start_with_admin(kafka, shutdown.clone()).await?;
    let address = admin.local_addr();
    assert_eq!(get(address, "/healthz").await?.0, 200);

    // Ready once the gRPC server serves and the group assigned the partition.
    wait_for_readyz(address, 200, "ready").await?;

    // An open anomaly stream shows in the subscribers gauge.
    let mut client = DetectorClient::connect(format!("http://{}", detector.local_addr())).await?;
    let mut live = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: 0,
            metrics: vec![],
            ..Default::default()
        })
        .await?
        .into_inner();
    wait_for_gauge(address, "seismo_detector_grpc_subscribers", 1.0).await?;

    // Work: the spike scenario, then one message of each kind the
    // counters tell apart.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let base_ms = (now_ms - 6 * 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let (mut messages, closing_ms) = scenario_messages(base_ms);
    messages.push("not json".to_string());
    messages.push(event_json(base_ms, "view", "iOS"));
    messages.push(event_json(closing_ms, "click", "iOS"));
    produce_all(&brokers, topic, "views", &messages).await?;

    let stats = detector.stats();
    wait_for("every message received", async || {
        let snapshot = stats.snapshot();
        Ok((
            snapshot.messages_received == messages.len() as u64,
            format!("{snapshot:?}"),
        ))
    })
    .await?;
    let firing = tokio::time::timeout(WAIT_TIMEOUT, async {
        while let Some(change) = live.next().await {
            if change?.state() == AnomalyState::Firing {
                return Ok(());
            }
        }
        bail!("anomaly stream ended before a firing")
    })
    .await;
    firing.context("no firing anomaly on the stream")??;

    // Nothing arrives any more, so /metrics must equal the detector's own
    // counts.
    let snapshot = stats.snapshot();
    let metrics = scrape(address).await?;
    let expected = [
        ("seismo_detector_messages_total", messages.len() as u64),
        (r#"seismo_detector_invalid_total{reason="invalid_json"}"#, 1),
        ("seismo_detector_events_accepted_total", snapshot.events_accepted),
        ("seismo_detector_events_late_total", 1),
        ("seismo_detector_events_unmatched_total", 1),
        ("seismo_detector_windows_evaluated_total", snapshot.windows_evaluated),
        (
            r#"seismo_detector_anomalies_fired_total{metric="views"}"#,
            snapshot.anomalies_fired,
        ),
        (
            r#"seismo_detector_anomalies_resolved_total{metric="views"}"#,
            snapshot.anomalies_resolved,
        ),
        ("seismo_detector_series", snapshot.series),
    ];
    for (series, count) in expected {
        assert_eq!(
            metric_value(&metrics, series),
            Some(count as f64),
            "{series} in {metrics}"
        );
    }
    assert!(
        snapshot.windows_evaluated >= (HISTORY_WINDOWS + SPIKE_WINDOWS) as u64,
        "{snapshot:?}"
    );
    assert!(snapshot.anomalies_fired >= 1, "{snapshot:?}");
    assert_eq!(snapshot.series, 3, "total, os=iOS and os=Android: {snapshot:?}");
    let evaluations = metric_value(&metrics, "seismo_detector_evaluation_duration_seconds_count").unwrap_or_default();
    assert!(evaluations >= 1.0, "{metrics}");

    // The watermark is the closing event's time (no allowed lateness), and
    // the lag gauge is wall clock minus it, set every second.
    assert_eq!(snapshot.watermark_ms, Some(closing_ms));
    wait_for("the watermark lag gauge near wall clock − watermark", async || {
        let lag = metric_value(&scrape(address).await?, "seismo_detector_watermark_lag_seconds");
        let expected = (chrono::Utc::now().timestamp_millis() - closing_ms) as f64 / 1_000.0;
        let close = lag.is_some_and(|lag| (lag - expected).abs() < 5.0);
        Ok((close, format!("{lag:?}, expected about {expected}")))
    })
    .await?;

    // The client hangs up: the gauge goes back to 0.
    drop(live);
    drop(client);
    wait_for_gauge(address, "seismo_detector_grpc_subscribers", 0.0).await?;

    // Shutdown: not ready for good, while liveness stays up with the server.
    shutdown.cancel();
    tokio::time::timeout(WAIT_TIMEOUT, detector.wait())
        .await
        .context("detector did not stop in time")??;
    let (status, body) = get(address, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stopped"), "{body}");
    assert_eq!(get(address, "/healthz").await?.0, 200);

    admin_shutdown.cancel();
    admin.wait().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_admin_not_ready_without_kafka() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, not_ready_without_kafka())
        .await
        .context("test timed out")?
}

async fn not_ready_without_kafka() -> anyhow::Result<()> {
    // A port that was just free: no broker listens there.
    let closed_port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let brokers = format!("127.0.0.1:{closed_port}");
    let shutdown = CancellationToken::new();
    let kafka = kafka_settings(
        &brokers,
        "detector-admin-unreachable",
        "detector-admin-unreachable-test",
    );
    let (detector, admin, admin_shutdown) = start_with_admin(kafka, shutdown.clone()).await?;
    let address = admin.local_addr();

    // The gRPC server is up, but the consumer never joins a group.
    wait_for_readyz(address, 503, "waiting for a partition assignment").await?;
    assert_eq!(get(address, "/healthz").await?.0, 200);
    let mut client = DetectorClient::connect(format!("http://{}", detector.local_addr())).await?;
    let listed = client
        .list_series(seismo_proto::v1::ListSeriesRequest { metric: String::new() })
        .await?;
    assert!(listed.into_inner().series.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = get(address, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("partition assignment"), "{body}");

    shutdown.cancel();
    tokio::time::timeout(WAIT_TIMEOUT, detector.wait())
        .await
        .context("detector did not stop in time")??;
    let (status, body) = get(address, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stopped"), "{body}");

    admin_shutdown.cancel();
    admin.wait().await
}
