//! Experiment guardrails in the running detector: events with `exp_group`
//! through a real Kafka protocol broker (librdkafka's mock cluster), and the
//! sample-ratio and guardrail alerts read over a real gRPC client.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::mocking::MockCluster;
use seismo_detector::{KafkaSettings, MetricsConfig, ServiceConfig};
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Direction, Severity, StreamAnomaliesRequest};
use seismo_tests::grpc::connect;
use seismo_tests::kafka::produce_all;
use tokio_util::sync::CancellationToken;

const MINUTE_MS: i64 = 60_000;
const MINUTES: i64 = 30;
const USERS: i64 = 3_000;

/// Bound of every wait in this test; generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

const METRICS: &str = r#"
[windowing]
allowed_lateness = "0s"

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"

[[experiment]]
name = "feed"
groups = { "1" = 0.5, "2" = 0.5 }
control = "1"
min_users_per_group = 100

[[experiment.guardrail]]
name = "ctr"
numerator_event = "like"
denominator_event = "view"
degradation = "decrease"
mixture_sd = 0.02
"#;

/// Builds the scenario's events in time order. User `u` is active in minute
/// `u % MINUTES`, and two thirds of each minute's users are in group 2: a
/// 2:1 split against the configured 1:1. Group 2 likes about every 10th
/// view, group 1 about every 5th.
fn scenario_messages(base_ms: i64) -> Vec<String> {
    let mut messages = Vec::new();
    for minute in 0..MINUTES {
        for user in (minute..USERS).step_by(MINUTES as usize) {
            let (group, every) = if (user / MINUTES) % 3 == 0 { ("1", 5) } else { ("2", 10) };
            let views = 8 + user % 5;
            for view in 0..views {
                let time_ms = base_ms + minute * MINUTE_MS + view * 1_000;
                messages.push(event_json(time_ms, "view", user, group));
                if (view + user) % every == 0 {
                    messages.push(event_json(time_ms + 500, "like", user, group));
                }
            }
        }
    }
    messages.sort_by_key(|message| serde_json::from_str::<serde_json::Value>(message).unwrap()["event_time"].as_i64());
    messages
}

fn event_json(time_ms: i64, event: &str, user: i64, group: &str) -> String {
    serde_json::json!({
        "event_time": time_ms,
        "event": event,
        "user_id": format!("user-{user}"),
        "exp_group": group,
    })
    .to_string()
}

/// Builds an event that closes every window up to `time_ms`, from a user
/// outside the experiment.
fn closing_message(time_ms: i64) -> String {
    serde_json::json!({"event_time": time_ms, "event": "view", "user_id": "closer"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_alerts_on_sample_ratio_and_guardrail() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "detector-experiments-events";
    cluster.create_topic(topic, 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();

    let mut kafka = KafkaSettings::new(brokers.clone());
    kafka.topic = topic.to_string();
    kafka.group_id = "detector-experiments-test".to_string();
    let shutdown = CancellationToken::new();
    let detector = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(METRICS).unwrap(),
            kafka,
            listen: "127.0.0.1:0".parse().unwrap(),
            replay_buffer: 1_000,
            warm_start: None,
        },
        seismo_detector::Readiness::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let mut client = DetectorClient::new(connect(detector.local_addr()).await);
    let mut live = client
        .stream_anomalies(StreamAnomaliesRequest {
            metrics: vec![
                "experiment.feed.sample_ratio".to_string(),
                "experiment.feed.ctr".to_string(),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let now_ms = chrono::Utc::now().timestamp_millis();
    let base_ms = (now_ms - 2 * 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    produce_all(&brokers, topic, "events", &scenario_messages(base_ms))
        .await
        .unwrap();
    produce_all(
        &brokers,
        topic,
        "events",
        &[closing_message(base_ms + MINUTES * MINUTE_MS)],
    )
    .await
    .unwrap();

    // Both alerts arrive.
    let mut alerts: HashMap<String, AnomalyEvent> = HashMap::new();
    let read = async {
        while alerts.len() < 2 {
            let event = live
                .next()
                .await
                .expect("stream stays open")
                .expect("stream stays healthy");
            alerts.insert(event.metric.clone(), event);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("no alert for both tests within {WAIT:?}"));

    let srm = &alerts["experiment.feed.sample_ratio"];
    assert_eq!(srm.state(), AnomalyState::Firing);
    assert_eq!(srm.severity(), Severity::Critical);
    assert_eq!(srm.slice.len(), 1);
    assert_eq!(
        (srm.slice[0].name.as_str(), srm.slice[0].value.as_str()),
        ("exp_group", "2")
    );
    assert_eq!(srm.expected, 0.5);
    assert!(srm.value > 0.6, "observed share of group 2: {}", srm.value);
    assert!(srm.score > 0.95, "score {}", srm.score);

    let ctr = &alerts["experiment.feed.ctr"];
    assert_eq!(ctr.state(), AnomalyState::Firing);
    assert_eq!(ctr.direction(), Direction::Down);
    assert_eq!(ctr.slice[0].value, "2");
    assert!(
        ctr.value < ctr.lower,
        "treatment CTR {} inside band [{}, {}]",
        ctr.value,
        ctr.lower,
        ctr.upper
    );
    assert!((ctr.expected - 0.2).abs() < 0.03, "control CTR {}", ctr.expected);

    // More windows close, but each rejection is announced only once.
    produce_all(
        &brokers,
        topic,
        "events",
        &[closing_message(base_ms + (MINUTES + 5) * MINUTE_MS)],
    )
    .await
    .unwrap();
    let repeat = tokio::time::timeout(Duration::from_secs(3), live.next()).await;
    assert!(repeat.is_err(), "an alert was announced twice: {repeat:?}");

    shutdown.cancel();
    detector.wait().await.unwrap();
}
