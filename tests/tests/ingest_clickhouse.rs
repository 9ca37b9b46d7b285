//! Ingest against librdkafka's mock Kafka cluster and the real local
//! ClickHouse server: rows in equal rows out, dead letters with their
//! sources, offset commits, ClickHouse outages and a field-by-field round
//! trip.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use seismo_events::{Event, ParseLimits};
use seismo_ingest::dead_letter::{
    HEADER_ERROR_KIND, HEADER_ERROR_MESSAGE, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use seismo_ingest::{
    BatchPolicy, ClickHouseConfig, IngestConfig, IngestError, IngestStats, IngestSummary, RetryPolicy, base_client,
    detect_features,
};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::{MockKafka, Produced, header_text};
use seismo_tests::tcp_proxy::{TcpProxy, clickhouse_socket_address};
use seismo_tests::wait::wait_for;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound of one whole test, so a hang fails instead of blocking CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Largest message the tests' ingest accepts, so an oversized one is cheap.
const MAX_MESSAGE_BYTES: usize = 4096;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("seismo_ingest=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn test_config(kafka: &MockKafka, topic: &str, group: &str, database: &TestDatabase, url: String) -> IngestConfig {
    IngestConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: topic.to_string(),
        group_id: group.to_string(),
        dead_letter_topic: format!("{topic}.dlq"),
        dead_letter_delivery_timeout: Duration::from_secs(10),
        clickhouse: ClickHouseConfig {
            url,
            database: database.name().to_string(),
            table: "events".to_string(),
            insert_timeout: Duration::from_secs(10),
            ..ClickHouseConfig::default()
        },
        batch: BatchPolicy {
            max_rows: 100,
            max_wait: Duration::from_millis(200),
        },
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        parse_limits: ParseLimits {
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_future: None,
        },
        shutdown_timeout: Duration::from_secs(5),
        ..IngestConfig::default()
    }
}

/// Returns a valid event with id `e-<index>`. Events are one hour apart,
/// so the rows span several daily partitions.
fn valid_event(index: usize) -> Vec<u8> {
    let event_time = 1_714_564_800_000_i64 + index as i64 * 3_600_000;
    serde_json::json!({
        "event_time": event_time,
        "event": if index.is_multiple_of(2) { "view" } else { "like" },
        "user_id": format!("user-{}", index % 17),
        "event_id": format!("e-{index}"),
        "os": "iOS",
    })
    .to_string()
    .into_bytes()
}

struct RunningIngest {
    stats: Arc<IngestStats>,
    cancel: CancellationToken,
    task: JoinHandle<Result<IngestSummary, IngestError>>,
}

fn start_ingest(config: IngestConfig) -> RunningIngest {
    let stats = Arc::new(IngestStats::default());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(seismo_ingest::run(
        config,
        stats.clone(),
        seismo_ingest::Readiness::default(),
        cancel.clone(),
    ));
    RunningIngest { stats, cancel, task }
}

impl RunningIngest {
    fn summary(&self) -> IngestSummary {
        self.stats.summary()
    }

    /// Cancels the service and returns its final summary.
    async fn stop(self) -> anyhow::Result<IngestSummary> {
        self.cancel.cancel();
        let summary = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("ingest did not stop within 30 s of cancellation")?
            .context("ingest task panicked")??;
        Ok(summary)
    }
}

/// Waits until `group` has committed the end of every partition.
async fn wait_for_commits_at_end(
    kafka: &MockKafka,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<()> {
    let ends = kafka.high_watermarks(topic, partitions).await?;
    let expected: Vec<Option<i64>> = ends.into_iter().map(Some).collect();
    wait_for("committed offsets at the end of every partition", async || {
        let committed = kafka.committed_offsets(group, topic, partitions).await?;
        Ok((
            committed == expected,
            format!("committed {committed:?}, end {expected:?}"),
        ))
    })
    .await
}

async fn event_ids(database: &TestDatabase) -> anyhow::Result<Vec<String>> {
    database
        .fetch_json_rows("SELECT event_id FROM events ORDER BY event_id")
        .await?
        .iter()
        .map(|row| {
            row["event_id"]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("row without event_id: {row}"))
        })
        .collect()
}

fn sorted_ids(indexes: impl IntoIterator<Item = usize>) -> Vec<String> {
    let mut ids: Vec<String> = indexes.into_iter().map(|index| format!("e-{index}")).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_stores_valid_and_dead_letters_invalid() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, stores_valid_and_dead_letters_invalid())
        .await
        .context("test timed out")?
}

async fn stores_valid_and_dead_letters_invalid() -> anyhow::Result<()> {
    const VALID: usize = 600;
    let partitions = [0, 1, 2];
    let (topic, group) = ("events", "ingest-store-test");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 3)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_store").await?;

    // Each bad message with the error kind it must be dead-lettered with.
    let oversized = format!(
        r#"{{"event_time": 1714564800000, "event": "view", "user_id": "u", "note": "{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    let bad_messages: Vec<(&str, Vec<u8>)> = vec![
        (
            "invalid_json",
            br#"{"event_time": 1714564800000, "event": "vi"#.to_vec(),
        ),
        (
            "invalid_field",
            br#"{"event_time": 1714564800000, "event": "view", "user_id": "u", "post_id": "abc"}"#.to_vec(),
        ),
        (
            "invalid_field",
            br#"{"event_time": "yesterday", "event": "view", "user_id": "u"}"#.to_vec(),
        ),
        (
            "invalid_field",
            br#"{"event_time": 1714564800000, "event": 42, "user_id": "u"}"#.to_vec(),
        ),
        (
            "missing_field",
            br#"{"event_time": 1714564800000, "user_id": "u"}"#.to_vec(),
        ),
        ("missing_field", br#"{"event": "view", "user_id": "u"}"#.to_vec()),
        ("not_utf8", b"{\"event\": \"\xff\xfe\"}".to_vec()),
        ("not_an_object", b"[1, 2, 3]".to_vec()),
        ("too_large", oversized.into_bytes()),
        ("invalid_json", Vec::new()),
    ];

    // Bad messages are spread between the valid ones and over partitions.
    let mut bad_positions: Vec<Produced> = Vec::new();
    let spacing = VALID / bad_messages.len();
    for index in 0..VALID {
        let partition = (index % 3) as i32;
        let key = format!("user-{}", index % 17);
        kafka
            .produce(topic, partition, Some(key.as_bytes()), &valid_event(index))
            .await?;

        if index % spacing == 0 && index / spacing < bad_messages.len() {
            let bad_index = index / spacing;
            let key = format!("bad-{bad_index}");
            let produced = kafka
                .produce(
                    topic,
                    (bad_index % 3) as i32,
                    Some(key.as_bytes()),
                    &bad_messages[bad_index].1,
                )
                .await?;
            bad_positions.push(produced);
        }
    }
    assert_eq!(bad_positions.len(), bad_messages.len());

    let ingest = start_ingest(test_config(&kafka, topic, group, &database, database.url()));
    let bad_count = bad_messages.len() as u64;
    wait_for("every message stored or dead-lettered", async || {
        let summary = ingest.summary();
        let done = summary.inserted == VALID as u64 && summary.dead_lettered == bad_count;
        Ok((done, format!("{summary:?}")))
    })
    .await?;
    wait_for_commits_at_end(&kafka, group, topic, &partitions).await?;
    let summary = ingest.stop().await?;

    assert_eq!(summary.consumed, VALID as u64 + bad_count);
    assert_eq!(summary.inserted, VALID as u64);
    assert_eq!(summary.rejected, bad_count);
    assert_eq!(summary.dead_lettered, bad_count);
    assert_eq!(summary.insert_retries, 0);
    assert_eq!(summary.abandoned, 0);

    assert_eq!(database.fetch_u64("SELECT count() FROM events").await?, VALID as u64);
    assert_eq!(event_ids(&database).await?, sorted_ids(0..VALID));
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(kafka_partition, kafka_offset) FROM events")
            .await?,
        VALID as u64
    );

    let dead_letters = kafka
        .read_messages("events.dlq", &[0], bad_messages.len(), Duration::from_secs(30))
        .await?;
    assert_eq!(dead_letters.len(), bad_messages.len());
    for letter in &dead_letters {
        check_dead_letter(letter, topic, &bad_messages, &bad_positions)?;
    }
    Ok(())
}

/// Checks one dead-letter message against the bad message its key names.
fn check_dead_letter(
    letter: &rdkafka::message::OwnedMessage,
    topic: &str,
    bad_messages: &[(&str, Vec<u8>)],
    bad_positions: &[Produced],
) -> anyhow::Result<()> {
    use rdkafka::message::Message;

    let key = std::str::from_utf8(letter.key().context("dead letter without key")?)?;
    let bad_index: usize = key
        .strip_prefix("bad-")
        .with_context(|| format!("unexpected dead-letter key {key:?}"))?
        .parse()?;
    let (kind, payload) = &bad_messages[bad_index];
    let source = bad_positions[bad_index];

    assert_eq!(
        letter.payload().unwrap_or_default(),
        payload.as_slice(),
        "payload of {key}"
    );
    assert_eq!(header_text(letter, HEADER_ERROR_KIND), Some(*kind), "kind of {key}");
    assert_eq!(header_text(letter, HEADER_SOURCE_TOPIC), Some(topic), "topic of {key}");
    assert_eq!(
        header_text(letter, HEADER_SOURCE_PARTITION),
        Some(source.partition.to_string().as_str()),
        "partition of {key}"
    );
    assert_eq!(
        header_text(letter, HEADER_SOURCE_OFFSET),
        Some(source.offset.to_string().as_str()),
        "offset of {key}"
    );
    let message = header_text(letter, HEADER_ERROR_MESSAGE).unwrap_or_default();
    ensure!(!message.is_empty(), "dead letter {key} has no error message");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_round_trip_field_by_field() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, round_trip_field_by_field())
        .await
        .context("test timed out")?
}

async fn round_trip_field_by_field() -> anyhow::Result<()> {
    let (topic, group) = ("events", "ingest-round-trip-test");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 1)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_round_trip").await?;

    let payloads: Vec<String> = vec![
        serde_json::json!({
            "event_time": "2024-05-01T12:34:56.789Z",
            "event": "purchase",
            "user_id": 12_345_678_901_234_u64,
            "event_id": "rt-full",
            "post_id": u64::MAX,
            "receiver_id": "user-2",
            "os": "Android",
            "country": "Deutschland",
            "city": "Zürich ✓",
            "source": "ads",
            "gender": "f",
            "age": 150,
            "exp_group": 3,
            "value": 0.1 + 0.2,
            "campaign": {"id": 7, "tags": ["a", "b"]},
        })
        .to_string(),
        r#"{"event_time": 946684800000, "event": "view", "user_id": "u"}"#.to_string(),
        r#"{"event_time": 4294967295000, "event": "view", "user_id": "u", "age": 0, "value": -1.5e-7}"#.to_string(),
        serde_json::json!({
            "event_time": 1_714_564_800_001_i64,
            "event": "message",
            "user_id": "user-\"quoted\"",
            "city": "New\nYork \\ Apple\t",
            "value": 12345.678,
            "": "empty key",
        })
        .to_string(),
    ];
    let limits = ParseLimits {
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_future: None,
    };
    let mut expected: Vec<(Event, Produced)> = Vec::new();
    for payload in &payloads {
        let event = Event::parse_with(payload.as_bytes(), &limits, chrono::Utc::now())
            .with_context(|| format!("test payload {payload} is invalid"))?;
        let produced = kafka.produce(topic, 0, None, payload.as_bytes()).await?;
        expected.push((event, produced));
    }

    let ingest = start_ingest(test_config(&kafka, topic, group, &database, database.url()));
    wait_for("every row stored", async || {
        let summary = ingest.summary();
        Ok((summary.inserted == payloads.len() as u64, format!("{summary:?}")))
    })
    .await?;
    let summary = ingest.stop().await?;
    assert_eq!(summary.rejected, 0);

    // Reading by column name catches columns swapped in the RowBinary
    // writer, which a type-compatible swap would not reveal on insert.
    let features = detect_features(&base_client(&ClickHouseConfig {
        url: database.url(),
        ..ClickHouseConfig::default()
    }))
    .await?;
    let epoch_ms = if features.datetime64 {
        "toUnixTimestamp64Milli(event_time)"
    } else {
        "toUnixTimestamp(event_time) * 1000 + event_time_ms"
    };
    let rows = database
        .fetch_json_rows(&format!(
            "SELECT {epoch_ms} AS event_time_epoch_ms, event, user_id, event_id, post_id, receiver_id, \
             os, country, city, source, gender, age, exp_group, value, extra, \
             kafka_partition, kafka_offset, toUnixTimestamp(inserted_at) AS inserted_at_s \
             FROM events ORDER BY kafka_offset"
        ))
        .await?;
    assert_eq!(rows.len(), expected.len());

    for (row, (event, produced)) in rows.iter().zip(&expected) {
        check_row(row, event, produced)?;
    }
    Ok(())
}

/// Compares one stored row with the event it came from, field by field.
fn check_row(row: &Value, event: &Event, produced: &Produced) -> anyhow::Result<()> {
    let id = format!("row at offset {}", produced.offset);
    let text = |name: &str| row[name].as_str();

    assert_eq!(
        row["event_time_epoch_ms"].as_i64(),
        Some(event.event_time_ms()),
        "event_time of {id}"
    );
    assert_eq!(text("event"), Some(event.event.as_str()), "event of {id}");
    assert_eq!(text("user_id"), Some(event.user_id.as_str()), "user_id of {id}");
    assert_eq!(text("event_id"), event.event_id.as_deref(), "event_id of {id}");
    assert_eq!(row["post_id"].as_u64(), event.post_id, "post_id of {id}");
    assert_eq!(text("receiver_id"), event.receiver_id.as_deref(), "receiver_id of {id}");
    assert_eq!(text("os"), event.os.as_deref(), "os of {id}");
    assert_eq!(text("country"), event.country.as_deref(), "country of {id}");
    assert_eq!(text("city"), event.city.as_deref(), "city of {id}");
    assert_eq!(text("source"), event.source.as_deref(), "source of {id}");
    assert_eq!(text("gender"), event.gender.as_deref(), "gender of {id}");
    assert_eq!(row["age"].as_u64(), event.age.map(u64::from), "age of {id}");
    assert_eq!(text("exp_group"), event.exp_group.as_deref(), "exp_group of {id}");
    assert_eq!(row["value"].as_f64(), event.value, "value of {id}");
    assert_eq!(text("extra"), Some(event.extra.as_str()), "extra of {id}");
    assert_eq!(
        row["kafka_partition"].as_i64(),
        Some(i64::from(produced.partition)),
        "kafka_partition of {id}"
    );
    assert_eq!(
        row["kafka_offset"].as_i64(),
        Some(produced.offset),
        "kafka_offset of {id}"
    );

    let inserted_at = row["inserted_at_s"].as_u64().unwrap_or_default();
    ensure!(
        inserted_at > 1_700_000_000,
        "inserted_at of {id} is not a recent time: {row}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_holds_commits_during_outage() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, holds_commits_during_outage())
        .await
        .context("test timed out")?
}

async fn holds_commits_during_outage() -> anyhow::Result<()> {
    const BEFORE: usize = 20;
    const DURING: usize = 30;
    const AT_SHUTDOWN: usize = 6;
    let partitions = [0, 1];
    let (topic, group) = ("events", "ingest-outage-test");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 2)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_outage").await?;
    let mut proxy = TcpProxy::start(clickhouse_socket_address(&database.url())?).await?;

    let mut config = test_config(&kafka, topic, group, &database, proxy.url());
    config.clickhouse.insert_timeout = Duration::from_secs(3);
    // Small batches, so the outage holds back more than a batch of messages
    // and ingest pauses the consumer.
    config.batch.max_rows = 10;
    let ingest = start_ingest(config);

    // Phase 1: ClickHouse reachable, everything stored and committed.
    for index in 0..BEFORE {
        kafka
            .produce(topic, (index % 2) as i32, None, &valid_event(index))
            .await?;
    }
    wait_for("the first events stored", async || {
        let summary = ingest.summary();
        Ok((summary.inserted == BEFORE as u64, format!("{summary:?}")))
    })
    .await?;
    wait_for_commits_at_end(&kafka, group, topic, &partitions).await?;
    let committed_before = kafka.committed_offsets(group, topic, &partitions).await?;

    // Phase 2: ClickHouse unreachable. Inserts fail and are retried, and
    // nothing new is committed.
    proxy.stop().await;
    for index in BEFORE..BEFORE + DURING {
        kafka
            .produce(topic, (index % 2) as i32, None, &valid_event(index))
            .await?;
    }
    wait_for("three failed insert attempts", async || {
        let summary = ingest.summary();
        Ok((summary.insert_retries >= 3, format!("{summary:?}")))
    })
    .await?;
    assert_eq!(
        kafka.committed_offsets(group, topic, &partitions).await?,
        committed_before
    );
    assert_eq!(ingest.summary().inserted, BEFORE as u64);
    assert_eq!(database.fetch_u64("SELECT count() FROM events").await?, BEFORE as u64);

    // Phase 3: ClickHouse reachable again. The pending batch is stored once
    // and the offsets move to the end.
    proxy.restart().await?;
    wait_for("the held-back events stored", async || {
        let summary = ingest.summary();
        Ok((summary.inserted == (BEFORE + DURING) as u64, format!("{summary:?}")))
    })
    .await?;
    wait_for_commits_at_end(&kafka, group, topic, &partitions).await?;
    let committed_after_recovery = kafka.committed_offsets(group, topic, &partitions).await?;
    assert_eq!(
        database.fetch_u64("SELECT count() FROM events").await?,
        (BEFORE + DURING) as u64
    );
    assert_eq!(event_ids(&database).await?, sorted_ids(0..BEFORE + DURING));

    // Phase 4: ClickHouse unreachable at shutdown. Ingest gives up after its
    // shutdown timeout and leaves the pending events uncommitted.
    proxy.stop().await;
    let retries_before = ingest.summary().insert_retries;
    let payloads: Vec<Vec<u8>> = (BEFORE + DURING..BEFORE + DURING + AT_SHUTDOWN)
        .map(valid_event)
        .collect();
    let produces = payloads
        .iter()
        .enumerate()
        .map(|(index, payload)| kafka.produce(topic, (index % 2) as i32, None, payload));
    for produced in futures::future::join_all(produces).await {
        produced?;
    }
    wait_for("a failed insert of the last events", async || {
        let summary = ingest.summary();
        Ok((summary.insert_retries > retries_before, format!("{summary:?}")))
    })
    .await?;
    let summary = ingest.stop().await?;

    // Events that arrived after the failed batch had started are held, not
    // handled, so they count neither as consumed nor as abandoned.
    assert_eq!(summary.inserted, (BEFORE + DURING) as u64);
    assert!((1..=AT_SHUTDOWN as u64).contains(&summary.abandoned), "{summary:?}");
    assert_eq!(summary.consumed, summary.inserted + summary.abandoned);
    assert_eq!(
        kafka.committed_offsets(group, topic, &partitions).await?,
        committed_after_recovery
    );
    assert_eq!(
        database.fetch_u64("SELECT count() FROM events").await?,
        (BEFORE + DURING) as u64
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_waits_for_unreachable_clickhouse() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, waits_for_unreachable_clickhouse())
        .await
        .context("test timed out")?
}

async fn waits_for_unreachable_clickhouse() -> anyhow::Result<()> {
    let (topic, group) = ("events", "ingest-unreachable-test");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 1)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_unreachable").await?;

    // A port that was just free: nothing listens there.
    let closed_port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{closed_port}");
    for index in 0..5 {
        kafka.produce(topic, 0, None, &valid_event(index)).await?;
    }

    let ingest = start_ingest(test_config(&kafka, topic, group, &database, url));
    wait_for("three failed connection attempts", async || {
        let summary = ingest.summary();
        Ok((summary.connect_retries >= 3, format!("{summary:?}")))
    })
    .await?;
    assert_eq!(kafka.committed_offsets(group, topic, &[0]).await?, [None]);

    let summary = ingest.stop().await?;
    assert_eq!(summary.consumed, 0);
    assert_eq!(summary.inserted, 0);
    assert_eq!(kafka.committed_offsets(group, topic, &[0]).await?, [None]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_retries_failed_dead_letter() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, retries_failed_dead_letter())
        .await
        .context("test timed out")?
}

async fn retries_failed_dead_letter() -> anyhow::Result<()> {
    let (topic, group) = ("events", "ingest-dead-letter-retry-test");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 1)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_dead_letter_retry").await?;

    // Offsets 0..5 valid, 5 invalid, 6..11 valid.
    for index in 0..5 {
        kafka.produce(topic, 0, None, &valid_event(index)).await?;
    }
    let bad = kafka.produce(topic, 0, Some(b"bad-0"), b"not json").await?;
    for index in 5..11 {
        kafka.produce(topic, 0, None, &valid_event(index)).await?;
    }
    assert_eq!(bad.offset, 5);

    // Every produce request fails with a non-retriable error until the
    // errors are cleared; only the ingest's dead-letter producer produces
    // from here on.
    let failures = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 1000];
    kafka.cluster().request_errors(RDKafkaApiKey::Produce, &failures);

    let ingest = start_ingest(test_config(&kafka, topic, group, &database, database.url()));
    wait_for("rows stored and two failed dead-letter deliveries", async || {
        let summary = ingest.summary();
        let done = summary.inserted == 11 && summary.dead_letter_retries >= 2;
        Ok((done, format!("{summary:?}")))
    })
    .await?;

    // The rows before the dead letter may be committed, nothing after it.
    let committed = kafka.committed_offsets(group, topic, &[0]).await?;
    assert!(
        committed[0].is_none_or(|offset| offset <= bad.offset),
        "committed {committed:?} past the undelivered dead letter at offset {}",
        bad.offset
    );
    assert_eq!(ingest.summary().dead_lettered, 0);

    kafka.cluster().clear_request_errors(RDKafkaApiKey::Produce);
    wait_for("the dead letter delivered", async || {
        let summary = ingest.summary();
        Ok((summary.dead_lettered == 1, format!("{summary:?}")))
    })
    .await?;
    wait_for_commits_at_end(&kafka, group, topic, &[0]).await?;
    let summary = ingest.stop().await?;
    assert_eq!(summary.rejected, 1);
    assert_eq!(summary.abandoned, 0);

    let letters = kafka
        .read_messages("events.dlq", &[0], 1, Duration::from_secs(30))
        .await?;
    check_dead_letter(&letters[0], topic, &[("invalid_json", b"not json".to_vec())], &[bad])
        .context("dead letter after retries")?;
    assert_eq!(database.fetch_u64("SELECT count() FROM events").await?, 11);
    Ok(())
}
