//! The Seismo event schema.
//!
//! Every Kafka message on the events topic carries one JSON object describing
//! one user action. [`Event::parse`] validates it and returns a typed
//! [`Event`], or an [`EventError`] that names the failing field and the fix.
//! Ingest stores the parsed events; the detector aggregates them into metrics.

mod error;
mod event;
mod json_fields;
mod parse;

pub use error::EventError;
pub use event::{DIMENSION_FIELDS, Event};
pub use parse::ParseLimits;
