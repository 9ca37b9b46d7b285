//! Routing rules, the send gate hook and the chart and button hooks, through
//! the whole notifier: a scripted detector gRPC server on 127.0.0.1 streams
//! anomalies and the fake Telegram Bot API receives the messages.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use seismo_notifier::quiet_hours::QuietHours;
use seismo_notifier::{
    AlertSink, ChartProvider, ChatTarget, DeliveryHooks, ExponentialBackoff, LogKey, LogStatus, NotificationLog,
    NotifierConfig, NotifierStats, Readiness, RetryPolicy, Routing, SendDecision, SendGate, TelegramConfig,
    TelegramSink, run, run_with_hooks,
};
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, Direction, Severity};
use seismo_tests::fake_telegram::{FakeTelegram, RecordedRequest, parse_telegram_html};
use seismo_tests::scripted_detector::ScriptedDetector;
use serde_json::{Value, json};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use tokio_util::sync::CancellationToken;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";

const ROUTES: &str = r#"
[[route]]
name = "payments"
metrics = ["checkout_*"]
slice = { country = "RU" }
min_severity = "warning"
chats = ["-1001"]
mentions = ["@alice", "@bob"]

[default]
chats = ["42"]
"#;

fn anomaly(sequence: u64, metric: &str, country: &str, severity: Severity) -> AnomalyEvent {
    let window_start_ms = 1_714_557_600_000;
    AnomalyEvent {
        id: format!("ep-{sequence}"),
        sequence,
        state: AnomalyState::Firing as i32,
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
        score: 0.9,
        severity: severity as i32,
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

/// Returns the displayed texts of the messages delivered to `chat`.
fn messages_to(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.delivered()
        .iter()
        .filter(|request| request.chat_id == json!(chat))
        .map(displayed)
        .collect()
}

/// Starts the notifier on the detector at `detector` with the routing file
/// `routes`, whose default chat replaces chat 7, and returns its stats, its
/// cancel token and its task.
fn spawn_routed(
    detector: String,
    fake: &FakeTelegram,
    routes: &str,
) -> (
    Arc<NotifierStats>,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), seismo_notifier::ConfigError>>,
) {
    let mut config = notifier_config(detector, fake, "7");
    config.routing = Some(Routing::parse(routes, Path::new("routes.toml"), vec![ChatTarget::Id(7)]).unwrap());
    let stats = Arc::new(NotifierStats::default());
    let cancel = CancellationToken::new();
    let notifier = tokio::spawn(run(config, Arc::clone(&stats), Readiness::default(), cancel.clone()));
    (stats, cancel, notifier)
}

/// Starts the notifier with one Telegram sink and `hooks`, and returns its
/// stats, its cancel token and its task.
fn spawn_with_hooks(
    config: NotifierConfig,
    hooks: DeliveryHooks,
) -> (
    Arc<NotifierStats>,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), seismo_notifier::ConfigError>>,
) {
    let stats = Arc::new(NotifierStats::default());
    let sinks: Vec<Arc<dyn AlertSink>> = vec![Arc::new(TelegramSink::new(
        config.telegram.as_ref().expect("the test configures Telegram"),
        config.delivery,
        Arc::clone(&stats),
    ))];
    let cancel = CancellationToken::new();
    let notifier = tokio::spawn(run_with_hooks(
        config,
        sinks,
        hooks,
        Arc::clone(&stats),
        Readiness::default(),
        cancel.clone(),
    ));
    (stats, cancel, notifier)
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rules_choose_chats_and_mentions() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let (_stats, cancel, notifier) = spawn_routed(server.url(), &fake, ROUTES);

        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "checkout_conversion", "RU", Severity::Critical));
        // Below the rule's minimum severity, in another country, another metric.
        detector.publish(anomaly(2, "checkout_conversion", "RU", Severity::Info));
        detector.publish(anomaly(3, "checkout_conversion", "DE", Severity::Critical));
        detector.publish(anomaly(4, "signups", "RU", Severity::Critical));
        fake.wait_for_delivered(4, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let payments = messages_to(&fake, -1001);
        assert_eq!(payments.len(), 1, "{payments:#?}");
        assert!(payments[0].contains("Episode: ep-1"), "{}", payments[0]);
        assert!(
            payments[0].ends_with("\n@alice @bob"),
            "mentions close the alert: {}",
            payments[0]
        );
        let default = messages_to(&fake, 42);
        assert_eq!(default.len(), 3, "{default:#?}");
        for text in &default {
            assert!(!text.contains('@'), "the default route mentions nobody: {text}");
        }
        assert!(
            messages_to(&fake, 7).is_empty(),
            "[default] chats replace TELEGRAM_CHAT_IDS"
        );
    })
    .await
    .expect("test finished in time");
}

/// Returns a change of episode `ep-1` of `checkout_conversion` in RU, with
/// the severities announced so far.
fn episode_change(sequence: u64, state: AnomalyState, announced: &[Severity]) -> AnomalyEvent {
    let severity = *announced.last().expect("an episode has a severity");
    AnomalyEvent {
        id: "ep-1".to_string(),
        state: state as i32,
        announced_severities: if state == AnomalyState::Firing {
            Vec::new()
        } else {
            announced.iter().map(|severity| *severity as i32).collect()
        },
        ..anomaly(sequence, "checkout_conversion", "RU", severity)
    }
}

#[tokio::test]
async fn escalation_routes_by_new_severity() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let (stats, cancel, notifier) = spawn_routed(server.url(), &fake, ROUTES);
        detector.wait_for_subscriptions(1, WAIT).await;
        let (info, warning, critical) = (Severity::Info, Severity::Warning, Severity::Critical);

        // Fired as info, below the payments route's minimum: the default chat.
        detector.publish(episode_change(1, AnomalyState::Firing, &[info]));
        fake.wait_for_delivered(1, WAIT).await;
        detector.publish(episode_change(2, AnomalyState::Escalated, &[info, warning]));
        fake.wait_for_delivered(2, WAIT).await;
        detector.publish(episode_change(3, AnomalyState::Escalated, &[info, warning, critical]));
        fake.wait_for_delivered(3, WAIT).await;
        // The same escalation again, as after a reconnect, is recognised.
        let mut resent = episode_change(3, AnomalyState::Escalated, &[info, warning, critical]);
        resent.sequence = 4;
        detector.publish(resent);
        detector.publish(episode_change(5, AnomalyState::Resolved, &[info, warning, critical]));
        fake.wait_for_delivered(5, WAIT).await;
        wait_until("the duplicate counted", || stats.snapshot().duplicates == 1).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let default = messages_to(&fake, 42);
        let payments = messages_to(&fake, -1001);
        assert_eq!(default.len(), 2, "{default:#?}");
        assert!(
            default[0].starts_with("🔴 Anomaly firing: checkout_conversion"),
            "{}",
            default[0]
        );
        assert!(
            default[1].starts_with("✅ Resolved: checkout_conversion"),
            "{}",
            default[1]
        );
        assert_eq!(payments.len(), 3, "{payments:#?}");
        assert!(
            payments[0].starts_with("🔺 Anomaly escalated to warning: checkout_conversion\nSeverity was info;"),
            "{}",
            payments[0]
        );
        assert!(
            payments[1].starts_with("🔺 Anomaly escalated to critical: checkout_conversion\nSeverity was warning;"),
            "{}",
            payments[1]
        );
        assert!(payments[1].ends_with("\n@alice @bob"), "{}", payments[1]);
        assert!(
            payments[2].starts_with("✅ Resolved: checkout_conversion"),
            "{}",
            payments[2]
        );
        assert!(payments[2].contains("Episode severity: critical"), "{}", payments[2]);
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn resolution_reaches_chat_its_routes_left() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        // The default route mentions someone who must not be paged in the
        // payments chat.
        let routes = ROUTES.replace("[default]\n", "[default]\nmentions = [\"@oncall\"]\n");
        let (stats, cancel, notifier) = spawn_routed(server.url(), &fake, &routes);
        detector.wait_for_subscriptions(1, WAIT).await;
        let (info, critical) = (Severity::Info, Severity::Critical);

        detector.publish(episode_change(1, AnomalyState::Firing, &[info]));
        fake.wait_for_delivered(1, WAIT).await;
        detector.publish(episode_change(2, AnomalyState::Escalated, &[info, critical]));
        fake.wait_for_delivered(2, WAIT).await;
        // A detector restarted with `escalate = false` re-judges the episode
        // without its escalation, so the resolution lists info only.
        detector.publish(episode_change(3, AnomalyState::Resolved, &[info]));
        fake.wait_for_delivered(4, WAIT).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let payments = messages_to(&fake, -1001);
        assert_eq!(payments.len(), 2, "{payments:#?}");
        assert!(
            payments[1].starts_with("✅ Resolved: checkout_conversion"),
            "{}",
            payments[1]
        );
        assert!(!payments[1].contains('@'), "{}", payments[1]);
        let default = messages_to(&fake, 42);
        assert_eq!(default.len(), 2, "{default:#?}");
        assert!(
            default[1].starts_with("✅ Resolved: checkout_conversion"),
            "{}",
            default[1]
        );
        assert!(default[1].ends_with("\n@oncall"), "{}", default[1]);
        wait_until("every outcome counted", || {
            let counts = stats.snapshot();
            counts.received == counts.sent + counts.failed + counts.duplicates + counts.suppressed
        })
        .await;
        assert_eq!(stats.snapshot().received, 3);
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn resolution_skips_chat_that_heard_nothing() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let detector_key = format!("{}/", server.url());
        let state_dir = tempfile::tempdir().unwrap();
        let mut config = NotifierConfig {
            state_dir: Some(state_dir.path().to_path_buf()),
            ..notifier_config(server.url(), &fake, "7")
        };
        config.routing = Some(Routing::parse(ROUTES, Path::new("routes.toml"), vec![ChatTarget::Id(7)]).unwrap());
        // Quiet hours around now, so only critical alerts go out.
        let now = Utc::now().time();
        let quiet_hours = QuietHours {
            start: now - chrono::Duration::hours(2),
            end: now + chrono::Duration::hours(2),
            time_zone: chrono_tz::UTC,
            min_severity_sent: Severity::Critical,
        };
        let hooks = DeliveryHooks {
            gate: Arc::new(quiet_hours),
            ..DeliveryHooks::default()
        };
        let (stats, cancel, notifier) = spawn_with_hooks(config, hooks);
        detector.wait_for_subscriptions(1, WAIT).await;
        let (info, critical) = (Severity::Info, Severity::Critical);

        // The info firing is held back in the default chat; the escalation to
        // critical reaches the payments chat.
        detector.publish(episode_change(1, AnomalyState::Firing, &[info]));
        wait_until("the firing suppressed", || stats.snapshot().suppressed == 1).await;
        detector.publish(episode_change(2, AnomalyState::Escalated, &[info, critical]));
        fake.wait_for_delivered(1, WAIT).await;
        detector.publish(episode_change(3, AnomalyState::Resolved, &[info, critical]));
        fake.wait_for_delivered(2, WAIT).await;
        wait_until("the resolution counted", || stats.snapshot().sent == 2).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        assert!(messages_to(&fake, 42).is_empty(), "{:#?}", messages_to(&fake, 42));
        let payments = messages_to(&fake, -1001);
        assert_eq!(payments.len(), 2, "{payments:#?}");
        assert!(
            payments[1].starts_with("✅ Resolved: checkout_conversion"),
            "{}",
            payments[1]
        );
        let log = NotificationLog::open(state_dir.path()).unwrap();
        let resolution_in_42 = LogKey {
            detector: detector_key,
            anomaly_id: "ep-1".to_string(),
            state: AnomalyState::Resolved as i32,
            severity: 0,
            chat: "42".to_string(),
        };
        assert_eq!(log.status(&resolution_in_42).unwrap(), Some(LogStatus::Suppressed));
        let counts = stats.snapshot();
        assert_eq!(counts.received, 3);
        assert_eq!(
            counts.received,
            counts.sent + counts.failed + counts.duplicates + counts.suppressed,
            "{counts:?}"
        );
    })
    .await
    .expect("test finished in time");
}

/// Suppresses every alert to chat 42, as a silence would.
struct SilenceChat42;

impl SendGate for SilenceChat42 {
    fn decide(&self, _: &AnomalyEvent, chat: &ChatTarget, _: DateTime<Utc>) -> SendDecision {
        if *chat == ChatTarget::Id(42) {
            SendDecision::Suppress {
                reason: "silenced in the test".to_string(),
            }
        } else {
            SendDecision::Send
        }
    }
}

#[tokio::test]
async fn gate_suppresses_one_chat_and_logs_it() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let state_dir = tempfile::tempdir().unwrap();
        let config = NotifierConfig {
            state_dir: Some(state_dir.path().to_path_buf()),
            ..notifier_config(server.url(), &fake, "42,43")
        };
        let hooks = DeliveryHooks {
            gate: Arc::new(SilenceChat42),
            ..DeliveryHooks::default()
        };
        let (stats, cancel, notifier) = spawn_with_hooks(config, hooks);

        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "checkout", "RU", Severity::Critical));
        fake.wait_for_delivered(1, WAIT).await;
        wait_until("the alert counted", || stats.snapshot().sent == 1).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");

        assert_eq!(messages_to(&fake, 43).len(), 1);
        assert!(messages_to(&fake, 42).is_empty());
        let log = NotificationLog::open(state_dir.path()).unwrap();
        let key = |chat: &str| LogKey {
            detector: format!("{}/", server.url()),
            anomaly_id: "ep-1".to_string(),
            state: AnomalyState::Firing as i32,
            severity: 0,
            chat: chat.to_string(),
        };
        assert_eq!(log.status(&key("42")).unwrap(), Some(LogStatus::Suppressed));
        assert_eq!(log.status(&key("43")).unwrap(), Some(LogStatus::Sent));
        server.stop().await;
    })
    .await
    .expect("test finished in time");
}

/// Returns the same PNG bytes for every alert.
struct FixedChart(Vec<u8>);

impl ChartProvider for FixedChart {
    fn chart(&self, _: &AnomalyEvent) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + '_>> {
        Box::pin(std::future::ready(Some(self.0.clone())))
    }
}

fn test_buttons(anomaly_id: &str, _metric: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
        "Acknowledge",
        format!("ack:{anomaly_id}"),
    )]])
}

#[tokio::test]
async fn chart_goes_as_photo_with_buttons() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let config = notifier_config(server.url(), &fake, "42");
        // The PNG signature is enough for the fake, which stores the bytes.
        let png = b"\x89PNG\r\n\x1a\nchart".to_vec();
        let hooks = DeliveryHooks {
            charts: Arc::new(FixedChart(png.clone())),
            buttons: Some(test_buttons),
            ..DeliveryHooks::default()
        };
        let (stats, cancel, notifier) = spawn_with_hooks(config, hooks);

        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "checkout", "RU", Severity::Critical));
        wait_until("the alert counted", || stats.snapshot().sent == 1).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let requests = fake.requests();
        assert_eq!(requests.len(), 1, "one photo, no separate text: {requests:#?}");
        let photo = &requests[0];
        assert_eq!((photo.method.as_str(), photo.status), ("sendphoto", 200));
        assert_eq!(photo.photo.as_deref(), Some(png.as_slice()));
        let caption = photo
            .body
            .get("caption")
            .and_then(Value::as_str)
            .expect("the alert is the caption");
        let shown = parse_telegram_html(caption).expect("the caption is valid Telegram HTML");
        assert!(shown.starts_with("🔴 Anomaly firing: checkout"), "{shown}");
        let markup = photo.body.get("reply_markup").expect("the buttons are attached");
        let markup: Value = match markup {
            Value::String(text) => serde_json::from_str(text).unwrap(),
            other => other.clone(),
        };
        assert_eq!(markup["inline_keyboard"][0][0]["callback_data"], json!("ack:ep-1"));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn chat_template_chooses_language() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let routes = "[default]\nchats = [\"-1001\", \"42\"]\n\n[chats.\"-1001\"]\ntemplate = \"ru\"\n";
        let config = NotifierConfig {
            routing: Some(Routing::parse(routes, Path::new("routes.toml"), Vec::new()).unwrap()),
            ..notifier_config(server.url(), &fake, "7")
        };
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run(config, Arc::clone(&stats), Readiness::default(), cancel.clone()));

        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "checkout<&>", "RU", Severity::Critical));
        fake.wait_for_delivered(2, WAIT).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let russian = messages_to(&fake, -1001);
        let english = messages_to(&fake, 42);
        assert_eq!((russian.len(), english.len()), (1, 1));
        assert!(
            russian[0].starts_with("🔴 Аномалия: checkout<&>\nСрез: country=RU\n"),
            "{}",
            russian[0]
        );
        assert!(russian[0].contains("Важность: критическая"), "{}", russian[0]);
        assert!(
            english[0].starts_with("🔴 Anomaly firing: checkout<&>\n"),
            "{}",
            english[0]
        );
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn long_alert_with_chart_sends_photo_then_text() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        // With the longest slice shown and 12 mentions, the text is longer
        // than a caption's 1024 characters.
        let mentions: Vec<String> = (0..12)
            .map(|index| format!("\"@owner_with_a_long_name_{index:02}\""))
            .collect();
        let routes = format!("[default]\nchats = [\"42\"]\nmentions = [{}]\n", mentions.join(", "));
        let config = NotifierConfig {
            routing: Some(Routing::parse(&routes, Path::new("routes.toml"), Vec::new()).unwrap()),
            ..notifier_config(server.url(), &fake, "42")
        };
        let hooks = DeliveryHooks {
            charts: Arc::new(FixedChart(b"\x89PNG\r\n\x1a\nchart".to_vec())),
            buttons: Some(test_buttons),
            ..DeliveryHooks::default()
        };
        let (stats, cancel, notifier) = spawn_with_hooks(config, hooks);

        detector.wait_for_subscriptions(1, WAIT).await;
        let mut long = anomaly(1, "checkout", "RU", Severity::Critical);
        long.slice = (0..20)
            .map(|index| Dimension {
                name: format!("dimension_{index:02}"),
                value: format!("a fairly long value number {index:02}"),
            })
            .collect();
        detector.publish(long);
        wait_until("the alert counted", || stats.snapshot().sent == 1).await;
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop().await;

        let requests = fake.requests();
        let methods: Vec<&str> = requests.iter().map(|request| request.method.as_str()).collect();
        assert_eq!(methods, ["sendphoto", "sendmessage"], "{requests:#?}");
        let caption = requests[0].body.get("caption").and_then(Value::as_str).unwrap();
        assert_eq!(caption, "🔴 Anomaly firing: checkout", "the first line is the caption");
        assert!(
            requests[0].body.get("reply_markup").is_none(),
            "the buttons go under the text"
        );
        let text = displayed(&requests[1]);
        assert!(
            text.starts_with("🔴 Anomaly firing: checkout\nSlice: dimension_00="),
            "{text}"
        );
        assert!(text.encode_utf16().count() > 1024, "the text is longer than a caption");
        assert!(
            requests[1].body.get("reply_markup").is_some(),
            "the buttons go under the text"
        );
    })
    .await
    .expect("test finished in time");
}
