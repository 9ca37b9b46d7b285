//! Warm start over the real stack: ingest stores the events of the Kafka
//! mock cluster in the local ClickHouse 18.16, a detector consumes the same
//! topic and is restarted, and the restarted detector loads its history from
//! ClickHouse. Checked over gRPC: it is not learning, it does not fire an
//! episode that was open before the restart again, and it resolves that
//! episode under the same id.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use seismo_detector::{
    KafkaSettings, MetricsConfig, RunningDetector, ServiceConfig, WarmStartOutcome, WarmStartSettings,
};
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, AnomalyState, GetSeriesRequest, ListSeriesRequest, StreamAnomaliesRequest};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::ingest::{clickhouse_config, spawn_ingest};
use seismo_tests::kafka::MockKafka;
use seismo_tests::wait::wait_for;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

const MINUTE_MS: i64 = 60_000;
/// Normal minutes before the spike, enough to leave learning.
const HISTORY_WINDOWS: i64 = 90;
/// The spike lasts from minute 90 to 99; the restart happens after minute 94.
const SPIKE_END: i64 = 100;
const RESTART_MINUTE: i64 = 95;
const LAST_MINUTE: i64 = 120;

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
dimensions = ["os"]

[[metric]]
name = "active_users"
events = ["view"]
aggregation = "unique_users"
window = "5m"
"#;

const WAIT: Duration = Duration::from_secs(90);

/// Views of one minute: about 20, 200 during the spike, alternating iOS and
/// Android.
fn minute_messages(base_ms: i64, minute: i64) -> Vec<String> {
    let count = if (HISTORY_WINDOWS..SPIKE_END).contains(&minute) {
        200
    } else {
        20 + (minute * 7) % 5 - 2
    };
    (0..count)
        .map(|index| {
            serde_json::json!({
                "event_time": base_ms + minute * MINUTE_MS + index * (MINUTE_MS / count),
                "event": "view",
                "user_id": format!("user-{}", index % 15),
                "os": if index % 2 == 0 { "iOS" } else { "Android" },
            })
            .to_string()
        })
        .collect()
}

/// Builds one event at the start of `minute`, which closes the minute before it.
fn closing_message(base_ms: i64, minute: i64) -> String {
    serde_json::json!({"event_time": base_ms + minute * MINUTE_MS, "event": "view", "user_id": "closer"}).to_string()
}

async fn produce_all(kafka: &MockKafka, topic: &str, messages: &[String]) -> anyhow::Result<()> {
    for chunk in messages.chunks(500) {
        let deliveries = chunk
            .iter()
            .map(|message| kafka.produce(topic, 0, None, message.as_bytes()));
        for delivery in futures::future::join_all(deliveries).await {
            delivery?;
        }
    }
    Ok(())
}

fn kafka_settings(kafka: &MockKafka, topic: &str, group: &str) -> KafkaSettings {
    let mut settings = KafkaSettings::new(kafka.bootstrap_servers());
    settings.topic = topic.to_string();
    settings.group_id = group.to_string();
    settings.commit_interval = Duration::from_millis(500);
    // The mock cluster lets a restarted detector consume only after the
    // previous member's session timed out (45 s by default), although that
    // member sent LeaveGroup, so the session is kept short.
    settings
        .properties
        .push(("session.timeout.ms".to_string(), "6000".to_string()));
    settings
}

async fn start_detector(
    kafka: KafkaSettings,
    warm_start: Option<WarmStartSettings>,
    shutdown: &CancellationToken,
) -> anyhow::Result<RunningDetector> {
    seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(METRICS)?,
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

async fn subscribe(
    detector: &RunningDetector,
    after_sequence: u64,
    stream_epoch: u64,
) -> anyhow::Result<Streaming<AnomalyEvent>> {
    let mut client = DetectorClient::connect(format!("http://{}", detector.local_addr())).await?;
    let request = StreamAnomaliesRequest {
        after_sequence,
        stream_epoch,
        metrics: vec!["views".to_string()],
    };
    Ok(client.stream_anomalies(request).await?.into_inner())
}

/// Reads changes until one matches `last`, returning all read.
async fn read_until(stream: &mut Streaming<AnomalyEvent>, last: impl Fn(&AnomalyEvent) -> bool) -> Vec<AnomalyEvent> {
    let mut events = Vec::new();
    let read = async {
        while let Some(event) = stream.next().await {
            let event = event.expect("anomaly stream stays healthy");
            let done = last(&event);
            events.push(event);
            if done {
                return;
            }
        }
        panic!("anomaly stream ended early");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("the expected change did not arrive within {WAIT:?}; changes so far: {events:?}"));
    events
}

fn is_total(state: AnomalyState) -> impl Fn(&AnomalyEvent) -> bool {
    move |event| event.slice.is_empty() && event.state() == state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_open_episode_and_history() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    let topic = "detector-warm-start-events";
    kafka.create_topic(topic, 1)?;
    let database = TestDatabase::create("detector_warm_start").await?;
    let shutdown = CancellationToken::new();

    let ingest = spawn_ingest(
        kafka.bootstrap_servers(),
        topic,
        "detector-warm-start-ingest",
        clickhouse_config(&database),
        shutdown.child_token(),
    );

    // The first detector learns from Kafka alone and fires on the spike.
    let group = "detector-warm-start-detector";
    let first_shutdown = shutdown.child_token();
    let first = start_detector(kafka_settings(&kafka, topic, group), None, &first_shutdown).await?;
    let mut first_stream = subscribe(&first, 0, 0).await?;

    // On an hour boundary, so the 5-minute windows start with minute 0.
    let hour_ms = 60 * MINUTE_MS;
    let base_ms = (chrono::Utc::now().timestamp_millis() - 6 * hour_ms) / hour_ms * hour_ms;
    let mut before_restart: Vec<String> = (0..RESTART_MINUTE)
        .flat_map(|minute| minute_messages(base_ms, minute))
        .collect();
    before_restart.push(closing_message(base_ms, RESTART_MINUTE));
    produce_all(&kafka, topic, &before_restart).await?;

    let first_changes = read_until(&mut first_stream, is_total(AnomalyState::Firing)).await;
    let firing = first_changes.last().unwrap().clone();
    assert_eq!(
        firing.window_start_ms,
        base_ms + HISTORY_WINDOWS * MINUTE_MS,
        "{firing:?}"
    );

    // Stop it once it committed everything, and wait for ingest to store it.
    let produced = before_restart.len() as i64;
    wait_for("the first detector to commit every event", async || {
        let committed = kafka.committed_offsets(group, topic, &[0]).await?;
        Ok((
            committed == vec![Some(produced)],
            format!("committed {committed:?} of {produced}"),
        ))
    })
    .await?;
    let open_before_restart: Vec<AnomalyEvent> = {
        // Every change the first detector published, to compare ids with.
        let mut all = first_changes.clone();
        while let Ok(Some(Ok(event))) = tokio::time::timeout(Duration::from_millis(500), first_stream.next()).await {
            all.push(event);
        }
        all
    };
    first_shutdown.cancel();
    first.wait().await?;
    wait_for("ingest to store every event", async || {
        let stored = database.fetch_u64("SELECT count() FROM events").await.unwrap_or(0);
        Ok((stored == produced as u64, format!("stored {stored} of {produced}")))
    })
    .await?;

    // The restarted detector loads its history before consuming.
    let warm_start = WarmStartSettings {
        timeout: Duration::from_secs(20),
        ..WarmStartSettings::new(database.url(), database.name(), "events")
    };
    let second_shutdown = shutdown.child_token();
    let second = start_detector(kafka_settings(&kafka, topic, group), Some(warm_start), &second_shutdown).await?;
    let outcome = second
        .warm_start_outcome()
        .await
        .context("the warm start reports an outcome")?;
    let WarmStartOutcome::Loaded {
        windows,
        tail_events,
        open_episodes,
        missing_offsets,
    } = outcome
    else {
        panic!("warm start did not load history: {outcome:?}");
    };
    assert!(windows >= 3 * RESTART_MINUTE as u64, "judged {windows} windows");
    assert_eq!(tail_events, 1, "only the closing event lies in an open window");
    assert!(
        open_episodes >= 3,
        "open episodes after the warm start: {open_episodes}"
    );
    assert_eq!(missing_offsets, 0);

    let mut client = DetectorClient::connect(format!("http://{}", second.local_addr())).await?;
    let series = client
        .list_series(ListSeriesRequest { metric: String::new() })
        .await?
        .into_inner()
        .series;
    let names: Vec<String> = series
        .iter()
        .map(|info| format!("{}{:?}", info.metric, info.slice))
        .collect();
    assert_eq!(series.len(), 4, "series after the warm start: {names:?}");
    for info in series.iter().filter(|info| info.metric == "views") {
        assert!(!info.learning, "views{:?} is learning after the warm start", info.slice);
        assert_eq!(
            info.points, RESTART_MINUTE as u32,
            "views{:?}: one point per closed minute before the restart",
            info.slice
        );
    }
    // 5-minute windows: 19 closed before the restart, fewer than the 30 the
    // series needs to leave learning.
    let users = client
        .get_series(GetSeriesRequest {
            metric: "active_users".to_string(),
            slice: vec![],
            limit: 0,
        })
        .await?
        .into_inner();
    assert!(users.learning);
    let user_counts: Vec<f64> = users.points.iter().map(|point| point.value).collect();
    assert_eq!(
        user_counts,
        vec![15.0; RESTART_MINUTE as usize / 5],
        "distinct users per 5-minute window"
    );

    // A client resuming with the first detector's cursor gets a gap flag.
    let last_seen = open_before_restart.last().unwrap();
    let mut second_stream = subscribe(&second, last_seen.sequence, last_seen.stream_epoch).await?;

    let mut after_restart: Vec<String> = (RESTART_MINUTE..LAST_MINUTE)
        .flat_map(|minute| minute_messages(base_ms, minute))
        .collect();
    after_restart.push(closing_message(base_ms, LAST_MINUTE));
    produce_all(&kafka, topic, &after_restart).await?;

    let second_changes = read_until(&mut second_stream, is_total(AnomalyState::Resolved)).await;
    let resolved = second_changes.last().unwrap();
    assert_eq!(resolved.id, firing.id, "the resolution keeps the episode's id");
    assert!(
        resolved.window_start_ms >= base_ms + SPIKE_END * MINUTE_MS,
        "{resolved:?}"
    );
    let refired: Vec<&AnomalyEvent> = second_changes
        .iter()
        .filter(|event| event.state() == AnomalyState::Firing)
        .collect();
    assert!(refired.is_empty(), "the restarted detector fired again: {refired:?}");
    let fired_ids: Vec<&str> = open_before_restart
        .iter()
        .filter(|event| event.state() == AnomalyState::Firing)
        .map(|event| event.id.as_str())
        .collect();
    for change in &second_changes {
        assert!(
            fired_ids.contains(&change.id.as_str()),
            "resolution of an episode never fired: {change:?}"
        );
    }
    assert!(
        second_changes[0].gap_before,
        "first change after a cursor of the earlier epoch"
    );
    assert!(second_changes[1..].iter().all(|change| !change.gap_before));
    assert_ne!(second_changes[0].stream_epoch, last_seen.stream_epoch);
    assert!(
        second_changes[0].sequence > last_seen.sequence,
        "sequences keep increasing across the restart"
    );

    // Every event counted once: the restarted detector's windows equal what
    // one uninterrupted detector would see.
    let points = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![],
            limit: 0,
        })
        .await?
        .into_inner()
        .points;
    for point in &points {
        let minute = (point.window_start_ms - base_ms) / MINUTE_MS;
        let expected = minute_messages(base_ms, minute).len() as f64 + if minute == RESTART_MINUTE { 1.0 } else { 0.0 };
        assert_eq!(point.value, expected, "views in minute {minute}");
    }

    second_shutdown.cancel();
    second.wait().await?;
    shutdown.cancel();
    ingest.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_clickhouse_starts_cold() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    let topic = "detector-cold-start-events";
    kafka.create_topic(topic, 1)?;
    kafka
        .produce(
            topic,
            0,
            None,
            closing_message(chrono::Utc::now().timestamp_millis(), 0).as_bytes(),
        )
        .await?;
    // A port that was just free: nothing listens there.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let warm_start = WarmStartSettings {
        timeout: Duration::from_secs(3),
        ..WarmStartSettings::new(format!("http://127.0.0.1:{closed_port}"), "seismo", "events")
    };
    let shutdown = CancellationToken::new();

    let started = std::time::Instant::now();
    let detector = start_detector(
        kafka_settings(&kafka, topic, "detector-cold-start"),
        Some(warm_start),
        &shutdown,
    )
    .await?;
    let outcome = detector.warm_start_outcome().await;

    let Some(WarmStartOutcome::Failed { error }) = outcome else {
        panic!("expected a failed warm start, got {outcome:?}");
    };
    assert!(error.contains(&format!("127.0.0.1:{closed_port}")), "{error}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "gave up after {:?}, before the timeout",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retried for {:?}",
        started.elapsed()
    );

    // It consumes anyway.
    wait_for("the cold detector to consume the event", async || {
        let messages = detector.stats().snapshot().messages_received;
        Ok((messages == 1, format!("{messages} messages")))
    })
    .await?;

    shutdown.cancel();
    detector.wait().await?;
    Ok(())
}

/// Every aggregation, filters and slices, for the equivalence test.
const ALL_KINDS: &str = r#"
[windowing]
allowed_lateness = "0s"

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os", "country"]

[[metric]]
name = "likers"
events = ["like"]
aggregation = "unique_users"
window = "1m"
dimensions = ["os"]

[[metric]]
name = "revenue"
events = ["purchase"]
aggregation = "sum"
window = "5m"

[[metric]]
name = "like_rate"
aggregation = "ratio"
numerator = "likers"
denominator = "views"
window = "1m"
dimensions = ["os"]

[[metric]]
name = "ios_views"
events = ["view"]
filter = { os = "iOS" }
aggregation = "count"
window = "1m"
"#;

/// Minute 20 has no events at all, so empty windows are restored too.
fn mixed_minute_messages(base_ms: i64, minute: i64) -> Vec<String> {
    if minute == 20 {
        return Vec::new();
    }
    let mut messages = Vec::new();
    let views = 10 + minute % 7;
    for index in 0..views {
        let os = ["iOS", "Android", "Linux"][(index % 3) as usize];
        let mut event = serde_json::json!({
            "event_time": base_ms + minute * MINUTE_MS + index * 1_000,
            "event": "view",
            "user_id": format!("user-{}", index % 6),
            "os": os,
        });
        if index % 4 != 0 {
            event["country"] = serde_json::json!(if index % 2 == 0 { "DE" } else { "FR" });
        }
        messages.push(event.to_string());
    }
    for index in 0..(minute % 5) {
        messages.push(
            serde_json::json!({
                "event_time": base_ms + minute * MINUTE_MS + 30_000 + index * 1_000,
                "event": "like",
                "user_id": format!("user-{}", index % 3),
                "os": if index % 2 == 0 { "iOS" } else { "Android" },
            })
            .to_string(),
        );
    }
    let mut purchase = serde_json::json!({"event_time": base_ms + minute * MINUTE_MS + 45_000, "event": "purchase", "user_id": "buyer"});
    if minute % 3 != 0 {
        purchase["value"] = serde_json::json!(1.25 * minute as f64);
    }
    messages.push(purchase.to_string());
    messages
}

/// Reads all series of a detector with their points, sorted by metric and slice.
async fn series_snapshot(
    detector: &RunningDetector,
) -> anyhow::Result<Vec<(String, String, bool, Vec<seismo_proto::v1::SeriesPoint>)>> {
    let mut client = DetectorClient::connect(format!("http://{}", detector.local_addr())).await?;
    let listed = client
        .list_series(ListSeriesRequest { metric: String::new() })
        .await?
        .into_inner()
        .series;
    let mut snapshot = Vec::new();
    for info in listed {
        let series = client
            .get_series(GetSeriesRequest {
                metric: info.metric.clone(),
                slice: info.slice.clone(),
                limit: 0,
            })
            .await?
            .into_inner();
        snapshot.push((info.metric, format!("{:?}", info.slice), series.learning, series.points));
    }
    snapshot.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
    Ok(snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_series_equal_live_series() -> anyhow::Result<()> {
    let hour_ms = 60 * MINUTE_MS;
    let base_ms = (chrono::Utc::now().timestamp_millis() - 3 * hour_ms) / hour_ms * hour_ms;
    let mut messages: Vec<String> = (0..47)
        .flat_map(|minute| mixed_minute_messages(base_ms, minute))
        .collect();
    messages.push(closing_message(base_ms, 47));

    let series = restore_and_compare("detector-warm-start-kinds", ALL_KINDS, &messages).await?;

    assert!(series >= 12, "{series} series");
    Ok(())
}

const HOURLY_METRICS: &str = r#"
[windowing]
allowed_lateness = "0s"

[[metric]]
name = "orders"
events = ["order"]
aggregation = "count"
window = "5m"
detection = { weekly_reference = "hourly" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_hourly_reference_equals_live() -> anyhow::Result<()> {
    // A week and 4 hours of 5-minute windows: the last 4 hours read the
    // hour means of the week before, which the warm start must load too.
    // The values kept cover only 338 windows, 28 hours.
    let window_ms = 5 * MINUTE_MS;
    let windows = 7 * 288 + 48;
    let hour_ms = 60 * MINUTE_MS;
    let base_ms = (chrono::Utc::now().timestamp_millis() - (windows + 6) * window_ms) / hour_ms * hour_ms;
    let mut messages = Vec::new();
    for window in 0..windows {
        let hour = window / 12 % 24;
        let orders = 2 + (hour * 5 + window % 3) % 7;
        for order in 0..orders {
            let event_time = base_ms + window * window_ms + order * (window_ms / orders);
            messages.push(
                serde_json::json!({"event_time": event_time, "event": "order", "user_id": format!("user-{order}")})
                    .to_string(),
            );
        }
    }
    messages.push(
        serde_json::json!({"event_time": base_ms + windows * window_ms, "event": "order", "user_id": "closer"})
            .to_string(),
    );

    let series = restore_and_compare("detector-warm-start-hourly", HOURLY_METRICS, &messages).await?;

    assert_eq!(series, 1);
    Ok(())
}

/// Sends `messages` through ingest into a fresh ClickHouse database and
/// through a live detector with `metrics`, then starts a second detector
/// that gets its history from ClickHouse alone. Asserts that both have the
/// same series with the same points and learning state, and returns how
/// many series they have.
async fn restore_and_compare(name: &str, metrics: &str, messages: &[String]) -> anyhow::Result<usize> {
    let kafka = MockKafka::start()?;
    let topic = name;
    kafka.create_topic(topic, 1)?;
    let database = TestDatabase::create(&name.replace('-', "_")).await?;
    let shutdown = CancellationToken::new();
    let ingest = spawn_ingest(
        kafka.bootstrap_servers(),
        topic,
        &format!("{name}-ingest"),
        clickhouse_config(&database),
        shutdown.child_token(),
    );
    produce_all(&kafka, topic, messages).await?;
    let produced = messages.len() as i64;

    // The live detector reads every event from Kafka.
    let group = name;
    let live_shutdown = shutdown.child_token();
    let live = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(metrics)?,
            kafka: kafka_settings(&kafka, topic, group),
            listen: "127.0.0.1:0".parse()?,
            replay_buffer: 1_000,
            warm_start: None,
        },
        seismo_detector::Readiness::default(),
        live_shutdown.clone(),
    )
    .await?;
    wait_for("the live detector to commit every event", async || {
        let committed = kafka.committed_offsets(group, topic, &[0]).await?;
        Ok((
            committed == vec![Some(produced)],
            format!("committed {committed:?} of {produced}"),
        ))
    })
    .await?;
    let live_series = series_snapshot(&live).await?;
    live_shutdown.cancel();
    live.wait().await?;
    wait_for("ingest to store every event", async || {
        let stored = database.fetch_u64("SELECT count() FROM events").await.unwrap_or(0);
        Ok((stored == produced as u64, format!("stored {stored} of {produced}")))
    })
    .await?;

    // The restarted detector gets the same windows from ClickHouse alone.
    let restored_shutdown = shutdown.child_token();
    let restored = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(metrics)?,
            kafka: kafka_settings(&kafka, topic, group),
            listen: "127.0.0.1:0".parse()?,
            replay_buffer: 1_000,
            warm_start: Some(WarmStartSettings::new(database.url(), database.name(), "events")),
        },
        seismo_detector::Readiness::default(),
        restored_shutdown.clone(),
    )
    .await?;
    let outcome = restored.warm_start_outcome().await;
    assert!(matches!(outcome, Some(WarmStartOutcome::Loaded { .. })), "{outcome:?}");
    let restored_series = series_snapshot(&restored).await?;

    let names = |snapshot: &[(String, String, bool, Vec<seismo_proto::v1::SeriesPoint>)]| {
        snapshot
            .iter()
            .map(|(metric, slice, _, _)| format!("{metric}{slice}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&restored_series), names(&live_series));
    for (live, restored) in live_series.iter().zip(&restored_series) {
        assert_eq!(restored.2, live.2, "learning of {}{}", live.0, live.1);
        assert_eq!(restored.3, live.3, "points of {}{}", live.0, live.1);
    }

    restored_shutdown.cancel();
    restored.wait().await?;
    shutdown.cancel();
    ingest.await??;
    Ok(live_series.len())
}

/// Commits `offset` on partition 0 for `group`, as a detector that
/// consumed everything before it would have.
fn commit_detector_position(kafka: &MockKafka, topic: &str, group: &str, offset: i64) -> anyhow::Result<()> {
    seismo_tests::kafka::commit_offsets(kafka.bootstrap_servers(), topic, group, &[(0, offset)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_start_waits_for_lagging_ingest() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    let topic = "detector-warm-start-lag";
    kafka.create_topic(topic, 1)?;
    let database = TestDatabase::create("detector_warm_start_lag").await?;
    let clickhouse = clickhouse_config(&database);
    let client = seismo_ingest::base_client(&clickhouse);
    let features = seismo_ingest::detect_features(&client).await?;
    client
        .query(&seismo_ingest::schema::create_table_sql(
            &features,
            database.name(),
            "events",
        ))
        .execute()
        .await?;

    // Events the detector already consumed, but ingest has not stored yet.
    let hour_ms = 60 * MINUTE_MS;
    let base_ms = (chrono::Utc::now().timestamp_millis() - 3 * hour_ms) / hour_ms * hour_ms;
    let mut messages: Vec<String> = (0..60).flat_map(|minute| minute_messages(base_ms, minute)).collect();
    messages.push(closing_message(base_ms, 60));
    produce_all(&kafka, topic, &messages).await?;
    let group = "detector-warm-start-lag";
    commit_detector_position(&kafka, topic, group, messages.len() as i64)?;

    let shutdown = CancellationToken::new();
    let warm_start = WarmStartSettings {
        timeout: Duration::from_secs(60),
        ..WarmStartSettings::new(database.url(), database.name(), "events")
    };
    let detector = start_detector(kafka_settings(&kafka, topic, group), Some(warm_start), &shutdown).await?;

    // Ingest starts after the warm start found nothing stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ingest = spawn_ingest(
        kafka.bootstrap_servers(),
        topic,
        "detector-warm-start-lag-ingest",
        clickhouse,
        shutdown.child_token(),
    );

    let outcome = detector.warm_start_outcome().await;
    let Some(WarmStartOutcome::Loaded {
        windows,
        missing_offsets,
        ..
    }) = outcome
    else {
        panic!("warm start did not load history: {outcome:?}");
    };
    assert_eq!(
        missing_offsets, 0,
        "the warm start loaded before ingest stored everything"
    );
    assert!(windows >= 3 * 60, "judged {windows} windows");

    let mut client = DetectorClient::connect(format!("http://{}", detector.local_addr())).await?;
    let points = client
        .get_series(GetSeriesRequest {
            metric: "views".to_string(),
            slice: vec![],
            limit: 0,
        })
        .await?
        .into_inner()
        .points;
    assert_eq!(points.len(), 60);
    for point in &points {
        let minute = (point.window_start_ms - base_ms) / MINUTE_MS;
        assert_eq!(
            point.value,
            minute_messages(base_ms, minute).len() as f64,
            "views in minute {minute}"
        );
    }

    shutdown.cancel();
    detector.wait().await?;
    ingest.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clickhouse_times_out() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    let topic = "detector-silent-clickhouse";
    kafka.create_topic(topic, 1)?;
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let silent = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            connections.push(connection);
        }
    });
    let warm_start = WarmStartSettings {
        timeout: Duration::from_secs(1),
        ..WarmStartSettings::new(format!("http://{address}"), "seismo", "events")
    };
    let shutdown = CancellationToken::new();

    let started = std::time::Instant::now();
    let detector = start_detector(
        kafka_settings(&kafka, topic, "detector-silent-clickhouse"),
        Some(warm_start),
        &shutdown,
    )
    .await?;
    let outcome = detector.warm_start_outcome().await;

    let Some(WarmStartOutcome::Failed { error }) = outcome else {
        panic!("expected a failed warm start, got {outcome:?}");
    };
    assert!(error.contains("timed out after 5 s"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up after {:?}",
        started.elapsed()
    );

    shutdown.cancel();
    detector.wait().await?;
    silent.abort();
    Ok(())
}
