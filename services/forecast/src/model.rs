//! MSTL decomposition with an AutoETS trend, from the augurs crate.

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};

use crate::ForecastError;

/// Point forecasts with a prediction interval per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub point: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl Prediction {
    /// Multiplies the distance of both bounds from the point by `factor`.
    pub fn widen(&mut self, factor: f64) {
        for step in 0..self.point.len() {
            let point = self.point[step];
            self.lower[step] = point - factor * (point - self.lower[step]);
            self.upper[step] = point + factor * (self.upper[step] - point);
        }
    }

    /// Multiplies the point and both bounds of step `index` by `factor`.
    pub fn scale_step(&mut self, index: usize, factor: f64) {
        self.point[index] *= factor;
        self.lower[index] *= factor;
        self.upper[index] *= factor;
    }
}

/// Fits MSTL with the given seasonal `periods` (in steps) to `values`,
/// models the seasonally adjusted series (trend plus remainder) with a
/// non-seasonal AutoETS, and predicts `horizon` steps with a `level`
/// interval (0 < level < 1). Each seasonal component is continued by
/// repeating its last cycle, so the interval width comes from the ETS model
/// of the adjusted series only.
///
/// Callers check `values` (finite) and `periods` (two cycles each); augurs
/// reports anything else as [`ForecastError::Model`].
pub fn fit_predict(values: &[f64], periods: &[usize], horizon: usize, level: f64) -> Result<Prediction, ForecastError> {
    let trend = AutoETS::non_seasonal().into_trend_model();
    let model = MSTLModel::new(periods.to_vec(), trend);

    let fitted = model
        .fit(values)
        .map_err(|error| ForecastError::Model(error.to_string()))?;
    let forecast = fitted
        .predict(horizon, level)
        .map_err(|error| ForecastError::Model(error.to_string()))?;

    let intervals = forecast
        .intervals
        .ok_or_else(|| ForecastError::Model("the AutoETS trend returned no prediction intervals".to_string()))?;
    Ok(Prediction {
        point: forecast.point,
        lower: intervals.lower,
        upper: intervals.upper,
    })
}
