//! Shared helpers of the integration tests.
pub mod admin_http;
pub mod clickhouse;
pub mod fake_telegram;
pub mod grpc;
pub mod ingest;
pub mod kafka;
pub mod scripted_detector;
pub mod tcp_proxy;
pub mod wait;
