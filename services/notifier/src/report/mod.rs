//! The daily report: each configured metric of yesterday with its change
//! against the day before and a week before, and a 7-day chart grid, sent
//! on a schedule, by `/report` or by `seismo-notifier report --now`.

pub mod chart;
pub mod metrics;
pub mod query;
pub mod schedule;
pub mod sender;
pub mod summary;
