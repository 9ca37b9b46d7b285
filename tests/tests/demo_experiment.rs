//! The demo with A/B test traffic. The loader adds simulated users' views
//! and likes with `exp_group` to the NYC taxi series. The detector's
//! guardrail for the demo experiment then fires on a real drop of group 2's
//! likes per view, and the alert reaches a fake Telegram Bot API.

use std::path::PathBuf;

use seismo_demo::{DemoOptions, DemoTelegram, run_demo};
use seismo_loader::ExperimentConfig;
use seismo_notifier::RateLimits;
use seismo_proto::v1::AnomalyState;
use seismo_tests::fake_telegram::FakeTelegram;

fn repository_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

async fn drop_database(url: &str, database: &str) {
    let client = clickhouse::Client::default().with_url(url).with_validation(false);
    client
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .expect("the test database can be dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_guardrail_fires_on_fewer_likes() {
    let telegram = FakeTelegram::start().await;
    let options = DemoOptions {
        series_csv: repository_path("deploy/demo/nyc_taxi.csv"),
        label_windows: None,
        metrics_config: repository_path("deploy/demo/metrics.toml"),
        event_name: "taxi_trips".to_string(),
        clickhouse_url: std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".to_string()),
        database: format!("seismo_demo_experiment_{}", std::process::id()),
        // The demo's default pacing. Faster, the loader outruns the
        // consumers and the mock cluster drops a partition's oldest
        // messages beyond its 5 MB log.
        speedup: 500_000.0,
        telegram: Some(DemoTelegram {
            token: "123456:demo-experiment-test".to_string(),
            chat_ids: "-1001".to_string(),
            api_url: telegram.api_url(),
            rate_limits: RateLimits::default().with_windows_divided_by(20),
        }),
        print_alerts: false,
        experiment: Some(ExperimentConfig {
            users: 2_000,
            salt: "seismo-demo".to_string(),
            split: vec![50, 50],
            views_per_row: 10,
            like_probability: 0.2,
            effect_group: 2,
            effect: -0.3,
            seed: 1,
        }),
    };

    let summary = run_demo(&options).await.expect("the pipeline runs to the end");
    drop_database(&options.clickhouse_url, &options.database).await;

    let alerts = summary.experiment_alerts();
    let metrics: Vec<&str> = alerts.iter().map(|alert| alert.metric.as_str()).collect();
    assert_eq!(
        metrics,
        vec!["experiment.demo_feed.ctr"],
        "experiment alerts: {alerts:?}"
    );
    let ctr = alerts[0];
    assert_eq!(ctr.state(), AnomalyState::Firing);
    assert_eq!(ctr.slice[0].value, "2");
    assert!(
        ctr.value < ctr.expected,
        "group 2 CTR {} not below control {}",
        ctr.value,
        ctr.expected
    );
    let texts: Vec<String> = telegram
        .delivered()
        .iter()
        .filter_map(|request| request.text.clone())
        .collect();
    assert!(
        texts.iter().any(|text| text.contains("experiment.demo_feed.ctr")),
        "no Telegram message names the guardrail: {texts:?}"
    );
}
