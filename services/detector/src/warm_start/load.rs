//! Reads the history of every configured metric from ClickHouse: closed
//! windows as SQL aggregates, and the events of the windows still open at
//! the resume positions one by one.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use seismo_events::Event;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::sql::{self, Table};
use crate::config::{MetricDefinition, MetricsConfig};
use crate::detection::SeriesDetector;
use crate::slice::SliceKey;
use crate::windowing::LoadedWindow;

/// Columns the warm start reads; `event_time_ms` is optional.
const REQUIRED_COLUMNS: &[&str] = &[
    "event_time",
    "event",
    "user_id",
    "value",
    "kafka_partition",
    "kafka_offset",
];

/// History of one metric, ready for [`crate::pipeline::Pipeline::restore_history`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetricHistory {
    pub metric_index: usize,
    /// Windows with events, sorted by start, all before `until_ms`.
    pub windows: Vec<LoadedWindow>,
    /// First window start not restored from aggregates: windows from here on
    /// were still open at the resume positions.
    pub until_ms: i64,
}

/// Everything a warm start feeds into the pipeline.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadedHistory {
    /// Latest stored event time before the resume positions, whole seconds
    /// as Unix epoch ms; `None` when ClickHouse had no such event.
    pub max_event_ms: Option<i64>,
    /// Windows ending at or before this time (Unix epoch ms) are restored
    /// closed, and no later one may close before Kafka's events arrive (see
    /// [`restore_watermark_ms`]). Set with `max_event_ms`.
    pub watermark_ms: i64,
    pub metrics: Vec<MetricHistory>,
    /// Events of the windows still open, oldest first.
    pub tail: Vec<Event>,
    /// Offsets below the resume positions that ClickHouse does not have yet,
    /// summed over partitions: ingest lags behind the detector.
    pub missing_offsets: u64,
}

impl LoadedHistory {
    pub fn window_count(&self) -> usize {
        self.metrics.iter().map(|metric| metric.windows.len()).sum()
    }
}

/// Reads the history before `positions` from `table`. `log_ends` is where
/// each partition's log ended when the positions were read. `history_ms` is the
/// length to load per metric, `None` for each metric's detector history
/// (one week plus a few windows with weekly seasonality). Returns an empty
/// history when the table does not exist yet or has nothing before the
/// positions.
pub(crate) async fn load_history(
    client: &clickhouse::Client,
    table: &mut Table,
    config: &MetricsConfig,
    positions: &[(i32, i64)],
    log_ends: &BTreeMap<i32, i64>,
    history_ms: Option<i64>,
    now_ms: i64,
) -> anyhow::Result<LoadedHistory> {
    let engines: Vec<EngineRow> = fetch_rows(client, &sql::engine_sql(table)).await?;
    let Some(engine) = engines.into_iter().next() else {
        tracing::info!(database = %table.database, table = %table.table, "events table not found; nothing to warm start from");
        return Ok(LoadedHistory::default());
    };
    table.deduplicate = engine.engine.ends_with("ReplacingMergeTree");
    if !table.deduplicate {
        tracing::warn!(
            database = %table.database,
            table = %table.table,
            engine = %engine.engine,
            "events table cannot collapse events stored twice, so the warm start counts such copies twice; migrate it to ReplacingMergeTree"
        );
    }

    let columns: Vec<ColumnRow> = fetch_rows(client, &sql::columns_sql(table)).await?;
    let has_column = |name: &str| columns.iter().any(|column| column.name == name);
    if let Some(missing) = REQUIRED_COLUMNS.iter().find(|name| !has_column(name)) {
        bail!(
            "table {}.{} has no column `{missing}`; point the warm start at the events table that seismo-ingest writes",
            table.database,
            table.table
        );
    }

    let Some(positions_condition) = sql::positions_condition(positions) else {
        return Ok(LoadedHistory::default());
    };
    let starts = history_starts(config, history_ms, now_ms);
    let from_ms = starts.iter().copied().min().unwrap_or(now_ms);

    let bounds: BoundsRow = fetch_one(client, &sql::bounds_sql(table, &positions_condition, from_ms / 1_000)).await?;
    if bounds.events == 0 {
        return Ok(LoadedHistory::default());
    }
    let max_event_ms = bounds.max_second * 1_000;
    let missing_offsets = missing_offsets(client, table, positions, from_ms).await?.behind_stored;

    // Windows ending at or before the previous process's watermark were
    // closed when it read them. Later ones stay open and get their stored
    // events one by one.
    let read_ends = partition_seconds(
        client,
        &sql::read_ends_sql(table, &positions_condition, from_ms / 1_000),
    )
    .await?;
    let first_unread = match sql::first_unread_sql(table, positions, from_ms / 1_000) {
        Some(query) => partition_seconds(client, &query).await?,
        None => BTreeMap::new(),
    };
    let unread: BTreeSet<i32> = positions
        .iter()
        .filter(|(partition, offset)| log_ends.get(partition).is_some_and(|end| end > offset))
        .map(|(partition, _)| *partition)
        .collect();
    for partition in unread.iter().filter(|partition| !first_unread.contains_key(partition)) {
        tracing::warn!(
            partition,
            last_read_ms = read_ends.get(partition),
            "warm start: ClickHouse has none of the unread events of a Kafka partition yet (ingest lags); its windows after its last read event stay open"
        );
    }
    let watermark_ms = restore_watermark_ms(
        max_event_ms,
        &read_ends,
        &first_unread,
        &unread,
        config.windowing.allowed_lateness_ms,
    );
    if watermark_ms < max_event_ms - config.windowing.allowed_lateness_ms {
        tracing::info!(
            max_event_ms,
            watermark_ms,
            lagging_for_ms = max_event_ms - config.windowing.allowed_lateness_ms - watermark_ms,
            "warm start: a Kafka partition lagged behind the others at the resume positions; the windows after the slowest one stay open for its events"
        );
    }
    let mut metrics = Vec::new();
    for (metric_index, metric) in config.metrics.iter().enumerate() {
        let until_ms = metric.window.start_of(watermark_ms);
        let windows = load_windows(
            client,
            table,
            &positions_condition,
            metric,
            starts[metric_index],
            until_ms,
        )
        .await?;
        metrics.push(MetricHistory {
            metric_index,
            windows,
            until_ms,
        });
    }

    let tail_from_ms = metrics
        .iter()
        .map(|metric| metric.until_ms)
        .min()
        .unwrap_or(watermark_ms);
    let has_event_time_ms = has_column("event_time_ms");
    let tail_sql = sql::tail_events_sql(
        table,
        &positions_condition,
        &config.metrics,
        has_event_time_ms,
        tail_from_ms / 1_000,
    );
    let tail = fetch_rows::<TailRow>(client, &tail_sql)
        .await?
        .into_iter()
        .map(TailRow::into_event)
        .collect::<anyhow::Result<Vec<Event>>>()?;

    Ok(LoadedHistory {
        max_event_ms: Some(max_event_ms),
        watermark_ms,
        metrics,
        tail,
        missing_offsets,
    })
}

/// Returns the watermark the previous process had at the resume positions.
/// `read_ends` is the latest stored event time each partition had read, and
/// `first_unread` the first stored one it had yet to read, both Unix epoch
/// ms per partition. `unread` names the partitions whose log went on past
/// their position.
///
/// The previous process held its watermark at the slowest partition still
/// delivering, so a partition that lagged has its next events in windows
/// later than that. Such a partition has unread events. Its reach is the
/// later of its last read event and its first unread one, or its last read
/// event while ingest has stored none of the unread ones. So a partition
/// that was quiet and got a new event since counts at that new event, and
/// one whose next event is older than its last read one counts at the last
/// read one. A partition with nothing unread holds nothing back, because
/// its consumer had reached its end.
/// NOTE: a quiet partition whose new event is a straggler pulls the
/// watermark back to that event, so windows the previous process had judged
/// are judged, and their changes announced, again.
pub(crate) fn restore_watermark_ms(
    max_event_ms: i64,
    read_ends: &BTreeMap<i32, i64>,
    first_unread: &BTreeMap<i32, i64>,
    unread: &BTreeSet<i32>,
    allowed_lateness_ms: i64,
) -> i64 {
    let partitions: BTreeSet<i32> = first_unread.keys().chain(unread).copied().collect();
    let reached_ms = partitions
        .iter()
        .filter_map(
            |partition| match (read_ends.get(partition), first_unread.get(partition)) {
                (Some(&read_ms), Some(&unread_ms)) => Some(read_ms.max(unread_ms)),
                (Some(&read_ms), None) => Some(read_ms),
                (None, unread_ms) => unread_ms.copied(),
            },
        )
        .fold(max_event_ms, i64::min);
    reached_ms - allowed_lateness_ms
}

/// Reads `{"partition": p, "second": s}` rows into milliseconds per
/// partition.
async fn partition_seconds(client: &clickhouse::Client, query: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let rows: Vec<PartitionSecondRow> = fetch_rows(client, query).await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.partition, row.second * 1_000))
        .collect())
}

/// Counts the offsets before `positions` that the table does not have yet,
/// counting every offset of a partition without stored events in the
/// history (see [`MissingOffsets`]); 0 when the table does not exist.
pub(crate) async fn count_missing_offsets(
    client: &clickhouse::Client,
    table: &Table,
    config: &MetricsConfig,
    positions: &[(i32, i64)],
    history_ms: Option<i64>,
    now_ms: i64,
) -> anyhow::Result<u64> {
    let engines: Vec<EngineRow> = fetch_rows(client, &sql::engine_sql(table)).await?;
    if engines.is_empty() {
        return Ok(0);
    }
    let from_ms = history_starts(config, history_ms, now_ms)
        .into_iter()
        .min()
        .unwrap_or(now_ms);
    let missing = missing_offsets(client, table, positions, from_ms).await?;
    Ok(missing.behind_stored + missing.in_empty_partitions)
}

/// Start of the history to load for each metric, Unix epoch ms, in
/// metric order.
fn history_starts(config: &MetricsConfig, history_ms: Option<i64>, now_ms: i64) -> Vec<i64> {
    config
        .metrics
        .iter()
        .map(|metric| metric.window.start_of(now_ms - history_length_ms(metric, history_ms)))
        .collect()
}

/// Length of history to load for `metric`, in ms.
fn history_length_ms(metric: &MetricDefinition, history_ms: Option<i64>) -> i64 {
    history_ms.unwrap_or_else(|| {
        let windows = SeriesDetector::new(&metric.detection, metric.window.as_ms()).lookback_windows();
        windows as i64 * metric.window.as_ms()
    })
}

/// Loads the total and every slice of `metric` in `[from_ms, until_ms)`.
// TODO: every metric's windows are held until all are loaded, so a retry
// never restores half a history. Restoring metric by metric would bound
// memory by one metric's windows.
async fn load_windows(
    client: &clickhouse::Client,
    table: &Table,
    positions: &str,
    metric: &MetricDefinition,
    from_ms: i64,
    until_ms: i64,
) -> anyhow::Result<Vec<LoadedWindow>> {
    if until_ms <= from_ms {
        return Ok(Vec::new());
    }

    let mut windows = Vec::new();
    let dimensions = std::iter::once(None).chain(metric.dimensions.iter().map(|dimension| Some(dimension.as_str())));
    for dimension in dimensions {
        let query = sql::metric_windows_sql(table, positions, metric, dimension, from_ms / 1_000, until_ms / 1_000);
        for row in fetch_rows::<WindowRow>(client, &query).await? {
            let slice = match dimension {
                None => SliceKey::total(),
                Some(dimension) => SliceKey::single(dimension, &row.slice_value),
            };
            windows.push(LoadedWindow {
                window_start_ms: row.window_start_s * 1_000,
                slice,
                value: row.value(),
            });
        }
    }

    windows.sort_by(|left, right| {
        left.window_start_ms
            .cmp(&right.window_start_ms)
            .then_with(|| left.slice.cmp(&right.slice))
    });
    Ok(windows)
}

/// Offsets below the resume positions that ClickHouse does not have, from
/// the highest offset stored per partition since the history start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MissingOffsets {
    /// Offsets above the highest stored one, summed over the partitions
    /// with stored events.
    behind_stored: u64,
    /// Resume offsets of the partitions without stored events since the
    /// history start: ingest stored none of them yet, or the partition had
    /// no events in that time.
    in_empty_partitions: u64,
}

async fn missing_offsets(
    client: &clickhouse::Client,
    table: &Table,
    positions: &[(i32, i64)],
    from_ms: i64,
) -> anyhow::Result<MissingOffsets> {
    let stored: BTreeMap<i32, i64> =
        fetch_rows::<StoredOffsetRow>(client, &sql::stored_offsets_sql(table, from_ms / 1_000))
            .await?
            .into_iter()
            .map(|row| (row.partition, row.max_offset))
            .collect();
    Ok(count_missing(positions, &stored))
}

fn count_missing(positions: &[(i32, i64)], stored: &BTreeMap<i32, i64>) -> MissingOffsets {
    let mut missing = MissingOffsets {
        behind_stored: 0,
        in_empty_partitions: 0,
    };
    for (partition, resume) in positions {
        match stored.get(partition) {
            Some(max_stored) => missing.behind_stored += (resume - 1 - max_stored).max(0) as u64,
            None => missing.in_empty_partitions += (*resume).max(0) as u64,
        }
    }
    missing
}

#[derive(Debug, Deserialize)]
struct EngineRow {
    engine: String,
}

#[derive(Debug, Deserialize)]
struct ColumnRow {
    name: String,
}

#[derive(Debug, Deserialize)]
struct BoundsRow {
    events: u64,
    max_second: i64,
}

#[derive(Debug, Deserialize)]
struct PartitionSecondRow {
    partition: i32,
    second: i64,
}

#[derive(Debug, Deserialize)]
struct StoredOffsetRow {
    partition: i32,
    max_offset: i64,
}

#[derive(Debug, Deserialize)]
struct WindowRow {
    window_start_s: i64,
    slice_value: String,
    numerator: Option<f64>,
    denominator: Option<f64>,
}

impl WindowRow {
    /// `numerator / denominator`; `None` for a denominator of 0 or a value
    /// ClickHouse rendered as something other than a number.
    fn value(&self) -> Option<f64> {
        let (numerator, denominator) = (self.numerator?, self.denominator?);
        (denominator != 0.0).then(|| numerator / denominator)
    }
}

/// One stored event with the fields the windowing reads.
#[derive(Debug, Deserialize)]
struct TailRow {
    /// `YYYY-MM-DD hh:mm:ss`, with `.fff` for `DateTime64(3)`, in UTC.
    event_time: String,
    /// Milliseconds of `DateTime` tables, which store whole seconds.
    #[serde(default)]
    event_time_ms: Option<u16>,
    event: String,
    user_id: String,
    os: Option<String>,
    country: Option<String>,
    city: Option<String>,
    source: Option<String>,
    gender: Option<String>,
    exp_group: Option<String>,
    value: Option<f64>,
}

impl TailRow {
    fn into_event(self) -> anyhow::Result<Event> {
        let event_time = parse_event_time(&self.event_time, self.event_time_ms)?;
        Ok(Event {
            event_time,
            event: self.event,
            user_id: self.user_id,
            event_id: None,
            post_id: None,
            receiver_id: None,
            os: self.os,
            country: self.country,
            city: self.city,
            source: self.source,
            gender: self.gender,
            age: None,
            exp_group: self.exp_group,
            value: self.value,
            extra: String::new(),
        })
    }
}

/// Parses ClickHouse's text form of `event_time` in UTC, adding
/// `milliseconds` for tables that store them in a column of their own.
fn parse_event_time(text: &str, milliseconds: Option<u16>) -> anyhow::Result<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").with_context(|| {
        format!("invalid event_time {text:?} from ClickHouse; expected YYYY-MM-DD hh:mm:ss[.fff] in UTC")
    })?;
    let time = Utc.from_utc_datetime(&naive);
    Ok(time + chrono::Duration::milliseconds(i64::from(milliseconds.unwrap_or(0))))
}

/// Runs `query` and parses its `JSONEachRow` output. 64-bit integers come
/// as JSON numbers, not strings.
async fn fetch_rows<T: DeserializeOwned>(client: &clickhouse::Client, query: &str) -> anyhow::Result<Vec<T>> {
    let bytes = client
        .query_raw(query)
        .with_setting("output_format_json_quote_64bit_integers", "0")
        .fetch_bytes("JSONEachRow")
        .with_context(|| format!("failed to start ClickHouse query {query:?}"))?
        .collect()
        .await
        .with_context(|| format!("ClickHouse query failed: {query:?}"))?;

    let text = std::str::from_utf8(&bytes).context("ClickHouse returned rows that are not UTF-8")?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .with_context(|| format!("unexpected row {line:?} from ClickHouse query {query:?}"))
        })
        .collect()
}

async fn fetch_one<T: DeserializeOwned>(client: &clickhouse::Client, query: &str) -> anyhow::Result<T> {
    fetch_rows(client, query)
        .await?
        .into_iter()
        .next()
        .with_context(|| format!("ClickHouse returned no row for {query:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_watermark_follows_a_lagging_partition() {
        let read_ends = BTreeMap::from([(0, 10_800_000), (1, 3_600_000), (2, 10_000_000)]);
        let first_unread = BTreeMap::from([(1, 3_603_000), (2, 10_801_000)]);

        assert_eq!(
            restore_watermark_ms(10_800_000, &read_ends, &first_unread, &BTreeSet::new(), 60_000),
            3_603_000 - 60_000
        );
    }

    #[test]
    fn restore_watermark_ignores_caught_up_and_quiet_partitions() {
        // Partition 1 read its last event an hour before the others and has
        // nothing unread; partition 2 was quiet too and got an event since.
        let read_ends = BTreeMap::from([(0, 10_800_000), (1, 7_200_000), (2, 7_000_000)]);
        let first_unread = BTreeMap::from([(2, 10_900_000)]);

        assert_eq!(
            restore_watermark_ms(10_800_000, &read_ends, &first_unread, &BTreeSet::new(), 60_000),
            10_800_000 - 60_000
        );
    }

    #[test]
    fn unstored_unread_events_hold_at_last_read() {
        let read_ends = BTreeMap::from([(0, 10_800_000), (1, 3_600_000)]);
        let unread = BTreeSet::from([0, 1]);

        assert_eq!(
            restore_watermark_ms(10_800_000, &read_ends, &BTreeMap::new(), &unread, 60_000),
            3_600_000 - 60_000
        );
    }

    #[test]
    fn restore_watermark_ignores_an_unread_straggler() {
        let read_ends = BTreeMap::from([(0, 10_800_000)]);
        let first_unread = BTreeMap::from([(0, 1_000_000)]);

        assert_eq!(
            restore_watermark_ms(10_800_000, &read_ends, &first_unread, &BTreeSet::new(), 60_000),
            10_800_000 - 60_000
        );
    }

    #[test]
    fn history_length_covers_hourly_means() {
        let config = MetricsConfig::parse(
            r#"
[[metric]]
name = "orders"
events = ["order"]
aggregation = "count"
window = "5m"

[[metric]]
name = "orders_hourly"
events = ["order"]
aggregation = "count"
window = "5m"
detection = { weekly_reference = "hourly" }
"#,
        )
        .unwrap();
        let day_ms = 86_400_000;

        let lengths: Vec<i64> = config
            .metrics
            .iter()
            .map(|metric| history_length_ms(metric, None))
            .collect();

        assert!(lengths[0] > 7 * day_ms, "a week of windows: {lengths:?}");
        assert!(lengths[1] > 7 * day_ms, "a week of hourly means: {lengths:?}");
    }

    #[test]
    fn event_time_parses_both_schemas() {
        let seconds = parse_event_time("2023-11-14 22:14:05", Some(123)).unwrap();
        let datetime64 = parse_event_time("2023-11-14 22:14:05.123", None).unwrap();

        assert_eq!(seconds.timestamp_millis(), 1_700_000_045_123);
        assert_eq!(datetime64, seconds);
        assert!(parse_event_time("1700000045", None).is_err());
    }

    #[test]
    fn missing_offsets_per_partition() {
        let stored = BTreeMap::from([(0, 99), (1, 40), (3, 10)]);

        let missing = count_missing(&[(0, 100), (1, 50), (2, 7), (3, 5)], &stored);

        assert_eq!(missing.behind_stored, 9, "partition 1 lacks offsets 41 to 49");
        assert_eq!(missing.in_empty_partitions, 7, "partition 2 has nothing stored");
    }

    #[test]
    fn window_value_divides_parts() {
        let row = |numerator, denominator| WindowRow {
            window_start_s: 0,
            slice_value: String::new(),
            numerator,
            denominator,
        };

        assert_eq!(row(Some(3.0), Some(1.0)).value(), Some(3.0));
        assert_eq!(row(Some(1.0), Some(4.0)).value(), Some(0.25));
        assert_eq!(row(Some(1.0), Some(0.0)).value(), None);
        assert_eq!(row(None, Some(1.0)).value(), None);
    }
}
