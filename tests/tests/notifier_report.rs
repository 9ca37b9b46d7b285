//! The daily report against the real ClickHouse server holding eight days
//! of events and the fake Bot API: the text carries the numbers computed
//! here from the same events, and the chart goes out as a photo.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use seismo_notifier::report::metrics::default_report_metrics;
use seismo_notifier::report::query::EventsTable;
use seismo_notifier::report::sender::{ReportSettings, Reporter};
use seismo_notifier::{ChatTarget, TelegramConfig};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::fake_telegram::{FakeTelegram, Reply};

const CHAT: i64 = -100_500;
const ZONE: Tz = chrono_tz::Europe::Moscow;

/// One generated event: local day, UTC time, kind and user.
struct Generated {
    day: NaiveDate,
    time: DateTime<Utc>,
    event: &'static str,
    user: String,
}

/// Generates events for the 8 local days ending with `last`. Day `d` has
/// `20 + 3d` users; user `u` views `1 + u % 3` times, likes when `u % 4 == 0`
/// and sends a message when `u % 5 == d % 5`. Even users act at 23:30 and
/// odd users at 00:15 local time, which is 21:15 UTC of the day before, so
/// a report that cut days in UTC would get other numbers.
fn generate(last: NaiveDate) -> Vec<Generated> {
    let mut events = Vec::new();
    for d in 0..8_u64 {
        let day = last - Days::new(7 - d);
        let users = 20 + 3 * d;
        for u in 0..users {
            let user = format!("user{u}");
            let local_time = if u % 2 == 0 {
                NaiveTime::from_hms_opt(23, 30, 0)
            } else {
                NaiveTime::from_hms_opt(0, 15, 0)
            };
            let time = ZONE
                .from_local_datetime(&day.and_time(local_time.unwrap()))
                .single()
                .unwrap()
                .with_timezone(&Utc);
            let mut push = |event: &'static str| {
                events.push(Generated {
                    day,
                    time,
                    event,
                    user: user.clone(),
                })
            };
            for _ in 0..1 + u % 3 {
                push("view");
            }
            if u % 4 == 0 {
                push("like");
            }
            if u % 5 == d % 5 {
                push("message");
            }
        }
    }
    events
}

async fn load_events(database: &TestDatabase, events: &[Generated]) {
    database.create_events_table().await.unwrap();

    let rows = events
        .iter()
        .map(|event| (event.time, event.event, event.user.as_str()));
    database.insert_events(rows).await.unwrap();
}

/// Returns the reporter of the default metrics for the events table of
/// `database`, sending to `CHAT` through `fake`.
fn reporter(database: &TestDatabase, fake: &FakeTelegram) -> Reporter {
    let telegram = TelegramConfig::new("123:secret", &CHAT.to_string(), &fake.api_url()).unwrap();
    let table = EventsTable::new(&database.url(), database.name(), "events", None, None).unwrap();
    let settings = ReportSettings {
        metrics: default_report_metrics(),
        time_zone: ZONE,
        send_at: NaiveTime::from_hms_opt(11, 0, 0).unwrap(),
        chats: vec![ChatTarget::Id(CHAT)],
    };
    Reporter::new(table, settings, &telegram)
}

/// Metric values per day computed from the generated events.
fn expected_values(events: &[Generated]) -> BTreeMap<NaiveDate, [f64; 5]> {
    let mut users: BTreeMap<NaiveDate, BTreeSet<&str>> = BTreeMap::new();
    let mut counts: BTreeMap<(NaiveDate, &str), f64> = BTreeMap::new();
    for event in events {
        users.entry(event.day).or_default().insert(&event.user);
        *counts.entry((event.day, event.event)).or_default() += 1.0;
    }
    users
        .iter()
        .map(|(day, users)| {
            let count = |kind| counts.get(&(*day, kind)).copied().unwrap_or(0.0);
            let (views, likes) = (count("view"), count("like"));
            (
                *day,
                [users.len() as f64, views, likes, likes / views, count("message")],
            )
        })
        .collect()
}

fn change(current: f64, previous: f64) -> String {
    format!("{:+.1}%", (current - previous) / previous * 100.0)
}

#[tokio::test]
async fn report_sends_numbers_and_chart() {
    let now = Utc::now();
    let report_day = now.with_timezone(&ZONE).date_naive() - Days::new(1);
    let events = generate(report_day);
    let database = TestDatabase::create("notifier_report").await.unwrap();
    load_events(&database, &events).await;
    let fake = FakeTelegram::start().await;

    reporter(&database, &fake).send_now(now).await.unwrap();

    let texts = fake.wait_for_requests("sendmessage", 1, Duration::from_secs(10)).await;
    let photos = fake.wait_for_requests("sendphoto", 1, Duration::from_secs(10)).await;
    let text = texts[0].text.clone().unwrap();
    let expected = expected_values(&events);
    let today = expected[&report_day];
    let day_before = expected[&(report_day - Days::new(1))];
    let week_before = expected[&(report_day - Days::new(7))];

    assert!(
        text.starts_with(&format!(
            "Daily report for {} (Europe/Moscow)",
            report_day.format("%a %Y-%m-%d")
        )),
        "{text}"
    );
    let names = ["DAU", "views", "likes", "CTR", "messages"];
    for (index, name) in names.iter().enumerate() {
        let value = seismo_notifier::format_number(today[index]);
        let line = format!(
            "{name}: {value} ({} vs day before, {} vs week before)",
            change(today[index], day_before[index]),
            change(today[index], week_before[index]),
        );
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
    // 41 users on the report day, 38 the day before, 20 a week before.
    assert_eq!(today[0], 41.0);
    assert_eq!(day_before[0], 38.0);
    assert_eq!(week_before[0], 20.0);

    assert_eq!(photos[0].status, 200);
    assert_eq!(photos[0].body["chat_id"], CHAT);
    assert_eq!(photos[0].body["caption"], "Last 7 days");
    let png = photos[0].photo.clone().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    if let Ok(path) = std::env::var("SEISMO_SAMPLE_REPORT_CHART") {
        std::fs::write(path, &png).unwrap();
    }
}

#[tokio::test]
async fn report_waits_out_rate_limit() {
    let now = Utc::now();
    let report_day = now.with_timezone(&ZONE).date_naive() - Days::new(1);
    let database = TestDatabase::create("notifier_report_429").await.unwrap();
    load_events(&database, &generate(report_day)).await;
    let fake = FakeTelegram::start().await;
    fake.push_replies([Reply::RetryAfter(1)]);

    reporter(&database, &fake).send_now(now).await.unwrap();

    // The text is sent again after the 429's retry_after and arrives once.
    let texts = fake.requests_of("sendmessage");
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert_eq!(texts[0].status, 429);
    assert_eq!(texts[1].status, 200);
    assert_eq!(texts[0].text, texts[1].text);
    assert!(texts[1].received_at - texts[0].received_at >= Duration::from_secs(1));
    // The chart keeps Telegram's limit of one message per second per chat.
    let photos = fake.requests_of("sendphoto");
    assert_eq!(photos.len(), 1, "{photos:#?}");
    assert_eq!(photos[0].status, 200);
    assert!(photos[0].received_at - texts[1].received_at >= Duration::from_millis(900));
}

#[tokio::test]
async fn empty_table_report_has_no_chart() {
    let database = TestDatabase::create("notifier_report_empty").await.unwrap();
    database.create_events_table().await.unwrap();
    let fake = FakeTelegram::start().await;

    reporter(&database, &fake).send_now(Utc::now()).await.unwrap();

    let texts = fake.requests_of("sendmessage");
    assert_eq!(texts.len(), 1, "{texts:#?}");
    let text = texts[0].text.as_deref().unwrap();
    assert!(text.contains("DAU: no data"), "{text}");
    assert!(fake.requests_of("sendphoto").is_empty());
}

#[tokio::test]
async fn report_fails_without_table() {
    let database = TestDatabase::create("notifier_report_missing").await.unwrap();
    let fake = FakeTelegram::start().await;

    let error = reporter(&database, &fake).send_now(Utc::now()).await.unwrap_err();

    assert!(error.contains(database.name()), "{error}");
    assert!(fake.requests_of("sendmessage").is_empty());
}

#[tokio::test]
async fn report_now_command_line_sends() {
    use clap::Parser;
    use seismo_notifier::cli::NotifierArgs;
    use seismo_notifier::commands::setup::{NotifierCommand, send_report_now};

    let now = Utc::now();
    let report_day = now.with_timezone(&ZONE).date_naive() - Days::new(1);
    let events = generate(report_day);
    let database = TestDatabase::create("notifier_report_cli").await.unwrap();
    load_events(&database, &events).await;
    let fake = FakeTelegram::start().await;
    let url = database.url();
    let api_url = fake.api_url();
    let command_line = [
        "seismo-notifier",
        "--telegram-bot-token=123:secret",
        "--telegram-chat-ids=-100700",
        "--telegram-api-url",
        &api_url,
        "--report-clickhouse-url",
        &url,
        "--report-database",
        database.name(),
        "--report-metrics=DAU=uniqExact(user_id)",
        "report",
        "--now",
    ];

    let args = NotifierArgs::parse_from(command_line);
    assert!(matches!(args.command, Some(NotifierCommand::Report { now: true })));
    let interaction = args.interaction.clone();
    let config = args.into_config().unwrap();
    send_report_now(&interaction, config.telegram.as_ref()).await.unwrap();

    let texts = fake.wait_for_requests("sendmessage", 1, Duration::from_secs(10)).await;
    let text = texts[0].text.clone().unwrap();
    assert_eq!(texts[0].chat_id, -100_700);
    assert!(
        text.contains("\nDAU: 41 (+7.9% vs day before, +105.0% vs week before)"),
        "{text}"
    );
    assert!(!text.contains("views"), "{text}");
    fake.wait_for_requests("sendphoto", 1, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn report_command_sends_to_its_chat() {
    use std::sync::Arc;

    use seismo_notifier::commands::access::AllowList;
    use seismo_notifier::commands::acknowledgements::AcknowledgementStore;
    use seismo_notifier::commands::bot::CommandBot;
    use seismo_notifier::commands::status_view::StatusView;
    use seismo_notifier::silence::store::SilenceStore;
    use tokio_util::sync::CancellationToken;

    const COMMAND_CHAT: i64 = -100_800;
    let now = Utc::now();
    let report_day = now.with_timezone(&ZONE).date_naive() - Days::new(1);
    let database = TestDatabase::create("notifier_report_command").await.unwrap();
    load_events(&database, &generate(report_day)).await;
    let fake = FakeTelegram::start().await;
    let telegram = TelegramConfig::new("123:secret", &CHAT.to_string(), &fake.api_url()).unwrap();
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
    bot.report = Some(Arc::new(reporter(&database, &fake)));
    bot.poll_timeout = Duration::from_secs(1);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(bot.run(cancel.clone()));

    fake.push_text_message(CHAT, 7, "/report");
    fake.push_text_message(COMMAND_CHAT, 7, "/report");
    let photos = fake.wait_for_requests("sendphoto", 1, Duration::from_secs(10)).await;
    let texts = fake.wait_for_requests("sendmessage", 2, Duration::from_secs(10)).await;

    // The report goes to the chat that asked, not to the report chats,
    // and the alert chat is not on the command allow-list.
    assert_eq!(photos[0].body["chat_id"], COMMAND_CHAT);
    assert!(
        texts[0].text.as_deref().unwrap().starts_with("Daily report for "),
        "{:?}",
        texts[0].text
    );
    assert_eq!(texts[1].text.as_deref(), Some("Report sent."));
    assert!(
        texts.iter().all(|request| request.chat_id == COMMAND_CHAT),
        "{texts:#?}"
    );
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
