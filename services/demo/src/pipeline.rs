//! Runs ingest, detector and notifier in one process against an embedded
//! Kafka (librdkafka's mock cluster) and a real ClickHouse, replays a series
//! through them and reports what came out at each stage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use seismo_detector::config::MetricsConfig;
use seismo_detector::kafka_source::KafkaSettings;
use seismo_detector::service::ServiceConfig;
use seismo_ingest::{ClickHouseConfig, IngestConfig, IngestStats};
use seismo_loader::{EventTemplate, ExperimentConfig, LoaderConfig};
use seismo_notifier::{NotifierConfig, NotifierStats, RateLimits, TelegramConfig};
use seismo_proto::v1::{AnomalyEvent, AnomalyState};
use tokio_util::sync::CancellationToken;

use crate::clickhouse_count::{StoredCount, count_stored};
use crate::collector::collect_anomalies;
use crate::labels::{LabelMatch, match_alerts, read_label_windows};

/// Topic the demo's events go through.
const EVENTS_TOPIC: &str = "events";

/// Partitions of the events topic; the loader keys the series into one.
const EVENTS_PARTITIONS: i32 = 3;

/// How long the pipeline may go without progress while it drains after the
/// loader finished. Alert delivery to a Telegram group is paced at 20
/// messages a minute, so the whole drain may take much longer.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Counters must stay unchanged this long before the pipeline counts as
/// drained, so that alerts of the last windows are not cut off.
const QUIET_PERIOD: Duration = Duration::from_secs(2);

/// Telegram delivery of the demo's alerts.
#[derive(Debug, Clone)]
pub struct DemoTelegram {
    pub token: String,
    /// Comma-separated chat ids.
    pub chat_ids: String,
    pub api_url: String,
    /// Telegram's message rate limits, which the notifier keeps to.
    pub rate_limits: RateLimits,
}

/// Settings of one demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// NAB-format series to replay.
    pub series_csv: PathBuf,
    /// Labelled anomaly windows of the series, for the summary.
    pub label_windows: Option<PathBuf>,
    /// Detector metric definitions.
    pub metrics_config: PathBuf,
    /// `event` of the replayed events; the metrics config must count it.
    pub event_name: String,
    pub clickhouse_url: String,
    /// Database the demo writes to. It is dropped and created anew at the
    /// start so that the summary counts only this run.
    pub database: String,
    /// Event-time seconds replayed per wall-clock second; 0 is unpaced.
    pub speedup: f64,
    pub telegram: Option<DemoTelegram>,
    /// Prints each alert as Telegram would show it.
    pub print_alerts: bool,
    /// Synthetic A/B test traffic (views and likes with `exp_group`) the
    /// loader adds to the series; `None` sends the series alone.
    pub experiment: Option<ExperimentConfig>,
}

/// Counts of one demo run at each stage of the pipeline.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub events_produced: usize,
    pub stored: StoredCount,
    pub events_dead_lettered: u64,
    /// Every anomaly event the detector streamed, in order.
    pub anomalies: Vec<AnomalyEvent>,
    pub alerts_sent: u64,
    pub alerts_failed: u64,
    /// Firing alerts matched against the labelled windows, when given.
    pub label_match: Option<LabelMatch>,
    pub elapsed: Duration,
}

impl DemoSummary {
    /// Window starts of the firing anomaly events of metric series, epoch
    /// ms. Experiment alerts are left out: they belong to no window.
    pub fn firing_times_ms(&self) -> Vec<i64> {
        self.anomalies
            .iter()
            .filter(|event| event.state() == AnomalyState::Firing && !is_experiment_alert(event))
            .map(|event| event.window_start_ms)
            .collect()
    }

    /// Sample-ratio and guardrail alerts of the metrics file's experiments.
    pub fn experiment_alerts(&self) -> Vec<&AnomalyEvent> {
        self.anomalies
            .iter()
            .filter(|event| is_experiment_alert(event))
            .collect()
    }

    /// Returns the number of escalations, each a severity rise of an open
    /// episode.
    pub fn escalated_count(&self) -> usize {
        self.anomalies
            .iter()
            .filter(|event| event.state() == AnomalyState::Escalated)
            .count()
    }

    pub fn resolved_count(&self) -> usize {
        self.anomalies
            .iter()
            .filter(|event| event.state() == AnomalyState::Resolved)
            .count()
    }
}

/// Returns whether `event` comes from the detector's experiment guardrails,
/// whose metrics are named `experiment.<name>.<test>`.
fn is_experiment_alert(event: &AnomalyEvent) -> bool {
    event.metric.starts_with("experiment.")
}

/// Runs the whole pipeline once and returns its summary. ClickHouse must
/// be reachable at `options.clickhouse_url`.
pub async fn run_demo(options: &DemoOptions) -> anyhow::Result<DemoSummary> {
    let started = Instant::now();
    let metrics = MetricsConfig::load(&options.metrics_config)
        .with_context(|| format!("invalid metrics config {}", options.metrics_config.display()))?;
    let label_windows = match &options.label_windows {
        Some(path) => Some(read_label_windows(path)?),
        None => None,
    };

    let cluster = MockCluster::new(1).context("cannot start the embedded Kafka (librdkafka mock cluster)")?;
    cluster
        .create_topic(EVENTS_TOPIC, EVENTS_PARTITIONS, 1)
        .context("cannot create the events topic")?;
    let brokers = cluster.bootstrap_servers();
    tracing::info!(%brokers, "embedded Kafka started");

    reset_database(&options.clickhouse_url, &options.database).await?;

    let shutdown = CancellationToken::new();
    let ingest_stats = Arc::new(IngestStats::default());
    let ingest = tokio::spawn(seismo_ingest::run(
        ingest_config(&brokers, options),
        Arc::clone(&ingest_stats),
        seismo_ingest::Readiness::default(),
        shutdown.child_token(),
    ));

    let detector = seismo_detector::service::start(
        ServiceConfig {
            metrics,
            kafka: KafkaSettings::new(brokers.clone()),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            replay_buffer: 100_000,
            warm_start: None,
        },
        seismo_detector::Readiness::default(),
        shutdown.child_token(),
    )
    .await?;
    let detector_stats = detector.stats();
    let detector_endpoint = format!("http://{}", detector.local_addr());
    if options.print_alerts {
        println!(
            "Detector gRPC at {detector_endpoint}: `seismo-notifier --detectors {detector_endpoint}` follows it too"
        );
    }

    let (collected, collector) = collect_anomalies(detector_endpoint.clone(), shutdown.child_token()).await?;

    let notifier_stats = Arc::new(NotifierStats::default());
    let notifier = tokio::spawn(seismo_notifier::run(
        notifier_config(&detector_endpoint, options)?,
        Arc::clone(&notifier_stats),
        seismo_notifier::Readiness::default(),
        shutdown.child_token(),
    ));

    let loaded = seismo_loader::load_with_experiment(
        &loader_config(&brokers, options),
        options.experiment.as_ref(),
        shutdown.child_token(),
    )
    .await?;
    tracing::info!(produced = loaded.produced, "series replayed into Kafka");

    // The pipeline has drained once ingest stored or dead-lettered every
    // event, the detector read every event, the notifier handled every
    // anomaly the detector streamed, and nothing changed for a while.
    let produced = loaded.produced as u64;
    let mut last_progress = (0, 0, 0, 0);
    let mut quiet_since = Instant::now();
    loop {
        let ingest_now = ingest_stats.summary();
        let detector_now = detector_stats.snapshot();
        let notifier_now = notifier_stats.snapshot();
        let progress = (
            ingest_now.inserted + ingest_now.dead_lettered,
            detector_now.messages_received,
            collected.len() as u64,
            notifier_now.sent + notifier_now.failed + notifier_now.duplicates,
        );
        if progress != last_progress {
            last_progress = progress;
            quiet_since = Instant::now();
        }

        let drained = progress.0 >= produced
            && progress.1 >= produced
            && notifier_now.received >= progress.2
            && progress.3 >= notifier_now.received;
        if drained && quiet_since.elapsed() >= QUIET_PERIOD {
            break;
        }
        if quiet_since.elapsed() > STALL_TIMEOUT {
            anyhow::bail!(
                "pipeline made no progress for {} s: of {produced} events, {} stored and {} read by the detector; \
                 of {} anomaly events, {} received and {} delivered or failed by the notifier. \
                 Slow alert delivery usually means the Telegram API is unreachable: check TELEGRAM_API_URL",
                STALL_TIMEOUT.as_secs(),
                progress.0,
                progress.1,
                progress.2,
                notifier_now.received,
                progress.3,
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    shutdown.cancel();
    let ingest_summary = ingest.await.context("ingest task panicked")??;
    detector.wait().await?;
    notifier.await.context("notifier task panicked")??;
    collector.await.context("collector task panicked")??;

    let stored = count_stored(&options.clickhouse_url, &options.database, "events").await?;
    let notifier_now = notifier_stats.snapshot();
    let mut summary = DemoSummary {
        events_produced: loaded.produced,
        stored,
        events_dead_lettered: ingest_summary.dead_lettered,
        anomalies: collected.snapshot(),
        alerts_sent: notifier_now.sent,
        alerts_failed: notifier_now.failed,
        label_match: None,
        elapsed: started.elapsed(),
    };
    summary.label_match = label_windows
        .as_deref()
        .map(|windows| match_alerts(&summary.firing_times_ms(), windows));
    Ok(summary)
}

/// Drops and creates the demo database, so counts cover this run only.
async fn reset_database(url: &str, database: &str) -> anyhow::Result<()> {
    let client = clickhouse::Client::default().with_url(url).with_validation(false);
    for statement in [
        format!("DROP DATABASE IF EXISTS {database}"),
        format!("CREATE DATABASE {database}"),
    ] {
        client
            .query(&statement)
            .execute()
            .await
            .with_context(|| format!("`{statement}` failed at {url}; is ClickHouse running there?"))?;
    }
    Ok(())
}

fn ingest_config(brokers: &str, options: &DemoOptions) -> IngestConfig {
    let defaults = IngestConfig::default();
    IngestConfig {
        brokers: brokers.to_string(),
        topic: EVENTS_TOPIC.to_string(),
        clickhouse: ClickHouseConfig {
            url: options.clickhouse_url.clone(),
            database: options.database.clone(),
            ..defaults.clickhouse.clone()
        },
        ..defaults
    }
}

fn notifier_config(detector_endpoint: &str, options: &DemoOptions) -> anyhow::Result<NotifierConfig> {
    let telegram = match &options.telegram {
        Some(telegram) => {
            let mut config = TelegramConfig::new(&telegram.token, &telegram.chat_ids, &telegram.api_url)
                .context("invalid Telegram settings")?;
            config.rate_limits = telegram.rate_limits;
            Some(config)
        }
        None => None,
    };
    Ok(NotifierConfig {
        detectors: vec![detector_endpoint.to_string()],
        telegram,
        console: options.print_alerts,
        ..NotifierConfig::default()
    })
}

fn loader_config(brokers: &str, options: &DemoOptions) -> LoaderConfig {
    let series_name = options
        .series_csv
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "series".to_string());
    LoaderConfig {
        brokers: brokers.to_string(),
        topic: EVENTS_TOPIC.to_string(),
        input: options.series_csv.clone(),
        template: EventTemplate {
            event: options.event_name.clone(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: series_name,
        },
        speedup: options.speedup,
        limit: None,
    }
}
