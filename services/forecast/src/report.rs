//! Plain-text forecast summaries for chat messages.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;

use crate::{ForecastResult, ForecastStep, Granularity};

/// Writes a short plain-text forecast summary, e.g. for a weekly Telegram
/// report. `metric` and `slice` label the series (`slice` may be empty for
/// the total). Daily forecasts list each day with its interval. Hourly
/// forecasts list the lowest and highest hourly point forecast of each UTC
/// day and the highest hour with its interval.
///
/// The notifier's weekly forecast report sends one such summary per metric.
pub fn forecast_report_text(metric: &str, slice: &str, result: &ForecastResult) -> String {
    let mut text = String::new();
    let label = if slice.is_empty() {
        "total".to_string()
    } else {
        slice.to_string()
    };
    let level = format!("{}%", result.level * 100.0);
    let plural = if result.steps.len() == 1 { "" } else { "s" };
    let _ = writeln!(
        text,
        "📈 Forecast: {metric} ({label}), next {} {}{plural}",
        result.steps.len(),
        result.granularity
    );

    match result.granularity {
        Granularity::Day => {
            for step in &result.steps {
                let _ = writeln!(
                    text,
                    "{}: {} ({level} range {} – {}){}",
                    step.time.format("%a %Y-%m-%d"),
                    round(step.point),
                    round(step.lower),
                    round(step.upper),
                    if step.flagged { " holiday/event" } else { "" }
                );
            }
        }
        Granularity::Hour => {
            // Per-day sums would be wrong for unique users and ratios, so
            // each day shows its range of hourly values instead.
            let mut days: BTreeMap<NaiveDate, Vec<&ForecastStep>> = BTreeMap::new();
            for step in &result.steps {
                days.entry(step.time.date_naive()).or_default().push(step);
            }
            for (date, steps) in days {
                let low = steps
                    .iter()
                    .min_by(|a, b| a.point.total_cmp(&b.point))
                    .expect("a day has steps");
                let high = steps
                    .iter()
                    .max_by(|a, b| a.point.total_cmp(&b.point))
                    .expect("a day has steps");
                // A day cut by the horizon is marked, because its range
                // covers only the hours forecast.
                let partial = if steps.len() < 24 {
                    format!(" ({} of 24 hours)", steps.len())
                } else {
                    String::new()
                };
                let _ = writeln!(
                    text,
                    "{}: hourly from {} at {} to {} at {}{partial}",
                    date.format("%a %Y-%m-%d"),
                    round(low.point),
                    low.time.format("%H:00"),
                    round(high.point),
                    high.time.format("%H:00")
                );
            }
            if let Some(peak) = result.steps.iter().max_by(|a, b| a.point.total_cmp(&b.point)) {
                let _ = writeln!(
                    text,
                    "Highest hour: {} UTC, {} ({level} range {} – {})",
                    peak.time.format("%a %H:00"),
                    round(peak.point),
                    round(peak.lower),
                    round(peak.upper)
                );
            }
        }
    }
    text
}

/// Formats with a readable precision: whole numbers from 100 up, two
/// decimals from 1, four below (rates such as CTR).
fn round(value: f64) -> String {
    match value.abs() {
        magnitude if magnitude >= 100.0 => format!("{value:.0}"),
        magnitude if magnitude >= 1.0 => format!("{value:.2}"),
        _ => format!("{value:.4}"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn result(granularity: Granularity, points: &[f64]) -> ForecastResult {
        let start: DateTime<Utc> = "2026-01-05T22:00:00Z".parse().unwrap();
        ForecastResult {
            granularity,
            level: 0.95,
            periods: vec![24],
            training_points: 48,
            masked_points: 0,
            event_effect: None,
            interval_scale: Some(1.2),
            steps: points
                .iter()
                .enumerate()
                .map(|(index, &point)| ForecastStep {
                    time: start + granularity.step() * index as i32,
                    point,
                    lower: point - 10.0,
                    upper: point + 10.0,
                    flagged: false,
                })
                .collect(),
        }
    }

    #[test]
    fn hourly_report_shows_daily_range() {
        let text = forecast_report_text("views", "", &result(Granularity::Hour, &[100.0, 300.0, 200.0]));

        assert!(text.starts_with("📈 Forecast: views (total), next 3 hours\n"), "{text}");
        assert!(
            text.contains("Mon 2026-01-05: hourly from 100 at 22:00 to 300 at 23:00 (2 of 24 hours)"),
            "{text}"
        );
        assert!(
            text.contains("Tue 2026-01-06: hourly from 200 at 00:00 to 200 at 00:00 (1 of 24 hours)"),
            "{text}"
        );
        assert!(
            text.contains("Highest hour: Mon 23:00 UTC, 300 (95% range 290 – 310)"),
            "{text}"
        );
    }

    #[test]
    fn daily_report_lists_days() {
        let text = forecast_report_text("ctr", "os=iOS", &result(Granularity::Day, &[0.0523]));

        assert!(text.contains("(os=iOS), next 1 day\n"), "{text}");
        assert!(text.contains("Mon 2026-01-05: 0.0523"), "{text}");
    }
}
