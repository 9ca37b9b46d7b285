//! Stores batches in ClickHouse.

use std::time::Duration;

use clickhouse::{Client, RowWrite};
use thiserror::Error;
use tracing::{info, warn};

use crate::client_options::ClientOptions;
use crate::config::{ClickHouseConfig, redact_url};
use crate::row::{BatchRow, EventRow, LegacyEventRow};
use crate::schema::{TABLE_ENGINE, create_database_sql, create_table_sql};
use crate::server_version::{ServerFeatures, ServerVersion, VersionParseError};

/// Reason a ClickHouse request failed. Every variant is retried.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("ClickHouse request failed: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),

    #[error("ClickHouse request timed out after {} ms", .0.as_millis())]
    TimedOut(Duration),

    #[error(transparent)]
    InvalidVersion(#[from] VersionParseError),
}

/// A connection to the events table, set up for the server's version.
pub struct ClickHouseSink {
    client: Client,
    features: ServerFeatures,
    options: ClientOptions,
    table: String,
    insert_timeout: Duration,
}

/// Returns a client for `config` without a default database and without row
/// validation, which every server version accepts.
pub fn base_client(config: &ClickHouseConfig) -> Client {
    let mut client = Client::default()
        .with_url(&config.url)
        .with_user(&config.user)
        .with_validation(false);
    if let Some(password) = &config.password {
        client = client.with_password(password);
    }
    client
}

/// Queries `SELECT version()` and derives the server's features.
pub async fn detect_features(client: &Client) -> Result<ServerFeatures, SinkError> {
    let text: String = client.query("SELECT version()").fetch_one().await?;
    let version = ServerVersion::parse(&text)?;
    Ok(ServerFeatures::for_version(version))
}

/// Reads the engine name of `database`.`table` from `system.tables`.
async fn table_engine(client: &Client, database: &str, table: &str) -> Result<String, SinkError> {
    let engine = client
        .query("SELECT engine FROM system.tables WHERE database = ? AND name = ?")
        .bind(database)
        .bind(table)
        .fetch_one::<String>()
        .await?;
    Ok(engine)
}

impl ClickHouseSink {
    /// Detects the server version, then creates the database and the table
    /// if missing. One attempt, bounded by the insert timeout per request.
    pub async fn connect(config: &ClickHouseConfig) -> Result<ClickHouseSink, SinkError> {
        let timeout = config.insert_timeout;
        let client = base_client(config);

        let features = with_timeout(timeout, detect_features(&client)).await?;
        let options = ClientOptions::for_server(&features, config.async_insert);
        info!(
            clickhouse_url = %redact_url(&config.url),
            version = %features.version,
            low_cardinality = features.low_cardinality,
            datetime64 = features.datetime64,
            deduplication_token = options.deduplication_token,
            row_validation = options.validation,
            "connected to ClickHouse"
        );
        if options.async_insert_unsupported {
            warn!(
                version = %features.version,
                "async_insert requested but the server predates 21.11; inserting synchronously"
            );
        }

        for sql in [
            create_database_sql(&config.database),
            create_table_sql(&features, &config.database, &config.table),
        ] {
            with_timeout(timeout, async {
                client.query(&sql).execute().await.map_err(SinkError::from)
            })
            .await?;
        }

        let engine = with_timeout(timeout, table_engine(&client, &config.database, &config.table)).await?;
        if engine != TABLE_ENGINE {
            warn!(
                database = %config.database,
                table = %config.table,
                engine = %engine,
                expected_engine = TABLE_ENGINE,
                "the events table predates the ReplacingMergeTree schema, so duplicates from retries stay; \
                 count with uniqExact(kafka_partition, kafka_offset) or migrate as deploy/clickhouse/README.md describes"
            );
        }

        let client = client
            .with_database(&config.database)
            .with_validation(options.validation);
        Ok(ClickHouseSink {
            client,
            features,
            options,
            table: config.table.clone(),
            insert_timeout: timeout,
        })
    }

    pub fn features(&self) -> &ServerFeatures {
        &self.features
    }

    /// Inserts `rows`, consumed from `topic`, as one INSERT. Success means
    /// ClickHouse acknowledged every row. On error some rows may still have
    /// been stored, so a retry can store them twice. The retry carries the
    /// same deduplication token on servers that support one (see
    /// [`ClientOptions::batch_settings`]), and the table's engine merges
    /// the copies left because they share `kafka_partition` and
    /// `kafka_offset`.
    pub async fn insert(&self, rows: &[BatchRow], topic: &str) -> Result<(), SinkError> {
        if rows.is_empty() {
            return Ok(());
        }
        let settings = self.options.batch_settings(topic, rows);
        let insert = async {
            if self.features.datetime64 {
                self.write_rows::<EventRow<'static>>(rows, settings).await
            } else {
                self.write_rows::<LegacyEventRow<'static>>(rows, settings).await
            }
        };
        with_timeout(self.insert_timeout, async { insert.await.map_err(SinkError::from) }).await
    }

    async fn write_rows<T>(
        &self,
        rows: &[BatchRow],
        settings: Vec<(&'static str, String)>,
    ) -> clickhouse::error::Result<()>
    where
        T: RowWrite,
        for<'a> T::Value<'a>: From<&'a BatchRow>,
    {
        let mut insert = self.client.insert::<T>(&self.table).await?;
        for (name, value) in settings {
            insert = insert.with_setting(name, value);
        }
        for row in rows {
            insert.write(&T::Value::from(row)).await?;
        }
        insert.end().await
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    tokio::time::timeout(timeout, request)
        .await
        .unwrap_or(Err(SinkError::TimedOut(timeout)))
}
