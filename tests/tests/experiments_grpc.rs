//! The `seismo.experiments.v1.Experiments` gRPC service over a real
//! connection, analysing events inserted with SQL into a fresh database on
//! the local ClickHouse server (default http://127.0.0.1:8123), and the
//! request counts on its `/metrics`.

use std::time::Duration;

use seismo_experiments::analysis::AnalysisSettings;
use seismo_experiments::clickhouse_source::EventsTable;
use seismo_experiments::service::{ServiceConfig, start};
use seismo_proto::experiments::v1::experiments_client::ExperimentsClient;
use seismo_proto::experiments::v1::{AnalyzeAbTestRequest, Metric};
use seismo_tests::admin_http::{metric_value, scrape};
use seismo_tests::clickhouse::TestDatabase;
use tokio_util::sync::CancellationToken;

/// 2014-07-01T00:00:00Z, the start of the inserted events.
const START_MS: i64 = 1_404_172_800_000;

/// Creates the events table of ClickHouse servers before 19.3 and inserts
/// 40 000 views of 800 users over one day: odd users are group 1, even
/// users group 2. Each user u has 50 views, one per round. In group 1 the
/// user likes the views of the first 5 + u % 10 rounds (6 to 14 likes, 4000
/// in all, CTR 0.20). In group 2 it is 8 + u % 10 rounds (8 to 16 likes,
/// 4800 in all, CTR 0.24).
async fn insert_events(database: &TestDatabase) {
    database.create_events_table().await.unwrap();

    let views = "SELECT toDateTime(1404172800 + number * 2) AS event_time, 0 AS event_time_ms, \
                        'view' AS event, toString(number % 800) AS user_id, \
                        toString(2 - (number % 800) % 2) AS exp_group, \
                        '' AS extra, 0 AS kafka_partition, toInt64(number) AS kafka_offset \
                 FROM numbers(40000)";
    let likes = "SELECT event_time, event_time_ms, 'like', user_id, exp_group, extra, kafka_partition, \
                        kafka_offset + 1000000 \
                 FROM (SELECT toDateTime(1404172800 + number * 2) AS event_time, 0 AS event_time_ms, \
                              toString(number % 800) AS user_id, toString(2 - (number % 800) % 2) AS exp_group, \
                              '' AS extra, 0 AS kafka_partition, toInt64(number) AS kafka_offset, \
                              intDiv(number, 800) AS round, number % 800 % 10 AS user_digit \
                       FROM numbers(40000)) \
                 WHERE (exp_group = '1' AND round < 5 + user_digit) OR (exp_group = '2' AND round < 8 + user_digit)";
    for select in [views, likes] {
        let insert = format!(
            "INSERT INTO events (event_time, event_time_ms, event, user_id, exp_group, extra, kafka_partition, kafka_offset) {select}"
        );
        database.client().query(&insert).execute().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_round_trip() {
    let database = TestDatabase::create("experiments_grpc").await.unwrap();
    insert_events(&database).await;
    let table = EventsTable {
        url: database.url(),
        user: "default".to_string(),
        password: String::new(),
        database: database.name().to_string(),
        table: "events".to_string(),
        view_event: "view".to_string(),
        like_event: "like".to_string(),
        query_timeout: Duration::from_secs(60),
    };
    let defaults = AnalysisSettings {
        bootstrap_iterations: 500,
        ..AnalysisSettings::default()
    };
    let config = ServiceConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        table,
        defaults,
    };
    let shutdown = CancellationToken::new();
    let running = start(config, shutdown.clone()).await.unwrap();
    let admin = running.admin_addr();

    let mut client = ExperimentsClient::connect(format!("http://{}", running.local_addr()))
        .await
        .unwrap();
    let response = client
        .analyze_ab_test(AnalyzeAbTestRequest {
            control_group: "1".to_string(),
            treatment_group: "2".to_string(),
            from_ms: START_MS,
            to_ms: START_MS + 86_400_000,
            metric: Metric::Ctr as i32,
            seed: 1,
            include_chart: true,
            ..AnalyzeAbTestRequest::default()
        })
        .await
        .unwrap()
        .into_inner();

    let control = response.control.clone().unwrap();
    let treatment = response.treatment.clone().unwrap();
    assert_eq!((control.users, control.views, control.likes), (400, 20_000, 4_000));
    assert_eq!(
        (treatment.users, treatment.views, treatment.likes),
        (400, 20_000, 4_800)
    );
    assert!(
        response.srm_p_value > 0.99,
        "equal groups, SRM p = {}",
        response.srm_p_value
    );
    let names: Vec<&str> = response.tests.iter().map(|test| test.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "welch_t",
            "mann_whitney_u",
            "linearized",
            "bucketed",
            "smoothed",
            "poisson_bootstrap"
        ]
    );
    let bootstrap = &response.tests[5];
    assert!(
        (bootstrap.effect - 0.04).abs() < 1e-12,
        "global CTR difference {}",
        bootstrap.effect
    );
    assert!(bootstrap.ci_lower < 0.04, "interval starts at {}", bootstrap.ci_lower);
    assert!(bootstrap.ci_upper > 0.04, "interval ends at {}", bootstrap.ci_upper);
    for test in &response.tests {
        assert_eq!(test.error, "", "{} failed", test.name);
        assert!(test.p_value < 0.001, "{}: p = {}", test.name, test.p_value);
    }
    assert!(
        response.report.contains("control 1 vs treatment 2"),
        "{}",
        response.report
    );
    assert_eq!(&response.chart_png[..4], b"\x89PNG");

    let invalid = client
        .analyze_ab_test(AnalyzeAbTestRequest {
            control_group: "1".to_string(),
            ..AnalyzeAbTestRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert!(invalid.message().contains("treatment_group"), "{}", invalid.message());

    let empty = client
        .analyze_ab_test(AnalyzeAbTestRequest {
            control_group: "1".to_string(),
            treatment_group: "3".to_string(),
            from_ms: START_MS,
            to_ms: START_MS + 86_400_000,
            ..AnalyzeAbTestRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::FailedPrecondition);
    assert!(
        empty.message().contains("group `3` has 0 values"),
        "{}",
        empty.message()
    );

    let exposition = scrape(admin).await.unwrap();
    for code in ["Ok", "InvalidArgument", "FailedPrecondition"] {
        let requests = format!(r#"seismo_experiments_requests_total{{rpc="analyze_ab_test",code="{code}"}}"#);
        let durations =
            format!(r#"seismo_experiments_request_duration_seconds_count{{rpc="analyze_ab_test",code="{code}"}}"#);
        assert_eq!(metric_value(&exposition, &requests), Some(1.0), "{exposition}");
        assert_eq!(metric_value(&exposition, &durations), Some(1.0), "{exposition}");
    }

    shutdown.cancel();
    running.wait().await.unwrap();
}
