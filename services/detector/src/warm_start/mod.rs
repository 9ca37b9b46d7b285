//! Warm start: before it consumes from Kafka, the detector loads each
//! metric's recent history from the events table that `seismo-ingest`
//! fills, and judges it without publishing anything. A restarted detector
//! is therefore neither learning again nor alerting on history, and an
//! episode open before the restart stays open under the same id.
//!
//! Boundary rule: an event is counted from ClickHouse if its Kafka position
//! (`kafka_partition`, `kafka_offset`) lies before the position the
//! detector's consumer group resumes from, and from Kafka otherwise. So no
//! event counts twice and none is skipped, as long as ClickHouse has every
//! event before the resume positions. Windows that end at or before the
//! watermark the previous process had (latest event time − allowed
//! lateness, where the latest event time is the slowest partition's when
//! one lagged) are restored closed, from SQL aggregates. Events of later
//! windows are loaded one by one, so those windows stay open for Kafka's
//! events.
//!
//! NOTE: the positions are read before the consumer joins its group. If
//! another member of the group commits in between (an old instance still
//! running during a rolling update), the events between the two positions
//! are missed. Stop the old instance first (the Helm chart's `Recreate`
//! strategy does).

mod load;
mod positions;
pub(crate) mod sql;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::kafka_source::KafkaSettings;
use crate::pipeline::Pipeline;
use load::LoadedHistory;
use sql::Table;

/// Windows judged from loaded history at the last start.
pub const WARM_START_WINDOWS: &str = "seismo_detector_warm_start_windows";
/// 1 when the last warm start failed and the detector started without history.
pub const WARM_START_FAILED: &str = "seismo_detector_warm_start_failed";
/// Duration of the last warm start, retries included.
pub const WARM_START_SECONDS: &str = "seismo_detector_warm_start_seconds";
/// Kafka offsets before the resume positions that ClickHouse lacked.
pub const WARM_START_MISSING_OFFSETS: &str = "seismo_detector_warm_start_missing_offsets";

/// Maximum pause between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Shortest time one attempt gets, even with a shorter timeout.
const MIN_ATTEMPT_TIME: Duration = Duration::from_secs(5);

/// Pause between two checks whether ingest has stored every event before
/// the resume positions.
const INGEST_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Time without ingest progress after which the warm start stops waiting
/// for the events missing before the resume positions. Long enough for an
/// ingest that restarts at the same time to join its group and insert its
/// first batch.
// NOTE: an invalid message right before a resume position is never stored
// (ingest dead-letters it), so such a start waits this long for nothing.
const INGEST_STALL_LIMIT: Duration = Duration::from_secs(10);

/// Source and length of the history a warm start loads.
#[derive(Clone)]
pub struct WarmStartSettings {
    /// ClickHouse HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub user: String,
    /// Never logged: the `Debug` output redacts it.
    pub password: Option<String>,
    pub database: String,
    /// The events table `seismo-ingest` writes, fed from the same topic.
    pub table: String,
    /// History to load per metric; `None` loads what each metric's detector
    /// keeps (one week plus a few windows with weekly seasonality).
    pub history: Option<Duration>,
    /// Time to keep retrying while ClickHouse or Kafka fail, after which the
    /// detector starts without history. Each attempt, loading included, is
    /// limited to this time too, so a server that stops answering cannot
    /// hold the start.
    pub timeout: Duration,
}

impl WarmStartSettings {
    /// Settings for `database.table` at `url` as user `default`, each
    /// metric's own history length and a 60 s retry budget.
    pub fn new(url: impl Into<String>, database: impl Into<String>, table: impl Into<String>) -> WarmStartSettings {
        WarmStartSettings {
            url: url.into(),
            user: "default".to_string(),
            password: None,
            database: database.into(),
            table: table.into(),
            history: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// Checks the database and table names; the error names the option.
    pub fn validate(&self) -> Result<(), String> {
        sql::check_identifier("--clickhouse-database", &self.database)?;
        sql::check_identifier("--clickhouse-table", &self.table)
    }

    fn client(&self) -> clickhouse::Client {
        // ClickHouse 18.16 rejects the crate's schema validation queries.
        let mut client = clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_validation(false);
        if let Some(password) = &self.password {
            client = client.with_password(password);
        }
        client
    }
}

impl fmt::Debug for WarmStartSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WarmStartSettings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("table", &self.table)
            .field("history", &self.history)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmStartOutcome {
    /// History was loaded and judged.
    Loaded {
        windows: u64,
        tail_events: usize,
        open_episodes: usize,
        missing_offsets: u64,
    },
    /// Nothing was stored before the resume positions.
    NoHistory,
    /// Every attempt failed within the timeout; the detector starts cold.
    Failed { error: String },
    /// Shutdown started during the warm start.
    Cancelled,
}

/// Registers the warm start gauges, at zero until the first warm start.
pub(crate) fn register_metrics() {
    metrics::describe_gauge!(
        WARM_START_WINDOWS,
        "Windows judged from history loaded from ClickHouse at the last start."
    );
    metrics::describe_gauge!(
        WARM_START_FAILED,
        "1 when the last warm start failed and the detector started without history (learning), else 0."
    );
    metrics::describe_gauge!(
        WARM_START_SECONDS,
        metrics::Unit::Seconds,
        "Duration of the last warm start, retries included."
    );
    metrics::describe_gauge!(
        WARM_START_MISSING_OFFSETS,
        "Kafka offsets before the detector's resume positions that ClickHouse did not have at the last warm start."
    );
    for gauge in [
        WARM_START_WINDOWS,
        WARM_START_FAILED,
        WARM_START_SECONDS,
        WARM_START_MISSING_OFFSETS,
    ] {
        metrics::gauge!(gauge).set(0.0);
    }
}

/// Loads the history before the consumer group's resume positions into
/// `pipeline`, retrying failures with a growing pause until
/// `settings.timeout`, and returns the outcome. Returns no error: without
/// history the detector starts cold and reports it in its log and in
/// [`WARM_START_FAILED`].
pub async fn run(
    settings: &WarmStartSettings,
    kafka: &KafkaSettings,
    pipeline: &mut Pipeline,
    shutdown: &CancellationToken,
) -> WarmStartOutcome {
    let started = Instant::now();
    let mut table = Table {
        database: settings.database.clone(),
        table: settings.table.clone(),
        deduplicate: false,
    };
    tracing::info!(
        url = %settings.url,
        database = %table.database,
        table = %table.table,
        history = ?settings.history,
        "warm start: loading history from ClickHouse"
    );

    let mut attempt = 0u32;
    let mut delay = Duration::from_secs(1);
    let loaded = loop {
        attempt += 1;
        let deadline = started + settings.timeout;
        let attempt_limit = settings.timeout.max(MIN_ATTEMPT_TIME);
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => return WarmStartOutcome::Cancelled,
            fetched = tokio::time::timeout(attempt_limit, fetch(settings, kafka, &mut table, pipeline, deadline)) => {
                fetched.unwrap_or_else(|_| {
                    Err(anyhow::anyhow!(
                        "loading the history timed out after {} s; raise --warm-start-timeout if ClickHouse needs longer for the history",
                        attempt_limit.as_secs()
                    ))
                })
            }
        };
        let error = match fetched {
            Ok(history) => break Ok(history),
            Err(error) => error,
        };
        let Some(remaining) = settings
            .timeout
            .checked_sub(started.elapsed())
            .filter(|remaining| !remaining.is_zero())
        else {
            break Err(error);
        };
        // The last attempt comes when the timeout is reached.
        let pause = delay.min(remaining);
        tracing::warn!(
            attempt,
            error = format!("{error:#}"),
            retry_in_ms = pause.as_millis() as u64,
            "warm start failed; retrying"
        );

        tokio::select! {
            _ = shutdown.cancelled() => return WarmStartOutcome::Cancelled,
            _ = tokio::time::sleep(pause) => {}
        }
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    };

    let outcome = match loaded {
        Ok(history) => apply(history, pipeline),
        Err(error) => {
            tracing::error!(
                attempts = attempt,
                error = format!("{error:#}"),
                "warm start failed; starting without history, so every series learns again and alerts only after min_history_windows windows"
            );
            WarmStartOutcome::Failed {
                error: format!("{error:#}"),
            }
        }
    };
    record(&outcome, started.elapsed());
    outcome
}

/// Reads the resume positions, waits for ingest to store the events before
/// them, and reads the history before them.
async fn fetch(
    settings: &WarmStartSettings,
    kafka: &KafkaSettings,
    table: &mut Table,
    pipeline: &Pipeline,
    deadline: Instant,
) -> anyhow::Result<LoadedHistory> {
    let kafka_settings = kafka.clone();
    let resume = tokio::task::spawn_blocking(move || positions::resume_positions(&kafka_settings))
        .await
        .context("reading the Kafka resume positions panicked")??;
    let positions = resume.positions;
    tracing::info!(topic = %kafka.topic, group_id = %kafka.group_id, ?positions, log_ends = ?resume.log_ends, "warm start: Kafka resume positions");

    let client = settings.client();
    let history_ms = settings.history.map(|history| history.as_millis() as i64);
    wait_for_ingest(&client, table, pipeline, &positions, history_ms, deadline)
        .await
        .with_context(|| format!("failed to read the stored offsets from ClickHouse at {}", settings.url))?;

    let now_ms = chrono::Utc::now().timestamp_millis();
    load::load_history(
        &client,
        table,
        pipeline.config(),
        &positions,
        &resume.log_ends,
        history_ms,
        now_ms,
    )
    .await
    .with_context(|| format!("failed to load history from ClickHouse at {}", settings.url))
}

/// Waits while ClickHouse still lacks events before the resume positions,
/// until ingest made no progress for [`INGEST_STALL_LIMIT`] or `deadline`
/// comes. A detector and ingest restarted together would otherwise load a
/// history without ingest's last batches, and those events would be
/// counted nowhere.
async fn wait_for_ingest(
    client: &clickhouse::Client,
    table: &Table,
    pipeline: &Pipeline,
    positions: &[(i32, i64)],
    history_ms: Option<i64>,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut previous: Option<u64> = None;
    let mut last_progress = Instant::now();
    loop {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let missing =
            load::count_missing_offsets(client, table, pipeline.config(), positions, history_ms, now_ms).await?;
        if previous.is_some_and(|previous| missing < previous) {
            last_progress = Instant::now();
        }
        if !keep_waiting(
            missing,
            last_progress.elapsed(),
            deadline.saturating_duration_since(Instant::now()),
        ) {
            return Ok(());
        }

        if previous != Some(missing) {
            tracing::info!(
                missing_offsets = missing,
                "warm start: waiting for ingest to store the events before the Kafka resume positions"
            );
        }
        tokio::time::sleep(INGEST_CHECK_INTERVAL).await;
        previous = Some(missing);
    }
}

/// Decides whether to check the stored offsets again: while offsets are
/// missing, ingest made progress within [`INGEST_STALL_LIMIT`], and the
/// deadline leaves time for another check.
fn keep_waiting(missing: u64, since_progress: Duration, remaining: Duration) -> bool {
    missing > 0 && since_progress < INGEST_STALL_LIMIT && remaining > INGEST_CHECK_INTERVAL
}

/// Feeds loaded history into the pipeline; nothing is published.
///
/// The previous process judged every window restored here, because it
/// stored an offset only after it had applied the event, so its watermark
/// had passed them. The restore stops at the watermark it had, that of its
/// slowest partition (see [`load::restore_watermark_ms`]), and the replayed
/// events close no later window. It may have judged later windows too,
/// after its last commit. Those are judged live again, and a change it
/// published for them comes again under the same id.
/// NOTE: a far-future event held back by the previous process's clock was
/// committed without moving its watermark, so the windows it closes here
/// were not judged before, and their changes are not announced.
fn apply(history: LoadedHistory, pipeline: &mut Pipeline) -> WarmStartOutcome {
    let Some(max_event_ms) = history.max_event_ms else {
        tracing::info!("warm start: no stored events before the Kafka resume positions; starting without history");
        pipeline.finish_restore();
        return WarmStartOutcome::NoHistory;
    };

    let loaded_windows = history.window_count();
    let mut windows = 0;
    for metric in &history.metrics {
        windows += pipeline.restore_history(metric.metric_index, &metric.windows, metric.until_ms);
    }
    pipeline.resume_clock(max_event_ms);
    pipeline.hold_restored_until(history.watermark_ms);
    let tail_events = history.tail.len();
    for event in history.tail {
        windows += pipeline.restore_event(event);
    }
    pipeline.finish_restore();

    let open_episodes = pipeline.open_episodes();
    if history.missing_offsets > 0 {
        tracing::warn!(
            missing_offsets = history.missing_offsets,
            "warm start: ClickHouse lacks events before the Kafka resume positions (ingest lags behind the detector); they are missing from the history"
        );
    }
    tracing::info!(
        loaded_windows,
        judged_windows = windows,
        tail_events,
        open_episodes,
        max_event_ms,
        "warm start: history loaded"
    );
    WarmStartOutcome::Loaded {
        windows,
        tail_events,
        open_episodes,
        missing_offsets: history.missing_offsets,
    }
}

fn record(outcome: &WarmStartOutcome, elapsed: Duration) {
    metrics::gauge!(WARM_START_SECONDS).set(elapsed.as_secs_f64());
    metrics::gauge!(WARM_START_FAILED).set(if matches!(outcome, WarmStartOutcome::Failed { .. }) {
        1.0
    } else {
        0.0
    });
    if let WarmStartOutcome::Loaded {
        windows,
        missing_offsets,
        ..
    } = outcome
    {
        metrics::gauge!(WARM_START_WINDOWS).set(*windows as f64);
        metrics::gauge!(WARM_START_MISSING_OFFSETS).set(*missing_offsets as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLENTY: Duration = Duration::from_secs(60);

    #[test]
    fn waits_while_offsets_are_missing() {
        assert!(keep_waiting(500, Duration::ZERO, PLENTY));
        assert!(keep_waiting(500, Duration::from_secs(9), PLENTY));
    }

    #[test]
    fn stops_when_nothing_is_missing() {
        assert!(!keep_waiting(0, Duration::ZERO, PLENTY));
    }

    #[test]
    fn stops_when_ingest_stalls() {
        assert!(!keep_waiting(3, INGEST_STALL_LIMIT, PLENTY));
    }

    #[test]
    fn stops_at_deadline() {
        assert!(!keep_waiting(500, Duration::ZERO, Duration::from_millis(500)));
        assert!(!keep_waiting(500, Duration::ZERO, Duration::ZERO));
    }
}
