//! Loads each metric's history from ClickHouse, forecasts it and writes the
//! report text.

use std::time::Instant;

use chrono::{DateTime, Utc};
use seismo_forecast::clickhouse_source::{ClickHouseSettings, load_series};
use seismo_forecast::metric_query::{MetricDefinition, SeriesQuery};
use seismo_forecast::{EventDates, ForecastOptions, ForecastResult, Series, forecast, forecast_report_text};
use tracing::{info, warn};

use super::settings::ForecastReportSettings;
use crate::message_split::MAX_MESSAGE_UTF16;

/// The forecast of one metric, or why there is none.
#[derive(Debug, Clone)]
pub struct MetricForecast {
    pub metric: String,
    /// The history the model was fitted to and its forecast, or an error
    /// text naming what failed (e.g. a history too short to fit).
    pub outcome: Result<(Series, ForecastResult), String>,
}

/// Loads and forecasts every configured metric with history up to the start
/// of the bucket containing `now`. A metric that fails gets its error in
/// its [`MetricForecast`] and does not stop the others.
pub async fn forecast_metrics(
    source: &ClickHouseSettings,
    settings: &ForecastReportSettings,
    now: DateTime<Utc>,
) -> Vec<MetricForecast> {
    let mut forecasts = Vec::with_capacity(settings.metrics.len());
    for metric in &settings.metrics {
        let started = Instant::now();
        let outcome = forecast_metric(source, settings, metric, now).await;
        match &outcome {
            Ok((series, _)) => info!(
                metric = %metric,
                history_points = series.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "metric forecast"
            ),
            Err(error) => warn!(metric = %metric, error = %error, "forecasting a report metric failed"),
        }
        forecasts.push(MetricForecast {
            metric: metric.clone(),
            outcome,
        });
    }
    forecasts
}

async fn forecast_metric(
    source: &ClickHouseSettings,
    settings: &ForecastReportSettings,
    metric: &str,
    now: DateTime<Utc>,
) -> Result<(Series, ForecastResult), String> {
    let query = SeriesQuery {
        metric: MetricDefinition::by_name(metric)?,
        granularity: settings.granularity,
        slice: Vec::new(),
        from: now - SeriesQuery::default_lookback(settings.granularity),
        to: SeriesQuery::default_end(settings.granularity, now),
    };
    let series = load_series(source, &query).await.map_err(|error| error.to_string())?;

    let options = ForecastOptions {
        horizon: settings.horizon,
        level: settings.level,
        event_dates: EventDates::default(),
    };
    // Fitting MSTL is CPU-bound, so it runs off the async workers.
    tokio::task::spawn_blocking(move || {
        let result = forecast(&series, &options).map_err(|error| error.to_string())?;
        Ok((series, result))
    })
    .await
    .map_err(|error| format!("the forecast task failed: {error}"))?
}

/// Writes the report: a title line, then each metric's forecast as
/// [`forecast_report_text`] writes it, or its error.
pub fn format_forecast_report(forecasts: &[MetricForecast], history_end: DateTime<Utc>) -> String {
    let mut text = format!(
        "Forecast report, history up to {}\n",
        history_end.format("%Y-%m-%d %H:%M UTC")
    );
    for forecast in forecasts {
        text.push('\n');
        match &forecast.outcome {
            Ok((_, result)) => text.push_str(&forecast_report_text(&forecast.metric, "", result)),
            Err(error) => text.push_str(&format!("📈 Forecast: {} (total) failed: {error}\n", forecast.metric)),
        }
    }
    text
}

/// Splits `text` at line ends into messages that Telegram accepts. A single
/// line longer than a message is cut.
pub fn split_into_messages(text: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.lines() {
        let line = truncate_utf16(line, MAX_MESSAGE_UTF16);
        let line_len = line.encode_utf16().count() + 1;
        if current_len + line_len > MAX_MESSAGE_UTF16 && !current.trim().is_empty() {
            messages.push(std::mem::take(&mut current));
            current_len = 0;
        }
        current.push_str(line);
        current.push('\n');
        current_len += line_len;
    }
    if !current.trim().is_empty() {
        messages.push(current);
    }
    messages
}

/// Returns the longest prefix of `line` of at most `max` UTF-16 units minus
/// one, which leaves room for the line end.
fn truncate_utf16(line: &str, max: usize) -> &str {
    let mut units = 0;
    for (index, character) in line.char_indices() {
        units += character.len_utf16();
        if units >= max {
            return &line[..index];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use seismo_forecast::{ForecastStep, Granularity};

    use super::*;

    fn daily_result(points: &[f64]) -> ForecastResult {
        let start: DateTime<Utc> = "2026-12-07T00:00:00Z".parse().unwrap();
        ForecastResult {
            granularity: Granularity::Day,
            level: 0.95,
            periods: vec![7],
            training_points: 28,
            masked_points: 0,
            event_effect: None,
            interval_scale: None,
            steps: points
                .iter()
                .enumerate()
                .map(|(index, &point)| ForecastStep {
                    time: start + Granularity::Day.step() * index as i32,
                    point,
                    lower: point - 5.0,
                    upper: point + 5.0,
                    flagged: false,
                })
                .collect(),
        }
    }

    #[test]
    fn report_shows_forecasts_and_errors() {
        let series = Series::new("2026-11-09T00:00:00Z".parse().unwrap(), Granularity::Day, vec![1.0; 28]);
        let forecasts = [
            MetricForecast {
                metric: "views".to_string(),
                outcome: Ok((series, daily_result(&[120.0, 130.0]))),
            },
            MetricForecast {
                metric: "count:signup".to_string(),
                outcome: Err("the series has 3 points but needs at least 14".to_string()),
            },
        ];

        let text = format_forecast_report(&forecasts, "2026-12-07T00:00:00Z".parse().unwrap());

        assert!(
            text.starts_with("Forecast report, history up to 2026-12-07 00:00 UTC\n"),
            "{text}"
        );
        assert!(text.contains("📈 Forecast: views (total), next 2 days\n"), "{text}");
        assert!(text.contains("Mon 2026-12-07: 120 (95% range 115 – 125)"), "{text}");
        assert!(
            text.contains("📈 Forecast: count:signup (total) failed: the series has 3 points"),
            "{text}"
        );
    }

    #[test]
    fn long_text_splits_at_lines() {
        let line = "x".repeat(1000);
        let text = [line.as_str(); 9].join("\n");

        let messages = split_into_messages(&text);

        assert_eq!(messages.len(), 3);
        assert!(
            messages
                .iter()
                .all(|message| message.encode_utf16().count() <= MAX_MESSAGE_UTF16)
        );
        assert_eq!(messages.concat(), format!("{text}\n"));
    }

    #[test]
    fn overlong_line_is_cut() {
        let text = "é".repeat(5000);

        let messages = split_into_messages(&text);

        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].encode_utf16().count(), MAX_MESSAGE_UTF16);
    }
}
