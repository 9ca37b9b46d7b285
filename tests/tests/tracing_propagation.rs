//! W3C trace context from Kafka message headers through the detector's
//! window evaluation and the anomaly's `traceparent` field to the notifier's
//! delivery span. The real detector and notifier run in-process, Kafka is
//! librdkafka's mock cluster, and an in-memory exporter records the spans.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use seismo_detector::{KafkaSettings, MetricsConfig, ServiceConfig};
use seismo_notifier::{NotifierConfig, NotifierStats};
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, AnomalyState, StreamAnomaliesRequest};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const MINUTE_MS: i64 = 60_000;
const HISTORY_WINDOWS: i64 = 90;
const SPIKE_WINDOWS: i64 = 3;
const RECOVERY_WINDOWS: i64 = 20;

/// One-minute windows of `view` counts, learning for 30 windows.
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
"#;

/// Bound of every wait in this test; generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

/// Installs, once per test binary, a subscriber whose OpenTelemetry layer
/// exports every span to the returned in-memory exporter as it ends.
fn span_exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing-propagation-test")))
            .init();
        exporter
    })
}

/// Trace id of the messages of `minute`: one trace per minute of traffic.
fn trace_id(minute: i64) -> TraceId {
    TraceId::from(0x5e15_0000_0000_0000_u128 + minute as u128 + 1)
}

/// Span id of message `index` within its minute.
fn span_id(minute: i64, index: i64) -> SpanId {
    SpanId::from(((minute as u64 + 1) << 16) + index as u64 + 1)
}

fn traceparent(minute: i64, index: i64) -> String {
    format!("00-{}-{}-01", trace_id(minute), span_id(minute, index))
}

fn views_in_minute(minute: i64) -> i64 {
    if (HISTORY_WINDOWS..HISTORY_WINDOWS + SPIKE_WINDOWS).contains(&minute) {
        return 200;
    }
    20 + (minute * 7) % 5 - 2
}

/// (payload, traceparent) of every message in time order, plus one that
/// closes the last window.
fn scenario_messages(base_ms: i64) -> Vec<(String, String)> {
    let total_minutes = HISTORY_WINDOWS + SPIKE_WINDOWS + RECOVERY_WINDOWS;
    let mut messages = Vec::new();

    for minute in 0..=total_minutes {
        let count = if minute == total_minutes {
            1
        } else {
            views_in_minute(minute)
        };
        for index in 0..count {
            let time_ms = base_ms + minute * MINUTE_MS + index * (MINUTE_MS / count);
            let payload = serde_json::json!({
                "event_time": time_ms,
                "event": "view",
                "user_id": format!("user-{index}"),
            });
            messages.push((payload.to_string(), traceparent(minute, index)));
        }
    }
    messages
}

async fn produce(brokers: &str, topic: &str, messages: &[(String, String)]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();

    for chunk in messages.chunks(500) {
        let deliveries = chunk.iter().map(|(payload, traceparent)| {
            let headers = OwnedHeaders::new().insert(Header {
                key: "traceparent",
                value: Some(traceparent),
            });
            let record = FutureRecord::to(topic).key("views").payload(payload).headers(headers);
            producer.send(record, Duration::from_secs(10))
        });
        for delivery in futures::future::join_all(deliveries).await {
            delivery
                .map_err(|(error, _)| error)
                .expect("mock cluster accepts the event");
        }
    }
}

/// Reads the stream until the series has fired and resolved; returns the
/// firing and the resolution.
async fn read_episode(stream: &mut tonic::Streaming<AnomalyEvent>) -> (AnomalyEvent, AnomalyEvent) {
    let read = async {
        let mut firing = None;
        while let Some(event) = stream.next().await {
            let event = event.expect("anomaly stream stays healthy");
            match event.state() {
                AnomalyState::Firing => firing = Some(event),
                AnomalyState::Resolved => return (firing.expect("a resolution follows a firing"), event),
                _ => {}
            }
        }
        panic!("anomaly stream ended before the series resolved");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the series fires and resolves in time")
}

/// Splits a `traceparent` into its trace id and span id.
fn parse_traceparent(value: &str) -> (TraceId, SpanId) {
    let context = seismo_telemetry::parse_traceparent(value)
        .unwrap_or_else(|| panic!("invalid traceparent {value:?} in the anomaly"));
    (context.trace_id(), context.span_id())
}

/// Waits until the exporter contains a span named `name` for which `matches`
/// is true, and returns it.
async fn wait_for_span(name: &str, matches: impl Fn(&SpanData) -> bool) -> SpanData {
    let exporter = span_exporter();
    let find = async {
        loop {
            let spans = exporter
                .get_finished_spans()
                .expect("the in-memory exporter is readable");
            if let Some(span) = spans.into_iter().find(|span| span.name == name && matches(span)) {
                return span;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, find)
        .await
        .unwrap_or_else(|_| panic!("no matching `{name}` span within {WAIT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_flows_from_kafka_to_delivery() {
    span_exporter();
    let cluster = MockCluster::new(1).unwrap();
    let topic = "tracing-propagation-events";
    cluster.create_topic(topic, 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();

    let mut kafka = KafkaSettings::new(brokers.clone());
    kafka.topic = topic.to_string();
    kafka.group_id = "tracing-propagation-test".to_string();
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
    let address = format!("http://{}", detector.local_addr());

    let notifier_stats = Arc::new(NotifierStats::default());
    let notifier_readiness = seismo_notifier::Readiness::default();
    let notifier = tokio::spawn(seismo_notifier::run(
        NotifierConfig {
            detectors: vec![address.clone()],
            console: true,
            ..NotifierConfig::default()
        },
        Arc::clone(&notifier_stats),
        notifier_readiness.clone(),
        shutdown.clone(),
    ));

    let mut client = DetectorClient::connect(address)
        .await
        .expect("detector accepts gRPC connections");
    let mut live = client
        .stream_anomalies(StreamAnomaliesRequest {
            after_sequence: 0,
            metrics: vec![],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The notifier follows only live changes, so it must have its stream
    // open, which makes it ready, before the firing.
    let ready = async {
        while notifier_readiness.status().is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, ready)
        .await
        .expect("the notifier connects to the detector in time");

    let now_ms = chrono::Utc::now().timestamp_millis();
    let base_ms = (now_ms - 6 * 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    produce(&brokers, topic, &scenario_messages(base_ms)).await;
    let (firing, resolved) = read_episode(&mut live).await;

    // The firing carries the trace of its own window's messages.
    let firing_minute = (firing.window_start_ms - base_ms) / MINUTE_MS;
    let (firing_trace, evaluation_span) = parse_traceparent(&firing.traceparent);
    assert_eq!(
        firing_trace,
        trace_id(firing_minute),
        "trace of the firing window's messages"
    );
    let resolved_minute = (resolved.window_start_ms - base_ms) / MINUTE_MS;
    let (resolved_trace, _) = parse_traceparent(&resolved.traceparent);
    assert_eq!(
        resolved_trace,
        trace_id(resolved_minute),
        "trace of the resolving window's messages"
    );

    // The evaluation span: child of the window's first message, linked to the others.
    let evaluation = wait_for_span("evaluate_windows", |span| {
        span.span_context.span_id() == evaluation_span
    })
    .await;
    assert_eq!(evaluation.span_context.trace_id(), firing_trace);
    assert_eq!(
        evaluation.parent_span_id,
        span_id(firing_minute, 0),
        "parent is the window's first message"
    );
    assert!(evaluation.parent_span_is_remote);
    let linked: Vec<SpanId> = evaluation
        .links
        .iter()
        .map(|link| link.span_context.span_id())
        .collect();
    assert_eq!(
        linked.len(),
        seismo_telemetry::MAX_SPAN_LINKS,
        "links to the window's other messages, capped"
    );
    assert!(
        linked
            .iter()
            .all(|span| (1..200).any(|index| *span == span_id(firing_minute, index))),
        "{linked:?}"
    );

    // The notifier's delivery span continues the evaluation's trace.
    let delivery = wait_for_span("deliver_alert", |span| span.parent_span_id == evaluation_span).await;
    assert_eq!(delivery.span_context.trace_id(), firing_trace);
    assert!(delivery.parent_span_is_remote);

    shutdown.cancel();
    detector.wait().await.unwrap();
    notifier.await.expect("notifier task did not panic").unwrap();
    assert!(notifier_stats.sent() >= 1, "the notifier delivered the firing");
}
