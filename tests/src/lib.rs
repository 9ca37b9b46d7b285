//! Shared helpers of the integration tests.
pub mod clickhouse;
pub mod fake_telegram;
pub mod kafka;
pub mod tcp_proxy;
pub mod admin_http;
pub mod wait;
pub mod grpc;
pub mod scripted_detector;
