//! Poison pills between valid events: each goes to the dead-letter topic with
//! its reason and source offset, the valid neighbours are stored, nothing
//! panics and the offsets reach the end of the topic. Runs ingest with its
//! production parse limits against the mock Kafka cluster and the real local
//! ClickHouse server.

mod ingest_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use rdkafka::ClientConfig;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use seismo_events::ParseLimits;
use seismo_ingest::dead_letter::{
    HEADER_ERROR_KIND, HEADER_ERROR_MESSAGE, HEADER_PAYLOAD_OMITTED_BYTES, HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use seismo_ingest::{BatchPolicy, ClickHouseConfig, IngestConfig, IngestStats, Readiness, RetryPolicy};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::{MockKafka, header_text};
use tokio_util::sync::CancellationToken;

use ingest_support::{init_logging, valid_event};
use seismo_tests::wait::wait_for;

const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Size of the largest poison pill, four times the parser's 1 MiB default
/// and above librdkafka's 1,000,000-byte default `message.max.bytes`.
///
/// NOTE: not 10 MiB, because librdkafka's mock cluster keeps at most 5 MiB
/// of log per partition (`max_size` in rdkafka_mock.c, librdkafka 2.12): a
/// 10 MiB message evicts itself and every older message, so the consumer
/// receives none of them. Up to 5 MiB it is fetched like any other message.
const HUGE_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// One bad message: what it is, the error kind it must be dead-lettered
/// with, and its bytes.
struct PoisonPill {
    name: &'static str,
    kind: &'static str,
    payload: Vec<u8>,
}

fn pill(name: &'static str, kind: &'static str, payload: impl Into<Vec<u8>>) -> PoisonPill {
    PoisonPill {
        name,
        kind,
        payload: payload.into(),
    }
}

/// Pads a message that is otherwise valid with an unknown field, so only its
/// size is wrong.
fn padded_event(total_bytes: usize) -> Vec<u8> {
    let head = r#"{"event_time": 1714564800000, "event": "view", "user_id": "u", "padding": ""#;
    let tail = r#""}"#;
    let mut message = head.as_bytes().to_vec();
    message.resize(total_bytes - tail.len(), b'x');
    message.extend_from_slice(tail.as_bytes());
    message
}

fn poison_pills() -> Vec<PoisonPill> {
    let ten_years_ahead = chrono::Utc::now().timestamp_millis() + 10 * 365 * 86_400_000;
    let year_2100 = 4_102_444_800_000_i64;
    let mut missing_field_near_limit = padded_event(1_040_000);
    // Renaming `user_id` keeps the size but removes a required field, so
    // the message is rejected while being too large for a default
    // dead-letter producer.
    let at = missing_field_near_limit
        .windows(9)
        .position(|window| window == b"\"user_id\"")
        .expect("padded_event contains user_id");
    missing_field_near_limit[at + 1..at + 8].copy_from_slice(b"user_xx");

    vec![
        pill(
            "truncated",
            "invalid_json",
            r#"{"event_time": 1714564800000, "event": "vi"#,
        ),
        pill(
            "cut after key",
            "invalid_json",
            r#"{"event_time": 1714564800000, "event""#,
        ),
        pill(
            "invalid escape",
            "invalid_json",
            r#"{"event_time": 1714564800000, "event": "v\qiew", "user_id": "u"}"#,
        ),
        pill(
            "lone surrogate escape",
            "invalid_json",
            r#"{"event_time": 1714564800000, "event": "\udc00", "user_id": "u"}"#,
        ),
        pill(
            "string for post_id",
            "invalid_field",
            r#"{"event_time": 1714564800000, "event": "view", "user_id": "u", "post_id": "abc"}"#,
        ),
        pill(
            "string for age",
            "invalid_field",
            r#"{"event_time": 1714564800000, "event": "view", "user_id": "u", "age": "31"}"#,
        ),
        pill(
            "string for value",
            "invalid_field",
            r#"{"event_time": 1714564800000, "event": "view", "user_id": "u", "value": "2.5"}"#,
        ),
        pill(
            "number for event",
            "invalid_field",
            r#"{"event_time": 1714564800000, "event": 42, "user_id": "u"}"#,
        ),
        pill(
            "missing user_id",
            "missing_field",
            r#"{"event_time": 1714564800000, "event": "view"}"#,
        ),
        pill(
            "missing event_time",
            "missing_field",
            r#"{"event": "view", "user_id": "u"}"#,
        ),
        pill(
            "null event",
            "missing_field",
            r#"{"event_time": 1714564800000, "event": null, "user_id": "u"}"#,
        ),
        pill(
            "non-UTF-8 bytes",
            "not_utf8",
            b"{\"event_time\": 1714564800000, \"event\": \"\xc3\x28\", \"user_id\": \"u\"}".to_vec(),
        ),
        pill("Latin-1 text", "not_utf8", b"{\"event\": \"caf\xe9\"}".to_vec()),
        pill(
            "deep nesting",
            "invalid_json",
            format!(
                r#"{{"event_time": 1714564800000, "event": "view", "user_id": "u", "deep": {}1{}}}"#,
                "[".repeat(5_000),
                "]".repeat(5_000)
            ),
        ),
        pill(
            "epoch seconds",
            "invalid_field",
            r#"{"event_time": 1714564800, "event": "view", "user_id": "u"}"#,
        ),
        pill(
            "negative time",
            "invalid_field",
            r#"{"event_time": -1, "event": "view", "user_id": "u"}"#,
        ),
        pill(
            "time beyond 2106",
            "invalid_field",
            r#"{"event_time": 4294967296000, "event": "view", "user_id": "u"}"#,
        ),
        pill(
            "time beyond i64",
            "invalid_field",
            r#"{"event_time": 1e30, "event": "view", "user_id": "u"}"#,
        ),
        pill(
            "year 9999",
            "invalid_field",
            r#"{"event_time": "9999-12-31T23:59:59Z", "event": "view", "user_id": "u"}"#,
        ),
        pill(
            "ten years ahead",
            "invalid_field",
            format!(r#"{{"event_time": {ten_years_ahead}, "event": "view", "user_id": "u"}}"#),
        ),
        pill(
            "year 2100",
            "invalid_field",
            format!(r#"{{"event_time": {year_2100}, "event": "view", "user_id": "u"}}"#),
        ),
        pill("JSON array", "not_an_object", "[1, 2, 3]"),
        pill("empty payload", "invalid_json", ""),
        pill(
            "rejected near the 1 MiB limit",
            "missing_field",
            missing_field_near_limit,
        ),
        pill("4 MiB message", "too_large", padded_event(HUGE_MESSAGE_BYTES)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_dead_letters_poison_pills() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, dead_letters_poison_pills())
        .await
        .context("test timed out")?
}

async fn dead_letters_poison_pills() -> anyhow::Result<()> {
    const VALID_PER_GAP: usize = 4;
    let (topic, dead_letter_topic, group) = ("events", "events.dlq", "ingest-poison-test");
    let kafka = MockKafka::start()?;
    kafka.create_topic(topic, 2)?;
    kafka.create_topic(dead_letter_topic, 1)?;
    let database = TestDatabase::create("ingest_poison").await?;

    // The shared test producer keeps librdkafka's 1 MB limit; this one may
    // send the 10 MiB message.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("message.max.bytes", (2 * HUGE_MESSAGE_BYTES).to_string())
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the large-message producer")?;

    // Valid events before, between and after the pills, on both partitions.
    let pills = poison_pills();
    let mut valid = 0;
    let mut pill_positions = Vec::new();
    for (index, pill) in pills.iter().enumerate() {
        for _ in 0..VALID_PER_GAP {
            kafka
                .produce(topic, (valid % 2) as i32, None, &valid_event(valid))
                .await?;
            valid += 1;
        }
        let key = format!("pill-{index}");
        let record = FutureRecord::to(topic)
            .partition((index % 2) as i32)
            .key(key.as_bytes())
            .payload(pill.payload.as_slice());
        let delivery = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(error, _message)| anyhow!("producing pill {:?} failed: {error}", pill.name))?;
        pill_positions.push((delivery.partition, delivery.offset));
    }
    for _ in 0..VALID_PER_GAP {
        kafka
            .produce(topic, (valid % 2) as i32, None, &valid_event(valid))
            .await?;
        valid += 1;
    }

    let config = IngestConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: topic.to_string(),
        group_id: group.to_string(),
        dead_letter_topic: dead_letter_topic.to_string(),
        dead_letter_delivery_timeout: Duration::from_secs(10),
        clickhouse: ClickHouseConfig {
            url: database.url(),
            database: database.name().to_string(),
            table: "events".to_string(),
            insert_timeout: Duration::from_secs(10),
            ..ClickHouseConfig::default()
        },
        batch: BatchPolicy {
            max_rows: 16,
            max_wait: Duration::from_millis(200),
        },
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        // The production limits: 1 MiB and 24 h of clock skew.
        parse_limits: ParseLimits::default(),
        shutdown_timeout: Duration::from_secs(5),
        ..IngestConfig::default()
    };
    let stats = Arc::new(IngestStats::default());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(seismo_ingest::run(
        config,
        stats.clone(),
        Readiness::default(),
        cancel.clone(),
    ));

    wait_for("every message stored or dead-lettered", async || {
        let summary = stats.summary();
        let done = summary.inserted == valid as u64 && summary.dead_lettered == pills.len() as u64;
        Ok((done, format!("{summary:?}")))
    })
    .await?;
    let ends = kafka.high_watermarks(topic, &[0, 1]).await?;
    wait_for("offsets committed at the end of both partitions", async || {
        let committed = kafka.committed_offsets(group, topic, &[0, 1]).await?;
        let expected: Vec<Option<i64>> = ends.iter().copied().map(Some).collect();
        Ok((committed == expected, format!("committed {committed:?}, end {ends:?}")))
    })
    .await?;
    cancel.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .context("ingest did not stop within 30 s")?
        .context("ingest task panicked")??;

    assert_eq!(summary.consumed, (valid + pills.len()) as u64);
    assert_eq!(summary.inserted, valid as u64);
    assert_eq!(summary.rejected, pills.len() as u64);
    assert_eq!(summary.dead_lettered, pills.len() as u64);
    assert_eq!(summary.abandoned, 0);

    assert_eq!(
        database.fetch_u64("SELECT count() FROM events FINAL").await?,
        valid as u64
    );
    assert_eq!(
        database
            .fetch_u64("SELECT uniqExact(assumeNotNull(event_id)) FROM events")
            .await?,
        valid as u64
    );

    let letters = kafka
        .read_messages(dead_letter_topic, &[0], pills.len(), Duration::from_secs(60))
        .await?;
    for letter in &letters {
        check_letter(letter, topic, &pills, &pill_positions)?;
    }
    Ok(())
}

/// Checks one dead letter against the pill its key names.
fn check_letter(
    letter: &OwnedMessage,
    topic: &str,
    pills: &[PoisonPill],
    positions: &[(i32, i64)],
) -> anyhow::Result<()> {
    let key = std::str::from_utf8(letter.key().context("dead letter without key")?)?;
    let index: usize = key
        .strip_prefix("pill-")
        .with_context(|| format!("unexpected dead-letter key {key:?}"))?
        .parse()?;
    let pill = &pills[index];
    let (partition, offset) = positions[index];
    let name = pill.name;

    assert_eq!(
        header_text(letter, HEADER_ERROR_KIND),
        Some(pill.kind),
        "kind of {name}"
    );
    assert_eq!(header_text(letter, HEADER_SOURCE_TOPIC), Some(topic), "topic of {name}");
    assert_eq!(
        header_text(letter, HEADER_SOURCE_PARTITION),
        Some(partition.to_string().as_str()),
        "partition of {name}"
    );
    assert_eq!(
        header_text(letter, HEADER_SOURCE_OFFSET),
        Some(offset.to_string().as_str()),
        "offset of {name}"
    );
    let message = header_text(letter, HEADER_ERROR_MESSAGE).unwrap_or_default();
    ensure!(!message.is_empty(), "dead letter of {name} has no error message");

    // Letters that fit the dead-letter producer's 1,000,000-byte default
    // keep the payload; larger ones carry its size instead.
    if pill.payload.len() > 900_000 {
        assert_eq!(letter.payload(), None, "payload of {name}");
        assert_eq!(
            header_text(letter, HEADER_PAYLOAD_OMITTED_BYTES),
            Some(pill.payload.len().to_string().as_str()),
            "omitted size of {name}"
        );
    } else {
        assert_eq!(
            letter.payload().unwrap_or_default(),
            pill.payload.as_slice(),
            "payload of {name}"
        );
        assert_eq!(
            header_text(letter, HEADER_PAYLOAD_OMITTED_BYTES),
            None,
            "omitted size of {name}"
        );
    }
    Ok(())
}
