//! Shared helpers of the integration tests.
pub mod clickhouse;
pub mod kafka;
