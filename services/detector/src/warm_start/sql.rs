//! SQL of the warm start, built from the metric definitions so ClickHouse
//! aggregates windows and slices with the live windowing's rules.
//!
//! Every query selects only the events stored before the detector's Kafka
//! resume positions (`kafka_partition`, `kafka_offset`), so an event is
//! counted either from ClickHouse or from Kafka, never both. Window starts
//! are computed from whole seconds of `event_time`, which is exact because
//! window lengths are whole seconds. The queries use only functions that
//! ClickHouse 18.16 already has. Rows come back as `JSONEachRow`, so nothing
//! depends on the column types that differ between server generations
//! (`DateTime` with `event_time_ms` or `DateTime64`, `LowCardinality` or
//! not).

use crate::config::{Aggregate, Aggregation, EventFilter, MetricDefinition, MetricValue};

/// Unix seconds of `event_time` for both `DateTime` and `DateTime64`.
const EVENT_SECONDS: &str = "toUInt32(toDateTime(event_time))";

/// A table name, already checked to be made of identifier characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub database: String,
    pub table: String,
    /// Read with `FINAL`, which collapses the copies of an event that ingest
    /// stored twice; only `*ReplacingMergeTree` tables support it.
    pub deduplicate: bool,
}

impl Table {
    fn qualified(&self) -> String {
        format!("`{}`.`{}`", self.database, self.table)
    }

    /// Returns the table as a query source, with `FINAL` where it deduplicates.
    fn source(&self) -> String {
        if self.deduplicate {
            format!("{} FINAL", self.qualified())
        } else {
            self.qualified()
        }
    }
}

/// Checks that `name` is a plain identifier (ASCII letters, digits, `_`),
/// so it needs no escaping in SQL. The error names the setting.
pub(crate) fn check_identifier(setting: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{setting} {name:?} is not a plain identifier; use ASCII letters, digits and `_`, e.g. \"seismo\""
        ))
    }
}

/// Returns `text` as a ClickHouse string literal.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for character in text.chars() {
        match character {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

/// Engine of the events table, as `{"engine": e}`; no row if it does not
/// exist.
pub(crate) fn engine_sql(table: &Table) -> String {
    format!(
        "SELECT engine FROM system.tables WHERE database = {} AND name = {}",
        quote(&table.database),
        quote(&table.table)
    )
}

/// Columns of the events table, to check it has what the warm start reads.
pub(crate) fn columns_sql(table: &Table) -> String {
    format!(
        "SELECT name FROM system.columns WHERE database = {} AND table = {}",
        quote(&table.database),
        quote(&table.table)
    )
}

/// Condition that selects the events stored before the Kafka resume
/// position of their partition; `None` when no partition has any.
/// `positions` are `(partition, resume offset)` pairs.
pub(crate) fn positions_condition(positions: &[(i32, i64)]) -> Option<String> {
    let terms: Vec<String> = positions
        .iter()
        .filter(|(_, offset)| *offset > 0)
        .map(|(partition, offset)| format!("(kafka_partition = {partition} AND kafka_offset < {offset})"))
        .collect();
    if terms.is_empty() {
        return None;
    }
    Some(format!("({})", terms.join(" OR ")))
}

/// Number of events and latest event second from `from_s` on, as
/// `{"events": n, "max_second": s}`.
pub(crate) fn bounds_sql(table: &Table, positions: &str, from_s: i64) -> String {
    format!(
        "SELECT count() AS events, max({EVENT_SECONDS}) AS max_second FROM {} \
         WHERE {positions} AND event_time >= toDateTime({from_s})",
        table.source()
    )
}

/// Latest event second per partition before its resume position, from
/// `from_s` on, as `{"partition": p, "second": s}` rows.
pub(crate) fn read_ends_sql(table: &Table, positions: &str, from_s: i64) -> String {
    format!(
        "SELECT kafka_partition AS partition, max({EVENT_SECONDS}) AS second FROM {} \
         WHERE {positions} AND event_time >= toDateTime({from_s}) GROUP BY kafka_partition",
        table.source()
    )
}

/// Event second of the first stored event at or after each partition's
/// resume position (the next one its consumer reads), from `from_s` on, as
/// `{"partition": p, "second": s}` rows. `None` without positions.
pub(crate) fn first_unread_sql(table: &Table, positions: &[(i32, i64)], from_s: i64) -> Option<String> {
    let terms: Vec<String> = positions
        .iter()
        .map(|(partition, offset)| format!("(kafka_partition = {partition} AND kafka_offset >= {offset})"))
        .collect();
    if terms.is_empty() {
        return None;
    }
    Some(format!(
        "SELECT kafka_partition AS partition, argMin({EVENT_SECONDS}, kafka_offset) AS second FROM {} \
         WHERE ({}) AND event_time >= toDateTime({from_s}) GROUP BY kafka_partition",
        table.source(),
        terms.join(" OR ")
    ))
}

/// Highest stored offset per partition from `from_s` on, as
/// `{"partition": p, "max_offset": o}` rows, to detect an ingest lag.
pub(crate) fn stored_offsets_sql(table: &Table, from_s: i64) -> String {
    format!(
        "SELECT kafka_partition AS partition, max(kafka_offset) AS max_offset FROM {} \
         WHERE event_time >= toDateTime({from_s}) GROUP BY kafka_partition",
        table.qualified()
    )
}

/// Aggregates of `metric` per window in `[from_s, until_s)` for the total
/// (`dimension = None`) or one slice per value of `dimension`, as
/// `{"window_start_s": s, "slice_value": v, "numerator": n, "denominator": d}`
/// rows ordered by window. The value is `numerator / denominator`; a
/// plain aggregate has denominator 1. `slice_value` is empty for the total.
/// Windows without events are absent.
pub(crate) fn metric_windows_sql(
    table: &Table,
    positions: &str,
    metric: &MetricDefinition,
    dimension: Option<&str>,
    from_s: i64,
    until_s: i64,
) -> String {
    let window_s = i64::from(metric.window.as_seconds());
    let (numerator, denominator, matches) = match &metric.value {
        MetricValue::Aggregate(aggregate) => (
            aggregation_sql(aggregate.aggregation, None),
            "1".to_string(),
            filter_sql(&aggregate.filter),
        ),
        MetricValue::Ratio { numerator, denominator } => {
            let numerator_filter = filter_sql(&numerator.filter);
            let denominator_filter = filter_sql(&denominator.filter);
            (
                aggregate_if_sql(numerator, &numerator_filter),
                aggregate_if_sql(denominator, &denominator_filter),
                format!("({numerator_filter} OR {denominator_filter})"),
            )
        }
    };
    let (slice_value, slice_condition) = match dimension {
        None => ("''".to_string(), String::new()),
        Some(dimension) => (format!("`{dimension}`"), format!(" AND `{dimension}` IS NOT NULL")),
    };

    format!(
        "SELECT intDiv({EVENT_SECONDS}, {window_s}) * {window_s} AS window_start_s, {slice_value} AS slice_value, \
         {numerator} AS numerator, {denominator} AS denominator FROM {} \
         WHERE {positions} AND event_time >= toDateTime({from_s}) AND event_time < toDateTime({until_s}) \
         AND {matches}{slice_condition} \
         GROUP BY window_start_s, slice_value ORDER BY window_start_s",
        table.source()
    )
}

/// Selects the events from `from_s` on that any of `metrics` counts, with
/// the fields the windowing reads, oldest first. `event_time_ms` is selected only where
/// the table has it (`DateTime` tables of servers before 20.1).
pub(crate) fn tail_events_sql(
    table: &Table,
    positions: &str,
    metrics: &[MetricDefinition],
    has_event_time_ms: bool,
    from_s: i64,
) -> String {
    let mut filters: Vec<String> = Vec::new();
    for metric in metrics {
        match &metric.value {
            MetricValue::Aggregate(aggregate) => filters.push(filter_sql(&aggregate.filter)),
            MetricValue::Ratio { numerator, denominator } => {
                filters.push(filter_sql(&numerator.filter));
                filters.push(filter_sql(&denominator.filter));
            }
        }
    }
    filters.sort();
    filters.dedup();
    let milliseconds = if has_event_time_ms { ", event_time_ms" } else { "" };

    format!(
        "SELECT event_time{milliseconds}, event, user_id, os, country, city, source, gender, exp_group, `value` FROM {} \
         WHERE {positions} AND event_time >= toDateTime({from_s}) AND ({}) ORDER BY event_time",
        table.source(),
        filters.join(" OR ")
    )
}

fn filter_sql(filter: &EventFilter) -> String {
    let events: Vec<String> = filter.events.iter().map(|event| quote(event)).collect();
    let mut conditions = vec![format!("event IN ({})", events.join(", "))];
    for (field, value) in &filter.fields {
        // A NULL field compares as NULL, which the WHERE clause treats as
        // false, as the live filter does with a missing field.
        conditions.push(format!("`{field}` = {}", quote(value)));
    }
    format!("({})", conditions.join(" AND "))
}

/// Aggregate function over the rows the WHERE clause kept, or, with a
/// condition, over the rows that pass it too.
fn aggregation_sql(aggregation: Aggregation, condition: Option<&str>) -> String {
    match (aggregation, condition) {
        (Aggregation::Count, None) => "count()".to_string(),
        (Aggregation::Count, Some(condition)) => format!("countIf({condition})"),
        (Aggregation::UniqueUsers, None) => "uniqExact(user_id)".to_string(),
        (Aggregation::UniqueUsers, Some(condition)) => format!("uniqExactIf(user_id, {condition})"),
        // Events without a value add nothing, as in the live windowing.
        (Aggregation::Sum, None) => "sum(ifNull(`value`, 0))".to_string(),
        (Aggregation::Sum, Some(condition)) => format!("sumIf(ifNull(`value`, 0), {condition})"),
    }
}

fn aggregate_if_sql(aggregate: &Aggregate, filter: &str) -> String {
    aggregation_sql(aggregate.aggregation, Some(filter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MetricsConfig;

    const METRICS: &str = r#"
[[metric]]
name = "views"
events = ["view"]
filter = { country = "R'U" }
aggregation = "count"
window = "5m"
dimensions = ["os"]

[[metric]]
name = "likes"
events = ["like"]
aggregation = "unique_users"
window = "5m"

[[metric]]
name = "revenue"
events = ["purchase"]
aggregation = "sum"
window = "1h"

[[metric]]
name = "ctr"
aggregation = "ratio"
numerator = "likes"
denominator = "views"
window = "5m"
"#;

    fn table() -> Table {
        Table {
            database: "seismo".to_string(),
            table: "events".to_string(),
            deduplicate: true,
        }
    }

    fn config() -> MetricsConfig {
        MetricsConfig::parse(METRICS).unwrap()
    }

    #[test]
    fn quote_escapes_quotes_and_backslashes() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), "'it\\'s'");
        assert_eq!(quote("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn identifier_check_rejects_quotes() {
        assert!(check_identifier("--clickhouse-table", "events_v2").is_ok());
        let error = check_identifier("--clickhouse-table", "events`; DROP").unwrap_err();
        assert!(error.contains("--clickhouse-table"), "{error}");
        assert!(check_identifier("--clickhouse-table", "").is_err());
    }

    #[test]
    fn positions_skip_empty_partitions() {
        assert_eq!(positions_condition(&[]), None);
        assert_eq!(positions_condition(&[(0, 0)]), None);
        assert_eq!(
            positions_condition(&[(0, 10), (1, 0), (2, 7)]).unwrap(),
            "((kafka_partition = 0 AND kafka_offset < 10) OR (kafka_partition = 2 AND kafka_offset < 7))"
        );
    }

    #[test]
    fn count_metric_by_dimension() {
        let config = config();

        let sql = metric_windows_sql(&table(), "P", config.metric("views").unwrap(), Some("os"), 600, 1200);

        assert!(
            sql.contains("intDiv(toUInt32(toDateTime(event_time)), 300) * 300 AS window_start_s"),
            "{sql}"
        );
        assert!(sql.contains("`os` AS slice_value"), "{sql}");
        assert!(sql.contains("count() AS numerator, 1 AS denominator"), "{sql}");
        assert!(sql.contains("FROM `seismo`.`events` FINAL WHERE"), "{sql}");
        assert!(
            sql.contains("WHERE P AND event_time >= toDateTime(600) AND event_time < toDateTime(1200)"),
            "{sql}"
        );
        assert!(sql.contains("(event IN ('view') AND `country` = 'R\\'U')"), "{sql}");
        assert!(
            sql.contains("AND `os` IS NOT NULL GROUP BY window_start_s, slice_value"),
            "{sql}"
        );
    }

    #[test]
    fn total_has_empty_slice() {
        let config = config();

        let sql = metric_windows_sql(&table(), "P", config.metric("views").unwrap(), None, 0, 300);

        assert!(sql.contains("'' AS slice_value"), "{sql}");
        assert!(!sql.contains("IS NOT NULL"), "{sql}");
    }

    #[test]
    fn aggregations_map_to_functions() {
        let config = config();

        let likes = metric_windows_sql(&table(), "P", config.metric("likes").unwrap(), None, 0, 300);
        let revenue = metric_windows_sql(&table(), "P", config.metric("revenue").unwrap(), None, 0, 3600);

        assert!(likes.contains("uniqExact(user_id) AS numerator"), "{likes}");
        assert!(revenue.contains("sum(ifNull(`value`, 0)) AS numerator"), "{revenue}");
        assert!(
            revenue.contains("intDiv(toUInt32(toDateTime(event_time)), 3600) * 3600"),
            "{revenue}"
        );
    }

    #[test]
    fn ratio_aggregates_both_parts() {
        let config = config();

        let sql = metric_windows_sql(&table(), "P", config.metric("ctr").unwrap(), None, 0, 300);

        assert!(
            sql.contains("uniqExactIf(user_id, (event IN ('like'))) AS numerator"),
            "{sql}"
        );
        assert!(
            sql.contains("countIf((event IN ('view') AND `country` = 'R\\'U')) AS denominator"),
            "{sql}"
        );
        assert!(
            sql.contains("AND ((event IN ('like')) OR (event IN ('view') AND `country` = 'R\\'U'))"),
            "{sql}"
        );
    }

    #[test]
    fn tail_selects_milliseconds_where_stored() {
        let config = config();

        let old_schema = tail_events_sql(&table(), "P", &config.metrics, true, 900);
        let new_schema = tail_events_sql(&table(), "P", &config.metrics, false, 900);

        assert!(
            old_schema.starts_with("SELECT event_time, event_time_ms, event,"),
            "{old_schema}"
        );
        assert!(new_schema.starts_with("SELECT event_time, event,"), "{new_schema}");
        assert!(old_schema.contains("event_time >= toDateTime(900)"), "{old_schema}");
        assert!(old_schema.contains("(event IN ('purchase'))"), "{old_schema}");
        assert!(old_schema.ends_with("ORDER BY event_time"), "{old_schema}");
    }
}
