//! The `forecast` and `backtest` commands: load the series, run the maths,
//! render the result.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::cli::{BacktestArgs, ForecastArgs, SeriesArgs, default_window};
use crate::clickhouse_source::load_series;
use crate::csv_input::parse_series_csv;
use crate::metric_query::{MetricDefinition, SeriesQuery};
use crate::output::{render_backtest, render_forecast};
use crate::report::forecast_report_text;
use crate::{BacktestOptions, EventDates, ForecastOptions, Series, backtest, forecast};

/// Runs `forecast` and returns the text to print.
pub async fn run_forecast(args: ForecastArgs) -> anyhow::Result<String> {
    let (series, label) = load_cli_series(&args.series, Utc::now()).await?;
    let event_dates = read_event_dates(args.holidays.as_deref())?;
    let options = ForecastOptions {
        horizon: args.horizon,
        level: args.level,
        event_dates,
    };

    let result = tokio::task::spawn_blocking(move || forecast(&series, &options))
        .await
        .context("forecast task panicked")??;

    if args.report {
        let slice = slice_label(&args.series.slice);
        return Ok(forecast_report_text(&label, &slice, &result));
    }
    Ok(render_forecast(&result, args.format))
}

/// Runs `backtest` and returns the text to print.
pub async fn run_backtest(args: BacktestArgs) -> anyhow::Result<String> {
    let (series, _) = load_cli_series(&args.series, Utc::now()).await?;
    let options = BacktestOptions {
        horizon: args.horizon,
        step: args.step.unwrap_or(args.horizon),
        window: args.window.unwrap_or_else(|| default_window(series.granularity)),
        origins: args.origins,
        level: args.level,
        event_dates: read_event_dates(args.holidays.as_deref())?,
    };

    let report = tokio::task::spawn_blocking(move || backtest(&series, &options))
        .await
        .context("backtest task panicked")??;
    Ok(render_backtest(&report, args.format))
}

/// Loads the series from the CSV file or ClickHouse, with a label naming
/// the metric or the file.
pub async fn load_cli_series(args: &SeriesArgs, now: DateTime<Utc>) -> anyhow::Result<(Series, String)> {
    if let Some(path) = &args.input {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the series file {}; check the --input path", path.display()))?;
        let parsed = parse_series_csv(&text, args.granularity)
            .map_err(|error| anyhow::anyhow!("invalid series file {}: {error}", path.display()))?;
        if parsed.interpolated > 0 {
            tracing::warn!(
                file = %path.display(),
                interpolated = parsed.interpolated,
                "buckets without a row were filled by linear interpolation"
            );
        }
        return Ok((parsed.series, path.display().to_string()));
    }

    let metric_name = args.metric.clone().context("either --metric or --input is required")?;
    let metric = MetricDefinition::by_name(&metric_name).map_err(anyhow::Error::msg)?;
    let to = args
        .to
        .unwrap_or_else(|| SeriesQuery::default_end(args.granularity, now));
    let from = args
        .from
        .unwrap_or_else(|| to - SeriesQuery::default_lookback(args.granularity));
    let query = SeriesQuery {
        metric,
        granularity: args.granularity,
        slice: args.slice.clone(),
        from,
        to,
    };

    let series = load_series(&args.clickhouse.settings(), &query).await?;
    tracing::info!(
        metric = %metric_name,
        granularity = %args.granularity,
        points = series.len(),
        start = %series.start,
        "loaded series from ClickHouse"
    );
    Ok((series, metric_name))
}

/// Reads the holiday file, or returns no dates without one.
pub fn read_event_dates(path: Option<&Path>) -> anyhow::Result<EventDates> {
    let Some(path) = path else {
        return Ok(EventDates::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the holidays file {}; check the --holidays path",
            path.display()
        )
    })?;
    EventDates::parse(&text).map_err(|error| anyhow::anyhow!("invalid holidays file {}: {error}", path.display()))
}

/// `os=iOS, source=ads`, or empty for the total.
pub fn slice_label(slice: &[(String, String)]) -> String {
    slice
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}
