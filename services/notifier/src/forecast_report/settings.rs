//! Options of the weekly forecast report and their parsing.

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use seismo_forecast::Granularity;
use seismo_forecast::metric_query::MetricDefinition;

use crate::config::ChatTarget;

/// Command-line options of the forecast report. The ClickHouse connection,
/// the time zone and the chats are the daily report's.
#[derive(Debug, Clone, clap::Args)]
pub struct ForecastReportArgs {
    /// Send the forecast report every week on --forecast-report-day at --forecast-report-time;
    /// `/forecast` and `forecast-report --now` work without it.
    #[arg(long, env = "SEISMO_FORECAST_REPORT_WEEKLY")]
    pub forecast_report_weekly: bool,

    /// Weekday of the weekly forecast report, such as Mon or Friday.
    #[arg(long, env = "SEISMO_FORECAST_REPORT_DAY", default_value = "Mon")]
    pub forecast_report_day: String,

    /// Local time of the weekly forecast report (HH:MM in --time-zone).
    #[arg(long, env = "SEISMO_FORECAST_REPORT_TIME", default_value = "10:00")]
    pub forecast_report_time: String,

    /// Metrics to forecast, comma-separated: views, likes, messages_sent, active_users, ctr or
    /// count:<event>.
    #[arg(long, env = "SEISMO_FORECAST_REPORT_METRICS", default_value = "views,active_users")]
    pub forecast_report_metrics: String,

    /// Bucket of the forecast series: `day` or `hour` (UTC days or hours).
    #[arg(long, env = "SEISMO_FORECAST_REPORT_GRANULARITY", default_value = "day")]
    pub forecast_report_granularity: String,

    /// Forecast steps, in buckets of --forecast-report-granularity.
    #[arg(long, env = "SEISMO_FORECAST_REPORT_HORIZON", default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(1..=400))]
    pub forecast_report_horizon: u32,

    /// Coverage probability of the prediction interval, between 0 and 1.
    #[arg(long, env = "SEISMO_FORECAST_REPORT_LEVEL", default_value_t = 0.95)]
    pub forecast_report_level: f64,
}

/// Parsed contents and schedule of the forecast report.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastReportSettings {
    /// Metric names as written in the options, which label the report.
    pub metrics: Vec<String>,
    pub granularity: Granularity,
    pub horizon: usize,
    pub level: f64,
    /// Whether the report runs on its weekly schedule.
    pub weekly: bool,
    pub weekday: Weekday,
    /// Local time of the scheduled report in `time_zone`.
    pub send_at: NaiveTime,
    pub time_zone: Tz,
    pub chats: Vec<ChatTarget>,
}

impl ForecastReportArgs {
    /// Checks and converts the options; `time_zone` and `chats` come from
    /// the daily report's options.
    pub fn settings(&self, time_zone: Tz, chats: Vec<ChatTarget>) -> Result<ForecastReportSettings, String> {
        let metrics = parse_metric_list(&self.forecast_report_metrics)?;
        let granularity: Granularity = self
            .forecast_report_granularity
            .trim()
            .parse()
            .map_err(|error| format!("invalid SEISMO_FORECAST_REPORT_GRANULARITY: {error}"))?;
        let level = self.forecast_report_level;
        if !(level > 0.0 && level < 1.0) {
            return Err(format!(
                "invalid SEISMO_FORECAST_REPORT_LEVEL {level}: expected a probability between 0 and 1 such as 0.95"
            ));
        }
        let weekday: Weekday = self.forecast_report_day.trim().parse().map_err(|_| {
            format!(
                "invalid SEISMO_FORECAST_REPORT_DAY `{}`: expected a weekday such as Mon or Monday",
                self.forecast_report_day
            )
        })?;
        let send_at = NaiveTime::parse_from_str(self.forecast_report_time.trim(), "%H:%M").map_err(|_| {
            format!(
                "invalid SEISMO_FORECAST_REPORT_TIME `{}`: expected HH:MM such as 10:00",
                self.forecast_report_time
            )
        })?;

        Ok(ForecastReportSettings {
            metrics,
            granularity,
            horizon: self.forecast_report_horizon as usize,
            level,
            weekly: self.forecast_report_weekly,
            weekday,
            send_at,
            time_zone,
            chats,
        })
    }
}

/// Splits a comma-separated metric list and checks each name against the
/// metrics seismo-forecast can query.
fn parse_metric_list(list: &str) -> Result<Vec<String>, String> {
    let metrics: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if metrics.is_empty() {
        return Err("SEISMO_FORECAST_REPORT_METRICS is empty: name at least one metric, such as views".to_string());
    }
    for name in &metrics {
        MetricDefinition::by_name(name).map_err(|error| format!("invalid SEISMO_FORECAST_REPORT_METRICS: {error}"))?;
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct TestCommandLine {
        #[command(flatten)]
        forecast: ForecastReportArgs,
    }

    fn settings(options: &[&str]) -> Result<ForecastReportSettings, String> {
        let command_line = std::iter::once("seismo-notifier").chain(options.iter().copied());
        TestCommandLine::parse_from(command_line)
            .forecast
            .settings(chrono_tz::UTC, vec![ChatTarget::Id(-1)])
    }

    #[test]
    fn defaults_are_monday_views_and_users() {
        let settings = settings(&[]).unwrap();

        assert_eq!(settings.metrics, ["views", "active_users"]);
        assert_eq!(settings.granularity, Granularity::Day);
        assert_eq!(settings.horizon, 7);
        assert_eq!(settings.level, 0.95);
        assert!(!settings.weekly);
        assert_eq!(settings.weekday, Weekday::Mon);
        assert_eq!(settings.send_at, NaiveTime::from_hms_opt(10, 0, 0).unwrap());
    }

    #[test]
    fn options_set_schedule_and_metrics() {
        let settings = settings(&[
            "--forecast-report-weekly",
            "--forecast-report-day=friday",
            "--forecast-report-time=09:30",
            "--forecast-report-metrics=ctr, count:signup",
            "--forecast-report-granularity=hour",
            "--forecast-report-horizon=48",
            "--forecast-report-level=0.8",
        ])
        .unwrap();

        assert!(settings.weekly);
        assert_eq!(settings.weekday, Weekday::Fri);
        assert_eq!(settings.send_at, NaiveTime::from_hms_opt(9, 30, 0).unwrap());
        assert_eq!(settings.metrics, ["ctr", "count:signup"]);
        assert_eq!(settings.granularity, Granularity::Hour);
        assert_eq!(settings.horizon, 48);
        assert_eq!(settings.level, 0.8);
    }

    #[test]
    fn invalid_options_are_rejected() {
        for (option, named) in [
            ("--forecast-report-day=someday", "SEISMO_FORECAST_REPORT_DAY"),
            ("--forecast-report-time=10am", "SEISMO_FORECAST_REPORT_TIME"),
            ("--forecast-report-metrics=revenue", "SEISMO_FORECAST_REPORT_METRICS"),
            ("--forecast-report-metrics= , ", "SEISMO_FORECAST_REPORT_METRICS"),
            (
                "--forecast-report-granularity=week",
                "SEISMO_FORECAST_REPORT_GRANULARITY",
            ),
            ("--forecast-report-level=1.5", "SEISMO_FORECAST_REPORT_LEVEL"),
        ] {
            let error = settings(&[option]).unwrap_err();
            assert!(error.contains(named), "{option}: {error}");
        }
    }
}
