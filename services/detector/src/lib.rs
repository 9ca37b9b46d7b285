//! Seismo detector: turns events into metric series per window and slice,
//! judges each closed window against a band learnt from the series' own
//! history, and streams anomalies over gRPC.
//!
//! [`detection`] holds the maths: pure, synchronous, no I/O.

pub mod detection;
pub mod config;
pub mod slice;
pub mod windowing;
