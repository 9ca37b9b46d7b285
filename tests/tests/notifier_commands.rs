//! Bot commands and alert buttons against the fake Bot API: the command
//! handler polls getUpdates, acts on the silence and acknowledgement tables
//! in SQLite, and its silences suppress later alerts at the send gate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use seismo_notifier::commands::access::AllowList;
use seismo_notifier::commands::acknowledgements::AcknowledgementStore;
use seismo_notifier::commands::bot::CommandBot;
use seismo_notifier::commands::status_view::StatusView;
use seismo_notifier::silence::gate::AlertGate;
use seismo_notifier::silence::store::SilenceStore;
use seismo_notifier::{ChatTarget, SendDecision, SendGate, TelegramConfig};
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, Severity};
use seismo_tests::fake_telegram::FakeTelegram;
use tokio_util::sync::CancellationToken;

const ALLOWED_CHAT: i64 = -100_111;
const OTHER_CHAT: i64 = -100_999;
const ALLOWED_USER: u64 = 7;
const TIMEOUT: Duration = Duration::from_secs(10);

struct Harness {
    fake: FakeTelegram,
    gate: AlertGate,
    stats: Arc<seismo_notifier::commands::bot::BotStats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _state_dir: tempfile::TempDir,
}

impl Harness {
    async fn start(allowed_users: &[u64]) -> Self {
        let fake = FakeTelegram::start().await;
        let state_dir = tempfile::tempdir().unwrap();
        let path = state_dir.path().join("notifier.sqlite3");
        let silences = Arc::new(SilenceStore::open(&path).unwrap());
        let acknowledgements = Arc::new(AcknowledgementStore::open(&path).unwrap());
        let status = Arc::new(StatusView::default());
        let telegram = TelegramConfig::new("123:secret", &ALLOWED_CHAT.to_string(), &fake.api_url()).unwrap();
        let allow_list = AllowList {
            chats: [ALLOWED_CHAT].into(),
            users: allowed_users.iter().copied().collect(),
        };

        let mut bot = CommandBot::new(
            &telegram,
            allow_list,
            Arc::clone(&silences),
            Arc::clone(&acknowledgements),
            Arc::clone(&status),
        );
        bot.poll_timeout = Duration::from_secs(1);
        let stats = Arc::clone(&bot.stats);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(bot.run(cancel.clone()));
        let gate = AlertGate {
            silences,
            acknowledgements,
            quiet_hours: None,
            status,
        };

        Self {
            fake,
            gate,
            stats,
            cancel,
            task,
            _state_dir: state_dir,
        }
    }

    /// Waits until the handler has confirmed every queued update.
    async fn wait_until_handled(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.fake.pending_updates() > 0 || self.stats.accepted() + self.stats.ignored() == 0 {
            assert!(
                Instant::now() < deadline,
                "updates not handled: {:#?}",
                self.fake.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The offset that confirms the last update is sent with the next
        // poll, after the handler finished it.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(TIMEOUT, self.task).await.unwrap().unwrap();
    }
}

fn replies_to(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.requests_of("sendmessage")
        .into_iter()
        .filter(|request| request.chat_id.as_i64() == Some(chat))
        .filter_map(|request| request.text)
        .collect()
}

fn views_alert(id: &str) -> AnomalyEvent {
    AnomalyEvent {
        id: id.to_string(),
        state: AnomalyState::Firing as i32,
        metric: "views".to_string(),
        slice: vec![Dimension {
            name: "os".to_string(),
            value: "iOS".to_string(),
        }],
        severity: Severity::Critical as i32,
        value: 10.0,
        expected: 100.0,
        window_end_ms: Utc::now().timestamp_millis(),
        ..AnomalyEvent::default()
    }
}

#[tokio::test]
async fn commands_from_other_chats_are_ignored() {
    let harness = Harness::start(&[ALLOWED_USER]).await;
    harness
        .fake
        .push_text_message(OTHER_CHAT, ALLOWED_USER, "/mute views 1h");
    harness.fake.push_text_message(ALLOWED_CHAT, 99, "/mute views 1h");
    harness
        .fake
        .push_button_press(OTHER_CHAT, ALLOWED_USER, 1, "mute:3600:abc:views");

    harness.wait_until_handled().await;
    let deadline = Instant::now() + TIMEOUT;
    while harness.stats.ignored() < 3 {
        assert!(Instant::now() < deadline, "ignored {}", harness.stats.ignored());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(harness.stats.accepted(), 0);
    assert!(harness.gate.silences.active(Utc::now()).unwrap().is_empty());
    assert!(replies_to(&harness.fake, OTHER_CHAT).is_empty());
    assert!(replies_to(&harness.fake, ALLOWED_CHAT).is_empty());
    let decision = harness
        .gate
        .decide(&views_alert("a1"), &ChatTarget::Id(ALLOWED_CHAT), Utc::now());
    assert_eq!(decision, SendDecision::Send);
    harness.stop().await;
}

#[tokio::test]
async fn allowed_mute_silences_next_alert() {
    let harness = Harness::start(&[ALLOWED_USER]).await;
    let chat = ChatTarget::Id(ALLOWED_CHAT);
    assert_eq!(
        harness.gate.decide(&views_alert("a1"), &chat, Utc::now()),
        SendDecision::Send
    );

    harness
        .fake
        .push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/mute@seismo_bot views{os=iOS} 2h");
    harness.fake.wait_for_requests("sendmessage", 1, TIMEOUT).await;

    let reply = replies_to(&harness.fake, ALLOWED_CHAT).remove(0);
    assert!(reply.starts_with("Muted views{os=iOS} until "), "{reply}");
    let decision = harness.gate.decide(&views_alert("a2"), &chat, Utc::now());
    assert!(
        matches!(&decision, SendDecision::Suppress { reason } if reason.contains("views{os=iOS}")),
        "{decision:?}"
    );
    let mut android = views_alert("a3");
    android.slice[0].value = "Android".to_string();
    assert_eq!(harness.gate.decide(&android, &chat, Utc::now()), SendDecision::Send);

    harness.fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/silences");
    harness.fake.wait_for_requests("sendmessage", 2, TIMEOUT).await;
    let listing = replies_to(&harness.fake, ALLOWED_CHAT).remove(1);
    assert!(listing.contains("views{os=iOS}"), "{listing}");
    assert!(listing.contains("by @user7"), "{listing}");

    harness
        .fake
        .push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/unmute views{os=iOS}");
    harness.fake.wait_for_requests("sendmessage", 3, TIMEOUT).await;
    assert_eq!(
        harness.gate.decide(&views_alert("a4"), &chat, Utc::now()),
        SendDecision::Send
    );

    harness.fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/status");
    harness.fake.wait_for_requests("sendmessage", 4, TIMEOUT).await;
    let status = replies_to(&harness.fake, ALLOWED_CHAT).remove(3);
    // a1 to a4 are four episodes, three of them on iOS.
    assert!(status.starts_with("Firing (4):"), "{status}");
    assert_eq!(
        status.matches("views{os=iOS}: 10 (expected 100)").count(),
        3,
        "{status}"
    );
    assert!(status.contains("Silences in force: 0"), "{status}");
    harness.stop().await;
}

#[tokio::test]
async fn buttons_acknowledge_and_mute() {
    let harness = Harness::start(&[]).await;
    let alert = views_alert("0123456789abcdef");
    assert_eq!(
        harness.gate.decide(&alert, &ChatTarget::Id(ALLOWED_CHAT), Utc::now()),
        SendDecision::Send
    );

    harness
        .fake
        .push_button_press(ALLOWED_CHAT, ALLOWED_USER, 41, "ack:0123456789abcdef");
    let edits = harness
        .fake
        .wait_for_requests("editmessagereplymarkup", 1, TIMEOUT)
        .await;
    let answers = harness.fake.wait_for_requests("answercallbackquery", 1, TIMEOUT).await;

    assert_eq!(edits[0].body["message_id"], 41);
    assert_eq!(edits[0].body["chat_id"], ALLOWED_CHAT);
    let first_button = &edits[0].body["reply_markup"]["inline_keyboard"][0][0]["text"];
    assert_eq!(first_button, "✅ Acknowledged by @user7");
    assert_eq!(answers[0].body["text"], "Acknowledged.");
    let acknowledgement = harness
        .gate
        .acknowledgements
        .acknowledgement("0123456789abcdef")
        .unwrap()
        .unwrap();
    assert_eq!(acknowledgement.user_id, ALLOWED_USER);

    harness
        .fake
        .push_button_press(ALLOWED_CHAT, 8, 41, "mute:3600:0123456789abcdef:views");
    let answers = harness.fake.wait_for_requests("answercallbackquery", 2, TIMEOUT).await;

    assert!(
        answers[1].body["text"]
            .as_str()
            .unwrap()
            .starts_with("Muted views{os=iOS} until "),
        "{:?}",
        answers[1].body
    );
    let silences = harness.gate.silences.active(Utc::now()).unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].selector.to_string(), "views{os=iOS}");
    let length = silences[0].expires_at - silences[0].created_at;
    assert_eq!(length, chrono::TimeDelta::hours(1));
    assert_eq!(silences[0].created_by, "@user8");
    harness.stop().await;
}

fn pipeline_event(sequence: u64, episode: &str, metric: &str) -> AnomalyEvent {
    let window_start_ms = Utc::now().timestamp_millis() - 300_000;
    AnomalyEvent {
        id: episode.to_string(),
        sequence,
        state: AnomalyState::Firing as i32,
        metric: metric.to_string(),
        slice: vec![Dimension {
            name: "os".to_string(),
            value: "iOS".to_string(),
        }],
        window_start_ms,
        window_end_ms: window_start_ms + 300_000,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        score: 0.9,
        severity: Severity::Critical as i32,
        direction: seismo_proto::v1::Direction::Down as i32,
        window_seconds: 300,
        detected_at_ms: window_start_ms + 301_000,
        ..AnomalyEvent::default()
    }
}

/// Messages to the alert chat that are alerts rather than command replies.
fn delivered_alerts(fake: &FakeTelegram) -> Vec<seismo_tests::fake_telegram::RecordedRequest> {
    fake.delivered()
        .into_iter()
        .filter(|request| request.body.get("reply_markup").is_some())
        .collect()
}

#[tokio::test]
async fn mute_command_suppresses_pipeline_alert() {
    use clap::Parser;
    use seismo_notifier::cli::NotifierArgs;
    use seismo_notifier::commands::setup::Interaction;
    use seismo_notifier::{NotifierConfig, NotifierStats, Readiness, build_sinks, run_with_hooks};
    use seismo_tests::scripted_detector::ScriptedDetector;

    let fake = FakeTelegram::start().await;
    let detector = ScriptedDetector::default();
    let server = detector.serve().await;
    let state_dir = tempfile::tempdir().unwrap();
    let args = NotifierArgs::parse_from([
        "seismo-notifier",
        &format!("--command-chat-ids={ALLOWED_CHAT}"),
        &format!("--command-user-ids={ALLOWED_USER}"),
    ]);
    let config = NotifierConfig {
        detectors: vec![server.url()],
        telegram: Some(TelegramConfig::new("123:secret", &ALLOWED_CHAT.to_string(), &fake.api_url()).unwrap()),
        state_dir: Some(state_dir.path().to_path_buf()),
        shutdown_grace: Duration::from_secs(2),
        ..NotifierConfig::default()
    };
    let cancel = CancellationToken::new();
    let stats = Arc::new(NotifierStats::default());
    let interaction = Interaction::start(
        &args.interaction,
        config.state_dir.as_deref(),
        &config.detectors,
        config.telegram.as_ref(),
        &stats,
        &cancel,
    )
    .unwrap();
    let sinks = build_sinks(&config, &stats);
    let notifier = tokio::spawn(run_with_hooks(
        config,
        sinks,
        interaction.hooks,
        Arc::clone(&stats),
        Readiness::default(),
        cancel.clone(),
    ));
    detector.wait_for_subscriptions(1, TIMEOUT).await;

    detector.publish(pipeline_event(1, "00000000000000a1", "views"));
    let deadline = Instant::now() + TIMEOUT;
    while delivered_alerts(&fake).is_empty() {
        assert!(Instant::now() < deadline, "no alert delivered: {:#?}", fake.requests());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = &delivered_alerts(&fake)[0];
    let keyboard = &first.body["reply_markup"]["inline_keyboard"];
    assert_eq!(keyboard[0][0]["text"], "Acknowledge");
    assert_eq!(keyboard[0][0]["callback_data"], "ack:00000000000000a1");
    assert_eq!(keyboard[1][0]["callback_data"], "mute:3600:00000000000000a1:views");

    fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/mute views 1h");
    let deadline = Instant::now() + TIMEOUT;
    while !replies_to(&fake, ALLOWED_CHAT)
        .iter()
        .any(|text| text.starts_with("Muted views until "))
    {
        assert!(Instant::now() < deadline, "no mute reply: {:#?}", fake.requests());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    detector.publish(pipeline_event(2, "00000000000000a2", "views"));
    detector.publish(pipeline_event(3, "00000000000000a3", "likes"));
    let deadline = Instant::now() + TIMEOUT;
    while delivered_alerts(&fake).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the likes alert was not delivered: {:#?}",
            fake.requests()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Alerts go out in order, so the silenced views alert was decided
    // before the likes alert was sent.
    let alerts = delivered_alerts(&fake);
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts[1].text.as_deref().unwrap().contains("likes"),
        "{:?}",
        alerts[1].text
    );
    assert_eq!(stats.snapshot().suppressed, 1);

    let first_message_id = alerts[0].message_id.unwrap();
    fake.push_button_press(ALLOWED_CHAT, ALLOWED_USER, first_message_id, "ack:00000000000000a1");
    fake.wait_for_requests("editmessagereplymarkup", 1, TIMEOUT).await;
    fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/status");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        let replies = replies_to(&fake, ALLOWED_CHAT);
        if let Some(status) = replies.into_iter().find(|text| text.starts_with("Firing (")) {
            break status;
        }
        assert!(Instant::now() < deadline, "no /status reply: {:#?}", fake.requests());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The silenced views episode fired too, so /status lists all three.
    assert!(status.starts_with("Firing (3):"), "{status}");
    assert!(status.contains("acknowledged by @user7"), "{status}");
    assert!(
        status.contains("Since start: 2 alerts delivered, 0 failed, 1 suppressed"),
        "{status}"
    );
    assert!(status.contains("Silences in force: 1"), "{status}");

    cancel.cancel();
    tokio::time::timeout(TIMEOUT, notifier).await.unwrap().unwrap().unwrap();
    for task in interaction.tasks {
        tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn restart_skips_handled_updates() {
    let state_dir = tempfile::tempdir().unwrap();
    let path = state_dir.path().join("notifier.sqlite3");
    let run_bot = |fake: &FakeTelegram| {
        let telegram = TelegramConfig::new("123:secret", &ALLOWED_CHAT.to_string(), &fake.api_url()).unwrap();
        let mut bot = CommandBot::new(
            &telegram,
            AllowList {
                chats: [ALLOWED_CHAT].into(),
                users: Default::default(),
            },
            Arc::new(SilenceStore::open(&path).unwrap()),
            Arc::new(AcknowledgementStore::open(&path).unwrap()),
            Arc::new(StatusView::default()),
        );
        bot.poll_timeout = Duration::from_secs(1);
        let stats = Arc::clone(&bot.stats);
        let cancel = CancellationToken::new();
        (tokio::spawn(bot.run(cancel.clone())), cancel, stats)
    };

    let first_fake = FakeTelegram::start().await;
    first_fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/mute views 1h");
    let (task, cancel, _) = run_bot(&first_fake);
    first_fake.wait_for_requests("sendmessage", 1, TIMEOUT).await;
    cancel.cancel();
    tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();

    // A new server still holds update 1, as Telegram does for an update no
    // poll confirmed; the stored offset confirms it instead.
    let second_fake = FakeTelegram::start().await;
    second_fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/mute views 1h");
    second_fake.push_text_message(ALLOWED_CHAT, ALLOWED_USER, "/mute likes 1h");
    let (task, cancel, stats) = run_bot(&second_fake);
    second_fake.wait_for_requests("sendmessage", 1, TIMEOUT).await;
    cancel.cancel();
    tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();

    let silences = SilenceStore::open(&path).unwrap().active(Utc::now()).unwrap();
    let selectors: Vec<String> = silences.iter().map(|silence| silence.selector.to_string()).collect();
    assert_eq!(selectors, vec!["views", "likes"]);
    assert_eq!(stats.accepted(), 1);
    let polls = second_fake.requests_of("getupdates");
    assert_eq!(polls[0].body["offset"], 2);
}
