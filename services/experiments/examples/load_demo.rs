//! Loads synthetic A/B test traffic into ClickHouse for trying
//! `seismo-experiments`: the loader replays deploy/demo/nyc_taxi.csv with
//! simulated users through an in-process Kafka (librdkafka's mock cluster)
//! into ingest, which writes `<database>.events`. The database is dropped
//! and created anew first.
//!
//! cargo run -p seismo-experiments --example load_demo -- --database seismo_ab_demo --effect 0.1

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rdkafka::mocking::MockCluster;
use seismo_events::ParseLimits;
use seismo_ingest::{BatchPolicy, ClickHouseConfig, IngestConfig, IngestStats, Readiness};
use seismo_loader::{EventTemplate, ExperimentConfig, LoaderConfig, load_with_experiment};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,

    /// Database to (re)create; dropped first if it exists.
    #[arg(long, default_value = "seismo_ab_demo")]
    database: String,

    /// CSV rows to replay (half-hours from 2014-07-01).
    #[arg(long, default_value_t = 1440)]
    rows: usize,

    #[arg(long, default_value_t = 3000)]
    users: u32,

    #[arg(long, default_value_t = 20)]
    views_per_row: u32,

    #[arg(long, default_value_t = 0.2)]
    like_probability: f64,

    /// Relative lift of group 2's like probability; 0 for an A/A setup.
    #[arg(long, default_value_t = 0.1)]
    effect: f64,

    #[arg(long, default_value = "seismo-experiment")]
    salt: String,

    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = args.database.clone();
    clickhouse::Client::default()
        .with_url(&args.clickhouse_url)
        .with_validation(false)
        .query(&format!("DROP DATABASE IF EXISTS `{database}`"))
        .execute()
        .await
        .with_context(|| format!("dropping {database} at {} failed", args.clickhouse_url))?;

    let cluster = MockCluster::new(1).context("starting the Kafka mock cluster failed")?;
    cluster
        .create_topic("events", 1, 1)
        .context("creating the topic failed")?;
    let brokers = cluster.bootstrap_servers();

    let loader = LoaderConfig {
        brokers: brokers.clone(),
        topic: "events".to_string(),
        input: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo/nyc_taxi.csv"),
        template: EventTemplate {
            event: "taxi_trips".to_string(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: "nyc_taxi".to_string(),
        },
        // About 130 rows a second, which ingest keeps up with: librdkafka's
        // mock cluster keeps only 5 MB per partition and drops the oldest
        // messages beyond that, so an unpaced replay loses events.
        speedup: 240_000.0,
        limit: Some(args.rows),
    };
    let experiment = ExperimentConfig {
        users: args.users,
        salt: args.salt,
        split: vec![50, 50],
        views_per_row: args.views_per_row,
        like_probability: args.like_probability,
        effect_group: 2,
        effect: args.effect,
        seed: args.seed,
    };

    let stats = Arc::new(IngestStats::default());
    let readiness = Readiness::default();
    let cancel = CancellationToken::new();
    let ingest = tokio::spawn(seismo_ingest::run(
        IngestConfig {
            brokers,
            topic: "events".to_string(),
            group_id: "load-demo".to_string(),
            dead_letter_topic: "events.dlq".to_string(),
            clickhouse: ClickHouseConfig {
                url: args.clickhouse_url.clone(),
                database: database.clone(),
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
            ..IngestConfig::default()
        },
        Arc::clone(&stats),
        readiness.clone(),
        cancel.clone(),
    ));

    // The loader starts once ingest's consumer joined its group.
    while readiness.status().is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = load_with_experiment(&loader, Some(&experiment), CancellationToken::new()).await?;
    let produced = summary.produced as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while stats.summary().inserted < produced {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "ingest stored only {} of {produced} events in 120 s: {:?}",
            stats.summary().inserted,
            stats.summary()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cancel.cancel();
    ingest.await.context("the ingest task panicked")??;

    println!("stored {produced} events of {} rows in {database}.events", summary.rows);
    Ok(())
}
