//! The Seismo demo: the whole pipeline on one machine, on real data.
//!
//! [`run_demo`] starts an embedded Kafka (librdkafka's mock cluster, a real
//! Kafka protocol broker inside this process), the three services in-process
//! and the loader, replays a NAB series and returns a [`DemoSummary`]. The
//! end-to-end test runs the same code against a fake Telegram Bot API.

pub mod clickhouse_count;
pub mod collector;
pub mod labels;
mod pipeline;

pub use pipeline::{DemoOptions, DemoSummary, DemoTelegram, run_demo};
