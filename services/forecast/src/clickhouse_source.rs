//! Loads metric series from the events table in ClickHouse.

use std::time::{Duration, Instant};

use chrono::DateTime;
use clickhouse::sql::Identifier;

use crate::metric_query::{MetricDefinition, SeriesQuery, SqlArgument, series_sql};
use crate::{Series, interpolate_gaps};

/// Reason a series cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid series query: {0}")]
    InvalidQuery(String),

    #[error("{0}")]
    NoEvents(String),

    #[error("{0}")]
    TimedOut(String),

    #[error("{0}")]
    ClickHouse(String),
}

/// Connection settings and location of the events table.
#[derive(Clone)]
pub struct ClickHouseSettings {
    pub url: String,
    pub user: Option<String>,
    /// Kept out of `Debug` output and logs.
    pub password: Option<String>,
    pub database: String,
    pub table: String,
    /// Limit for one series query.
    pub timeout: Duration,
}

impl std::fmt::Debug for ClickHouseSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClickHouseSettings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClickHouseSettings {
    /// Builds a client without row validation, which ClickHouse 18.16 needs
    /// because it lacks the RowBinaryWithNamesAndTypes format the validation
    /// reads.
    pub fn client(&self) -> clickhouse::Client {
        let mut client = clickhouse::Client::default().with_url(&self.url).with_validation(false);
        if let Some(user) = &self.user {
            client = client.with_user(user);
        }
        if let Some(password) = &self.password {
            client = client.with_password(password);
        }
        client
    }
}

/// Runs the metric query and returns the series from the first bucket with
/// events to the bucket before `query.to`, after rounding both bounds down
/// to bucket starts. Buckets without events count 0;
/// for a ratio they have no value and are interpolated linearly between
/// their neighbours. Buckets before the first event are left out, because
/// they usually predate the data rather than measure a zero.
pub async fn load_series(settings: &ClickHouseSettings, query: &SeriesQuery) -> Result<Series, LoadError> {
    let query = &query.clone().aligned();
    query.check().map_err(LoadError::InvalidQuery)?;
    let template = series_sql(query, &settings.database, &settings.table);
    let client = settings.client();
    let mut statement = client.query(&template.sql);
    for argument in &template.arguments {
        statement = match argument {
            SqlArgument::Identifier(name) => statement.bind(Identifier(name)),
            SqlArgument::Text(text) => statement.bind(text.as_str()),
            SqlArgument::EpochSeconds(seconds) => statement.bind(*seconds),
        };
    }

    let started = Instant::now();
    let rows: Vec<(u32, f64, f64)> = tokio::time::timeout(settings.timeout, statement.fetch_all())
        .await
        .map_err(|_| {
            LoadError::TimedOut(format!(
                "ClickHouse query of {}.{} timed out after {:?}; narrow the history or raise --clickhouse-timeout",
                settings.database, settings.table, settings.timeout
            ))
        })?
        .map_err(|error| {
            LoadError::ClickHouse(format!(
                "ClickHouse query of {}.{} at {} failed: {error}",
                settings.database, settings.table, settings.url
            ))
        })?;
    tracing::debug!(
        rows = rows.len(),
        duration_ms = started.elapsed().as_millis() as u64,
        database = %settings.database,
        "loaded metric buckets"
    );

    warn_on_stale_tail(query, &rows, settings);

    series_from_rows(query, &rows).ok_or_else(|| {
        LoadError::NoEvents(format!(
            "no events for {} in {}.{} between {} and {}; check the metric, slice, database and time range",
            describe_series(query),
            settings.database,
            settings.table,
            query.from,
            query.to
        ))
    })
}

/// Names the metric and slice of `query` for error messages, e.g.
/// "`view` events (os=iOS)".
fn describe_series(query: &SeriesQuery) -> String {
    let metric = match &query.metric {
        MetricDefinition::Count { event } => format!("`{event}` events"),
        MetricDefinition::UniqueUsers { events } => format!("users with {}", events.join(", ")),
        MetricDefinition::Ratio { numerator, denominator } => format!("{numerator} / {denominator}"),
    };
    let slice = if query.slice.is_empty() {
        "total".to_string()
    } else {
        let filters: Vec<String> = query
            .slice
            .iter()
            .map(|(dimension, value)| format!("{dimension}={value}"))
            .collect();
        filters.join(", ")
    };
    format!("{metric} ({slice})")
}

/// Warns when the range ends a day or more after the last event: those
/// buckets count as zeros, and a forecast from such a tail is usually
/// a forecast of stale data, not of a metric that fell to zero.
fn warn_on_stale_tail(query: &SeriesQuery, rows: &[(u32, f64, f64)], settings: &ClickHouseSettings) {
    let Some((last_bucket, empty_tail)) = stale_tail(query, rows) else {
        return;
    };

    let last_event_bucket = DateTime::from_timestamp(last_bucket, 0).unwrap_or_default();
    tracing::warn!(
        empty_buckets = empty_tail,
        last_bucket_with_events = %last_event_bucket,
        range_end = %query.to,
        database = %settings.database,
        "the range ends {empty_tail} buckets after the last bucket with events, and those buckets count as zeros; \
         if the data stopped there, end the range at the data with --to"
    );
}

/// Returns the last bucket with events (epoch seconds) and the number of
/// empty buckets after it up to `query.to`, when they span a day or more.
fn stale_tail(query: &SeriesQuery, rows: &[(u32, f64, f64)]) -> Option<(i64, i64)> {
    let last_bucket = rows.iter().map(|&(bucket, _, _)| i64::from(bucket)).max()?;
    let step = query.granularity.step_seconds();
    let empty_tail = (query.to.timestamp() - last_bucket) / step - 1;
    (empty_tail * step >= 86_400).then_some((last_bucket, empty_tail))
}

/// Turns `(bucket epoch seconds, numerator, denominator)` rows into a
/// series, as [`load_series`] describes. Returns `None` for no rows.
pub fn series_from_rows(query: &SeriesQuery, rows: &[(u32, f64, f64)]) -> Option<Series> {
    let is_ratio = query.metric.is_ratio();
    let missing = if is_ratio { f64::NAN } else { 0.0 };
    let points = rows.iter().map(|&(bucket, numerator, denominator)| {
        let time = DateTime::from_timestamp(i64::from(bucket), 0).unwrap_or_default();
        let value = if denominator > 0.0 {
            numerator / denominator
        } else {
            f64::NAN
        };
        (time, value)
    });

    let mut series = Series::from_points(query.granularity, points, missing)?;
    series.extend_until(query.to, missing);
    if is_ratio {
        interpolate_gaps(&mut series.values);
    }
    Some(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Granularity;
    use crate::metric_query::MetricDefinition;

    fn query(metric: &str) -> SeriesQuery {
        SeriesQuery {
            metric: MetricDefinition::by_name(metric).unwrap(),
            granularity: Granularity::Hour,
            slice: Vec::new(),
            from: "2026-01-01T00:00:00Z".parse().unwrap(),
            to: "2026-01-01T05:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn stale_tail_reported_from_one_day() {
        let mut query = query("views");
        query.to = "2026-01-03T00:00:00Z".parse().unwrap();
        let hour = |h: u32| 1_767_225_600 + h * 3_600;

        // Last event bucket 2026-01-01 23:00: 24 empty hours follow.
        assert_eq!(
            stale_tail(&query, &[(hour(0), 1.0, 0.0), (hour(23), 1.0, 0.0)]),
            Some((i64::from(hour(23)), 24))
        );
        // Last event bucket 2026-01-02 01:00: 22 empty hours, less than a day.
        assert_eq!(stale_tail(&query, &[(hour(25), 1.0, 0.0)]), None);
        assert_eq!(stale_tail(&query, &[]), None);
    }

    #[test]
    fn counts_fill_gaps_and_tail_with_zero() {
        // 2026-01-01T01:00Z and 03:00Z.
        let rows = [(1_767_229_200, 4.0, 1.0), (1_767_236_400, 6.0, 1.0)];

        let series = series_from_rows(&query("views"), &rows).unwrap();

        assert_eq!(
            series.start,
            "2026-01-01T01:00:00Z".parse::<DateTime<chrono::Utc>>().unwrap()
        );
        assert_eq!(series.values, vec![4.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn ratio_interpolates_empty_buckets() {
        let rows = [(1_767_229_200, 1.0, 10.0), (1_767_236_400, 3.0, 10.0)];

        let series = series_from_rows(&query("ctr"), &rows).unwrap();

        assert_eq!(series.values.len(), 4);
        assert!((series.values[1] - 0.2).abs() < 1e-12, "{:?}", series.values);
        assert!((series.values[3] - 0.3).abs() < 1e-12, "{:?}", series.values);
    }

    #[test]
    fn no_rows_is_none() {
        assert!(series_from_rows(&query("views"), &[]).is_none());
    }

    #[test]
    fn debug_hides_password() {
        let settings = ClickHouseSettings {
            url: "http://127.0.0.1:8123".to_string(),
            user: Some("default".to_string()),
            password: Some("secret-value".to_string()),
            database: "seismo".to_string(),
            table: "events".to_string(),
            timeout: Duration::from_secs(1),
        };

        assert!(!format!("{settings:?}").contains("secret-value"));
    }
}
