//! The `seismo-experiments ab` command as a user runs it. Clap parses the
//! arguments, the events come from a fresh database on the local ClickHouse
//! server, and the chart goes to a file and, with the report, to the fake
//! Telegram Bot API on 127.0.0.1.

use clap::Parser;
use seismo_experiments::cli::{Cli, execute};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::fake_telegram::FakeTelegram;
use tokio_util::sync::CancellationToken;

/// Creates the events table of ClickHouse servers before 19.3 and inserts
/// 10 000 views of 500 users on 2014-07-01: users with an odd number are
/// group 1, the others group 2. User u likes the views of the first u % 7
/// of its 20 rounds, plus 2 more in group 2.
async fn insert_events(database: &TestDatabase) {
    database.create_events_table().await.unwrap();

    let rows = "SELECT toDateTime(1404172800 + number) AS event_time, number % 500 AS user, \
                       intDiv(number, 500) AS round, toString(2 - user % 2) AS exp_group, toInt64(number) AS offset \
                FROM numbers(10000)";
    let views = format!("SELECT event_time, 0, 'view', toString(user), exp_group, '', 0, offset FROM ({rows})");
    let likes = format!(
        "SELECT event_time, 0, 'like', toString(user), exp_group, '', 0, offset + 1000000 FROM ({rows}) \
         WHERE round < user % 7 + if(exp_group = '2', 2, 0)"
    );
    for select in [views, likes] {
        let insert = format!(
            "INSERT INTO events (event_time, event_time_ms, event, user_id, exp_group, extra, kafka_partition, kafka_offset) {select}"
        );
        database.client().query(&insert).execute().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_command_writes_chart_and_sends() {
    let database = TestDatabase::create("experiments_command").await.unwrap();
    insert_events(&database).await;
    let telegram = FakeTelegram::start().await;
    let chart = std::env::temp_dir().join(format!("{}.png", database.name()));
    let chart_arg = chart.display().to_string();
    let api_url = telegram.api_url();

    let cli = Cli::try_parse_from([
        "seismo-experiments",
        "ab",
        "--clickhouse-url",
        &database.url(),
        "--database",
        database.name(),
        "--groups",
        "1,2",
        "--from",
        "2014-07-01",
        "--to",
        "2014-07-02",
        "--bootstrap",
        "300",
        "--chart",
        &chart_arg,
        "--telegram-chat",
        "-1001",
        "--telegram-bot-token",
        "123456:command-test",
        "--telegram-api-url",
        &api_url,
    ])
    .unwrap();
    execute(cli, CancellationToken::new()).await.unwrap();

    let png = std::fs::read(&chart).unwrap();
    std::fs::remove_file(&chart).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let messages = telegram.requests_of("sendmessage");
    assert_eq!(messages.len(), 1);
    let text = messages[0].text.as_deref().unwrap();
    assert!(text.contains("control 1 vs treatment 2"), "{text}");
    for group in ["1", "2"] {
        let row = text
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|tokens| tokens.first() == Some(&group))
            .unwrap_or_else(|| panic!("no row of group {group}:\n{text}"));
        assert_eq!(row[1..3], ["250", "5000"], "users and views of group {group}");
    }
    let photos = telegram.requests_of("sendphoto");
    assert_eq!(photos.len(), 1);
    assert_eq!(
        photos[0].photo.as_deref(),
        Some(png.as_slice()),
        "the sent chart is the written one"
    );
}

#[tokio::test]
async fn telegram_chat_needs_token() {
    let cli = Cli::try_parse_from([
        "seismo-experiments",
        "ab",
        "--groups",
        "1,2",
        "--from",
        "2014-07-01",
        "--to",
        "2014-07-02",
        "--telegram-chat",
        "-1001",
        "--telegram-bot-token",
        "",
    ])
    .unwrap();

    let message = execute(cli, CancellationToken::new()).await.unwrap_err().to_string();

    assert!(message.contains("--telegram-chat needs the bot token"), "{message}");
}
