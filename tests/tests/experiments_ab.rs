//! A/B analysis end to end: the loader's synthetic experiment traffic goes
//! through Kafka (librdkafka's mock cluster) and ingest into a fresh
//! database on the local ClickHouse server, and seismo-experiments reads it
//! back. One replay carries a known effect, which the tests must find; an
//! A/A replay must show none. Needs ClickHouse at `CLICKHOUSE_URL`
//! (default http://127.0.0.1:8123).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use seismo_events::ParseLimits;
use seismo_experiments::aa::AaSettings;
use seismo_experiments::analysis::{AnalysisSettings, TestValues};
use seismo_experiments::clickhouse_source::EventsTable;
use seismo_experiments::run::{AaRequest, AbOutput, AbRequest, run_aa_check, run_ab_test};
use seismo_ingest::{BatchPolicy, ClickHouseConfig, IngestConfig, IngestStats};
use seismo_loader::{EventTemplate, ExperimentConfig, LoaderConfig, load_with_experiment};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::MockKafka;
use seismo_tests::wait::wait_for;
use tokio_util::sync::CancellationToken;

/// CSV rows replayed: 1000 half-hours from 2014-07-01, about 21 days.
const ROWS: usize = 1000;

/// Salt of the loader's group assignment.
const SALT: &str = "experiments-test";

/// Relative lift of group 2's like probability in the A/B replay.
const EFFECT: f64 = 0.2;

fn experiment(effect: f64) -> ExperimentConfig {
    ExperimentConfig {
        users: 2000,
        salt: SALT.to_string(),
        split: vec![50, 50],
        views_per_row: 20,
        like_probability: 0.2,
        effect_group: 2,
        effect,
        seed: 5,
    }
}

/// Replays the experiment into a new database through Kafka and ingest and
/// returns the database once every produced event is stored.
async fn load_into_clickhouse(prefix: &str, experiment: &ExperimentConfig) -> TestDatabase {
    let kafka = MockKafka::start().unwrap();
    let topic = format!("{prefix}-events");
    kafka.create_topic(&topic, 1).unwrap();
    let database = TestDatabase::create(prefix).await.unwrap();

    let loader = LoaderConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: topic.clone(),
        input: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/nyc_taxi.csv"),
        template: EventTemplate {
            event: "taxi_trips".to_string(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: "nyc_taxi".to_string(),
        },
        speedup: 0.0,
        limit: Some(ROWS),
    };
    let summary = load_with_experiment(&loader, Some(experiment), CancellationToken::new())
        .await
        .unwrap();
    let views = ROWS * experiment.views_per_row as usize;
    assert!(
        summary.produced > ROWS + views,
        "only {} events produced",
        summary.produced
    );

    let stats = Arc::new(IngestStats::default());
    let cancel = CancellationToken::new();
    let ingest = tokio::spawn(seismo_ingest::run(
        IngestConfig {
            brokers: kafka.bootstrap_servers().to_string(),
            topic: topic.clone(),
            group_id: format!("{prefix}-ingest"),
            dead_letter_topic: format!("{topic}.dlq"),
            clickhouse: ClickHouseConfig {
                url: database.url(),
                database: database.name().to_string(),
                table: "events".to_string(),
                ..ClickHouseConfig::default()
            },
            batch: BatchPolicy {
                max_rows: 10_000,
                max_wait: Duration::from_millis(200),
            },
            parse_limits: ParseLimits {
                max_future: None,
                ..ParseLimits::default()
            },
            shutdown_timeout: Duration::from_secs(5),
            ..IngestConfig::default()
        },
        Arc::clone(&stats),
        seismo_ingest::Readiness::default(),
        cancel.clone(),
    ));

    let produced = summary.produced as u64;
    wait_for("ingest to store every produced event", async || {
        let inserted = stats.summary().inserted;
        Ok((inserted >= produced, format!("{inserted} of {produced} stored")))
    })
    .await
    .unwrap();
    cancel.cancel();
    ingest.await.unwrap().unwrap();
    database
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

fn period() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        Utc.with_ymd_and_hms(2014, 7, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2014, 8, 1, 0, 0, 0).unwrap(),
    )
}

fn ab_request(seed: u64) -> AbRequest {
    let (from, to) = period();
    AbRequest {
        control: "1".to_string(),
        treatment: "2".to_string(),
        from,
        to,
        settings: AnalysisSettings {
            bootstrap_iterations: 1000,
            seed,
            ..AnalysisSettings::default()
        },
        with_chart: true,
    }
}

fn test_values<'a>(output: &'a AbOutput, name: &str) -> &'a TestValues {
    let outcome = output
        .analysis
        .tests
        .iter()
        .find(|test| test.name == name)
        .unwrap_or_else(|| panic!("no test {name} in the report:\n{}", output.report));
    outcome
        .result
        .as_ref()
        .unwrap_or_else(|error| panic!("{name} failed: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_effect_found() {
    let database = load_into_clickhouse("experiments_effect", &experiment(EFFECT)).await;

    let output = run_ab_test(&events_table(&database), &ab_request(3)).await.unwrap();
    println!("{}", output.report);

    let analysis = &output.analysis;
    assert!(analysis.control.users + analysis.treatment.users <= 2000);
    assert!(
        analysis.control.users > 800,
        "control has {} users",
        analysis.control.users
    );
    assert!(
        analysis.treatment.users > 800,
        "treatment has {} users",
        analysis.treatment.users
    );
    assert!(
        analysis.sample_ratio.p_value > 0.001,
        "SRM p = {}",
        analysis.sample_ratio.p_value
    );
    // Every test of the CTR finds the 20 % lift, and its interval covers it.
    for name in [
        "welch_t",
        "mann_whitney_u",
        "linearized",
        "bucketed",
        "smoothed",
        "poisson_bootstrap",
    ] {
        let values = test_values(&output, name);
        assert!(
            values.p_value < 0.01,
            "{name}: p = {}\n{}",
            values.p_value,
            output.report
        );
    }
    for name in ["linearized", "poisson_bootstrap"] {
        let relative = test_values(&output, name).relative.unwrap();
        assert!(
            relative.lower < EFFECT && EFFECT < relative.upper,
            "{name}: relative effect {relative:?} misses {EFFECT}"
        );
    }
    let chart = output.chart_png.as_deref().unwrap();
    assert_eq!(&chart[..8], b"\x89PNG\r\n\x1a\n", "the chart is a PNG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aa_replay_finds_no_effect() {
    let database = load_into_clickhouse("experiments_aa", &experiment(0.0)).await;
    let table = events_table(&database);

    let output = run_ab_test(&table, &ab_request(4)).await.unwrap();
    println!("{}", output.report);
    for name in [
        "welch_t",
        "mann_whitney_u",
        "linearized",
        "bucketed",
        "smoothed",
        "poisson_bootstrap",
    ] {
        let values = test_values(&output, name);
        assert!(
            values.p_value > 0.05,
            "{name} rejects an A/A split: p = {}",
            values.p_value
        );
    }

    // Re-splitting group 1 many times: each test rejects in about 5 % of
    // the splits. 300 splits put a 99.9 % binomial range at about 0.015 to
    // 0.10.
    let (from, to) = period();
    let request = AaRequest {
        groups: vec!["1".to_string()],
        from,
        to,
        settings: AaSettings {
            simulations: 300,
            seed: 9,
            analysis: AnalysisSettings {
                bootstrap_iterations: 100,
                ..AnalysisSettings::default()
            },
        },
    };
    let (check, report) = run_aa_check(&table, &request).await.unwrap();
    println!("{report}");
    assert_eq!(check.rates.len(), 6);
    for rate in &check.rates {
        assert!(
            (0.01..=0.11).contains(&rate.rate),
            "{}: false-positive rate {}",
            rate.name,
            rate.rate
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_assignment_matches_clickhouse_hash() {
    let database = load_into_clickhouse(
        "experiments_hash",
        &ExperimentConfig {
            views_per_row: 5,
            ..experiment(0.0)
        },
    )
    .await;

    // The loader documents group 1 of a 50,50 split as
    // sipHash64(concat(salt, user_id)) % 100 < 50.
    let sql = format!(
        "SELECT count() FROM events \
         WHERE event = 'view' \
           AND assumeNotNull(exp_group) != if(sipHash64(concat('{SALT}', user_id)) % 100 < 50, '1', '2')"
    );
    let views = database
        .fetch_u64("SELECT count() FROM events WHERE event = 'view'")
        .await
        .unwrap();
    let mismatched = database.fetch_u64(&sql).await.unwrap();

    assert_eq!(views, (ROWS * 5) as u64);
    assert_eq!(mismatched, 0, "views whose exp_group differs from the SQL hash");
}

#[tokio::test]
async fn missing_table_error_names_database() {
    let database = TestDatabase::create("experiments_missing").await.unwrap();

    let error = run_ab_test(&events_table(&database), &ab_request(1)).await.unwrap_err();
    let message = format!("{error:#}");

    assert!(message.contains(database.name()), "{message}");
    assert!(message.contains("check --clickhouse-url, --database"), "{message}");
}

#[tokio::test]
async fn empty_group_rejected() {
    let database = TestDatabase::create("experiments_empty").await.unwrap();
    database.create_events_table().await.unwrap();

    let error = run_ab_test(&events_table(&database), &ab_request(1)).await.unwrap_err();
    let message = format!("{error:#}");

    assert!(message.contains("group `1` has 0 values"), "{message}");
    assert!(message.contains("groups `1` and `2` have no users in"), "{message}");
    assert!(message.contains(database.name()), "{message}");
}
