//! The whole pipeline on the NYC taxi series: loader → Kafka (mock cluster) →
//! ingest → ClickHouse, and Kafka → detector → gRPC → notifier → fake
//! Telegram Bot API on 127.0.0.1. Needs ClickHouse at `CLICKHOUSE_URL`
//! (default http://127.0.0.1:8123).

use std::path::PathBuf;

use seismo_demo::{DemoOptions, DemoTelegram, run_demo};
use seismo_notifier::RateLimits;
use seismo_proto::v1::AnomalyState;
use seismo_tests::fake_telegram::{FakeTelegram, parse_telegram_html};

/// Rows of deploy/demo/nyc_taxi.csv.
const NYC_TAXI_ROWS: usize = 10_320;

fn repository_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nyc_taxi_alerts_reach_telegram() {
    let telegram = FakeTelegram::start().await;
    let options = DemoOptions {
        series_csv: repository_path("deploy/demo/nyc_taxi.csv"),
        label_windows: Some(repository_path("deploy/demo/nyc_taxi.windows.json")),
        metrics_config: repository_path("deploy/demo/metrics.toml"),
        event_name: "taxi_trips".to_string(),
        clickhouse_url: std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".to_string()),
        database: format!("seismo_e2e_{}", std::process::id()),
        speedup: 0.0,
        telegram: Some(DemoTelegram {
            token: "123456:end-to-end-test".to_string(),
            chat_ids: "-1001".to_string(),
            api_url: telegram.api_url(),
            // Telegram's pacing of 20 messages a minute per group, 20 times
            // faster, so the test checks delivery without waiting minutes.
            rate_limits: RateLimits::default().with_windows_divided_by(20),
        }),
        print_alerts: false,
        experiment: None,
    };

    let summary = run_demo(&options).await.expect("the pipeline runs to the end");
    drop_database(&options.clickhouse_url, &options.database).await;

    assert_eq!(summary.events_produced, NYC_TAXI_ROWS);
    assert_eq!(summary.stored.rows, NYC_TAXI_ROWS as u64, "every event stored once");
    assert_eq!(
        summary.stored.distinct_event_ids, NYC_TAXI_ROWS as u64,
        "no event missing"
    );
    assert_eq!(summary.events_dead_lettered, 0);

    let matched = summary.label_match.clone().expect("label windows were given");
    println!("firing alerts at {:?}", summary.firing_times_ms());
    println!("{matched:?}");
    assert!(
        matched.windows_hit >= 3,
        "alerts inside only {} of 5 labelled windows",
        matched.windows_hit
    );
    assert!(
        matched.alerts_outside <= 15,
        "{} alerts outside the labelled windows",
        matched.alerts_outside
    );

    let delivered = telegram.delivered();
    assert_eq!(
        delivered.len(),
        summary.anomalies.len(),
        "one Telegram message per anomaly state change"
    );
    assert_eq!(summary.alerts_sent, summary.anomalies.len() as u64);
    assert_eq!(summary.alerts_failed, 0);

    let firing = summary
        .anomalies
        .iter()
        .filter(|event| event.state() == AnomalyState::Firing)
        .count();
    assert!(firing >= 3);
    for request in &delivered {
        let text = request.text.as_deref().expect("sendMessage carries text");
        let shown = parse_telegram_html(text).expect("Telegram accepts the message's HTML");
        assert!(shown.contains("taxi_trips"), "message names the metric: {shown}");
        assert!(
            request.chat_id == serde_json::json!(-1001) || request.chat_id == serde_json::json!("-1001"),
            "message goes to the configured chat, not {}",
            request.chat_id
        );
    }
}

async fn drop_database(url: &str, database: &str) {
    clickhouse::Client::default()
        .with_url(url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .expect("dropping the test database succeeds");
}
