//! The detector service end to end: events through a real Kafka protocol
//! broker (librdkafka's mock cluster) into the in-process detector, and its
//! anomalies, series and health over a real tonic client.

use std::time::Duration;

use futures::StreamExt;
use rdkafka::mocking::MockCluster;
use seismo_detector::{KafkaSettings, MetricsConfig, ServiceConfig};
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{
    AnomalyEvent, AnomalyState, Dimension, GetSeriesRequest, ListSeriesRequest, StreamAnomaliesRequest,
};
use seismo_tests::grpc::connect;
use seismo_tests::kafka::produce_all;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const MINUTE_MS: i64 = 60_000;

/// Windows of normal traffic before the spike, enough to leave learning.
const HISTORY_WINDOWS: i64 = 90;
const SPIKE_WINDOWS: i64 = 3;
const RECOVERY_WINDOWS: i64 = 20;

/// One-minute windows and no lateness.
const WINDOWING: &str = r#"
[windowing]
allowed_lateness = "0s"
"#;

/// A learning period far shorter than the history above.
const DETECTION: &str = r#"
[detection]
min_history_windows = 30
"#;

const VIEWS_METRIC: &str = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;

/// Bound of every wait in this test; generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

/// Views per minute: about 20 with a fixed wobble, 200 during the spike.
fn views_in_minute(minute: i64) -> i64 {
    if (HISTORY_WINDOWS..HISTORY_WINDOWS + SPIKE_WINDOWS).contains(&minute) {
        return 200;
    }
    20 + (minute * 7) % 5 - 2
}

/// Event JSON messages for every minute of the scenario plus one event that
/// closes the last window, in time order.
fn scenario_messages(base_ms: i64) -> Vec<String> {
    let total_minutes = HISTORY_WINDOWS + SPIKE_WINDOWS + RECOVERY_WINDOWS;
    let mut messages = Vec::new();

    for minute in 0..total_minutes {
        let count = views_in_minute(minute);
        for index in 0..count {
            let time_ms = base_ms + minute * MINUTE_MS + index * (MINUTE_MS / count);
            let os = if index % 2 == 0 { "iOS" } else { "Android" };
            messages.push(
                serde_json::json!({
                    "event_time": time_ms,
                    "event": "view",
                    "user_id": format!("user-{index}"),
                    "os": os,
                })
                .to_string(),
            );
        }
    }

    let closing_ms = base_ms + total_minutes * MINUTE_MS;
    messages.push(serde_json::json!({"event_time": closing_ms, "event": "view", "user_id": "closer"}).to_string());
    messages
}

/// Reads the stream until the total series of `views` has fired and
/// resolved, returning every event read.
async fn read_until_resolved(stream: &mut tonic::Streaming<AnomalyEvent>) -> Vec<AnomalyEvent> {
    let mut events = Vec::new();
    let read = async {
        while let Some(event) = stream.next().await {
            let event = event.expect("anomaly stream stays healthy");
            let total_resolved = event.slice.is_empty() && event.state() == AnomalyState::Resolved;
            events.push(event);
            if total_resolved {
                return;
            }
        }
        panic!("anomaly stream ended before the total series resolved");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("no resolution of the total series within {WAIT:?}; events so far: {events:?}"));
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_streams_firing_then_resolution() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "detector-grpc-events";
    cluster.create_topic(topic, 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();

    let mut kafka = KafkaSettings::new(brokers.clone());
    kafka.topic = topic.to_string();
    kafka.group_id = "detector-grpc-test".to_string();
    kafka.commit_interval = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let detector = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(&format!("{WINDOWING}{DETECTION}{VIEWS_METRIC}")).unwrap(),
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
    let channel = connect(detector.local_addr()).await;

    // Health: overall and the detector service itself.
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "seismo.v1.Detector"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of {service:?}");
    }

    // Follow live changes before any event exists.
    let mut client = DetectorClient::new(channel.clone());
    let mut live = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: 0,
            metrics: vec!["views".to_string()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let now_ms = chrono::Utc::now().timestamp_millis();
    let base_ms = (now_ms - 6 * 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let messages = scenario_messages(base_ms);
    produce_all(&brokers, topic, "views", &messages).await.unwrap();

    let events = read_until_resolved(&mut live).await;
    let total: Vec<&AnomalyEvent> = events.iter().filter(|event| event.slice.is_empty()).collect();
    assert!(total.len() >= 2, "total series changes: {total:?}");
    let firing = total[total.len() - 2];
    let resolved = total[total.len() - 1];
    assert_eq!(firing.state(), AnomalyState::Firing, "{total:?}");
    assert_eq!(resolved.state(), AnomalyState::Resolved);
    assert_eq!(firing.id, resolved.id);
    assert!(firing.sequence < resolved.sequence);
    assert_eq!(firing.metric, "views");
    assert_eq!(firing.window_seconds, 60);
    let spike_start_ms = base_ms + HISTORY_WINDOWS * MINUTE_MS;
    assert!(
        (spike_start_ms..spike_start_ms + SPIKE_WINDOWS * MINUTE_MS).contains(&firing.window_start_ms),
        "fired at window {} outside the spike starting at {spike_start_ms}",
        firing.window_start_ms
    );
    assert!(
        firing.value > firing.upper,
        "firing value {} is not above the band {}",
        firing.value,
        firing.upper
    );
    assert!(resolved.window_start_ms > firing.window_start_ms);
    let sequences: Vec<u64> = events.iter().map(|event| event.sequence).collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "sequences not increasing: {sequences:?}"
    );

    // Resume right before the firing: the buffer replays it and what followed.
    let mut resumed = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: firing.sequence - 1,
            metrics: vec![],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut replayed = Vec::new();
    while replayed
        .last()
        .is_none_or(|event: &AnomalyEvent| event.sequence < resolved.sequence)
    {
        let next = tokio::time::timeout(WAIT, resumed.next())
            .await
            .expect("replay arrives in time")
            .expect("replay stream stays open")
            .unwrap();
        replayed.push(next);
    }
    assert_eq!(replayed.first(), Some(firing));
    assert_eq!(replayed.last(), Some(resolved));
    let expected: Vec<&AnomalyEvent> = events
        .iter()
        .filter(|event| event.sequence >= firing.sequence)
        .collect();
    assert_eq!(replayed.iter().collect::<Vec<_>>(), expected);

    // A cursor beyond the latest sequence is out of range.
    let ahead = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: resolved.sequence + 1_000,
            metrics: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(ahead.code(), tonic::Code::OutOfRange);

    // Series: points with bands, out of learning, with the spike marked.
    let series = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![],
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(series.window_seconds, 60);
    assert!(!series.learning);
    assert!(series.points.len() >= 100, "only {} points", series.points.len());
    assert!(
        series
            .points
            .iter()
            .any(|point| point.expected.is_some() && point.lower.is_some() && point.upper.is_some())
    );
    let spike_point = series
        .points
        .iter()
        .find(|point| point.window_start_ms == firing.window_start_ms)
        .expect("the firing window is among the points");
    assert_eq!(spike_point.value, 200.0);
    assert!(spike_point.anomalous);

    let limited = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![],
            limit: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limited.points.len(), 5);
    assert_eq!(limited.points.last(), series.points.last());

    let ios = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![Dimension {
                name: "os".to_string(),
                value: "iOS".to_string(),
            }],
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ios.points.is_empty());

    let missing = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![Dimension {
                name: "os".to_string(),
                value: "Symbian".to_string(),
            }],
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(missing.message().contains("views{os=Symbian}"), "{}", missing.message());

    let listed = client
        .list_series(ListSeriesRequest { metric: String::new() })
        .await
        .unwrap()
        .into_inner();
    let slices: Vec<String> = listed
        .series
        .iter()
        .map(|info| {
            info.slice
                .iter()
                .map(|dimension| format!("{}={}", dimension.name, dimension.value))
                .collect()
        })
        .collect();
    assert_eq!(
        slices,
        vec!["".to_string(), "os=Android".to_string(), "os=iOS".to_string()]
    );

    // Counters.
    let stats = detector.stats().snapshot();
    assert_eq!(stats.messages_received, messages.len() as u64);
    assert_eq!(stats.events_invalid, 0);
    assert_eq!(stats.events_late, 0);
    assert!(stats.anomalies_fired >= 1);
    assert!(stats.anomalies_resolved >= 1);
    assert!(stats.windows_evaluated >= 3 * (HISTORY_WINDOWS + SPIKE_WINDOWS) as u64);

    // Shutdown ends the live streams and the service.
    shutdown.cancel();
    tokio::time::timeout(WAIT, detector.wait())
        .await
        .expect("detector stops within the bound")
        .unwrap();
    // Changes sent before the shutdown may still be in flight; the stream
    // must end after them instead of staying open.
    let drained = async { while let Some(Ok(_)) = live.next().await {} };
    tokio::time::timeout(WAIT, drained)
        .await
        .expect("live stream ends after shutdown");
}

/// Service names the server lists through gRPC server reflection.
async fn reflected_services(channel: Channel) -> Vec<String> {
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.next())
        .await
        .expect("reflection answers in time")
        .expect("reflection sends one response")
        .unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|service| service.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

/// Service names listed through the older v1alpha reflection protocol,
/// which grpcurl before 1.9 uses.
async fn reflected_services_v1alpha(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.next())
        .await
        .expect("reflection answers in time")
        .expect("reflection sends one response")
        .unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|service| service.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_serves_health_reflection_and_counts_invalid() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "detector-grpc-invalid";
    cluster.create_topic(topic, 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();

    let mut kafka = KafkaSettings::new(brokers.clone());
    kafka.topic = topic.to_string();
    kafka.group_id = "detector-grpc-invalid-test".to_string();
    let shutdown = CancellationToken::new();
    let detector = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(&format!("{WINDOWING}{VIEWS_METRIC}")).unwrap(),
            kafka,
            listen: "127.0.0.1:0".parse().unwrap(),
            replay_buffer: 10,
            warm_start: None,
        },
        seismo_detector::Readiness::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();

    let now_ms = chrono::Utc::now().timestamp_millis();
    let messages = vec![
        "not json".to_string(),
        serde_json::json!({"event": "view", "user_id": "a"}).to_string(),
        serde_json::json!({"event_time": now_ms, "event": "view", "user_id": "a"}).to_string(),
    ];
    produce_all(&brokers, topic, "views", &messages).await.unwrap();

    let stats = detector.stats();
    let counted = async {
        while stats.snapshot().messages_received < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, counted)
        .await
        .expect("detector reads the 3 messages in time");
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.events_invalid, 2);

    let channel = connect(detector.local_addr()).await;
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: "seismo.v1.Detector".to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    let services = reflected_services(channel.clone()).await;
    assert!(services.contains(&"seismo.v1.Detector".to_string()), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health".to_string()), "{services:?}");

    let services = reflected_services_v1alpha(channel.clone()).await;
    assert!(
        services.contains(&"seismo.v1.Detector".to_string()),
        "v1alpha: {services:?}"
    );

    // Unknown metrics in a stream request are rejected up front.
    let mut client = DetectorClient::new(channel);
    let unknown = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: 0,
            metrics: vec!["clicks".to_string()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    assert!(unknown.message().contains("\"clicks\""), "{}", unknown.message());

    shutdown.cancel();
    tokio::time::timeout(WAIT, detector.wait())
        .await
        .expect("detector stops within the bound")
        .unwrap();
}
