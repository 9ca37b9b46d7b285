//! Seismo experiments: A/B test analysis and A/A checks over the events
//! table in ClickHouse.
//!
//! [`analysis::analyze`] compares two groups of per-user aggregates and
//! [`aa::simulate_aa`] re-splits one group many times; both are pure. The
//! statistics live in [`stats`]. [`clickhouse_source`] fetches the
//! aggregates, [`report`] and [`chart`] render the results, [`telegram`]
//! sends them and [`grpc`] serves the analysis as the `Experiments` service,
//! which [`service`] runs with the admin HTTP server.

pub mod aa;
pub mod analysis;
pub mod chart;
pub mod cli;
pub mod clickhouse_source;
pub mod grpc;
mod prometheus_metrics;
pub mod report;
pub mod run;
pub mod service;
pub mod stats;
pub mod telegram;
