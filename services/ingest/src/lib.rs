//! Seismo ingest: Kafka events into ClickHouse.
//!
//! [`run`] consumes the events topic as a consumer group, validates every
//! message with [`seismo_events::Event::parse_with`], stores valid events in
//! batches and sends invalid messages to a dead-letter topic (format in
//! [`dead_letter`]). Offsets are committed only once ClickHouse or the
//! dead-letter topic acknowledged every message before them; ClickHouse
//! failures are retried with backoff while consumption is paused.
//!
//! On start the service reads the server version and creates the database
//! and table for what that server supports ([`ServerFeatures`],
//! [`schema`]).
//!
//! [`run`] reports readiness through a [`Readiness`], which the binary
//! serves on `/readyz`, and records `seismo_ingest_*` metrics through the
//! `metrics` facade, which `/metrics` renders once a recorder is installed
//! (see `seismo_telemetry`).
//!
//! Running it in-process, e.g. against a mock Kafka cluster:
//!
//! ```no_run
//! # async fn example(brokers: String) -> Result<(), seismo_ingest::IngestError> {
//! use std::sync::Arc;
//! use seismo_ingest::{IngestConfig, IngestStats, Readiness, run};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = IngestConfig { brokers, ..IngestConfig::default() };
//! let stats = Arc::new(IngestStats::default());
//! let readiness = Readiness::default();
//! let cancel = CancellationToken::new();
//! let task = tokio::spawn(run(config, stats.clone(), readiness.clone(), cancel.clone()));
//! // ... read stats.summary() and readiness.status() while it runs ...
//! cancel.cancel();
//! let summary = task.await.expect("ingest task panicked")?;
//! # Ok(()) }
//! ```

mod backoff;
mod batch;
mod cli;
mod client_options;
mod config;
mod consumer;
mod consumer_lag;
pub mod dead_letter;
mod deduplication_token;
mod error;
mod held_messages;
mod log_limit;
mod offsets;
mod pipeline;
mod prometheus_metrics;
mod readiness;
mod received;
mod row;
pub mod schema;
mod server_version;
mod sink;
mod stats;

pub use backoff::RetryPolicy;
pub use batch::BatchPolicy;
pub use cli::IngestArgs;
pub use client_options::ClientOptions;
pub use config::{ClickHouseConfig, IngestConfig};
pub use error::IngestError;
pub use offsets::OffsetTracker;
pub use pipeline::run;
pub use row::BatchRow;
pub use seismo_telemetry::Readiness;
pub use server_version::{ServerFeatures, ServerVersion, VersionParseError};
pub use sink::{ClickHouseSink, SinkError, base_client, detect_features};
pub use stats::{IngestStats, IngestSummary};
