//! Root cause over the real stack: events through the Kafka mock cluster
//! into the detector, whose firing of a metric's total, read over gRPC,
//! names the slice that carries the anomaly first.

use std::time::Duration;

use futures::StreamExt;
use seismo_detector::{KafkaSettings, MetricsConfig, ServiceConfig};
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, StreamAnomaliesRequest};
use seismo_tests::kafka::MockKafka;
use tokio_util::sync::CancellationToken;

const MINUTE_MS: i64 = 60_000;
const HISTORY_WINDOWS: i64 = 90;
const SPIKE_WINDOWS: i64 = 3;

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
dimensions = ["os", "country"]
"#;

const WAIT: Duration = Duration::from_secs(90);

/// Views of one minute: about 10 on each of iOS, Android and Linux, spread
/// over two countries. During the spike Android gets 150 more, all from DE.
fn minute_messages(base_ms: i64, minute: i64) -> Vec<String> {
    let spike = (HISTORY_WINDOWS..HISTORY_WINDOWS + SPIKE_WINDOWS).contains(&minute);
    let mut messages = Vec::new();
    for (os, normal) in [("iOS", 10), ("Android", 10), ("Linux", 9)] {
        let count = normal + (minute * 7 + normal) % 3 + if spike && os == "Android" { 150 } else { 0 };
        for index in 0..count {
            let extra_spike_event = spike && os == "Android" && index >= normal;
            let country = if extra_spike_event || index % 2 == 0 {
                "DE"
            } else {
                "FR"
            };
            messages.push(
                serde_json::json!({
                    "event_time": base_ms + minute * MINUTE_MS + index * (MINUTE_MS / count),
                    "event": "view",
                    "user_id": format!("user-{os}-{index}"),
                    "os": os,
                    "country": country,
                })
                .to_string(),
            );
        }
    }
    messages
}

fn slice_text(slice: &[Dimension]) -> String {
    slice
        .iter()
        .map(|dimension| format!("{}={}", dimension.name, dimension.value))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_firing_names_spiking_slice_first() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    let topic = "detector-root-cause-events";
    kafka.create_topic(topic, 1)?;

    let mut settings = KafkaSettings::new(kafka.bootstrap_servers());
    settings.topic = topic.to_string();
    settings.group_id = "detector-root-cause-test".to_string();
    let shutdown = CancellationToken::new();
    let detector = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(METRICS)?,
            kafka: settings,
            listen: "127.0.0.1:0".parse()?,
            replay_buffer: 1_000,
            warm_start: None,
        },
        seismo_detector::Readiness::default(),
        shutdown.clone(),
    )
    .await?;
    let mut client = DetectorClient::connect(format!("http://{}", detector.local_addr())).await?;
    let mut stream = client
        .stream_anomalies(StreamAnomaliesRequest {
            metrics: vec!["views".to_string()],
            ..Default::default()
        })
        .await?
        .into_inner();

    let base_ms = (chrono::Utc::now().timestamp_millis() - 6 * 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let last_minute = HISTORY_WINDOWS + SPIKE_WINDOWS + 1;
    let messages: Vec<String> = (0..=last_minute)
        .flat_map(|minute| minute_messages(base_ms, minute))
        .collect();
    for chunk in messages.chunks(500) {
        let deliveries = chunk
            .iter()
            .map(|message| kafka.produce(topic, 0, None, message.as_bytes()));
        for delivery in futures::future::join_all(deliveries).await {
            delivery?;
        }
    }

    // Reads until both the total and the Android slice fired.
    let changes = tokio::time::timeout(WAIT, async {
        let mut seen: Vec<AnomalyEvent> = Vec::new();
        while let Some(event) = stream.next().await {
            seen.push(event.expect("anomaly stream stays healthy"));
            let fired = |slice: &str| {
                seen.iter()
                    .any(|event| event.state() == AnomalyState::Firing && slice_text(&event.slice) == slice)
            };
            if fired("") && fired("os=Android") {
                return seen;
            }
        }
        panic!("anomaly stream ended before the total and os=Android fired; changes so far: {seen:?}");
    })
    .await
    .expect("the total and os=Android fire within the wait");
    let firing = changes
        .iter()
        .find(|event| event.slice.is_empty() && event.state() == AnomalyState::Firing)
        .unwrap();

    assert_eq!(
        firing.window_start_ms,
        base_ms + HISTORY_WINDOWS * MINUTE_MS,
        "{firing:?}"
    );
    let contributors: Vec<String> = firing
        .contributors
        .iter()
        .map(|contribution| slice_text(&contribution.slice))
        .collect();
    assert!(contributors.len() >= 2, "contributors: {contributors:?}");
    assert!(
        ["os=Android", "country=DE"].contains(&contributors[0].as_str()),
        "most contributing slice {:?}; all: {contributors:?}",
        contributors[0]
    );
    assert!(
        contributors[..2].contains(&"os=Android".to_string()),
        "{contributors:?}"
    );
    assert!(
        contributors[..2].contains(&"country=DE".to_string()),
        "{contributors:?}"
    );

    let android = firing
        .contributors
        .iter()
        .find(|contribution| slice_text(&contribution.slice) == "os=Android")
        .unwrap();
    assert!(android.share > 0.8, "Android's share {}", android.share);
    assert!(android.value > 150.0, "Android's value {}", android.value);
    assert!(android.expected < 20.0, "Android's expected value {}", android.expected);
    let deviation = firing.value - firing.expected;
    assert!(((android.value - android.expected) / deviation - android.share).abs() < 1e-9);
    let shares: Vec<f64> = firing
        .contributors
        .iter()
        .map(|contribution| contribution.share)
        .collect();
    assert!(
        shares.windows(2).all(|pair| pair[0] >= pair[1]),
        "shares not descending: {shares:?}"
    );
    assert!(shares.iter().all(|share| *share > 0.0), "{shares:?}");

    // Slices carry no contributors, even when they fire in the same window.
    for event in changes.iter().filter(|event| !event.slice.is_empty()) {
        assert!(
            event.contributors.is_empty(),
            "slice change with contributors: {event:?}"
        );
    }

    shutdown.cancel();
    detector.wait().await?;
    Ok(())
}
