//! Metric forecasts with prediction intervals, and backtests of them.
//!
//! The maths is pure and synchronous: [`forecast()`] fits MSTL with an
//! AutoETS trend (augurs) to a [`Series`], [`backtest()`] scores forecasts
//! from rolling or expanding origins against a seasonal-naive baseline.
//! [`clickhouse_source`] loads metric series from the events table,
//! [`grpc`] and [`service`] serve the `seismo.forecast.v1.Forecast` API,
//! and [`report::forecast_report_text`] writes a chat-sized summary.

pub mod backtest;
pub mod baseline;
pub mod cli;
pub mod clickhouse_source;
pub mod commands;
pub mod csv_input;
pub mod error_metrics;
pub mod event_flags;
pub mod forecast;
pub mod grpc;
pub mod interval_calibration;
pub mod metric_query;
pub mod model;
pub mod output;
pub mod report;
pub mod service;
pub mod synthetic;

mod error;
mod event_dates;
mod granularity;
mod prometheus_metrics;
mod series;

pub use backtest::{BacktestOptions, BacktestReport, Origins, backtest};
pub use error::ForecastError;
pub use error_metrics::{ErrorMetrics, error_metrics};
pub use event_dates::EventDates;
pub use forecast::{ForecastOptions, ForecastResult, ForecastStep, forecast};
pub use granularity::Granularity;
pub use report::forecast_report_text;
pub use series::{Series, interpolate_gaps};
