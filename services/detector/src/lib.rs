//! Seismo detector: turns events into metric series per window and slice,
//! judges each closed window against a band learnt from the series' own
//! history, and streams anomalies over gRPC.
//!
//! [`detection`] holds the maths: pure, synchronous, no I/O.
//!
//! [`start`] reports readiness through a [`Readiness`], which the binary
//! serves on `/readyz`, and records `seismo_detector_*` metrics through the
//! `metrics` facade, which `/metrics` renders once a recorder is installed
//! (see `seismo_telemetry`).

pub mod anomaly_id;
pub mod cli;
pub mod config;
pub mod detection;
pub mod evaluate;
pub mod experiment_watch;
pub mod grpc;
pub mod hub;
pub mod kafka_source;
mod partition_silence;
pub mod pipeline;
mod prometheus_metrics;
pub mod proto_mapping;
mod readiness;
pub mod replay;
pub mod root_cause;
pub mod series;
pub mod service;
pub mod slice;
pub mod stats;
pub mod warm_start;
pub mod windowing;
pub use config::MetricsConfig;
pub use kafka_source::KafkaSettings;
pub use seismo_telemetry::Readiness;
pub use service::{RunningDetector, ServiceConfig, start};
pub use stats::{DetectorStats, StatsSnapshot};
pub use warm_start::{WarmStartOutcome, WarmStartSettings};
