//! Each event counted once: events stored twice, as after a crash between
//! an insert and its offset commit, are counted once by the documented
//! queries and merged away by the table engine. Runs against the mock Kafka
//! cluster and the real local ClickHouse server.

mod ingest_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use seismo_events::ParseLimits;
use seismo_ingest::{BatchPolicy, ClickHouseConfig, IngestConfig, IngestStats, Readiness, RetryPolicy};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::MockKafka;
use tokio_util::sync::CancellationToken;

use ingest_support::{init_logging, valid_event};
use seismo_tests::wait::wait_for;

const TEST_TIMEOUT: Duration = Duration::from_secs(240);

fn config(kafka: &MockKafka, topic: &str, group: &str, database: &TestDatabase) -> IngestConfig {
    IngestConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: topic.to_string(),
        group_id: group.to_string(),
        dead_letter_topic: format!("{topic}.dlq"),
        clickhouse: ClickHouseConfig {
            url: database.url(),
            database: database.name().to_string(),
            table: "events".to_string(),
            insert_timeout: Duration::from_secs(10),
            ..ClickHouseConfig::default()
        },
        batch: BatchPolicy {
            max_rows: 70,
            max_wait: Duration::from_millis(200),
        },
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        parse_limits: ParseLimits {
            max_future: None,
            ..ParseLimits::default()
        },
        shutdown_timeout: Duration::from_secs(5),
        ..IngestConfig::default()
    }
}

/// Runs ingest under `group` until it stored `expected` rows, then stops it.
async fn ingest_all(config: IngestConfig, expected: u64) -> anyhow::Result<()> {
    let stats = Arc::new(IngestStats::default());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(seismo_ingest::run(
        config,
        stats.clone(),
        Readiness::default(),
        cancel.clone(),
    ));
    wait_for("every event stored", async || {
        let summary = stats.summary();
        Ok((summary.inserted == expected, format!("{summary:?}")))
    })
    .await?;
    cancel.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .context("ingest did not stop within 30 s")?
        .context("ingest task panicked")??;
    assert_eq!(summary.inserted, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_duplicates_counted_once() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, duplicates_counted_once())
        .await
        .context("test timed out")?
}

async fn duplicates_counted_once() -> anyhow::Result<()> {
    const EVENTS: usize = 500;
    let topic = "events";
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 3)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_exactly_once").await?;
    for index in 0..EVENTS {
        kafka
            .produce(topic, (index % 3) as i32, None, &valid_event(index))
            .await?;
    }

    // A second group reads the topic from the start again, which stores
    // every event a second time, exactly as lost commits would.
    ingest_all(config(&kafka, topic, "first-run", &database), EVENTS as u64).await?;
    ingest_all(config(&kafka, topic, "second-run", &database), EVENTS as u64).await?;

    let engine = database
        .fetch_json_rows(&format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name = 'events'",
            database.name()
        ))
        .await?;
    assert_eq!(engine[0]["engine"].as_str(), Some("ReplacingMergeTree"));

    // Before a merge the copies are visible to a plain count, unless the
    // server happened to merge already; the documented queries are exact.
    let raw = database.fetch_u64("SELECT count() FROM events").await?;
    assert!((EVENTS as u64..=2 * EVENTS as u64).contains(&raw), "count() = {raw}");
    assert_eq!(
        database.fetch_u64("SELECT count() FROM events FINAL").await?,
        EVENTS as u64
    );
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(kafka_partition, kafka_offset) FROM events")
            .await?,
        EVENTS as u64
    );
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(assumeNotNull(event_id)) FROM events FINAL")
            .await?,
        EVENTS as u64
    );
    let per_event = database
        .fetch_json_rows("SELECT event, count() AS events FROM events FINAL GROUP BY event ORDER BY event")
        .await?;
    assert_eq!(per_event.len(), 2);
    assert_eq!(per_event[0]["event"].as_str(), Some("like"));
    assert_eq!(per_event[0]["events"].as_u64(), Some(EVENTS as u64 / 2));
    assert_eq!(per_event[1]["event"].as_str(), Some("view"));
    assert_eq!(per_event[1]["events"].as_u64(), Some(EVENTS as u64 / 2));

    // A forced merge leaves one row per Kafka position.
    database.client().query("OPTIMIZE TABLE events FINAL").execute().await?;
    assert_eq!(database.fetch_u64("SELECT count() FROM events").await?, EVENTS as u64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_keeps_legacy_mergetree_table() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, keeps_legacy_mergetree_table())
        .await
        .context("test timed out")?
}

/// A table created by an earlier version (plain MergeTree) keeps working,
/// and the query over distinct positions still counts each event once.
async fn keeps_legacy_mergetree_table() -> anyhow::Result<()> {
    const EVENTS: usize = 120;
    let topic = "events";
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 2)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_legacy_table").await?;

    let legacy_ddl = include_str!("../../deploy/clickhouse/events-before-19.3.sql")
        .split(';')
        .nth(1)
        .context("the deploy file has no CREATE TABLE statement")?
        .replace("`seismo`.", &format!("`{}`.", database.name()))
        .replace("ReplacingMergeTree", "MergeTree")
        .replace(", kafka_partition, kafka_offset)", ")");
    database.client().query(&legacy_ddl).execute().await?;

    for index in 0..EVENTS {
        kafka
            .produce(topic, (index % 2) as i32, None, &valid_event(index))
            .await?;
    }
    ingest_all(config(&kafka, topic, "first-run", &database), EVENTS as u64).await?;
    ingest_all(config(&kafka, topic, "second-run", &database), EVENTS as u64).await?;

    let engine = database
        .fetch_json_rows(&format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name = 'events'",
            database.name()
        ))
        .await?;
    assert_eq!(engine[0]["engine"].as_str(), Some("MergeTree"), "{engine:?}");
    assert_eq!(
        database.fetch_u64("SELECT count() FROM events").await?,
        2 * EVENTS as u64
    );
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(kafka_partition, kafka_offset) FROM events")
            .await?,
        EVENTS as u64
    );
    Ok(())
}
