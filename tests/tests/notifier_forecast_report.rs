//! The forecast report against the real ClickHouse server holding four
//! weeks of daily events and the fake Bot API. The text carries the same
//! forecasts as a direct call of seismo_forecast::forecast on a series
//! built here from the generated events. A metric with too little history
//! shows its error, and the command line and `/forecast` send the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc, Weekday};
use clap::Parser;
use seismo_forecast::clickhouse_source::ClickHouseSettings;
use seismo_forecast::{EventDates, ForecastOptions, Granularity, Series, forecast, forecast_report_text};
use seismo_notifier::cli::NotifierArgs;
use seismo_notifier::commands::access::AllowList;
use seismo_notifier::commands::acknowledgements::AcknowledgementStore;
use seismo_notifier::commands::bot::CommandBot;
use seismo_notifier::commands::setup::{NotifierCommand, send_forecast_report_now};
use seismo_notifier::commands::status_view::StatusView;
use seismo_notifier::forecast_report::sender::ForecastReporter;
use seismo_notifier::forecast_report::settings::ForecastReportSettings;
use seismo_notifier::silence::store::SilenceStore;
use seismo_notifier::{ChatTarget, TelegramConfig};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::fake_telegram::FakeTelegram;
use tokio_util::sync::CancellationToken;

const CHAT: i64 = -100_600;
const HISTORY_DAYS: u64 = 28;
const TIMEOUT: Duration = Duration::from_secs(30);

/// One generated event: UTC day, time, kind and user.
struct Generated {
    day: NaiveDate,
    time: DateTime<Utc>,
    event: &'static str,
    user: String,
}

/// Generates events for the 28 UTC days before `today`. Day `d` has
/// `30 + 2d` users, ten more on Saturdays and Sundays for a weekly cycle;
/// user `u` views `1 + u % 3` times and likes when `u % 4 == 0`. Signups
/// happen only on the last three days, too few to fit a weekly model.
fn generate(today: NaiveDate) -> Vec<Generated> {
    let mut events = Vec::new();
    for d in 0..HISTORY_DAYS {
        let day = today - Days::new(HISTORY_DAYS - d);
        let weekend = matches!(day.format("%a").to_string().as_str(), "Sat" | "Sun");
        let users = 30 + 2 * d + if weekend { 10 } else { 0 };
        for u in 0..users {
            let user = format!("user{u}");
            let time = day
                .and_time(NaiveTime::from_hms_opt((u % 24) as u32, 30, 0).unwrap())
                .and_utc();
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
            if d >= HISTORY_DAYS - 3 && u % 10 == 0 {
                push("signup");
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

/// Daily views and active users computed from the generated events, as
/// series starting at the first day.
fn expected_series(events: &[Generated]) -> (Series, Series) {
    let mut views: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    let mut users: BTreeMap<NaiveDate, BTreeSet<&str>> = BTreeMap::new();
    for event in events {
        users.entry(event.day).or_default().insert(&event.user);
        if event.event == "view" {
            *views.entry(event.day).or_default() += 1.0;
        }
    }
    let first = *views.keys().next().unwrap();
    let start = first.and_time(NaiveTime::MIN).and_utc();
    (
        Series::new(start, Granularity::Day, views.values().copied().collect()),
        Series::new(
            start,
            Granularity::Day,
            users.values().map(|users| users.len() as f64).collect(),
        ),
    )
}

fn source(database: &TestDatabase) -> ClickHouseSettings {
    ClickHouseSettings {
        url: database.url(),
        user: None,
        password: None,
        database: database.name().to_string(),
        table: "events".to_string(),
        timeout: Duration::from_secs(30),
    }
}

fn settings(metrics: &[&str]) -> ForecastReportSettings {
    ForecastReportSettings {
        metrics: metrics.iter().map(|metric| metric.to_string()).collect(),
        granularity: Granularity::Day,
        horizon: 7,
        level: 0.95,
        weekly: true,
        weekday: Weekday::Mon,
        send_at: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
        time_zone: chrono_tz::Europe::Moscow,
        chats: vec![ChatTarget::Id(CHAT)],
    }
}

#[tokio::test]
async fn report_matches_direct_forecast() {
    let now = Utc::now();
    let today = now.date_naive();
    let events = generate(today);
    let database = TestDatabase::create("notifier_forecast_report").await.unwrap();
    load_events(&database, &events).await;
    let fake = FakeTelegram::start().await;
    let telegram = TelegramConfig::new("123:secret", &CHAT.to_string(), &fake.api_url()).unwrap();
    let reporter = ForecastReporter::new(
        source(&database),
        settings(&["views", "active_users", "count:signup"]),
        &telegram,
    );

    reporter.send_now(now).await.unwrap();

    let texts = fake.wait_for_requests("sendmessage", 1, TIMEOUT).await;
    let photos = fake.wait_for_requests("sendphoto", 1, TIMEOUT).await;
    let text = texts[0].text.clone().unwrap();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert_eq!(texts[0].chat_id, CHAT);
    assert!(
        text.starts_with(&format!(
            "Forecast report, history up to {} 00:00 UTC\n",
            today.format("%Y-%m-%d")
        )),
        "{text}"
    );

    let (views, active_users) = expected_series(&events);
    assert_eq!(views.len(), HISTORY_DAYS as usize);
    // Day 27 has 30 + 54 users, plus 10 when it is a weekend day.
    assert!(
        matches!(*active_users.values.last().unwrap(), 84.0 | 94.0),
        "{active_users:?}"
    );
    let options = ForecastOptions {
        horizon: 7,
        level: 0.95,
        event_dates: EventDates::default(),
    };
    for (metric, series) in [("views", &views), ("active_users", &active_users)] {
        let direct = forecast(series, &options).unwrap();
        assert_eq!(direct.steps.len(), 7);
        assert_eq!(direct.steps[0].time, today.and_time(NaiveTime::MIN).and_utc());
        let section = forecast_report_text(metric, "", &direct);
        assert!(text.contains(&section), "missing\n{section}\nin:\n{text}");
        for step in &direct.steps {
            let day = step.time.format("%a %Y-%m-%d").to_string();
            assert!(text.contains(&day), "{metric}: missing {day} in:\n{text}");
        }
    }
    assert!(
        text.contains("📈 Forecast: count:signup (total) failed: the series has 3 points but needs at least 14"),
        "{text}"
    );

    assert_eq!(photos[0].body["chat_id"], CHAT);
    assert_eq!(
        photos[0].body["caption"],
        "History and forecast with its 95% prediction interval"
    );
    let png = photos[0].photo.clone().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    if let Ok(path) = std::env::var("SEISMO_SAMPLE_FORECAST_CHART") {
        std::fs::write(path, &png).unwrap();
    }
}

#[tokio::test]
async fn report_without_table_fails() {
    let database = TestDatabase::create("notifier_forecast_missing").await.unwrap();
    let fake = FakeTelegram::start().await;
    let telegram = TelegramConfig::new("123:secret", &CHAT.to_string(), &fake.api_url()).unwrap();
    let reporter = ForecastReporter::new(source(&database), settings(&["views"]), &telegram);

    let error = reporter.send_now(Utc::now()).await.unwrap_err();

    // No metric could be forecast, so nothing goes to the chat and the
    // error names the metric and the database.
    assert!(error.contains("views: ClickHouse query of"), "{error}");
    assert!(error.contains(database.name()), "{error}");
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
}

#[tokio::test]
async fn forecast_report_now_command_line_sends() {
    let now = Utc::now();
    let database = TestDatabase::create("notifier_forecast_cli").await.unwrap();
    load_events(&database, &generate(now.date_naive())).await;
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
        "--forecast-report-metrics=likes",
        "--forecast-report-horizon=3",
        "forecast-report",
        "--now",
    ];

    let args = NotifierArgs::parse_from(command_line);
    assert!(matches!(
        args.command,
        Some(NotifierCommand::ForecastReport { now: true })
    ));
    let interaction = args.interaction.clone();
    let config = args.into_config().unwrap();
    send_forecast_report_now(&interaction, config.telegram.as_ref())
        .await
        .unwrap();

    let texts = fake.wait_for_requests("sendmessage", 1, TIMEOUT).await;
    let text = texts[0].text.clone().unwrap();
    assert_eq!(texts[0].chat_id, -100_700);
    assert!(text.contains("📈 Forecast: likes (total), next 3 days\n"), "{text}");
    assert!(!text.contains("views"), "{text}");
    fake.wait_for_requests("sendphoto", 1, TIMEOUT).await;
}

#[tokio::test]
async fn forecast_command_sends_to_its_chat() {
    const COMMAND_CHAT: i64 = -100_800;
    let database = TestDatabase::create("notifier_forecast_command").await.unwrap();
    load_events(&database, &generate(Utc::now().date_naive())).await;
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
    bot.forecast_report = Some(Arc::new(ForecastReporter::new(
        source(&database),
        settings(&["views"]),
        &telegram,
    )));
    bot.poll_timeout = Duration::from_secs(1);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(bot.run(cancel.clone()));

    fake.push_text_message(CHAT, 7, "/forecast");
    fake.push_text_message(COMMAND_CHAT, 7, "/forecast");
    let photos = fake.wait_for_requests("sendphoto", 1, TIMEOUT).await;
    let texts = fake.wait_for_requests("sendmessage", 2, TIMEOUT).await;

    // The report goes to the chat that asked, and the report chat is not
    // on the command allow-list.
    assert_eq!(photos[0].body["chat_id"], COMMAND_CHAT);
    assert!(
        texts[0]
            .text
            .as_deref()
            .unwrap()
            .starts_with("Forecast report, history up to "),
        "{:?}",
        texts[0].text
    );
    assert_eq!(texts[1].text.as_deref(), Some("Forecast report sent."));
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
