//! W3C trace context from the loader's `produce_rows` spans, through the
//! `traceparent` header of each Kafka message, to ingest's `ingest_batch`
//! spans. Kafka is librdkafka's mock cluster, ClickHouse the local server,
//! and an in-memory exporter records the spans.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use seismo_events::ParseLimits;
use seismo_ingest::{BatchPolicy, ClickHouseConfig, IngestConfig, IngestStats};
use seismo_loader::{EventTemplate, LoaderConfig, load};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::{MockKafka, header_text};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Rows replayed: three `produce_rows` spans of at most 100 rows each.
const ROWS: usize = 250;

/// Bound of every wait; the mock cluster's first group join alone takes
/// about 3 s, the rest is slack for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(90);

/// Installs a subscriber whose OpenTelemetry layer exports every span to
/// the returned in-memory exporter as it ends.
fn install_span_exporter() -> InMemorySpanExporter {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing-loader-ingest-test")))
        .init();
    exporter
}

fn finished_spans(exporter: &InMemorySpanExporter, name: &str) -> Vec<SpanData> {
    let spans = exporter
        .get_finished_spans()
        .expect("the in-memory exporter is readable");
    spans.into_iter().filter(|span| span.name == name).collect()
}

fn ingest_config(kafka: &MockKafka, topic: &str, database: &TestDatabase) -> IngestConfig {
    IngestConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: topic.to_string(),
        group_id: "tracing-loader-ingest".to_string(),
        dead_letter_topic: format!("{topic}.dlq"),
        clickhouse: ClickHouseConfig {
            url: database.url(),
            database: database.name().to_string(),
            table: "events".to_string(),
            ..ClickHouseConfig::default()
        },
        batch: BatchPolicy {
            max_rows: 100,
            max_wait: Duration::from_millis(200),
        },
        parse_limits: ParseLimits {
            max_future: None,
            ..ParseLimits::default()
        },
        shutdown_timeout: Duration::from_secs(5),
        ..IngestConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_trace_continues_into_ingest() {
    let exporter = install_span_exporter();
    let kafka = MockKafka::start().unwrap();
    let topic = "tracing-loader-ingest";
    kafka.create_topic(topic, 1).unwrap();

    let loader = LoaderConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: topic.to_string(),
        input: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/nyc_taxi.csv"),
        template: EventTemplate {
            event: "taxi_trips".to_string(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: "nyc_taxi".to_string(),
        },
        speedup: 0.0,
        limit: Some(ROWS),
    };
    load(&loader, CancellationToken::new()).await.unwrap();

    // Every message carries the traceparent of the span of its 100 rows.
    let messages = kafka.read_messages(topic, &[0], ROWS, WAIT).await.unwrap();
    let produce_spans: HashMap<SpanId, TraceId> = finished_spans(&exporter, "produce_rows")
        .iter()
        .map(|span| (span.span_context.span_id(), span.span_context.trace_id()))
        .collect();
    assert_eq!(
        produce_spans.len(),
        ROWS.div_ceil(100),
        "one produce_rows span per 100 rows"
    );
    let mut contexts_per_chunk: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (row, message) in messages.iter().enumerate() {
        let traceparent = header_text(message, "traceparent")
            .unwrap_or_else(|| panic!("message of row {row} has no traceparent header"));
        let context = seismo_telemetry::parse_traceparent(traceparent)
            .unwrap_or_else(|| panic!("invalid traceparent {traceparent:?} on row {row}"));
        assert_eq!(
            produce_spans.get(&context.span_id()),
            Some(&context.trace_id()),
            "row {row}: the header names a produce_rows span"
        );
        contexts_per_chunk
            .entry(row / 100)
            .or_default()
            .insert(traceparent.to_string());
    }
    assert!(
        contexts_per_chunk.values().all(|contexts| contexts.len() == 1),
        "{contexts_per_chunk:?}"
    );

    // Ingest's batch spans continue those traces.
    let database = TestDatabase::create("tracing_loader_ingest").await.unwrap();
    let stats = Arc::new(IngestStats::default());
    let cancel = CancellationToken::new();
    let ingest = tokio::spawn(seismo_ingest::run(
        ingest_config(&kafka, topic, &database),
        Arc::clone(&stats),
        seismo_ingest::Readiness::default(),
        cancel.clone(),
    ));
    let stored = async {
        while stats.summary().inserted < ROWS as u64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(WAIT, stored)
        .await
        .expect("ingest stores every row in time");
    cancel.cancel();
    ingest.await.expect("ingest task did not panic").unwrap();

    let batches = finished_spans(&exporter, "ingest_batch");
    assert!(!batches.is_empty(), "ingest exported its batch spans");
    for batch in &batches {
        assert!(batch.parent_span_is_remote, "{batch:?}");
        assert_eq!(
            produce_spans.get(&batch.parent_span_id),
            Some(&batch.span_context.trace_id()),
            "the batch's parent is a produce_rows span of the same trace"
        );
        for link in batch.links.iter() {
            assert!(
                produce_spans.contains_key(&link.span_context.span_id()),
                "link to {link:?}"
            );
        }
    }
    let connected: HashSet<SpanId> = batches
        .iter()
        .flat_map(|batch| {
            let links = batch.links.iter().map(|link| link.span_context.span_id());
            std::iter::once(batch.parent_span_id).chain(links)
        })
        .collect();
    let produced: HashSet<SpanId> = produce_spans.keys().copied().collect();
    assert_eq!(connected, produced, "the batches connect to every produce_rows span");
}
