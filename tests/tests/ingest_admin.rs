//! The ingest service's admin endpoints over HTTP on 127.0.0.1: readiness
//! follows ClickHouse and the consumer group, and /metrics shows the work
//! done. Ingest runs in-process with `seismo_telemetry::start_admin_server`,
//! as the binary wires it, against librdkafka's mock Kafka cluster and the
//! local ClickHouse server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use seismo_events::ParseLimits;
use seismo_ingest::{
    BatchPolicy, ClickHouseConfig, IngestConfig, IngestError, IngestStats, IngestSummary, Readiness, RetryPolicy,
};
use seismo_telemetry::{AdminServer, install_metrics_recorder, start_admin_server};
use seismo_tests::admin_http::{get, metric_value, scrape, wait_for_readyz};
use seismo_tests::clickhouse::TestDatabase;
use seismo_tests::kafka::MockKafka;
use seismo_tests::tcp_proxy::{TcpProxy, clickhouse_socket_address};
use seismo_tests::wait::wait_for;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound of one whole test, so a hang fails instead of blocking CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("seismo_ingest=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn test_config(kafka: &MockKafka, group: &str, database: &TestDatabase, clickhouse_url: String) -> IngestConfig {
    IngestConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        topic: "events".to_string(),
        group_id: group.to_string(),
        dead_letter_topic: "events.dlq".to_string(),
        dead_letter_delivery_timeout: Duration::from_secs(10),
        clickhouse: ClickHouseConfig {
            url: clickhouse_url,
            database: database.name().to_string(),
            table: "events".to_string(),
            insert_timeout: Duration::from_secs(3),
            ..ClickHouseConfig::default()
        },
        batch: BatchPolicy {
            max_rows: 100,
            max_wait: Duration::from_millis(200),
        },
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        parse_limits: ParseLimits {
            max_message_bytes: 4096,
            max_future: None,
        },
        shutdown_timeout: Duration::from_secs(5),
        ..IngestConfig::default()
    }
}

fn valid_event(index: usize) -> Vec<u8> {
    serde_json::json!({
        "event_time": 1_714_564_800_000_i64 + index as i64 * 60_000,
        "event": "view",
        "user_id": format!("user-{index}"),
        "event_id": format!("e-{index}"),
    })
    .to_string()
    .into_bytes()
}

/// Ingest and the admin server in-process, wired as the binary wires them.
struct RunningIngest {
    stats: Arc<IngestStats>,
    cancel: CancellationToken,
    task: JoinHandle<Result<IngestSummary, IngestError>>,
    admin: AdminServer,
    admin_shutdown: CancellationToken,
}

impl RunningIngest {
    /// Starts the admin server on a free port of 127.0.0.1 first, so the
    /// test can see readiness before ingest starts.
    async fn start_admin() -> anyhow::Result<(AdminServer, CancellationToken, Readiness)> {
        let readiness = Readiness::default();
        let admin_shutdown = CancellationToken::new();
        let admin = start_admin_server(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            install_metrics_recorder(),
            readiness.clone(),
            admin_shutdown.clone(),
        )
        .await?;
        Ok((admin, admin_shutdown, readiness))
    }

    fn start(
        config: IngestConfig,
        admin: AdminServer,
        admin_shutdown: CancellationToken,
        readiness: Readiness,
    ) -> Self {
        let stats = Arc::new(IngestStats::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(seismo_ingest::run(config, stats.clone(), readiness, cancel.clone()));
        RunningIngest {
            stats,
            cancel,
            task,
            admin,
            admin_shutdown,
        }
    }

    fn admin_address(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// Cancels ingest and returns its final summary. The admin server keeps
    /// running.
    async fn stop_ingest(&mut self) -> anyhow::Result<IngestSummary> {
        self.cancel.cancel();
        let summary = tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .context("ingest did not stop within 30 s of cancellation")?
            .context("ingest task panicked")??;
        Ok(summary)
    }

    async fn stop_admin(self) -> anyhow::Result<()> {
        self.admin_shutdown.cancel();
        self.admin.wait().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_admin_reports_work_and_outage() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, reports_work_and_outage())
        .await
        .context("test timed out")?
}

async fn reports_work_and_outage() -> anyhow::Result<()> {
    const VALID: usize = 20;
    const INVALID: usize = 2;
    const DURING_OUTAGE: usize = 5;
    let kafka = MockKafka::start()?;
    kafka.create_topic("events", 2)?;
    kafka.create_topic("events.dlq", 1)?;
    let database = TestDatabase::create("ingest_admin").await?;
    let mut proxy = TcpProxy::start(clickhouse_socket_address(&database.url())?).await?;

    let (admin, admin_shutdown, readiness) = RunningIngest::start_admin().await?;
    let address = admin.local_addr();
    assert_eq!(get(address, "/healthz").await?.0, 200);
    let (status, body) = get(address, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("starting"), "{body}");

    // Ready once ClickHouse is set up and the group assigned the partitions.
    let config = test_config(&kafka, "ingest-admin-test", &database, proxy.url());
    let mut ingest = RunningIngest::start(config, admin, admin_shutdown, readiness);
    wait_for_readyz(ingest.admin_address(), 200, "ready").await?;

    // Work: valid events stored, invalid ones dead-lettered.
    for index in 0..VALID {
        kafka
            .produce("events", (index % 2) as i32, None, &valid_event(index))
            .await?;
    }
    for partition in 0..INVALID {
        kafka.produce("events", partition as i32, None, b"not json").await?;
    }
    wait_for("every message stored or dead-lettered", async || {
        let summary = ingest.stats.summary();
        let done = summary.inserted == VALID as u64 && summary.dead_lettered == INVALID as u64;
        Ok((done, format!("{summary:?}")))
    })
    .await?;

    // Nothing arrives any more, so the counters in /metrics must equal the
    // service's own counts.
    let summary = ingest.stats.summary();
    let metrics = scrape(address).await?;
    assert_eq!(
        metric_value(&metrics, "seismo_ingest_consumed_total"),
        Some(summary.consumed as f64),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "seismo_ingest_inserted_rows_total"),
        Some(VALID as f64),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, r#"seismo_ingest_rejected_total{reason="invalid_json"}"#),
        Some(INVALID as f64),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, r#"seismo_ingest_dead_lettered_total{reason="invalid_json"}"#),
        Some(INVALID as f64),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "seismo_ingest_batch_rows_sum"),
        Some(VALID as f64),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "seismo_ingest_batch_rows_count"),
        Some(summary.batches as f64),
        "{metrics}"
    );
    let successful_inserts = metric_value(
        &metrics,
        r#"seismo_ingest_insert_duration_seconds_count{outcome="success"}"#,
    );
    assert_eq!(successful_inserts, Some(summary.batches as f64), "{metrics}");
    let commits = metric_value(&metrics, "seismo_ingest_commits_total").unwrap_or_default();
    assert!(commits >= 1.0, "{metrics}");

    // The lag gauge comes from librdkafka statistics every 5 s. With every
    // message handled, it reaches 0 on both partitions.
    wait_for("the lag gauge of both partitions at 0", async || {
        let metrics = scrape(address).await?;
        let lags: Vec<Option<f64>> = (0..2)
            .map(|partition| {
                let series =
                    format!(r#"seismo_ingest_consumer_lag_messages{{topic="events",partition="{partition}"}}"#);
                metric_value(&metrics, &series)
            })
            .collect();
        Ok((lags == [Some(0.0), Some(0.0)], format!("{lags:?}")))
    })
    .await?;

    // Outage: inserts fail, so ingest is not ready, with the error as reason.
    proxy.stop().await;
    for index in VALID..VALID + DURING_OUTAGE {
        kafka.produce("events", 0, None, &valid_event(index)).await?;
    }
    wait_for_readyz(address, 503, "ClickHouse insert failed").await?;
    let metrics = scrape(address).await?;
    let retries = metric_value(&metrics, "seismo_ingest_insert_retries_total").unwrap_or_default();
    assert!(retries >= 1.0, "{metrics}");
    let failed_inserts = metric_value(
        &metrics,
        r#"seismo_ingest_insert_duration_seconds_count{outcome="failure"}"#,
    )
    .unwrap_or_default();
    assert!(failed_inserts >= 1.0, "{metrics}");

    // Recovery: the held batch is stored and ingest is ready again.
    proxy.restart().await?;
    wait_for_readyz(address, 200, "ready").await?;
    wait_for("the events of the outage stored", async || {
        let summary = ingest.stats.summary();
        Ok((
            summary.inserted == (VALID + DURING_OUTAGE) as u64,
            format!("{summary:?}"),
        ))
    })
    .await?;

    // Shutdown: not ready for good, while liveness stays up with the server.
    ingest.stop_ingest().await?;
    let (status, body) = get(address, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stopped"), "{body}");
    assert_eq!(get(address, "/healthz").await?.0, 200);
    let metrics = scrape(address).await?;
    assert_eq!(
        metric_value(&metrics, "seismo_ingest_inserted_rows_total"),
        Some((VALID + DURING_OUTAGE) as f64),
        "{metrics}"
    );
    ingest.stop_admin().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_admin_not_ready_without_clickhouse() -> anyhow::Result<()> {
    init_logging();
    tokio::time::timeout(TEST_TIMEOUT, not_ready_without_clickhouse())
        .await
        .context("test timed out")?
}

async fn not_ready_without_clickhouse() -> anyhow::Result<()> {
    let kafka = MockKafka::start()?;
    kafka.create_topic("events", 1)?;
    let database = TestDatabase::create("ingest_admin_unreachable").await?;

    // A port that was just free: nothing listens there.
    let closed_port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{closed_port}");
    let config = test_config(&kafka, "ingest-admin-unreachable-test", &database, url.clone());
    let (admin, admin_shutdown, readiness) = RunningIngest::start_admin().await?;
    let mut ingest = RunningIngest::start(config, admin, admin_shutdown, readiness);
    let address = ingest.admin_address();

    wait_for_readyz(address, 503, "ClickHouse setup failed").await?;
    // The reason names the URL, so a wrong port shows in /readyz.
    wait_for_readyz(address, 503, &format!("at {url}, retrying")).await?;
    assert_eq!(get(address, "/healthz").await?.0, 200);
    // Another test in this binary shares the process-wide recorder, but
    // only this one fails to connect.
    let metrics = scrape(address).await?;
    let connect_retries = metric_value(&metrics, "seismo_ingest_connect_retries_total").unwrap_or_default();
    assert!(connect_retries >= 1.0, "{metrics}");

    let summary = ingest.stop_ingest().await?;
    assert_eq!(summary.consumed, 0);
    let (status, body) = get(address, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stopped"), "{body}");
    ingest.stop_admin().await
}
