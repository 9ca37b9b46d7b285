//! Reads per-user aggregates of experiment groups from the ClickHouse
//! events table. The aggregation runs in SQL, so only one row per user and
//! group crosses the network.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clickhouse::Row;
use serde::Deserialize;

use crate::analysis::{GroupSample, UserAggregate};

/// Location of the events table and the events counted as views and likes.
#[derive(Clone, PartialEq, Eq)]
pub struct EventsTable {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub user: String,
    /// Left out of the `Debug` output.
    pub password: String,
    pub database: String,
    pub table: String,
    /// `event` value of the ratio's denominator, e.g. `view`.
    pub view_event: String,
    /// `event` value of the ratio's numerator, e.g. `like`.
    pub like_event: String,
    /// Maximum time of one query, after which it fails with
    /// [`QueryTimeout`].
    pub query_timeout: Duration,
}

/// A ClickHouse query that ran longer than [`EventsTable::query_timeout`].
#[derive(Debug, thiserror::Error)]
#[error(
    "the ClickHouse query of `{database}`.`{table}` timed out after {timeout:?}; narrow the period or raise --clickhouse-timeout-seconds"
)]
pub struct QueryTimeout {
    pub database: String,
    pub table: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for EventsTable {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventsTable")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("view_event", &self.view_event)
            .field("like_event", &self.like_event)
            .field("query_timeout", &self.query_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Row, Deserialize)]
struct UserRow {
    exp_group: String,
    user_id: String,
    views: u64,
    likes: u64,
}

/// Fetches the users of `groups` with at least one view or like in
/// `[from, to)`, one [`GroupSample`] per group in the order of `groups`. A
/// group without such users comes back empty.
pub async fn fetch_groups(
    table: &EventsTable,
    groups: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<GroupSample>> {
    if groups.is_empty() {
        bail!("no experiment group given; pass the `exp_group` values to compare, e.g. --groups 1,2");
    }
    if from >= to {
        bail!("the time range {from} .. {to} is empty; --from must be before --to");
    }

    // FINAL merges rows that ingest stored twice after a redelivery, which
    // the ReplacingMergeTree would otherwise merge only eventually.
    let placeholders = vec!["?"; groups.len()].join(", ");
    let sql = format!(
        "SELECT assumeNotNull(exp_group) AS exp_group, user_id, \
                countIf(event = ?) AS views, countIf(event = ?) AS likes \
         FROM `{database}`.`{table}` FINAL \
         WHERE event_time >= toDateTime(?) AND event_time < toDateTime(?) \
           AND event IN (?, ?) AND exp_group IN ({placeholders}) \
         GROUP BY exp_group, user_id \
         ORDER BY exp_group, user_id",
        database = table.database,
        table = table.table,
    );
    let mut query = client(table)
        .query(&sql)
        .bind(table.view_event.as_str())
        .bind(table.like_event.as_str())
        .bind(from.timestamp())
        .bind(to.timestamp())
        .bind(table.view_event.as_str())
        .bind(table.like_event.as_str());
    for group in groups {
        query = query.bind(group.as_str());
    }

    let started = std::time::Instant::now();
    let fetched = tokio::time::timeout(table.query_timeout, query.fetch_all::<UserRow>())
        .await
        .map_err(|_| QueryTimeout {
            database: table.database.clone(),
            table: table.table.clone(),
            timeout: table.query_timeout,
        })?;
    let rows = fetched.with_context(|| {
        format!(
            "reading per-user aggregates from `{}`.`{}` at {} failed; check --clickhouse-url, --database and that ingest created the table",
            table.database, table.table, table.url
        )
    })?;
    tracing::info!(
        rows = rows.len(),
        database = %table.database,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "per-user aggregates fetched"
    );

    let mut by_group: BTreeMap<String, Vec<UserAggregate>> = BTreeMap::new();
    for row in rows {
        by_group.entry(row.exp_group).or_default().push(UserAggregate {
            user_id: row.user_id,
            views: row.views,
            likes: row.likes,
        });
    }
    Ok(groups
        .iter()
        .map(|name| GroupSample {
            name: name.clone(),
            users: by_group.remove(name).unwrap_or_default(),
        })
        .collect())
}

/// Client without row validation, which ClickHouse 18.16 needs: with it,
/// every read fails on the RowBinaryWithNamesAndTypes format.
fn client(table: &EventsTable) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&table.url)
        .with_user(&table.user)
        .with_password(&table.password)
        .with_validation(false)
}
