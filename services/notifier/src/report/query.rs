//! Reads the report metrics per local day from the ClickHouse events table.

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

use super::metrics::ReportMetric;
use super::schedule::day_bounds;

/// Connection to the events table.
#[derive(Clone)]
pub struct EventsTable {
    client: clickhouse::Client,
    /// `database.table`, such as `seismo.events`.
    table: String,
}

/// Metric values per day: `values[metric][day]`, `None` for a day without
/// events or with a non-finite result (such as a ratio over zero).
#[derive(Debug, Clone, PartialEq)]
pub struct DailyValues {
    /// Consecutive local days, oldest first.
    pub days: Vec<NaiveDate>,
    pub values: Vec<Vec<Option<f64>>>,
}

impl EventsTable {
    /// Connects lazily to ClickHouse at `url` (HTTP interface). `table` is
    /// `database.table` or a table of `database`. Row validation is off,
    /// because ClickHouse before 19 lacks the RowBinaryWithNamesAndTypes
    /// format the client validates with.
    pub fn new(
        url: &str,
        database: &str,
        table: &str,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Result<Self, String> {
        let valid = |name: &str| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let (database, table) = match table.split_once('.') {
            Some((database, table)) => (database, table),
            None => (database, table),
        };
        if !valid(database) || !valid(table) {
            return Err(format!(
                "invalid events table `{database}.{table}`: database and table names contain only letters, digits and `_`"
            ));
        }

        let mut client = clickhouse::Client::default().with_url(url).with_validation(false);
        if let Some(user) = user {
            client = client.with_user(user);
        }
        if let Some(password) = password {
            client = client.with_password(password);
        }
        Ok(Self {
            client,
            table: format!("`{database}`.`{table}`"),
        })
    }

    /// Computes every metric for each local day from `first` to `last`
    /// (inclusive) in `time_zone`, in one query.
    pub async fn daily_values(
        &self,
        metrics: &[ReportMetric],
        first: NaiveDate,
        last: NaiveDate,
        time_zone: Tz,
    ) -> Result<DailyValues, String> {
        let sql = daily_values_sql(&self.table, metrics, first, last, time_zone);
        let mut cursor = self
            .client
            .query(&sql)
            .fetch_bytes("TabSeparated")
            .map_err(|error| format!("starting the report query failed: {error}"))?;
        let bytes = cursor
            .collect()
            .await
            .map_err(|error| format!("the report query on {} failed: {error}", self.table))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| "ClickHouse returned a report that is not UTF-8".to_string())?;
        parse_daily_values(&text, metrics.len(), first, last)
    }
}

/// Builds the query: one row per local day with one `Float64` per metric.
pub fn daily_values_sql(
    table: &str,
    metrics: &[ReportMetric],
    first: NaiveDate,
    last: NaiveDate,
    time_zone: Tz,
) -> String {
    let (start, _) = day_bounds(first, time_zone);
    let (_, end) = day_bounds(last, time_zone);
    let columns: Vec<String> = metrics
        .iter()
        .enumerate()
        .map(|(index, metric)| format!("toFloat64({}) AS m{index}", metric.expression))
        .collect();
    // The time zone name comes from chrono-tz's list of IANA names, so it
    // contains no quote.
    format!(
        "SELECT toString(toDate(event_time, '{zone}')) AS day, {columns} FROM {table} \
         WHERE event_time >= toDateTime({start}) AND event_time < toDateTime({end}) \
         GROUP BY day ORDER BY day",
        zone = time_zone.name(),
        columns = columns.join(", "),
        start = start.timestamp(),
        end = end.timestamp(),
    )
}

/// Parses the query's TabSeparated rows into one value per metric and day.
pub fn parse_daily_values(
    text: &str,
    metric_count: usize,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<DailyValues, String> {
    let mut days = Vec::new();
    let mut day = first;
    while day <= last {
        days.push(day);
        day = day + Days::new(1);
    }
    let mut values = vec![vec![None; days.len()]; metric_count];

    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split('\t');
        let day_text = fields.next().unwrap_or_default();
        let day = NaiveDate::parse_from_str(day_text, "%Y-%m-%d")
            .map_err(|_| format!("the report query returned an invalid day `{day_text}`"))?;
        let Some(position) = days.iter().position(|known| *known == day) else {
            continue;
        };
        for (metric, field) in fields.enumerate().take(metric_count) {
            let value: f64 = field
                .parse()
                .map_err(|_| format!("the report query returned a non-number `{field}` for metric {metric}"))?;
            values[metric][position] = value.is_finite().then_some(value);
        }
    }
    Ok(DailyValues { days, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, day).unwrap()
    }

    #[test]
    fn sql_covers_local_days() {
        let metrics = vec![ReportMetric {
            name: "DAU".to_string(),
            expression: "uniqExact(user_id)".to_string(),
        }];

        let sql = daily_values_sql(
            "`seismo`.`events`",
            &metrics,
            date(1),
            date(2),
            chrono_tz::Europe::Moscow,
        );

        // 1 December 2026 00:00 in Moscow is 30 November 21:00 UTC, and the
        // range ends at 3 December 00:00 in Moscow.
        assert!(sql.contains("event_time >= toDateTime(1796072400)"), "{sql}");
        assert!(sql.contains("event_time < toDateTime(1796245200)"), "{sql}");
        assert!(sql.contains("toFloat64(uniqExact(user_id)) AS m0"), "{sql}");
        assert!(sql.contains("toDate(event_time, 'Europe/Moscow')"), "{sql}");
    }

    #[test]
    fn rows_fill_their_days() {
        let text = "2026-12-01\t10\tnan\n2026-12-03\t30\t0.5\n";

        let daily = parse_daily_values(text, 2, date(1), date(3)).unwrap();

        assert_eq!(daily.days, vec![date(1), date(2), date(3)]);
        assert_eq!(daily.values[0], vec![Some(10.0), None, Some(30.0)]);
        assert_eq!(daily.values[1], vec![None, None, Some(0.5)]);
    }

    #[test]
    fn bad_rows_are_errors() {
        assert!(parse_daily_values("yesterday\t1\n", 1, date(1), date(3)).is_err());
        assert!(parse_daily_values("2026-12-01\tmany\n", 1, date(1), date(3)).is_err());
    }

    #[test]
    fn table_names_are_checked() {
        assert!(EventsTable::new("http://127.0.0.1:8123", "seismo", "events", None, None).is_ok());
        assert!(EventsTable::new("http://127.0.0.1:8123", "seismo", "other.events", None, None).is_ok());
        assert!(EventsTable::new("http://127.0.0.1:8123", "seismo", "events; DROP", None, None).is_err());
    }
}
