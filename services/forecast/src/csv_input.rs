//! Series from a `time,value` CSV file, for forecasts without ClickHouse.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::{Granularity, Series, interpolate_gaps};

/// A series read from CSV and how many buckets had no row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSeries {
    pub series: Series,
    /// Buckets between the first and last row without a row of their own,
    /// filled by linear interpolation.
    pub interpolated: usize,
}

/// Parses `time,value` rows. A first row whose value is not a number is
/// taken as a header. Times are RFC 3339 (`2026-01-05T13:00:00Z`),
/// `YYYY-MM-DD HH:MM:SS` in UTC, `YYYY-MM-DD` or Unix epoch seconds. They
/// are truncated to their bucket, and two rows in one bucket are an error. Missing
/// buckets are interpolated, because a file does not tell whether a gap
/// means zero or no data.
pub fn parse_series_csv(text: &str, granularity: Granularity) -> Result<CsvSeries, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());

    let mut points = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 1;
        let record = record.map_err(|error| format!("row {line}: invalid CSV: {error}"))?;
        let (Some(time_text), Some(value_text)) = (record.get(0), record.get(1)) else {
            return Err(format!("row {line}: expected two columns, time and value"));
        };

        let Ok(value) = value_text.parse::<f64>() else {
            if index == 0 {
                continue; // A header such as `time,value`.
            }
            return Err(format!("row {line}: value `{value_text}` is not a number"));
        };
        let time = parse_time(time_text).ok_or_else(|| {
            format!("row {line}: time `{time_text}` is not RFC 3339, YYYY-MM-DD HH:MM:SS, YYYY-MM-DD or epoch seconds")
        })?;
        // Summing would be right for counts but wrong for rates, so a file
        // finer than the granularity is rejected rather than guessed at.
        if !seen.insert(granularity.bucket_start(time)) {
            return Err(format!(
                "row {line}: a second value for the {granularity} starting {}; \
                 aggregate the file to one row per {granularity} first",
                granularity.bucket_start(time)
            ));
        }
        points.push((time, value));
    }

    let mut series =
        Series::from_points(granularity, points, f64::NAN).ok_or_else(|| "the file has no data rows".to_string())?;
    let missing = series.values.iter().filter(|value| value.is_nan()).count();
    interpolate_gaps(&mut series.values);
    Ok(CsvSeries {
        series,
        interpolated: missing,
    })
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(time.and_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    text.parse::<i64>()
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_formats_and_gaps() {
        let text = "time,value\n2026-01-01T00:00:00Z,1\n2026-01-01 01:00:00,2\n# a comment\n1767232800,3\n2026-01-01T05:30:00Z,6\n";

        let parsed = parse_series_csv(text, Granularity::Hour).unwrap();

        assert_eq!(parsed.series.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(parsed.interpolated, 2);
    }

    #[test]
    fn bad_value_names_row() {
        let error = parse_series_csv("2026-01-01,1\n2026-01-02,x\n", Granularity::Day).unwrap_err();

        assert_eq!(error, "row 2: value `x` is not a number");
    }

    #[test]
    fn bad_time_names_row() {
        let error = parse_series_csv("yesterday,1\n", Granularity::Day).unwrap_err();

        assert!(error.starts_with("row 1: time `yesterday`"), "{error}");
    }

    #[test]
    fn second_row_in_bucket_is_rejected() {
        let error = parse_series_csv("2026-01-01 10:00:00,1\n2026-01-01 10:30:00,2\n", Granularity::Hour).unwrap_err();

        assert!(
            error.starts_with("row 2: a second value for the hour starting 2026-01-01 10:00:00 UTC"),
            "{error}"
        );
    }

    #[test]
    fn header_only_is_rejected() {
        assert_eq!(
            parse_series_csv("time,value\n", Granularity::Day).unwrap_err(),
            "the file has no data rows"
        );
    }
}
