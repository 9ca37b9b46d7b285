//! Replays a NAB-format CSV (`timestamp,value`) into Kafka as Seismo events.
//!
//! Each CSV row becomes one event that carries the row's number in `value`,
//! stamped with the row's time. A detector metric that sums `value` per window
//! of the file's step then sees the original series exactly. One event per
//! row, rather than N events for a count of N, keeps the replay of months of
//! data to thousands of messages instead of millions.
//!
//! With an [`ExperimentConfig`] the loader also produces synthetic A/B test
//! traffic: views and likes of simulated users, who are assigned to
//! `exp_group` values by a salted hash, with a configurable effect on one
//! group's like probability.

mod csv_rows;
mod event_json;
mod experiment;
mod pacing;
mod produce;

pub use csv_rows::{CsvError, SeriesRow, read_nab_csv};
pub use event_json::{EventTemplate, event_json};
pub use experiment::{ExperimentConfig, ExperimentConfigError, ExperimentEvents, assign_group};
pub use pacing::Pacer;
pub use produce::{LoadSummary, LoaderConfig, load, load_with_experiment};
