//! seismo-ingest for detector tests that need their events stored in
//! ClickHouse, as a deployment stores them.

use std::sync::Arc;
use std::time::Duration;

use seismo_ingest::{BatchPolicy, ClickHouseConfig, IngestConfig, IngestStats};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clickhouse::TestDatabase;

/// Returns the ClickHouse settings that write to `database`.
pub fn clickhouse_config(database: &TestDatabase) -> ClickHouseConfig {
    ClickHouseConfig {
        url: database.url(),
        database: database.name().to_string(),
        ..ClickHouseConfig::default()
    }
}

/// Starts seismo-ingest reading `topic` at `brokers` as consumer group
/// `group_id` and writing to `clickhouse`, until `shutdown` is cancelled.
/// Batches are written after at most 200 ms, so rows reach ClickHouse
/// soon after their events.
pub fn spawn_ingest(
    brokers: &str,
    topic: &str,
    group_id: &str,
    clickhouse: ClickHouseConfig,
    shutdown: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let config = IngestConfig {
        brokers: brokers.to_string(),
        topic: topic.to_string(),
        group_id: group_id.to_string(),
        dead_letter_topic: format!("{topic}.dlq"),
        clickhouse,
        batch: BatchPolicy {
            max_wait: Duration::from_millis(200),
            ..BatchPolicy::default()
        },
        ..IngestConfig::default()
    };
    tokio::spawn(async move {
        seismo_ingest::run(
            config,
            Arc::new(IngestStats::default()),
            seismo_ingest::Readiness::default(),
            shutdown,
        )
        .await?;
        Ok(())
    })
}
