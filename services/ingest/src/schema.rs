//! DDL of the events table, generated from the server's features.
//!
//! The `.sql` files under `deploy/clickhouse/` are this output for the
//! default names; a unit test keeps them equal.

use crate::server_version::ServerFeatures;

/// Engine of the events table. Its merges keep one row per sorting key, so
/// the copies of a message stored twice (same `kafka_partition` and
/// `kafka_offset`) collapse into one. Available in every supported version.
pub const TABLE_ENGINE: &str = "ReplacingMergeTree";

/// Table engine clause shared by every server generation: one partition per
/// UTC day of `event_time`, sorted for per-event time-range scans.
///
/// The sorting key ends with the Kafka position, which makes it unique per
/// consumed message: two copies of one message have the same `event` and
/// `event_time`, hence the same key and the same partition, and are merged
/// into one row. Distinct messages never share a key as long as the table is
/// fed from one topic, because (partition, offset) is unique within a topic.
// NOTE: the table has no `non_replicated_deduplication_window`, so a server
// from 22.2 on ignores the `insert_deduplication_token` that ingest sends,
// unless an operator sets that window (`ALTER TABLE ... MODIFY SETTING
// non_replicated_deduplication_window = 100`) or the table is Replicated.
// The ReplacingMergeTree merge and the exact-count queries do not need it.
const ENGINE_CLAUSE: &str = "ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMMDD(event_time)\nORDER BY (event, event_time, kafka_partition, kafka_offset)";

/// Returns `CREATE DATABASE IF NOT EXISTS` for `database`.
pub fn create_database_sql(database: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS `{database}`")
}

/// Returns `CREATE TABLE IF NOT EXISTS` for the events table as the server
/// with `features` should store it. Names must already be valid identifiers
/// (see [`crate::IngestConfig::validate`]).
pub fn create_table_sql(features: &ServerFeatures, database: &str, table: &str) -> String {
    let columns: Vec<String> = table_columns(features)
        .iter()
        .map(|(name, column_type)| format!("    `{name}` {column_type}"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS `{database}`.`{table}`\n(\n{}\n)\n{ENGINE_CLAUSE}",
        columns.join(",\n")
    )
}

/// Column names and types of the events table, in table order.
pub fn table_columns(features: &ServerFeatures) -> Vec<(&'static str, String)> {
    // Dimensions have few distinct values, which is what LowCardinality's
    // dictionary encoding is for.
    let dimension = if features.low_cardinality {
        "LowCardinality(Nullable(String))"
    } else {
        "Nullable(String)"
    };
    let event_name = if features.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    };

    let mut columns: Vec<(&'static str, String)> = Vec::new();
    if features.datetime64 {
        columns.push(("event_time", "DateTime64(3, 'UTC')".into()));
    } else {
        // `DateTime` counts whole seconds, so the milliseconds get a column
        // of their own and the row keeps the producer's full precision.
        columns.push(("event_time", "DateTime('UTC')".into()));
        columns.push(("event_time_ms", "UInt16".into()));
    }
    columns.extend([
        ("event", event_name.to_string()),
        ("user_id", "String".into()),
        ("event_id", "Nullable(String)".into()),
        ("post_id", "Nullable(UInt64)".into()),
        ("receiver_id", "Nullable(String)".into()),
        ("os", dimension.into()),
        ("country", dimension.into()),
        ("city", dimension.into()),
        ("source", dimension.into()),
        ("gender", dimension.into()),
        ("age", "Nullable(UInt16)".into()),
        ("exp_group", dimension.into()),
        ("value", "Nullable(Float64)".into()),
        ("extra", "String".into()),
        ("kafka_partition", "Int32".into()),
        ("kafka_offset", "Int64".into()),
        ("inserted_at", "DateTime('UTC') DEFAULT now()".into()),
    ]);
    columns
}

#[cfg(test)]
mod tests;
