//! Text, CSV and JSON renderings of forecasts and backtest reports.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::{BacktestReport, ErrorMetrics, ForecastResult};

/// Output format of the command-line tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<OutputFormat, String> {
        match text {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!("invalid format `{other}`; use `table`, `csv` or `json`")),
        }
    }
}

/// Renders a forecast: one row per step with time, point, lower and upper
/// bound, and whether the step is flagged.
pub fn render_forecast(result: &ForecastResult, format: OutputFormat) -> String {
    let mut out = String::new();
    match format {
        OutputFormat::Table => {
            let level = result.level * 100.0;
            let _ = writeln!(
                out,
                "{:<20}  {:>12}  {:>12}  {:>12}  flagged",
                "time (UTC)",
                "point",
                format!("lower {level}%"),
                format!("upper {level}%")
            );
            for step in &result.steps {
                let _ = writeln!(
                    out,
                    "{:<20}  {:>12.3}  {:>12.3}  {:>12.3}  {}",
                    step.time.format("%Y-%m-%d %H:%M"),
                    step.point,
                    step.lower,
                    step.upper,
                    if step.flagged { "yes" } else { "" }
                );
            }
            let _ = writeln!(out, "{}", forecast_summary(result));
        }
        OutputFormat::Csv => {
            out.push_str("time,point,lower,upper,flagged\n");
            for step in &result.steps {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    step.time.to_rfc3339(),
                    step.point,
                    step.lower,
                    step.upper,
                    step.flagged
                );
            }
        }
        OutputFormat::Json => {
            let steps: Vec<Value> = result
                .steps
                .iter()
                .map(|step| {
                    json!({
                        "time": step.time.to_rfc3339(),
                        "point": step.point,
                        "lower": step.lower,
                        "upper": step.upper,
                        "flagged": step.flagged,
                    })
                })
                .collect();
            let document = json!({
                "granularity": result.granularity.as_str(),
                "level": result.level,
                "periods": result.periods,
                "training_points": result.training_points,
                "masked_points": result.masked_points,
                "event_effect": result.event_effect,
                "interval_scale": result.interval_scale,
                "steps": steps,
            });
            out = format!("{document:#}\n");
        }
    }
    out
}

/// Returns one line on how the forecast was made.
pub fn forecast_summary(result: &ForecastResult) -> String {
    let mut summary = format!(
        "MSTL + AutoETS on {} {} buckets, seasonal periods {:?}",
        result.training_points, result.granularity, result.periods
    );
    match result.interval_scale {
        Some(scale) if scale > 1.0 => {
            let _ = write!(summary, ", interval widened ×{scale:.2} by calibration");
        }
        Some(_) => summary.push_str(", interval calibrated, not widened"),
        None => summary.push_str(", interval not calibrated (history too short)"),
    }
    if result.masked_points > 0 {
        let _ = write!(summary, ", {} flagged points masked", result.masked_points);
    }
    if let Some(effect) = result.event_effect {
        let _ = write!(summary, ", event effect ×{effect:.3}");
    }
    summary
}

/// Renders a backtest report: the error measures of the model and the
/// baseline side by side.
pub fn render_backtest(report: &BacktestReport, format: OutputFormat) -> String {
    let rows = [("mstl_ets", &report.model), ("seasonal_naive", &report.baseline)];
    let mut out = String::new();
    match format {
        OutputFormat::Table => {
            let _ = writeln!(
                out,
                "{} origins, {} folds, window {}, horizon {}, step {}, {} forecast points",
                report.origins, report.folds, report.window, report.horizon, report.step, report.model.count
            );
            let _ = writeln!(
                out,
                "{:<16}  {:>12}  {:>12}  {:>8}  {:>8}  {:>8}",
                "model", "MAE", "RMSE", "MAPE %", "SMAPE %", "WMAPE %"
            );
            for (name, metrics) in rows {
                let _ = writeln!(
                    out,
                    "{:<16}  {:>12}  {:>12}  {:>8}  {:>8.2}  {:>8}",
                    name,
                    error_value(metrics.mae),
                    error_value(metrics.rmse),
                    optional(metrics.mape),
                    metrics.smape,
                    optional(metrics.wmape)
                );
            }
            let _ = writeln!(
                out,
                "mstl_ets {}% interval contained {:.1}% of the actual values",
                report.level * 100.0,
                report.interval_coverage * 100.0
            );
            let _ = writeln!(
                out,
                "seasonal_naive repeats the last {} buckets",
                report.baseline_period
            );
            if report.model.mape_skipped > 0 {
                let _ = writeln!(out, "MAPE skips {} zero actual values", report.model.mape_skipped);
            }
        }
        OutputFormat::Csv => {
            out.push_str("model,count,mae,rmse,mape,mape_skipped,smape,wmape\n");
            for (name, metrics) in rows {
                let _ = writeln!(
                    out,
                    "{name},{},{},{},{},{},{},{}",
                    metrics.count,
                    metrics.mae,
                    metrics.rmse,
                    metrics.mape.map(|value| value.to_string()).unwrap_or_default(),
                    metrics.mape_skipped,
                    metrics.smape,
                    metrics.wmape.map(|value| value.to_string()).unwrap_or_default()
                );
            }
        }
        OutputFormat::Json => {
            let document = json!({
                "origins": report.origins.to_string(),
                "folds": report.folds,
                "window": report.window,
                "horizon": report.horizon,
                "step": report.step,
                "level": report.level,
                "interval_coverage": report.interval_coverage,
                "baseline_period": report.baseline_period,
                "mstl_ets": metrics_json(&report.model),
                "seasonal_naive": metrics_json(&report.baseline),
            });
            out = format!("{document:#}\n");
        }
    }
    out
}

fn metrics_json(metrics: &ErrorMetrics) -> Value {
    json!({
        "count": metrics.count,
        "mae": metrics.mae,
        "rmse": metrics.rmse,
        "mape": metrics.mape,
        "mape_skipped": metrics.mape_skipped,
        "smape": metrics.smape,
        "wmape": metrics.wmape,
    })
}

/// Formats an absolute error with three decimals, or with four significant
/// digits when it is below 1, so that errors of a ratio such as CTR
/// (0.0123 against 0.0114) stay distinguishable.
fn error_value(value: f64) -> String {
    if value == 0.0 || !value.is_finite() || value.abs() >= 1.0 {
        return format!("{value:.3}");
    }
    let decimals = (3 - value.abs().log10().floor() as i32).clamp(3, 12) as usize;
    format!("{value:.decimals$}")
}

fn optional(value: Option<f64>) -> String {
    value
        .map(|value| format!("{value:.2}"))
        .unwrap_or_else(|| "n/a".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_errors_keep_three_decimals() {
        assert_eq!(error_value(46720.68), "46720.680");
        assert_eq!(error_value(1.0), "1.000");
        assert_eq!(error_value(0.0), "0.000");
    }

    #[test]
    fn small_errors_keep_four_digits() {
        assert_eq!(error_value(0.0123), "0.01230");
        assert_eq!(error_value(0.0114), "0.01140");
        assert_eq!(error_value(0.5), "0.5000");
    }
}
