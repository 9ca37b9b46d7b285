//! Counts of what ingest stored, which the demo and the end-to-end test
//! compare with the events produced.

use anyhow::Context;

/// Rows and distinct `event_id`s in a ClickHouse table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCount {
    pub rows: u64,
    pub distinct_event_ids: u64,
}

/// Counts rows of `database.table`. Validation is off because ClickHouse
/// 18.16 lacks the format the `clickhouse` crate validates with. The result,
/// two `UInt64`s, is simple enough to need no check.
pub async fn count_stored(url: &str, database: &str, table: &str) -> anyhow::Result<StoredCount> {
    let client = clickhouse::Client::default().with_url(url).with_validation(false);
    // `event_id` is Nullable, so uniqExact returns Nullable(UInt64), whose
    // RowBinary form has a null marker byte; ifNull makes it a plain UInt64.
    let query = format!("SELECT count(), ifNull(uniqExact(event_id), 0) FROM {database}.{table}");

    let (rows, distinct_event_ids) = client
        .query(&query)
        .fetch_one::<(u64, u64)>()
        .await
        .with_context(|| format!("cannot count rows of {database}.{table} at {url}"))?;
    Ok(StoredCount {
        rows,
        distinct_event_ids,
    })
}
