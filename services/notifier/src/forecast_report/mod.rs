//! The weekly forecast report: a forecast of each configured metric from
//! the events in ClickHouse (seismo-forecast's MSTL + AutoETS model), sent
//! as text and a chart on a weekday and time, by `/forecast` or by
//! `seismo-notifier forecast-report --now`.

pub mod build;
pub mod chart;
pub mod schedule;
pub mod sender;
pub mod settings;
