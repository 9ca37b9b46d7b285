use thiserror::Error;

/// Reason a forecast or backtest cannot be computed. The text names the
/// value that failed and what to change.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ForecastError {
    #[error(
        "the series has {points} points but needs at least {needed} (two cycles of its shortest seasonal period, \
         {period} steps); load a longer history"
    )]
    NotEnoughHistory {
        points: usize,
        needed: usize,
        period: usize,
    },

    #[error("horizon must be at least 1 step, got {0}")]
    InvalidHorizon(usize),

    #[error("level must lie strictly between 0 and 1 (e.g. 0.95), got {0}")]
    InvalidLevel(f64),

    #[error("value {value} at position {index} is not a finite number; fill or drop it before forecasting")]
    NonFiniteValue { index: usize, value: f64 },

    #[error("backtest step must be at least 1, got {0}")]
    InvalidStep(usize),

    #[error(
        "backtest window of {window} points plus horizon {horizon} exceeds the series of {points} points; \
         shorten --window or --horizon, or load a longer history"
    )]
    NoBacktestOrigin {
        window: usize,
        horizon: usize,
        points: usize,
    },

    #[error("fitting MSTL with an AutoETS trend failed: {0}")]
    Model(String),
}
