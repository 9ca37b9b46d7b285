//! Chaos test of the real `seismo-ingest` binary: while events are being
//! produced, the process is killed with SIGKILL at random points and
//! ClickHouse becomes unreachable for a while, several times. At the end the
//! documented exactly-once queries must count every produced event once,
//! with none missing, whatever duplicates the kills left in the table.
//!
//! The random schedule comes from a seed printed at the start;
//! `SEISMO_CHAOS_SEED=<seed>` replays it. Bounded by a fixed number of
//! rounds and an overall timeout.

mod ingest_support;

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::MockKafka;

use ingest_support::{IngestProcess, log_path, valid_event};
use seismo_tests::tcp_proxy::{TcpProxy, clickhouse_socket_address};
use seismo_tests::wait::wait_for;

const TEST_TIMEOUT: Duration = Duration::from_secs(300);
const EVENTS: usize = 3_000;
const PARTITIONS: i32 = 3;
/// Process lifetimes ended by SIGKILL before the final, clean run.
const KILLS: usize = 5;

/// xorshift64*: enough randomness for a schedule, without a dependency.
struct Schedule(u64);

impl Schedule {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a duration uniformly drawn from `min_ms..max_ms`.
    fn millis(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(min_ms + self.next() % (max_ms - min_ms))
    }
}

fn ingest_args(kafka: &MockKafka, clickhouse_url: &str, database: &str) -> Vec<String> {
    [
        "--brokers",
        kafka.bootstrap_servers(),
        "--topic",
        "events",
        "--group-id",
        "ingest-chaos",
        "--dead-letter-topic",
        "events.dlq",
        "--clickhouse-url",
        clickhouse_url,
        "--database",
        database,
        "--insert-timeout-ms",
        "2000",
        // Small, frequent batches, so kills often land between an insert
        // and its commit.
        "--batch-max-rows",
        "40",
        "--batch-max-wait-ms",
        "50",
        "--retry-initial-backoff-ms",
        "100",
        "--retry-max-backoff-ms",
        "500",
        "--shutdown-timeout-ms",
        "5000",
        "--no-future-check",
        // A killed member leaves no LeaveGroup; the coordinator drops it
        // after this session timeout, which bounds each restart's rejoin.
        "--kafka-property",
        "session.timeout.ms=6000",
        "--kafka-property",
        "heartbeat.interval.ms=500",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_chaos_stores_every_event_once() -> anyhow::Result<()> {
    ingest_support::init_logging();
    tokio::time::timeout(TEST_TIMEOUT, chaos_stores_every_event_once())
        .await
        .context("test timed out")?
}

async fn chaos_stores_every_event_once() -> anyhow::Result<()> {
    let seed = std::env::var("SEISMO_CHAOS_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(1);
            nanos | 1
        });
    println!("chaos schedule seed {seed} (SEISMO_CHAOS_SEED={seed} replays it)");
    let mut schedule = Schedule(seed);

    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let kafka = MockKafka::start()?;
    kafka.create_topic("events", PARTITIONS)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_chaos").await?;
    let mut proxy = TcpProxy::start(clickhouse_socket_address(&database.url())?).await?;
    let args = ingest_args(&kafka, &proxy.url(), database.name());
    let log = log_path("ingest-chaos");
    println!("ingest output: {}", log.display());

    // Each round: start ingest and produce a share of the events. Once the
    // process has stored rows (so it has joined the group and is busy),
    // cut ClickHouse off in every other round, then SIGKILL it at a random
    // time within its stream of batches.
    let per_round = EVENTS / (KILLS + 1);
    let mut produced = 0;
    for round in 0..KILLS {
        let ingest = IngestProcess::spawn(&args, &log).await?;
        let round_end = produced + per_round;
        while produced < round_end {
            kafka
                .produce("events", (produced as i32) % PARTITIONS, None, &valid_event(produced))
                .await?;
            produced += 1;
        }
        wait_for("the new process to store rows", async || {
            let inserted = ingest.metric("seismo_ingest_inserted_rows_total").unwrap_or(0.0);
            Ok((inserted > 0.0, format!("inserted {inserted}")))
        })
        .await?;

        if round % 2 == 1 {
            proxy.stop().await;
            let outage = schedule.millis(1_000, 4_000);
            println!("round {round}: ClickHouse unreachable for {} ms", outage.as_millis());
            tokio::time::sleep(outage).await;
            proxy.restart().await?;
        }

        let alive = schedule.millis(1, 1_500);
        tokio::time::sleep(alive).await;
        let inserted_by_process = ingest.metric("seismo_ingest_inserted_rows_total").unwrap_or(-1.0);
        ingest.kill().await?;
        let rows = database.fetch_u64("SELECT count() FROM events").await?;
        println!(
            "round {round}: SIGKILL {} ms later, after it stored about {inserted_by_process} rows; \
             {produced} produced, {rows} rows in the table",
            alive.as_millis()
        );
    }

    // The last share is produced before the final run, which must store
    // everything and stop cleanly.
    while produced < EVENTS {
        kafka
            .produce("events", (produced as i32) % PARTITIONS, None, &valid_event(produced))
            .await?;
        produced += 1;
    }
    let started = Instant::now();
    let mut ingest = IngestProcess::spawn(&args, &log).await?;
    let ends = kafka.high_watermarks("events", &partitions).await?;
    let expected_commits: Vec<Option<i64>> = ends.iter().copied().map(Some).collect();
    wait_for("every offset committed by the final run", async || {
        let committed = kafka.committed_offsets("ingest-chaos", "events", &partitions).await?;
        Ok((
            committed == expected_commits,
            format!("committed {committed:?}, end {ends:?}"),
        ))
    })
    .await?;
    println!("final run caught up in {} ms", started.elapsed().as_millis());
    ingest.terminate()?;
    let status = ingest.wait(Duration::from_secs(15)).await?;
    ensure!(
        status.success(),
        "final seismo-ingest exited with {status}; log: {}",
        log.display()
    );

    let raw = database.fetch_u64("SELECT count() FROM events").await?;
    println!("{EVENTS} events produced, {raw} rows stored before merging copies");
    assert!(raw >= EVENTS as u64, "{raw} rows for {EVENTS} events: events were lost");
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
    let missing = database
        .fetch_json_rows(&format!(
            "SELECT number AS missing FROM numbers({EVENTS}) \
             WHERE concat('e-', toString(number)) NOT IN (SELECT assumeNotNull(event_id) FROM events) \
             LIMIT 10"
        ))
        .await?;
    assert!(
        missing.is_empty(),
        "events missing from ClickHouse, first ones: {missing:?}"
    );
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(assumeNotNull(event_id)) FROM events FINAL")
            .await?,
        EVENTS as u64
    );
    Ok(())
}
