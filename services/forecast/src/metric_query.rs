//! Metrics as SQL over the events table: which events, which aggregate and
//! which slice. The SQL is plain enough for ClickHouse 18.16.

use chrono::{DateTime, TimeDelta, Utc};
use seismo_events::DIMENSION_FIELDS;

use crate::Granularity;

/// Aggregation of a metric's events within one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricDefinition {
    /// Number of events of one type.
    Count { event: String },
    /// Distinct `user_id`s with any of the events.
    UniqueUsers { events: Vec<String> },
    /// Count of `numerator` events divided by the count of `denominator`
    /// events; undefined in a bucket without `denominator` events.
    Ratio { numerator: String, denominator: String },
}

/// Metric names accepted besides `count:<event>`, as defined in
/// deploy/config/metrics.toml.
pub const BUILTIN_METRICS: &[&str] = &["views", "likes", "messages_sent", "active_users", "ctr"];

impl MetricDefinition {
    /// Resolves a metric name: one of [`BUILTIN_METRICS`] or `count:<event>`
    /// for the count of any event type.
    pub fn by_name(name: &str) -> Result<MetricDefinition, String> {
        let count = |event: &str| MetricDefinition::Count {
            event: event.to_string(),
        };
        match name {
            "views" => Ok(count("view")),
            "likes" => Ok(count("like")),
            "messages_sent" => Ok(count("message")),
            "active_users" => Ok(MetricDefinition::UniqueUsers {
                events: vec!["view".to_string(), "like".to_string(), "message".to_string()],
            }),
            "ctr" => Ok(MetricDefinition::Ratio {
                numerator: "like".to_string(),
                denominator: "view".to_string(),
            }),
            other => match other.strip_prefix("count:") {
                Some(event) if !event.is_empty() => Ok(count(event)),
                _ => Err(format!(
                    "unknown metric `{other}`; use one of {} or count:<event>",
                    BUILTIN_METRICS.join(", ")
                )),
            },
        }
    }

    pub fn is_ratio(&self) -> bool {
        matches!(self, MetricDefinition::Ratio { .. })
    }

    fn events(&self) -> Vec<&str> {
        match self {
            MetricDefinition::Count { event } => vec![event],
            MetricDefinition::UniqueUsers { events } => events.iter().map(String::as_str).collect(),
            MetricDefinition::Ratio { numerator, denominator } => vec![numerator, denominator],
        }
    }
}

/// One series to load: a metric of one slice in `[from, to)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    pub metric: MetricDefinition,
    pub granularity: Granularity,
    /// `(dimension, value)` equality filters, all of which must hold.
    pub slice: Vec<(String, String)>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl SeriesQuery {
    /// History length used when no start is given: 28 days of hours (four
    /// weekly cycles) or 365 days.
    pub fn default_lookback(granularity: Granularity) -> TimeDelta {
        match granularity {
            Granularity::Hour => TimeDelta::days(28),
            Granularity::Day => TimeDelta::days(365),
        }
    }

    /// Default end: the start of the bucket containing `now`, so the
    /// incomplete current bucket is left out.
    pub fn default_end(granularity: Granularity, now: DateTime<Utc>) -> DateTime<Utc> {
        granularity.bucket_start(now)
    }

    /// Rounds both bounds down to bucket starts, so the first bucket is
    /// whole and a partly elapsed last bucket is left out.
    pub fn aligned(mut self) -> SeriesQuery {
        self.from = self.granularity.bucket_start(self.from);
        self.to = self.granularity.bucket_start(self.to);
        self
    }

    /// Checks the slice names against the event schema's dimensions.
    pub fn check(&self) -> Result<(), String> {
        for (name, _) in &self.slice {
            if !DIMENSION_FIELDS.contains(&name.as_str()) {
                return Err(format!(
                    "unknown slice dimension `{name}`; use one of {}",
                    DIMENSION_FIELDS.join(", ")
                ));
            }
        }
        if self.from >= self.to {
            return Err(format!(
                "the history start {} is not before its end {}",
                self.from, self.to
            ));
        }
        Ok(())
    }
}

/// SQL with `?` placeholders and the values to bind, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlTemplate {
    pub sql: String,
    pub arguments: Vec<SqlArgument>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SqlArgument {
    Identifier(String),
    Text(String),
    EpochSeconds(u32),
}

/// Builds the query returning `(bucket start in epoch seconds, numerator,
/// denominator)` rows, one per bucket with events, in time order. For
/// counts and unique users the denominator is 1. Call
/// [`SeriesQuery::check`] first.
pub fn series_sql(query: &SeriesQuery, database: &str, table: &str) -> SqlTemplate {
    let mut arguments = Vec::new();
    let bucket = match query.granularity {
        Granularity::Hour => "toStartOfHour(event_time)",
        Granularity::Day => "toStartOfDay(event_time)",
    };

    let values = match &query.metric {
        MetricDefinition::Count { .. } => "toFloat64(count()), toFloat64(1)".to_string(),
        MetricDefinition::UniqueUsers { .. } => "toFloat64(uniqExact(user_id)), toFloat64(1)".to_string(),
        MetricDefinition::Ratio { numerator, denominator } => {
            arguments.push(SqlArgument::Text(numerator.clone()));
            arguments.push(SqlArgument::Text(denominator.clone()));
            "toFloat64(countIf(event = ?)), toFloat64(countIf(event = ?))".to_string()
        }
    };
    arguments.push(SqlArgument::Identifier(database.to_string()));
    arguments.push(SqlArgument::Identifier(table.to_string()));

    let events = query.metric.events();
    let event_placeholders = vec!["?"; events.len()].join(", ");
    arguments.extend(events.iter().map(|event| SqlArgument::Text(event.to_string())));
    arguments.push(SqlArgument::EpochSeconds(
        query.from.timestamp().clamp(0, u32::MAX as i64) as u32,
    ));
    arguments.push(SqlArgument::EpochSeconds(
        query.to.timestamp().clamp(0, u32::MAX as i64) as u32,
    ));

    let mut filters = String::new();
    for (name, value) in &query.slice {
        filters.push_str(" AND ? = ?");
        arguments.push(SqlArgument::Identifier(name.clone()));
        arguments.push(SqlArgument::Text(value.clone()));
    }

    let sql = format!(
        "SELECT toUInt32({bucket}) AS bucket, {values} FROM ?.? \
         WHERE event IN ({event_placeholders}) AND event_time >= toDateTime(?) AND event_time < toDateTime(?){filters} \
         GROUP BY bucket ORDER BY bucket"
    );
    SqlTemplate { sql, arguments }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(metric: &str) -> SeriesQuery {
        SeriesQuery {
            metric: MetricDefinition::by_name(metric).unwrap(),
            granularity: Granularity::Hour,
            slice: vec![("os".to_string(), "iOS".to_string())],
            from: "2026-01-01T00:00:00Z".parse().unwrap(),
            to: "2026-01-02T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn builtin_names_resolve() {
        for name in BUILTIN_METRICS {
            assert!(MetricDefinition::by_name(name).is_ok(), "{name}");
        }
        assert_eq!(
            MetricDefinition::by_name("count:sign_up").unwrap(),
            MetricDefinition::Count {
                event: "sign_up".to_string()
            }
        );
    }

    #[test]
    fn unknown_metric_lists_names() {
        let error = MetricDefinition::by_name("revenue").unwrap_err();

        assert!(error.contains("views, likes"), "{error}");
        assert!(MetricDefinition::by_name("count:").is_err());
    }

    #[test]
    fn ratio_sql_binds_events_and_slice() {
        let template = series_sql(&query("ctr"), "seismo", "events");

        assert!(template.sql.contains("countIf(event = ?)"), "{}", template.sql);
        assert!(template.sql.contains("event IN (?, ?)"), "{}", template.sql);
        assert!(
            template.sql.ends_with("AND ? = ? GROUP BY bucket ORDER BY bucket"),
            "{}",
            template.sql
        );
        assert_eq!(template.sql.matches('?').count(), template.arguments.len());
        assert_eq!(template.arguments[0], SqlArgument::Text("like".to_string()));
        assert_eq!(template.arguments[2], SqlArgument::Identifier("seismo".to_string()));
        assert_eq!(template.arguments[6], SqlArgument::EpochSeconds(1_767_225_600));
        assert_eq!(template.arguments[8], SqlArgument::Identifier("os".to_string()));
    }

    #[test]
    fn aligned_rounds_bounds_down() {
        let mut unaligned = query("views");
        unaligned.from = "2026-01-01T00:30:00Z".parse().unwrap();
        unaligned.to = "2026-01-01T05:59:59Z".parse().unwrap();

        let aligned = unaligned.aligned();

        assert_eq!(aligned.from, "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(aligned.to, "2026-01-01T05:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn unknown_dimension_is_rejected() {
        let mut bad = query("views");
        bad.slice = vec![("browser".to_string(), "x".to_string())];

        let error = bad.check().unwrap_err();

        assert!(error.contains("unknown slice dimension `browser`"), "{error}");
    }
}
