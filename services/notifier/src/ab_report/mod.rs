//! The `/ab` bot command: an A/B test of two experiment groups over the
//! events table in ClickHouse (seismo-experiments' analysis), sent to
//! the chat of the command as the report text and the chart.

pub mod arguments;
pub mod sender;
