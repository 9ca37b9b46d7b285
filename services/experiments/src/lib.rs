//! Seismo experiments: A/B test analysis and A/A checks over the events
//! table in ClickHouse.
//!
//! [`analysis::analyze`] compares two groups of per-user aggregates and
//! [`aa::simulate_aa`] re-splits one group many times; both are pure. The
//! statistics live in [`stats`].

pub mod aa;
pub mod analysis;
pub mod stats;
