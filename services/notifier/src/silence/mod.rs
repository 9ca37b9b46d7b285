//! Silences: time-limited suppression of the alerts of chosen series,
//! created by `/mute`, a Mute button or the configuration, kept in SQLite.

pub mod duration;
pub mod gate;
pub mod selector;
pub mod sqlite;
pub mod store;
