//! Replays a NAB-format CSV (`timestamp,value`) into Kafka as Seismo events.
//!
//! Each CSV row becomes one event that carries the row's number in `value`,
//! stamped with the row's time. A detector metric that sums `value` per window
//! of the file's step then sees the original series exactly. One event per
//! row, rather than N events for a count of N, keeps the replay of months of
//! data to thousands of messages instead of millions.

mod csv_rows;
mod event_json;
mod pacing;
mod produce;

pub use csv_rows::{CsvError, SeriesRow, read_nab_csv};
pub use event_json::{EventTemplate, event_json};
pub use pacing::Pacer;
pub use produce::{LoadSummary, LoaderConfig, load};
