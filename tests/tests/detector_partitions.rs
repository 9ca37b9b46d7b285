//! The detector's watermark over several Kafka partitions (librdkafka's
//! mock cluster). Catching up on a backlog, librdkafka hands over one
//! partition's batch after another, hours of event time apart. No event of
//! a slower partition may count as late, also across a restart with a warm
//! start from the local ClickHouse.

use rdkafka::mocking::MockCluster;
use seismo_detector::{KafkaSettings, MetricsConfig, ServiceConfig, WarmStartOutcome, WarmStartSettings};
use seismo_proto::v1::GetSeriesRequest;
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::grpc::connect;
use seismo_tests::ingest::{clickhouse_config, spawn_ingest};
use seismo_tests::kafka::{commit_offsets, produce_all_to};
use seismo_tests::wait::wait_for;
use tokio_util::sync::CancellationToken;

const MINUTE_MS: i64 = 60_000;
const WINDOW_MS: i64 = 5 * MINUTE_MS;
const LATENESS_MS: i64 = MINUTE_MS;

/// Events per minute in each partition that carries events.
const EVENTS_PER_MINUTE: i64 = 20;

const VIEWS_5M: &str = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"
"#;

/// Builds one view every 3 s for `minutes` minutes from `base_ms`, with
/// users named after `partition`.
fn views(partition: i32, base_ms: i64, minutes: i64) -> Vec<String> {
    (0..minutes * EVENTS_PER_MINUTE)
        .map(|index| {
            let time_ms = base_ms + index * (MINUTE_MS / EVENTS_PER_MINUTE);
            serde_json::json!({
                "event_time": time_ms,
                "event": "view",
                "user_id": format!("user-{partition}-{}", index % 50),
            })
            .to_string()
        })
        .collect()
}

/// Returns the window boundary `hours` before now.
fn base_ms(hours: i64) -> i64 {
    let now_ms = chrono::Utc::now().timestamp_millis();
    (now_ms - hours * 60 * MINUTE_MS) / WINDOW_MS * WINDOW_MS
}

async fn start_detector(
    brokers: &str,
    topic: &str,
    windowing: &str,
    properties: Vec<(String, String)>,
    shutdown: &CancellationToken,
) -> anyhow::Result<seismo_detector::RunningDetector> {
    start_detector_with(brokers, topic, windowing, properties, None, shutdown).await
}

async fn start_detector_with(
    brokers: &str,
    topic: &str,
    windowing: &str,
    properties: Vec<(String, String)>,
    warm_start: Option<WarmStartSettings>,
    shutdown: &CancellationToken,
) -> anyhow::Result<seismo_detector::RunningDetector> {
    let mut kafka = KafkaSettings::new(brokers);
    kafka.topic = topic.to_string();
    kafka.group_id = detector_group(topic);
    kafka.properties = properties;
    seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(&format!("[windowing]\n{windowing}\n{VIEWS_5M}"))?,
            kafka,
            listen: "127.0.0.1:0".parse()?,
            replay_buffer: 1_000,
            warm_start,
        },
        seismo_detector::Readiness::default(),
        shutdown.clone(),
    )
    .await
}

fn detector_group(topic: &str) -> String {
    format!("{topic}-detector")
}

/// Returns the values of the total series' points kept in full.
async fn total_values(detector: &seismo_detector::RunningDetector) -> anyhow::Result<Vec<(i64, f64)>> {
    let mut client = DetectorClient::new(connect(detector.local_addr()).await);
    let series = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![],
            limit: 0,
        })
        .await?
        .into_inner();
    Ok(series
        .points
        .iter()
        .filter(|point| !point.reference_only)
        .map(|point| (point.window_start_ms, point.value))
        .collect())
}

/// Waits until the detector has read `messages` and its watermark is
/// `watermark_ms`.
async fn wait_for_watermark(
    detector: &seismo_detector::RunningDetector,
    messages: u64,
    watermark_ms: i64,
) -> anyhow::Result<()> {
    wait_for("every message read and the watermark at the last event", async || {
        let stats = detector.stats().snapshot();
        let done = stats.messages_received == messages && stats.watermark_ms == Some(watermark_ms);
        Ok((done, format!("{stats:?}")))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_across_partitions_loses_no_event() -> anyhow::Result<()> {
    let cluster = MockCluster::new(1)?;
    let topic = "partitions-catch-up";
    // Partition 3 stays empty: only the end of its log releases it, because
    // the idle timeout is off below.
    cluster.create_topic(topic, 4, 1)?;
    let brokers = cluster.bootstrap_servers();

    let minutes = 3 * 60;
    let base_ms = base_ms(4);
    let mut messages = 0;
    for partition in 0..3 {
        let payloads = views(partition, base_ms, minutes);
        messages += payloads.len() as u64;
        produce_all_to(&brokers, topic, partition, &payloads).await?;
    }

    let shutdown = CancellationToken::new();
    let windowing = "allowed_lateness = \"1m\"\npartition_idle_timeout = \"0s\"";
    let detector = start_detector(&brokers, topic, windowing, Vec::new(), &shutdown).await?;
    let last_event_ms = base_ms + minutes * MINUTE_MS - MINUTE_MS / EVENTS_PER_MINUTE;
    wait_for_watermark(&detector, messages, last_event_ms - LATENESS_MS).await?;

    let stats = detector.stats().snapshot();
    assert_eq!(stats.events_late, 0, "{stats:?}");
    assert_eq!(stats.events_accepted, messages, "{stats:?}");

    // Every closed window counts the events of all three partitions.
    let values = total_values(&detector).await?;
    let closed_windows = (last_event_ms - LATENESS_MS - base_ms) / WINDOW_MS;
    assert_eq!(values.len() as i64, closed_windows);
    let per_window = (3 * EVENTS_PER_MINUTE * 5) as f64;
    for (window_start_ms, value) in values {
        assert_eq!(value, per_window, "window starting at {window_start_ms}");
    }

    shutdown.cancel();
    detector.wait().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partition_stops_holding_windows_after_idle_timeout() -> anyhow::Result<()> {
    let cluster = MockCluster::new(1)?;
    let topic = "partitions-idle";
    cluster.create_topic(topic, 2, 1)?;
    let brokers = cluster.bootstrap_servers();

    let minutes = 30;
    let base_ms = base_ms(1);
    let payloads = views(0, base_ms, minutes);
    let messages = payloads.len() as u64;
    produce_all_to(&brokers, topic, 0, &payloads).await?;

    // Without end-of-log reports, partition 1 never delivers anything, and
    // only the idle timeout lets windows close.
    let shutdown = CancellationToken::new();
    let windowing = "allowed_lateness = \"1m\"\npartition_idle_timeout = \"10s\"";
    let properties = vec![("enable.partition.eof".to_string(), "false".to_string())];
    let detector = start_detector(&brokers, topic, windowing, properties, &shutdown).await?;

    wait_for("every message read", async || {
        let stats = detector.stats().snapshot();
        Ok((stats.messages_received == messages, format!("{stats:?}")))
    })
    .await?;
    let stats = detector.stats().snapshot();
    assert_eq!(stats.watermark_ms, None, "partition 1 holds every window: {stats:?}");
    assert_eq!(stats.partitions_idled, 0, "{stats:?}");

    // Partition 0 goes silent too once it has delivered everything, since
    // no end of its log is reported either.
    wait_for("both partitions released as idle", async || {
        let stats = detector.stats().snapshot();
        Ok((stats.partitions_idled == 2, format!("{stats:?}")))
    })
    .await?;
    let last_event_ms = base_ms + minutes * MINUTE_MS - MINUTE_MS / EVENTS_PER_MINUTE;
    let stats = detector.stats().snapshot();
    assert_eq!(stats.watermark_ms, Some(last_event_ms - LATENESS_MS), "{stats:?}");
    assert_eq!(stats.events_late, 0, "{stats:?}");

    shutdown.cancel();
    detector.wait().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_catch_up_keeps_lagging_partition_events() -> anyhow::Result<()> {
    restart_during_catch_up("partitions-restart", true).await
}

/// Ingest may not have stored the lagging partition's unread events when
/// the detector restarts, for example when ingest is catching up too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_before_ingest_stored_unread_events() -> anyhow::Result<()> {
    restart_during_catch_up("partitions-restart-unstored", false).await
}

/// Commits the positions of a detector that stopped in a catch-up, with
/// partition 0 read to its end and partition 1 read for its first hour of
/// three, and starts a detector with a warm start. With `unread_stored` false, partition 1's unread events are
/// deleted from ClickHouse first.
async fn restart_during_catch_up(topic: &str, unread_stored: bool) -> anyhow::Result<()> {
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(topic, 2, 1)?;
    let brokers = cluster.bootstrap_servers();
    let database = TestDatabase::create("detector_partitions_restart").await?;
    let shutdown = CancellationToken::new();

    // Ingest stores both partitions' three hours of views in ClickHouse.
    let minutes = 3 * 60;
    let base_ms = base_ms(4);
    let mut messages = 0;
    for partition in 0..2 {
        let payloads = views(partition, base_ms, minutes);
        messages += payloads.len() as u64;
        produce_all_to(&brokers, topic, partition, &payloads).await?;
    }
    let ingest = spawn_ingest(
        &brokers,
        topic,
        &format!("{topic}-ingest"),
        clickhouse_config(&database),
        shutdown.child_token(),
    );
    wait_for("ingest to store every event", async || {
        let stored = database.fetch_u64("SELECT count() FROM events").await.unwrap_or(0);
        Ok((stored == messages, format!("stored {stored} of {messages}")))
    })
    .await?;

    // The previous detector stopped in a catch-up: it had read all of
    // partition 0 but only the first hour of partition 1.
    let read_of_partition_1 = 60 * EVENTS_PER_MINUTE;
    let per_partition = minutes * EVENTS_PER_MINUTE;
    if !unread_stored {
        database
            .client()
            .query(&format!(
                "ALTER TABLE events DELETE WHERE kafka_partition = 1 AND kafka_offset >= {read_of_partition_1}"
            ))
            .execute()
            .await?;
        let left = messages - (per_partition - read_of_partition_1) as u64;
        wait_for("the unread events of partition 1 to be deleted", async || {
            let stored = database.fetch_u64("SELECT count() FROM events").await.unwrap_or(0);
            Ok((stored == left, format!("stored {stored}, expected {left}")))
        })
        .await?;
    }
    commit_offsets(
        &brokers,
        topic,
        &detector_group(topic),
        &[(0, per_partition), (1, read_of_partition_1)],
    )?;

    let windowing = "allowed_lateness = \"1m\"";
    let warm_start = WarmStartSettings::new(database.url(), database.name(), "events");
    let detector_shutdown = shutdown.child_token();
    let detector = start_detector_with(
        &brokers,
        topic,
        windowing,
        Vec::new(),
        Some(warm_start),
        &detector_shutdown,
    )
    .await?;
    let outcome = detector.warm_start_outcome().await;
    assert!(matches!(outcome, Some(WarmStartOutcome::Loaded { .. })), "{outcome:?}");

    let unread = (per_partition - read_of_partition_1) as u64;
    let last_event_ms = base_ms + minutes * MINUTE_MS - MINUTE_MS / EVENTS_PER_MINUTE;
    wait_for_watermark(&detector, unread, last_event_ms - LATENESS_MS).await?;
    let stats = detector.stats().snapshot();
    assert_eq!(stats.events_late, 0, "{stats:?}");

    // Every window counts both partitions' views: the restored ones and
    // those that partition 1's unread events completed.
    let values = total_values(&detector).await?;
    let closed_windows = (last_event_ms - LATENESS_MS - base_ms) / WINDOW_MS;
    assert_eq!(values.len() as i64, closed_windows);
    let per_window = (2 * EVENTS_PER_MINUTE * 5) as f64;
    for (window_start_ms, value) in values {
        assert_eq!(value, per_window, "window starting at {window_start_ms}");
    }

    detector_shutdown.cancel();
    detector.wait().await?;
    shutdown.cancel();
    ingest.await??;
    Ok(())
}
