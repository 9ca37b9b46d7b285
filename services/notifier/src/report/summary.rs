//! The report's text: each metric's value on the report day with its change
//! against the day before and the same weekday a week before.

use std::fmt::Write;

use chrono::NaiveDate;

use super::metrics::ReportMetric;
use super::query::DailyValues;
use crate::format_number;

/// One metric's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    pub name: String,
    pub value: Option<f64>,
    /// Relative change against the day before, in percent.
    pub day_change_percent: Option<f64>,
    /// Relative change against a week before, in percent.
    pub week_change_percent: Option<f64>,
}

/// Summarises the last day of `daily`, which must cover at least the 8 days
/// from a week before the report day to the report day.
pub fn summarize(metrics: &[ReportMetric], daily: &DailyValues) -> Vec<MetricSummary> {
    let last = daily.days.len().checked_sub(1);
    let value_at = |metric: usize, back: usize| {
        last.and_then(|last| last.checked_sub(back))
            .and_then(|index| daily.values.get(metric)?.get(index).copied().flatten())
    };

    metrics
        .iter()
        .enumerate()
        .map(|(index, metric)| {
            let value = value_at(index, 0);
            MetricSummary {
                name: metric.name.clone(),
                value,
                day_change_percent: change_percent(value, value_at(index, 1)),
                week_change_percent: change_percent(value, value_at(index, 7)),
            }
        })
        .collect()
}

/// Returns `(current - previous) / |previous|` in percent; `None` when
/// either is missing or `previous` is zero.
pub fn change_percent(current: Option<f64>, previous: Option<f64>) -> Option<f64> {
    let (current, previous) = (current?, previous?);
    (previous != 0.0).then(|| (current - previous) / previous.abs() * 100.0)
}

/// Formats the report text for `day` in the time zone named `zone`.
pub fn format_report(day: NaiveDate, zone: &str, summaries: &[MetricSummary]) -> String {
    let mut text = format!("Daily report for {} ({zone})", day.format("%a %Y-%m-%d"));
    for summary in summaries {
        let value = summary.value.map_or_else(|| "no data".to_string(), format_number);
        let _ = write!(
            text,
            "\n{}: {value} ({} vs day before, {} vs week before)",
            summary.name,
            format_change(summary.day_change_percent),
            format_change(summary.week_change_percent),
        );
    }
    text
}

/// Formats a change as `+5.2%`, `-0.3%` or `n/a`.
pub fn format_change(percent: Option<f64>) -> String {
    match percent {
        Some(percent) => format!("{percent:+.1}%"),
        None => "n/a".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str) -> ReportMetric {
        ReportMetric {
            name: name.to_string(),
            expression: "count()".to_string(),
        }
    }

    fn daily(values: Vec<Vec<Option<f64>>>) -> DailyValues {
        let first = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        DailyValues {
            days: (0..8).map(|offset| first + chrono::Days::new(offset)).collect(),
            values,
        }
    }

    #[test]
    fn summary_compares_day_and_week_before() {
        let values = vec![vec![Some(100.0), None, None, None, None, None, Some(80.0), Some(110.0)]];

        let summaries = summarize(&[metric("views")], &daily(values));

        assert_eq!(summaries[0].value, Some(110.0));
        assert!((summaries[0].day_change_percent.unwrap() - 37.5).abs() < 1e-9);
        assert!((summaries[0].week_change_percent.unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn missing_or_zero_base_has_no_change() {
        assert_eq!(change_percent(Some(5.0), Some(0.0)), None);
        assert_eq!(change_percent(None, Some(3.0)), None);
        assert_eq!(change_percent(Some(5.0), None), None);
    }

    #[test]
    fn report_text_lists_each_metric() {
        let summaries = vec![MetricSummary {
            name: "DAU".to_string(),
            value: Some(1234.0),
            day_change_percent: Some(-3.25),
            week_change_percent: None,
        }];

        let text = format_report(
            NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
            "Europe/Moscow",
            &summaries,
        );

        assert_eq!(
            text,
            "Daily report for Thu 2026-12-03 (Europe/Moscow)\nDAU: 1234 (-3.2% vs day before, n/a vs week before)"
        );
    }
}
