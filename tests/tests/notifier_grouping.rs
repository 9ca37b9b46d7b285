//! Grouping, per-chat queues and repeat notifications, through the whole
//! notifier: a scripted detector gRPC server on 127.0.0.1 streams anomalies
//! and the fake Telegram Bot API receives the messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seismo_notifier::{
    ExponentialBackoff, NotifierConfig, NotifierStats, RateLimits, Readiness, RetryPolicy, TelegramConfig, WindowLimit,
    run,
};
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, Direction, Severity};
use seismo_tests::fake_telegram::{FakeTelegram, RecordedRequest, parse_telegram_html};
use seismo_tests::scripted_detector::ScriptedDetector;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";

fn anomaly(sequence: u64, episode: &str, metric: &str, country: &str, state: AnomalyState) -> AnomalyEvent {
    let window_start_ms = 1_714_557_600_000;
    AnomalyEvent {
        id: episode.to_string(),
        sequence,
        state: state as i32,
        metric: metric.to_string(),
        slice: vec![Dimension {
            name: "country".to_string(),
            value: country.to_string(),
        }],
        window_start_ms,
        window_end_ms: window_start_ms + 300_000,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        // Distinct scores rank the anomalies of a group.
        score: 0.5 + sequence as f64 / 1000.0,
        severity: Severity::Warning as i32,
        direction: Direction::Down as i32,
        window_seconds: 300,
        ..AnomalyEvent::default()
    }
}

fn notifier_config(detector: String, fake: &FakeTelegram, chats: &str) -> NotifierConfig {
    NotifierConfig {
        detectors: vec![detector],
        telegram: Some(TelegramConfig::new(TOKEN, chats, &fake.api_url()).expect("test Telegram settings are valid")),
        reconnect: ExponentialBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
        connect_timeout: Duration::from_secs(2),
        delivery: RetryPolicy {
            max_attempts: 4,
            backoff: ExponentialBackoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            max_retry_after: Duration::from_secs(30),
        },
        shutdown_grace: Duration::from_secs(5),
        ..NotifierConfig::default()
    }
}

fn displayed(request: &RecordedRequest) -> String {
    parse_telegram_html(request.text.as_deref().expect("sendMessage carries text")).expect("valid Telegram HTML")
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn burst_of_one_metric_becomes_one_message() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let config = NotifierConfig {
            grouping_window: Duration::from_millis(800),
            ..notifier_config(server.url(), &fake, "1001")
        };
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run(config, Arc::clone(&stats), Readiness::default(), cancel.clone()));

        detector.wait_for_subscriptions(1, WAIT).await;
        for index in 0..60 {
            let country = format!("C{index:02}");
            detector.publish(anomaly(
                index + 1,
                &format!("ep-{index}"),
                "checkout",
                &country,
                AnomalyState::Firing,
            ));
        }
        detector.publish(anomaly(61, "ep-signup", "signups", "RU", AnomalyState::Firing));
        fake.wait_for_delivered(2, WAIT).await;
        wait_until("every alert counted", || stats.snapshot().sent == 61).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let messages: Vec<String> = fake.delivered().iter().map(displayed).collect();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        let group = messages
            .iter()
            .find(|text| text.contains("checkout"))
            .expect("a message for checkout");
        assert!(
            group.starts_with("🔴 60 anomalies firing: checkout\nTop 10 of 60 by score:\n"),
            "{group}"
        );
        assert!(group.contains("country=C59"), "the highest score is listed: {group}");
        assert!(
            !group.contains("country=C00"),
            "the lowest score is counted only: {group}"
        );
        assert!(group.contains("and 50 more"), "{group}");
        let single = messages
            .iter()
            .find(|text| text.contains("signups"))
            .expect("a message for signups");
        assert!(single.starts_with("🔴 Anomaly firing: signups"), "{single}");
        let totals = stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.failed), (61, 61, 0));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn slow_group_chat_does_not_pace_private_chat() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let mut config = notifier_config(server.url(), &fake, "-1001,42");
        // One message per 2 s to the group, so its three alerts take 4 s.
        config.telegram.as_mut().unwrap().rate_limits = RateLimits {
            per_chat: WindowLimit {
                max_requests: 1,
                window: Duration::from_millis(10),
            },
            per_group: WindowLimit {
                max_requests: 1,
                window: Duration::from_secs(2),
            },
            overall: WindowLimit {
                max_requests: 30,
                window: Duration::from_secs(1),
            },
        };
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run(config, Arc::clone(&stats), Readiness::default(), cancel.clone()));

        detector.wait_for_subscriptions(1, WAIT).await;
        for index in 0..3 {
            detector.publish(anomaly(
                index + 1,
                &format!("ep-{index}"),
                "checkout",
                "RU",
                AnomalyState::Firing,
            ));
        }
        fake.wait_for_delivered(6, WAIT).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let delivered = fake.delivered();
        let to_chat = |chat: i64| -> Vec<Instant> {
            delivered
                .iter()
                .filter(|request| request.chat_id == json!(chat))
                .map(|request| request.received_at)
                .collect()
        };
        let (group, private) = (to_chat(-1001), to_chat(42));
        assert_eq!((group.len(), private.len()), (3, 3));
        assert!(
            private[2] < group[1],
            "the private chat got its third alert before the group's second"
        );
        assert!(
            group[2] - group[0] >= Duration::from_secs(4),
            "the group limit still applies"
        );
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn unresolved_firing_is_repeated() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let config = NotifierConfig {
            repeat_interval: Some(Duration::from_secs(1)),
            ..notifier_config(server.url(), &fake, "1001")
        };
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run(config, Arc::clone(&stats), Readiness::default(), cancel.clone()));

        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "ep-open", "checkout", "RU", AnomalyState::Firing));
        detector.publish(anomaly(2, "ep-closed", "checkout", "DE", AnomalyState::Firing));
        detector.publish(anomaly(3, "ep-closed", "checkout", "DE", AnomalyState::Resolved));
        wait_until("two repeats", || {
            fake.delivered()
                .iter()
                .filter(|request| displayed(request).starts_with("🔁 Still firing"))
                .count()
                >= 2
        })
        .await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let repeats: Vec<String> = fake
            .delivered()
            .iter()
            .map(displayed)
            .filter(|text| text.starts_with("🔁 Still firing"))
            .collect();
        for repeat in &repeats {
            assert!(
                repeat.contains("Episode: ep-open"),
                "only the open episode repeats: {repeat}"
            );
        }
        let repeat_times: Vec<Instant> = fake
            .delivered()
            .iter()
            .filter(|request| displayed(request).starts_with("🔁"))
            .map(|request| request.received_at)
            .collect();
        assert!(
            repeat_times[1] - repeat_times[0] >= Duration::from_millis(900),
            "repeats are an interval apart"
        );
        let totals = stats.snapshot();
        assert_eq!(
            (totals.received, totals.sent),
            (3, 3),
            "repeats are not counted as events"
        );
    })
    .await
    .expect("test finished in time");
}
