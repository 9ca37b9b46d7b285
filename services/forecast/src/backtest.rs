//! Backtests: forecasts from successive origins inside the history, scored
//! against what happened and against a seasonal-naive baseline.

use crate::baseline::seasonal_naive;
use crate::error_metrics::{ErrorMetrics, error_metrics};
use crate::forecast::{check_request, fitting_periods, forecast_values};
use crate::{EventDates, ForecastError, Series};

/// Placement of the training window at successive origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origins {
    /// A fixed-length window ending at each origin.
    Rolling,
    /// All history from the series start up to each origin.
    Expanding,
}

impl std::str::FromStr for Origins {
    type Err = String;

    fn from_str(text: &str) -> Result<Origins, String> {
        match text {
            "rolling" => Ok(Origins::Rolling),
            "expanding" => Ok(Origins::Expanding),
            other => Err(format!("invalid origins `{other}`; use `rolling` or `expanding`")),
        }
    }
}

impl std::fmt::Display for Origins {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Origins::Rolling => "rolling",
            Origins::Expanding => "expanding",
        })
    }
}

/// Backtest settings. Origins are `window`, `window + step`, … for as long
/// as `horizon` actual values follow the origin.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestOptions {
    /// Steps forecast from each origin.
    pub horizon: usize,
    /// Steps between consecutive origins.
    pub step: usize,
    /// Training length at the first origin, and at every origin for
    /// [`Origins::Rolling`].
    pub window: usize,
    pub origins: Origins,
    /// Level of the prediction interval whose coverage is reported.
    pub level: f64,
    pub event_dates: EventDates,
}

/// Scores of MSTL + AutoETS and of the seasonal-naive baseline over all
/// forecasts of a backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestReport {
    pub origins: Origins,
    /// Number of origins, each forecasting `horizon` steps.
    pub folds: usize,
    pub horizon: usize,
    pub step: usize,
    pub window: usize,
    pub level: f64,
    pub model: ErrorMetrics,
    pub baseline: ErrorMetrics,
    /// Seasonal period of the baseline at the last origin, in steps.
    pub baseline_period: usize,
    /// Share of actual values inside the model's prediction interval, 0–1.
    pub interval_coverage: f64,
}

/// Runs the backtest over `series`. Each fold fits on its training window
/// only, so masking and event effects use no value after the origin. The
/// baseline repeats the last cycle of the fold's longest fitting seasonal
/// period from the unmasked history.
pub fn backtest(series: &Series, options: &BacktestOptions) -> Result<BacktestReport, ForecastError> {
    check_request(&series.values, options.horizon, options.level)?;
    if options.step == 0 {
        return Err(ForecastError::InvalidStep(options.step));
    }
    fitting_periods(series.granularity, options.window)?;
    if options.window + options.horizon > series.len() {
        return Err(ForecastError::NoBacktestOrigin {
            window: options.window,
            horizon: options.horizon,
            points: series.len(),
        });
    }
    let flags = options
        .event_dates
        .flags(series.start, series.granularity, series.len());

    let mut actual = Vec::new();
    let mut model_forecast = Vec::new();
    let mut baseline_forecast = Vec::new();
    let mut covered = 0;
    let mut folds = 0;
    let mut baseline_period = 0;
    let mut origin = options.window;
    while origin + options.horizon <= series.len() {
        let train_start = match options.origins {
            Origins::Rolling => origin - options.window,
            Origins::Expanding => 0,
        };
        let train = &series.values[train_start..origin];
        let future = origin..origin + options.horizon;

        let fitted = forecast_values(
            train,
            series.granularity,
            &flags[train_start..origin],
            &flags[future.clone()],
            options.horizon,
            options.level,
        )?;
        baseline_period = *fitted.periods.last().expect("a fitted forecast has periods");
        let naive = seasonal_naive(train, baseline_period, options.horizon);

        for (step, &value) in series.values[future].iter().enumerate() {
            let prediction = &fitted.prediction;
            if prediction.lower[step] <= value && value <= prediction.upper[step] {
                covered += 1;
            }
            actual.push(value);
            model_forecast.push(prediction.point[step]);
        }
        baseline_forecast.extend(naive);
        folds += 1;
        origin += options.step;
    }

    let model = error_metrics(&actual, &model_forecast).expect("the origin check guarantees one fold");
    let baseline = error_metrics(&actual, &baseline_forecast).expect("the origin check guarantees one fold");
    Ok(BacktestReport {
        origins: options.origins,
        folds,
        horizon: options.horizon,
        step: options.step,
        window: options.window,
        level: options.level,
        model,
        baseline,
        baseline_period,
        interval_coverage: covered as f64 / actual.len() as f64,
    })
}

#[cfg(test)]
mod tests;
