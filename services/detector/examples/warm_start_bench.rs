//! Times a warm start against the local ClickHouse server.
//!
//! Fills a fresh database with synthetic events in the events table layout
//! of servers before 19.3 (`deploy/clickhouse/events-before-19.3.sql`),
//! spread evenly over the history. Then commits a resume position after the
//! last of them in librdkafka's mock cluster and runs `warm_start::run` with
//! the shipped metrics file `deploy/config/metrics.toml`. Drops the database
//! at the end.
//!
//! ```sh
//! cargo run --release -p seismo-detector --example warm_start_bench -- --events 2000000 --days 8
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use seismo_detector::hub::{AnomalyHub, HubConfig};
use seismo_detector::pipeline::{Pipeline, SharedState};
use seismo_detector::warm_start::{self, WarmStartSettings};
use seismo_detector::{KafkaSettings, MetricsConfig};
use tokio_util::sync::CancellationToken;

const CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";
const TOPIC: &str = "events";
const GROUP: &str = "warm-start-bench";

struct Options {
    events: u64,
    days: u64,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        events: 2_000_000,
        days: 8,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let value = arguments.next().with_context(|| format!("{argument} needs a value"))?;
        match argument.as_str() {
            "--events" => options.events = value.parse().context("--events takes a whole number")?,
            "--days" => options.days = value.parse().context("--days takes a whole number")?,
            other => bail!("unknown option {other}; use --events N and --days N"),
        }
    }
    if options.events == 0 || options.days == 0 {
        bail!("--events and --days must be greater than 0");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let database = format!("warm_start_bench_{}", std::process::id());
    let client = clickhouse::Client::default()
        .with_url(CLICKHOUSE_URL)
        .with_validation(false);

    let result = run(&options, &client, &database).await;

    client
        .query(&format!("DROP DATABASE IF EXISTS `{database}`"))
        .execute()
        .await
        .context("failed to drop the benchmark database")?;
    result
}

async fn run(options: &Options, client: &clickhouse::Client, database: &str) -> anyhow::Result<()> {
    let filled = Instant::now();
    create_table(client, database).await?;
    let end_s = chrono::Utc::now().timestamp();
    fill(client, database, options, end_s).await?;
    println!(
        "filled {} events over {} days in {:.1} s",
        options.events,
        options.days,
        filled.elapsed().as_secs_f64()
    );

    let cluster: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1)?;
    cluster.create_topic(TOPIC, 1, 1)?;
    let kafka = KafkaSettings {
        topic: TOPIC.to_string(),
        group_id: GROUP.to_string(),
        ..KafkaSettings::new(cluster.bootstrap_servers())
    };
    commit_position(&kafka, options.events as i64)?;

    let config = MetricsConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/config/metrics.toml"
    )))?;
    let hub = Arc::new(AnomalyHub::new(HubConfig::starting_now(0)));
    let mut pipeline = Pipeline::new(SharedState::new(config, hub));
    let settings = WarmStartSettings {
        timeout: Duration::ZERO,
        ..WarmStartSettings::new(CLICKHOUSE_URL, database, "events")
    };

    let started = Instant::now();
    let outcome = warm_start::run(&settings, &kafka, &mut pipeline, &CancellationToken::new()).await;
    let elapsed = started.elapsed();
    println!("warm start: {outcome:?} in {:.2} s", elapsed.as_secs_f64());
    if !matches!(outcome, warm_start::WarmStartOutcome::Loaded { .. }) {
        bail!("the warm start did not load history: {outcome:?}");
    }
    Ok(())
}

async fn create_table(client: &clickhouse::Client, database: &str) -> anyhow::Result<()> {
    let ddl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/clickhouse/events-before-19.3.sql"
    ))?
    .replace("`seismo`", &format!("`{database}`"));
    for statement in ddl.split(';').map(str::trim).filter(|statement| !statement.is_empty()) {
        client
            .query(statement)
            .execute()
            .await
            .with_context(|| format!("failed to run {statement:?}"))?;
    }
    Ok(())
}

/// Inserts `events` rows at evenly spaced times over `days` days before
/// `end_s`, with offsets 0, 1, ...: views, likes and messages of 1 000
/// users on three operating systems and four sources.
async fn fill(client: &clickhouse::Client, database: &str, options: &Options, end_s: i64) -> anyhow::Result<()> {
    let span_ms = options.days as i64 * 86_400_000;
    let step_ms = span_ms as f64 / options.events as f64;
    let start_ms = end_s * 1_000 - span_ms;
    let sql = format!(
        "INSERT INTO `{database}`.events (event_time, event_time_ms, event, user_id, os, source, extra, kafka_partition, kafka_offset) \
         SELECT toDateTime(intDiv(t, 1000)), t % 1000, \
         ['view', 'view', 'view', 'like', 'message'][number % 5 + 1], toString(number % 1000), \
         ['iOS', 'Android', 'Linux'][number % 3 + 1], ['ads', 'organic', 'email', 'push'][number % 4 + 1], '', 0, number \
         FROM (SELECT number, toUInt64({start_ms} + number * {step_ms}) AS t FROM system.numbers LIMIT {})",
        options.events
    );
    client
        .query(&sql)
        .execute()
        .await
        .context("failed to insert the synthetic events")
}

/// Commits `offset` for the benchmark group, as if a detector had consumed
/// every stored event.
fn commit_position(kafka: &KafkaSettings, offset: i64) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&kafka.topic, 0, Offset::Offset(offset))?;
    consumer
        .commit(&list, CommitMode::Sync)
        .context("failed to commit the resume position")?;
    Ok(())
}
