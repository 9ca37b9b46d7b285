//! Metric forecasts with prediction intervals, and backtests of them.
//!
//! The maths is pure and synchronous: [`forecast()`] fits MSTL with an
//! AutoETS trend (augurs) to a [`Series`], [`backtest()`] scores forecasts
//! from rolling or expanding origins against a seasonal-naive baseline.

pub mod backtest;
pub mod baseline;
pub mod error_metrics;
pub mod event_flags;
pub mod forecast;
pub mod interval_calibration;
pub mod model;
pub mod synthetic;

mod error;
mod event_dates;
mod granularity;
mod series;

pub use backtest::{BacktestOptions, BacktestReport, Origins, backtest};
pub use error::ForecastError;
pub use error_metrics::{ErrorMetrics, error_metrics};
pub use event_dates::EventDates;
pub use forecast::{ForecastOptions, ForecastResult, ForecastStep, forecast};
pub use granularity::Granularity;
pub use series::{Series, interpolate_gaps};
