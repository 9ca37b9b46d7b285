//! A series that flaps around its band, through the real pipeline from
//! Kafka on: events go to librdkafka's mock cluster, the in-process detector
//! turns them into anomaly episodes, and the notifier sends them to the fake
//! Telegram Bot API. The real detector is used, not a scripted stream,
//! because whether a flapping series makes one episode or many is decided by
//! the detector's firing and resolution rules, and this test checks the
//! messages a user sees from both together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use seismo_detector::{KafkaSettings, MetricsConfig, ServiceConfig};
use seismo_notifier::{ExponentialBackoff, NotifierConfig, NotifierStats, Readiness, RetryPolicy, TelegramConfig};
use seismo_tests::fake_telegram::{FakeTelegram, parse_telegram_html};
use seismo_tests::kafka::produce_all;
use tokio_util::sync::CancellationToken;

const MINUTE_MS: i64 = 60_000;
/// Normal windows before the flapping, enough to leave learning.
const HISTORY_WINDOWS: i64 = 60;
/// Windows that alternate between far above the band and normal.
const FLAPPING_WINDOWS: i64 = 8;
/// Normal windows after the flapping, enough for the episode to resolve.
const RECOVERY_WINDOWS: i64 = 20;

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
"#;

/// Bound of every wait; generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";

/// Views per minute: about 20 with a fixed wobble, and 200 in every other
/// window of the flapping stretch.
fn views_in_minute(minute: i64) -> i64 {
    let flapping = HISTORY_WINDOWS..HISTORY_WINDOWS + FLAPPING_WINDOWS;
    if flapping.contains(&minute) && (minute - HISTORY_WINDOWS) % 2 == 0 {
        return 200;
    }
    20 + (minute * 7) % 5 - 2
}

/// Event JSON messages for every minute plus one that closes the last window.
fn scenario_messages(base_ms: i64) -> Vec<String> {
    let total_minutes = HISTORY_WINDOWS + FLAPPING_WINDOWS + RECOVERY_WINDOWS;
    let mut messages = Vec::new();
    for minute in 0..total_minutes {
        let count = views_in_minute(minute);
        for index in 0..count {
            let time_ms = base_ms + minute * MINUTE_MS + index * (MINUTE_MS / count);
            messages.push(
                serde_json::json!({"event_time": time_ms, "event": "view", "user_id": format!("user-{index}")})
                    .to_string(),
            );
        }
    }
    let closing_ms = base_ms + total_minutes * MINUTE_MS;
    messages.push(serde_json::json!({"event_time": closing_ms, "event": "view", "user_id": "closer"}).to_string());
    messages
}

/// Returns `(episode id, resolved)` of a delivered alert's displayed text.
fn state_change(displayed: &str) -> (String, bool) {
    let episode = displayed
        .lines()
        .find_map(|line| line.strip_prefix("Episode: "))
        .unwrap_or_else(|| panic!("the alert names its episode: {displayed}"))
        .to_string();
    (episode, displayed.starts_with("✅ Resolved"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_series_sends_one_firing_and_one_resolution() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "notifier-flapping-events";
    cluster.create_topic(topic, 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let mut kafka = KafkaSettings::new(brokers.clone());
    kafka.topic = topic.to_string();
    kafka.group_id = "notifier-flapping-test".to_string();
    let shutdown = CancellationToken::new();
    let detector = seismo_detector::start(
        ServiceConfig {
            metrics: MetricsConfig::parse(METRICS).unwrap(),
            kafka,
            listen: "127.0.0.1:0".parse().unwrap(),
            replay_buffer: 1_000,
            warm_start: None,
        },
        seismo_detector::Readiness::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();

    let fake = FakeTelegram::start().await;
    let stats = Arc::new(NotifierStats::default());
    let readiness = Readiness::default();
    let config = NotifierConfig {
        detectors: vec![format!("http://{}", detector.local_addr())],
        telegram: Some(TelegramConfig::new(TOKEN, "1001", &fake.api_url()).unwrap()),
        reconnect: ExponentialBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
        delivery: RetryPolicy {
            max_attempts: 4,
            backoff: ExponentialBackoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            max_retry_after: Duration::from_secs(30),
        },
        ..NotifierConfig::default()
    };
    let notifier = tokio::spawn(seismo_notifier::run(
        config,
        Arc::clone(&stats),
        readiness.clone(),
        shutdown.clone(),
    ));
    // The notifier follows live changes only on its first start, so its
    // stream has to be open before the events are produced.
    let deadline = Instant::now() + WAIT;
    while readiness.status().is_err() {
        assert!(Instant::now() < deadline, "the notifier did not subscribe in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let now_ms = chrono::Utc::now().timestamp_millis();
    let base_ms = (now_ms - 6 * 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    produce_all(&brokers, topic, "views", &scenario_messages(base_ms))
        .await
        .unwrap();

    // Waits until the first resolution has arrived and then for any later
    // message, because the detector evaluates the windows in one burst.
    let deadline = Instant::now() + WAIT;
    loop {
        let resolved = fake.delivered().iter().any(|request| {
            parse_telegram_html(request.text.as_deref().unwrap())
                .unwrap()
                .starts_with("✅")
        });
        if resolved {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no resolution within {WAIT:?}: {:#?}",
            fake.delivered()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    notifier.await.unwrap().expect("the notifier configuration is valid");
    tokio::time::timeout(WAIT, detector.wait())
        .await
        .expect("the detector stops within the bound")
        .unwrap();

    let mut messages_per_state_change: BTreeMap<(String, bool), usize> = BTreeMap::new();
    for request in fake.delivered() {
        let displayed = parse_telegram_html(request.text.as_deref().unwrap()).unwrap();
        *messages_per_state_change.entry(state_change(&displayed)).or_insert(0) += 1;
    }
    let episodes: Vec<&String> = messages_per_state_change
        .keys()
        .filter(|(_, resolved)| !resolved)
        .map(|(episode, _)| episode)
        .collect();
    assert_eq!(
        episodes.len(),
        1,
        "one episode for the whole flapping stretch: {messages_per_state_change:?}"
    );
    let episode = episodes[0].clone();
    assert_eq!(messages_per_state_change.get(&(episode.clone(), false)), Some(&1));
    assert_eq!(messages_per_state_change.get(&(episode, true)), Some(&1));
    assert_eq!(messages_per_state_change.len(), 2, "{messages_per_state_change:?}");
    let totals = stats.snapshot();
    assert_eq!((totals.received, totals.sent, totals.failed), (2, 2, 0), "{totals:?}");
}
