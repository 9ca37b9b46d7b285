//! Forecasts of a series with MSTL + AutoETS, holiday masking and effects.

use chrono::{DateTime, Utc};

use crate::event_flags::{mask_flagged, mean_relative_effect};
use crate::interval_calibration::interval_scale;
use crate::model::{Prediction, fit_predict};
use crate::{EventDates, ForecastError, Granularity, Series};

/// Forecast request: horizon, interval level and flagged dates.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOptions {
    /// Steps ahead, in buckets of the series.
    pub horizon: usize,
    /// Coverage probability of the prediction interval, 0 < level < 1.
    pub level: f64,
    /// Holidays and events, in the past (masked) and in the horizon
    /// (adjusted by their mean past effect).
    pub event_dates: EventDates,
}

/// One forecast bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastStep {
    /// Bucket start.
    pub time: DateTime<Utc>,
    pub point: f64,
    pub lower: f64,
    pub upper: f64,
    /// The bucket falls on a flagged day.
    pub flagged: bool,
}

/// A forecast and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastResult {
    pub granularity: Granularity,
    pub level: f64,
    /// Seasonal periods the model used, in steps.
    pub periods: Vec<usize>,
    /// History length, in steps.
    pub training_points: usize,
    /// Flagged history points replaced before fitting.
    pub masked_points: usize,
    /// Mean multiplicative effect of past flagged periods (1.2 = 20 % above
    /// an ordinary period), applied to flagged steps; `None` when the history
    /// has no flagged period to learn it from.
    pub event_effect: Option<f64>,
    /// Factor (≥ 1) by which calibration widened the model's interval;
    /// `None` when the history was too short to calibrate.
    pub interval_scale: Option<f64>,
    pub steps: Vec<ForecastStep>,
}

/// Forecasts `options.horizon` buckets after the end of `series`.
pub fn forecast(series: &Series, options: &ForecastOptions) -> Result<ForecastResult, ForecastError> {
    let history_flags = options
        .event_dates
        .flags(series.start, series.granularity, series.len());
    let future_flags = options
        .event_dates
        .flags(series.end(), series.granularity, options.horizon);

    let fitted = forecast_values(
        &series.values,
        series.granularity,
        &history_flags,
        &future_flags,
        options.horizon,
        options.level,
    )?;

    let steps = (0..options.horizon)
        .map(|step| ForecastStep {
            time: series.time_at(series.len() + step),
            point: fitted.prediction.point[step],
            lower: fitted.prediction.lower[step],
            upper: fitted.prediction.upper[step],
            flagged: future_flags[step],
        })
        .collect();
    Ok(ForecastResult {
        granularity: series.granularity,
        level: options.level,
        periods: fitted.periods,
        training_points: series.len(),
        masked_points: fitted.masked_points,
        event_effect: fitted.event_effect,
        interval_scale: fitted.interval_scale,
        steps,
    })
}

/// A forecast of plain values, shared by [`forecast`] and the backtest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValuesForecast {
    pub prediction: Prediction,
    pub periods: Vec<usize>,
    pub masked_points: usize,
    pub event_effect: Option<f64>,
    pub interval_scale: Option<f64>,
}

/// Validates the input, masks flagged history, fits and predicts, widens
/// the interval by calibration and applies the event effect to flagged
/// future steps. For a series without negative values it then clamps the
/// point and both bounds at zero.
pub(crate) fn forecast_values(
    values: &[f64],
    granularity: Granularity,
    history_flags: &[bool],
    future_flags: &[bool],
    horizon: usize,
    level: f64,
) -> Result<ValuesForecast, ForecastError> {
    check_request(values, horizon, level)?;
    let periods = fitting_periods(granularity, values.len())?;

    // The longest period masks best: a holiday is replaced by the same
    // weekday of the week before rather than by the day before.
    let mask_period = *periods.last().expect("fitting_periods returns at least one period");
    let masked = mask_flagged(values, history_flags, mask_period);
    let masked_points = masked.replaced.iter().filter(|&&replaced| replaced).count();
    let event_effect = mean_relative_effect(values, &masked, history_flags);

    let mut prediction = fit_predict(&masked.values, &periods, horizon, level)?;
    let scale = interval_scale(&masked.values, granularity, horizon, level)?;
    if let Some(factor) = scale {
        prediction.widen(factor);
    }

    // NOTE: the effect is scaled into both bounds but its own uncertainty,
    // estimated from a few past flagged days, does not widen the interval.
    if let Some(effect) = event_effect {
        for (step, &flagged) in future_flags.iter().enumerate().take(horizon) {
            if flagged {
                prediction.scale_step(step, effect);
            }
        }
    }

    // Counts and rates cannot be negative, but the additive model's
    // interval can reach below zero on a quiet series.
    if values.iter().all(|&value| value >= 0.0) {
        clamp_at_zero(&mut prediction);
    }

    Ok(ValuesForecast {
        prediction,
        periods,
        masked_points,
        event_effect,
        interval_scale: scale,
    })
}

pub(crate) fn check_request(values: &[f64], horizon: usize, level: f64) -> Result<(), ForecastError> {
    if horizon == 0 {
        return Err(ForecastError::InvalidHorizon(horizon));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(ForecastError::InvalidLevel(level));
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, value)| !value.is_finite()) {
        return Err(ForecastError::NonFiniteValue { index, value });
    }
    Ok(())
}

/// Seasonal periods for `points` steps, or the error that the history is
/// too short for even the shortest one.
pub(crate) fn fitting_periods(granularity: Granularity, points: usize) -> Result<Vec<usize>, ForecastError> {
    let periods = granularity.seasonal_periods(points);
    if periods.is_empty() {
        let period = granularity.candidate_periods()[0];
        return Err(ForecastError::NotEnoughHistory {
            points,
            needed: 2 * period,
            period,
        });
    }
    Ok(periods)
}

fn clamp_at_zero(prediction: &mut Prediction) {
    for value in prediction.point.iter_mut().chain(prediction.lower.iter_mut()) {
        *value = value.max(0.0);
    }
    for value in prediction.upper.iter_mut() {
        *value = value.max(0.0);
    }
}

#[cfg(test)]
mod tests;
