//! A rebalance in the middle of a batch: a second ingest instance joins the
//! consumer group while the first keeps every event in one uncommitted
//! batch. Nothing may be lost, the documented exactly-once queries must
//! count every event once, and no committed offset may pass a row that is
//! not stored yet. Runs against the mock Kafka cluster and the real local
//! ClickHouse server.

mod ingest_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use seismo_events::ParseLimits;
use seismo_ingest::{
    BatchPolicy, ClickHouseConfig, IngestConfig, IngestError, IngestStats, IngestSummary, Readiness, RetryPolicy,
};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::MockKafka;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use ingest_support::{init_logging, valid_event};
use seismo_tests::wait::wait_for;

const TEST_TIMEOUT: Duration = Duration::from_secs(240);
const TOPIC: &str = "events";
const GROUP: &str = "ingest-rebalance";
const PARTITIONS: i32 = 4;
/// Events per partition produced before the first instance starts.
const BACKLOG_PER_PARTITION: i64 = 250;
/// Events per partition produced after the rebalance.
const LATER_PER_PARTITION: i64 = 50;
const EVENTS_PER_PARTITION: i64 = BACKLOG_PER_PARTITION + LATER_PER_PARTITION;
const EVENTS: u64 = PARTITIONS as u64 * EVENTS_PER_PARTITION as u64;

fn config(kafka: &MockKafka, database: &TestDatabase, batch: BatchPolicy) -> IngestConfig {
    IngestConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: TOPIC.to_string(),
        group_id: GROUP.to_string(),
        dead_letter_topic: format!("{TOPIC}.dlq"),
        clickhouse: ClickHouseConfig {
            url: database.url(),
            database: database.name().to_string(),
            table: "events".to_string(),
            insert_timeout: Duration::from_secs(10),
            ..ClickHouseConfig::default()
        },
        batch,
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        parse_limits: ParseLimits {
            max_future: None,
            ..ParseLimits::default()
        },
        shutdown_timeout: Duration::from_secs(5),
        // When a member joins a running group, the mock cluster waits one
        // session timeout less a second for the members to rejoin. With
        // librdkafka's default of 45 s, the rebalance would take 44 s.
        kafka_properties: vec![("session.timeout.ms".to_string(), "6000".to_string())],
        ..IngestConfig::default()
    }
}

/// One ingest instance running in this process.
struct Instance {
    stats: Arc<IngestStats>,
    cancel: CancellationToken,
    task: JoinHandle<Result<IngestSummary, IngestError>>,
}

impl Instance {
    fn start(config: IngestConfig) -> Instance {
        let stats = Arc::new(IngestStats::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(seismo_ingest::run(
            config,
            stats.clone(),
            Readiness::default(),
            cancel.clone(),
        ));
        Instance { stats, cancel, task }
    }

    async fn stop(self, name: &str) -> anyhow::Result<IngestSummary> {
        self.cancel.cancel();
        let summary = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .with_context(|| format!("the {name} instance did not stop within 30 s"))?
            .with_context(|| format!("the {name} instance panicked"))??;
        Ok(summary)
    }
}

/// Reads the group's committed offsets again and again and checks, each
/// time, that every offset below a committed position is stored and that no
/// position moved back.
struct CommitMonitor {
    partitions: Vec<i32>,
    last_seen: Vec<Option<i64>>,
    checks: usize,
}

impl CommitMonitor {
    fn new() -> CommitMonitor {
        CommitMonitor {
            partitions: (0..PARTITIONS).collect(),
            last_seen: vec![None; PARTITIONS as usize],
            checks: 0,
        }
    }

    /// Returns the committed offsets after checking them. The stored rows
    /// are counted after the offsets were read, and rows are only ever
    /// added, so a committed position that was valid when read is still
    /// covered by the count.
    async fn check(&mut self, kafka: &MockKafka, database: &TestDatabase) -> anyhow::Result<Vec<Option<i64>>> {
        let committed = kafka.committed_offsets(GROUP, TOPIC, &self.partitions).await?;
        for (index, &offset) in committed.iter().enumerate() {
            let partition = self.partitions[index];
            let previous = self.last_seen[index];
            let Some(offset) = offset else {
                ensure!(
                    previous.is_none(),
                    "the committed offset of partition {partition} disappeared after {previous:?}"
                );
                continue;
            };
            ensure!(
                previous.is_none_or(|previous| offset >= previous),
                "the committed offset of partition {partition} moved back from {previous:?} to {offset}"
            );
            ensure!(
                offset <= EVENTS_PER_PARTITION,
                "partition {partition} has {EVENTS_PER_PARTITION} messages but offset {offset} was committed"
            );

            let stored = database
                .fetch_u64(&format!(
                    "SELECT uniqExact(kafka_offset) FROM events WHERE kafka_partition = {partition} AND kafka_offset < {offset}"
                ))
                .await?;
            ensure!(
                stored == offset as u64,
                "partition {partition}: offset {offset} was committed but only {stored} offsets below it are stored"
            );
            self.last_seen[index] = Some(offset);
        }
        self.checks += 1;
        Ok(committed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_rebalance_mid_batch() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, rebalance_mid_batch())
        .await
        .context("test timed out")?
}

async fn rebalance_mid_batch() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    kafka.create_topic(TOPIC, PARTITIONS)?;
    kafka.create_topic(&format!("{TOPIC}.dlq"), 1)?;
    let database = TestDatabase::create("ingest_rebalance").await?;
    let backlog = (PARTITIONS as i64 * BACKLOG_PER_PARTITION) as usize;
    for index in 0..backlog {
        kafka
            .produce(TOPIC, index as i32 % PARTITIONS, None, &valid_event(index))
            .await?;
    }

    // The first instance takes every partition and keeps all events in one
    // batch. The batch is due only after `max_wait`, which leaves time for
    // the second instance's join and the rebalance.
    let first = Instance::start(config(
        &kafka,
        &database,
        BatchPolicy {
            max_rows: 10 * EVENTS as usize,
            max_wait: Duration::from_secs(20),
        },
    ));
    wait_for("the first instance to hold the backlog", async || {
        let summary = first.stats.summary();
        Ok((summary.consumed >= backlog as u64, format!("{summary:?}")))
    })
    .await?;
    assert_eq!(
        first.stats.summary().inserted,
        0,
        "the first instance stored its batch too early"
    );
    let mut monitor = CommitMonitor::new();
    let committed = monitor.check(&kafka, &database).await?;
    assert_eq!(
        committed,
        vec![None; PARTITIONS as usize],
        "offsets committed before any insert"
    );

    // The second instance joins the group, which revokes the first
    // instance's partitions while its batch is pending.
    let second = Instance::start(config(
        &kafka,
        &database,
        BatchPolicy {
            max_rows: 100,
            max_wait: Duration::from_millis(200),
        },
    ));
    wait_for("the second instance to store events after the rebalance", async || {
        monitor.check(&kafka, &database).await?;
        let summary = second.stats.summary();
        Ok((summary.inserted > 0, format!("second: {summary:?}")))
    })
    .await?;
    assert_eq!(
        first.stats.summary().inserted,
        0,
        "the first instance stored its batch before the rebalance finished, so the test did not cover a pending batch; raise its batch max wait"
    );

    // Later events move the second instance's commits past the backlog, so
    // a commit of a revoked partition by the first instance, from its stale
    // batch, would move that partition's position back.
    for index in backlog..EVENTS as usize {
        kafka
            .produce(TOPIC, index as i32 % PARTITIONS, None, &valid_event(index))
            .await?;
    }

    // The first instance stores its batch at its deadline, including the
    // rows of the partitions it lost, which the second one stores too.
    wait_for("every event stored and every offset committed", async || {
        let committed = monitor.check(&kafka, &database).await?;
        let distinct = database
            .fetch_u64("SELECT uniqExact(kafka_partition, kafka_offset) FROM events")
            .await?;
        let all_committed = committed.iter().all(|&offset| offset == Some(EVENTS_PER_PARTITION));
        Ok((
            distinct == EVENTS && all_committed && first.stats.summary().inserted > 0,
            format!(
                "{distinct} distinct positions stored, committed {committed:?}, first: {:?}, second: {:?}",
                first.stats.summary(),
                second.stats.summary()
            ),
        ))
    })
    .await?;

    let first_summary = first.stop("first").await?;
    let second_summary = second.stop("second").await?;
    assert_eq!(first_summary.abandoned, 0, "{first_summary:?}");
    assert_eq!(second_summary.abandoned, 0, "{second_summary:?}");
    assert!(
        first_summary.inserted + second_summary.inserted >= EVENTS,
        "first: {first_summary:?}, second: {second_summary:?}"
    );
    assert!(
        monitor.checks >= 3,
        "the committed offsets were checked only {} times",
        monitor.checks
    );

    let committed = monitor.check(&kafka, &database).await?;
    assert_eq!(committed, vec![Some(EVENTS_PER_PARTITION); PARTITIONS as usize]);
    assert_eq!(database.fetch_u64("SELECT count() FROM events FINAL").await?, EVENTS);
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(kafka_partition, kafka_offset) FROM events")
            .await?,
        EVENTS
    );
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(assumeNotNull(event_id)) FROM events FINAL")
            .await?,
        EVENTS
    );
    Ok(())
}
