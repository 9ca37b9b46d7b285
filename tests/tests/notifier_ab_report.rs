//! The `/ab` bot command against the real ClickHouse server and the fake
//! Bot API. Two experiment groups with a known CTR difference are inserted
//! with SQL; the reply carries the same report as a direct call of
//! seismo_experiments::run::run_ab_test, then the chart. Commands from a
//! chat off the allow-list are ignored. Bad arguments, an empty group and
//! a second `/ab` while one runs get a text reply.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use seismo_experiments::clickhouse_source::EventsTable;
use seismo_experiments::run::run_ab_test;
use seismo_notifier::ab_report::arguments::{AB_USAGE, parse_ab_arguments};
use seismo_notifier::ab_report::sender::AbReporter;
use seismo_notifier::cli::NotifierArgs;
use seismo_notifier::commands::access::AllowList;
use seismo_notifier::commands::acknowledgements::AcknowledgementStore;
use seismo_notifier::commands::bot::CommandBot;
use seismo_notifier::commands::setup::Interaction;
use seismo_notifier::commands::status_view::StatusView;
use seismo_notifier::silence::store::SilenceStore;
use seismo_notifier::{NotifierStats, TelegramConfig};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::fake_telegram::{FakeTelegram, parse_telegram_html};
use tokio_util::sync::CancellationToken;

const COMMAND_CHAT: i64 = -100_900;
const OTHER_CHAT: i64 = -100_901;
const USER: u64 = 7;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Users per group and views per user in the analysed period.
const USERS_PER_GROUP: u64 = 200;
const VIEWS_PER_USER: u64 = 20;

/// Likes of user `u`: 1 to 3 in control (CTR about 0.10), 3 to 5 in
/// treatment (about 0.20).
fn likes_of(group: &str, user: u64) -> u64 {
    let base = if group == "1" { 1 } else { 3 };
    base + user % 3
}

/// Creates the events table and inserts groups 1 and 2 on 2026-11-01 and
/// 2026-11-02, plus ten group-1 users on 2026-11-10, outside the period the
/// tests analyse.
async fn load_events(database: &TestDatabase) {
    database.create_events_table().await.unwrap();

    let mut rows = Vec::new();
    let mut push = |day: &str, event: &str, user: &str, group: &str| {
        let offset = rows.len();
        let hour = offset % 24;
        rows.push(format!(
            "('{day} {hour:02}:15:00', 0, '{event}', '{user}', '{group}', '', 0, {offset})"
        ));
    };
    for group in ["1", "2"] {
        for user in 0..USERS_PER_GROUP {
            let name = format!("g{group}-u{user}");
            let day = if user % 2 == 0 { "2026-11-01" } else { "2026-11-02" };
            for _ in 0..VIEWS_PER_USER {
                push(day, "view", &name, group);
            }
            for _ in 0..likes_of(group, user) {
                push(day, "like", &name, group);
            }
        }
    }
    for user in 0..10 {
        push("2026-11-10", "view", &format!("late-u{user}"), "1");
    }

    let insert = format!(
        "INSERT INTO events (event_time, event_time_ms, event, user_id, exp_group, extra, kafka_partition, kafka_offset) VALUES {}",
        rows.join(", ")
    );
    database.client().query(&insert).execute().await.unwrap();
}

fn events_table(database: &TestDatabase) -> EventsTable {
    EventsTable {
        url: database.url(),
        user: "default".to_string(),
        password: String::new(),
        database: database.name().to_string(),
        table: "events".to_string(),
        view_event: "view".to_string(),
        like_event: "like".to_string(),
        query_timeout: Duration::from_secs(60),
    }
}

/// Starts the interaction features from command-line options, as the
/// notifier binary does, with commands allowed in [`COMMAND_CHAT`].
fn start_notifier(
    database: &TestDatabase,
    fake: &FakeTelegram,
    cancel: &CancellationToken,
) -> (Interaction, tempfile::TempDir) {
    let url = database.url();
    let args = NotifierArgs::parse_from([
        "seismo-notifier",
        &format!("--command-chat-ids={COMMAND_CHAT}"),
        "--report-clickhouse-url",
        &url,
        "--report-database",
        database.name(),
    ]);
    let telegram = TelegramConfig::new("123:secret", &COMMAND_CHAT.to_string(), &fake.api_url()).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(NotifierStats::default());
    let interaction = Interaction::start(
        &args.interaction,
        Some(state_dir.path()),
        &[],
        Some(&telegram),
        &stats,
        cancel,
    )
    .unwrap();
    (interaction, state_dir)
}

#[tokio::test]
async fn ab_command_replies_with_report_and_chart() {
    let database = TestDatabase::create("notifier_ab_report").await.unwrap();
    load_events(&database).await;
    let fake = FakeTelegram::start().await;
    let cancel = CancellationToken::new();
    let (interaction, _state_dir) = start_notifier(&database, &fake, &cancel);

    fake.push_text_message(COMMAND_CHAT, USER, "/ab 1 2 2026-11-01 2026-11-03");
    let photos = fake.wait_for_requests("sendphoto", 1, TIMEOUT).await;
    cancel.cancel();
    for task in interaction.tasks {
        task.await.unwrap();
    }

    let texts = fake.requests_of("sendmessage");
    assert!(!texts.is_empty(), "no report text before the chart");
    let mut visible = String::new();
    for text in &texts {
        assert_eq!(text.chat_id, COMMAND_CHAT);
        assert_eq!(text.parse_mode.as_deref(), Some("HTML"));
        let html = text.text.as_deref().unwrap();
        assert!(html.starts_with("<pre>"), "{html}");
        assert!(html.ends_with("</pre>"), "{html}");
        let displayed = parse_telegram_html(html).unwrap();
        assert!(displayed.encode_utf16().count() <= 4096, "{displayed}");
        visible.push_str(&displayed);
    }

    // The same analysis, run directly, gives the same report.
    let arguments = parse_ab_arguments(&["1", "2", "2026-11-01", "2026-11-03"]).unwrap();
    let reporter = AbReporter::new(
        events_table(&database),
        &TelegramConfig::new("123:secret", "1", &fake.api_url()).unwrap(),
    );
    let direct = run_ab_test(&events_table(&database), &reporter.request(&arguments))
        .await
        .unwrap();
    assert_eq!(visible, direct.report);

    // Group sizes and totals. The ten late group-1 users are outside the period.
    let control_likes: u64 = (0..USERS_PER_GROUP).map(|user| likes_of("1", user)).sum();
    let treatment_likes: u64 = (0..USERS_PER_GROUP).map(|user| likes_of("2", user)).sum();
    let views = USERS_PER_GROUP * VIEWS_PER_USER;
    for (group, likes) in [("1", control_likes), ("2", treatment_likes)] {
        let row = format!(
            "{:<10} {:>8} {:>10} {:>9} {:>8.4}",
            group,
            USERS_PER_GROUP,
            views,
            likes,
            likes as f64 / views as f64
        );
        assert!(visible.contains(&row), "missing row {row:?} in:\n{visible}");
    }
    assert!(visible.contains("Sample ratio: expected 50/50"), "{visible}");
    assert!(visible.contains("p-value"), "{visible}");
    // A CTR of 0.10 against 0.20 over 200 users each is far beyond chance.
    let significant = direct
        .analysis
        .tests
        .iter()
        .filter_map(|test| test.result.as_ref().ok())
        .filter(|values| values.p_value < 0.001)
        .count();
    assert!(significant > 0, "{visible}");

    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0].body["chat_id"], COMMAND_CHAT);
    assert_eq!(photos[0].body["caption"], "Per-user ctr of control 1 and treatment 2");
    let png = photos[0].photo.clone().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let last_text = texts.iter().map(|text| text.received_at).max().unwrap();
    assert!(last_text < photos[0].received_at, "the chart came before the text");
}

#[tokio::test]
async fn ab_command_rejects_and_ignores() {
    let database = TestDatabase::create("notifier_ab_errors").await.unwrap();
    load_events(&database).await;
    let fake = FakeTelegram::start().await;
    let telegram = TelegramConfig::new("123:secret", &COMMAND_CHAT.to_string(), &fake.api_url()).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let path = state_dir.path().join("notifier.sqlite3");
    let mut bot = CommandBot::new(
        &telegram,
        AllowList {
            chats: [COMMAND_CHAT].into(),
            users: Default::default(),
        },
        Arc::new(SilenceStore::open(&path).unwrap()),
        Arc::new(AcknowledgementStore::open(&path).unwrap()),
        Arc::new(StatusView::default()),
    );
    bot.ab_report = Some(Arc::new(AbReporter::new(events_table(&database), &telegram)));
    bot.poll_timeout = Duration::from_secs(1);

    // Queued before polling starts, so one getUpdates returns all four and
    // the last `/ab` arrives while the empty-group analysis still runs.
    fake.push_text_message(OTHER_CHAT, USER, "/ab 1 2 2026-11-01 2026-11-03");
    fake.push_text_message(COMMAND_CHAT, USER, "/ab 1 2 2026-11-08 2026-11-01");
    fake.push_text_message(COMMAND_CHAT, USER, "/ab 1 3 2026-11-01 2026-11-03");
    fake.push_text_message(COMMAND_CHAT, USER, "/ab 1 2 2026-11-01 2026-11-03");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(bot.run(cancel.clone()));
    let texts = fake.wait_for_requests("sendmessage", 3, TIMEOUT).await;
    cancel.cancel();
    task.await.unwrap();

    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts.iter().all(|text| text.chat_id == COMMAND_CHAT), "{texts:#?}");
    assert!(fake.requests_of("sendphoto").is_empty());
    let replies: Vec<&str> = texts.iter().map(|text| text.text.as_deref().unwrap()).collect();
    let reply_starting = |prefix: &str| {
        let matching: Vec<&str> = replies
            .iter()
            .copied()
            .filter(|reply| reply.starts_with(prefix))
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one reply starting with {prefix:?}: {replies:#?}"
        );
        matching[0]
    };

    let usage = reply_starting("from 2026-11-08 must be before to 2026-11-01");
    assert!(usage.ends_with(AB_USAGE), "{usage}");

    let empty_group = reply_starting("The A/B analysis of control 1 and treatment 3 failed: ");
    assert!(empty_group.contains("group `3` has 0 values"), "{empty_group}");

    reply_starting("Another A/B analysis is running.");
}
