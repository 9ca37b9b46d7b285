//! SIGTERM to the real `seismo-ingest` binary: it stops consuming, stores
//! the pending batch, commits and exits with status 0 within its shutdown
//! timeout. When ClickHouse is unreachable it still exits in time, and
//! commits nothing past the batch it could not store.
//!
//! The test builds the binary with `cargo build -p seismo-ingest` and runs
//! it against the mock Kafka cluster, whose address it passes on the
//! command line, and the real local ClickHouse server.

mod ingest_support;

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::MockKafka;

use ingest_support::{IngestProcess, log_path, valid_event};
use seismo_tests::tcp_proxy::{TcpProxy, clickhouse_socket_address};
use seismo_tests::wait::wait_for;

const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// `--shutdown-timeout-ms` of the binary under test.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);

/// Time allowed on top of the shutdown timeout for leaving the consumer
/// group and process teardown.
const EXIT_GRACE: Duration = Duration::from_secs(6);

fn ingest_args(kafka: &MockKafka, topic: &str, group: &str, clickhouse_url: &str, database: &str) -> Vec<String> {
    [
        "--brokers",
        kafka.bootstrap_servers(),
        "--topic",
        topic,
        "--group-id",
        group,
        "--dead-letter-topic",
        &format!("{topic}.dlq"),
        "--clickhouse-url",
        clickhouse_url,
        "--database",
        database,
        "--insert-timeout-ms",
        "2000",
        // One batch for the whole test: nothing is stored before SIGTERM.
        "--batch-max-rows",
        "100000",
        "--batch-max-wait-ms",
        "600000",
        "--retry-initial-backoff-ms",
        "100",
        "--retry-max-backoff-ms",
        "500",
        "--shutdown-timeout-ms",
        &SHUTDOWN_TIMEOUT.as_millis().to_string(),
        "--no-future-check",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

/// Waits until the process reports `expected` consumed messages on
/// `/metrics`.
async fn wait_for_consumed(ingest: &IngestProcess, expected: usize) -> anyhow::Result<()> {
    wait_for("the events consumed", async || {
        let consumed = ingest.metric("seismo_ingest_consumed_total").unwrap_or(0.0);
        Ok((consumed as usize == expected, format!("consumed {consumed}")))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_binary_flushes_on_sigterm() -> anyhow::Result<()> {
    ingest_support::init_logging();
    tokio::time::timeout(TEST_TIMEOUT, flushes_on_sigterm())
        .await
        .context("test timed out")?
}

async fn flushes_on_sigterm() -> anyhow::Result<()> {
    const EVENTS: usize = 300;
    let partitions = [0, 1, 2];
    let (topic, group) = ("events", "ingest-sigterm");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 3)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_sigterm").await?;
    for index in 0..EVENTS {
        kafka
            .produce(topic, (index % 3) as i32, None, &valid_event(index))
            .await?;
    }

    let log = log_path("ingest-sigterm");
    let args = ingest_args(&kafka, topic, group, &database.url(), database.name());
    let mut ingest = IngestProcess::spawn(&args, &log).await?;
    wait_for_consumed(&ingest, EVENTS).await?;
    assert_eq!(
        database.fetch_u64("SELECT count() FROM events").await?,
        0,
        "stored before SIGTERM"
    );

    let signalled = Instant::now();
    ingest.terminate()?;
    let status = ingest.wait(SHUTDOWN_TIMEOUT + EXIT_GRACE).await;
    let elapsed = signalled.elapsed();
    let status = status.with_context(|| format!("log: {}", log.display()))?;

    ensure!(
        status.success(),
        "seismo-ingest exited with {status}; log: {}",
        log.display()
    );
    println!("exited {} ms after SIGTERM", elapsed.as_millis());
    assert_eq!(database.fetch_u64("SELECT count() FROM events").await?, EVENTS as u64);
    let ends = kafka.high_watermarks(topic, &partitions).await?;
    let committed = kafka.committed_offsets(group, topic, &partitions).await?;
    assert_eq!(committed, ends.into_iter().map(Some).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_binary_exits_during_outage() -> anyhow::Result<()> {
    ingest_support::init_logging();
    tokio::time::timeout(TEST_TIMEOUT, exits_during_outage())
        .await
        .context("test timed out")?
}

async fn exits_during_outage() -> anyhow::Result<()> {
    const EVENTS: usize = 120;
    let partitions = [0, 1];
    let (topic, group) = ("events", "ingest-sigterm-outage");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 2)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_sigterm_outage").await?;
    let mut proxy = TcpProxy::start(clickhouse_socket_address(&database.url())?).await?;
    for index in 0..EVENTS {
        kafka
            .produce(topic, (index % 2) as i32, None, &valid_event(index))
            .await?;
    }

    let log = log_path("ingest-sigterm-outage");
    let args = ingest_args(&kafka, topic, group, &proxy.url(), database.name());
    let mut ingest = IngestProcess::spawn(&args, &log).await?;
    wait_for_consumed(&ingest, EVENTS).await?;

    // ClickHouse goes away before the only batch is stored.
    proxy.stop().await;
    let signalled = Instant::now();
    ingest.terminate()?;
    let status = ingest.wait(SHUTDOWN_TIMEOUT + EXIT_GRACE).await;
    let elapsed = signalled.elapsed();
    let status = status.with_context(|| format!("log: {}", log.display()))?;

    ensure!(
        status.success(),
        "seismo-ingest exited with {status}; log: {}",
        log.display()
    );
    ensure!(
        elapsed >= SHUTDOWN_TIMEOUT,
        "exited after {} ms, before its shutdown timeout; it should have retried the insert until then",
        elapsed.as_millis()
    );
    println!("exited {} ms after SIGTERM", elapsed.as_millis());
    assert_eq!(database.fetch_u64("SELECT count() FROM events").await?, 0);
    let committed = kafka.committed_offsets(group, topic, &partitions).await?;
    assert_eq!(committed, vec![None, None], "offsets committed past an unstored batch");
    Ok(())
}
