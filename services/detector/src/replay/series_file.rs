//! Reading of NAB-format series files: a `timestamp,value` header, then one
//! row per sample with a `YYYY-MM-DD HH:MM:SS` UTC time and a number.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::NaiveDateTime;

/// One row of a series file, with its text kept for the results file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub timestamp: String,
    pub time_ms: i64,
    pub value_text: String,
    pub value: f64,
}

/// Reads every row of the series file at `path`. Errors name the file, the
/// line and the fix.
pub(crate) fn read_series(path: &Path) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot open series file {}", path.display()))?;

    let header = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the header", path.display()))?;
    let columns: Vec<&str> = header.iter().map(str::trim).collect();
    if columns != ["timestamp", "value"] {
        bail!(
            "{}:1: header is {:?}; a NAB series file starts with the header timestamp,value",
            path.display(),
            header.iter().collect::<Vec<_>>().join(",")
        );
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read {}", path.display()))?;
        let line = record.position().map_or(0, |position| position.line());
        rows.push(parse_row(&record).with_context(|| format!("{}:{line}", path.display()))?);
    }
    Ok(rows)
}

fn parse_row(record: &csv::StringRecord) -> anyhow::Result<Row> {
    if record.len() != 2 {
        bail!(
            "expected 2 columns timestamp,value, found {}; fix or remove the row",
            record.len()
        );
    }

    let timestamp = record[0].trim();
    let time_ms = parse_timestamp_ms(timestamp).with_context(|| {
        format!("invalid timestamp \"{timestamp}\"; write YYYY-MM-DD HH:MM:SS in UTC, e.g. 2014-07-01 00:30:00")
    })?;

    let value_text = record[1].trim();
    let value: f64 = value_text
        .parse()
        .ok()
        .filter(|value: &f64| value.is_finite())
        .with_context(|| format!("invalid value \"{value_text}\"; write a finite decimal number"))?;

    Ok(Row {
        timestamp: timestamp.to_string(),
        time_ms,
        value_text: value_text.to_string(),
        value,
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS`, with optional fractional seconds, as UTC
/// Unix epoch milliseconds.
pub(crate) fn parse_timestamp_ms(text: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|time| time.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_and_without_fraction() {
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01"), Some(1_000));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01.500000"), Some(1_500));
        assert_eq!(parse_timestamp_ms("2014-07-01 00:30:00"), Some(1_404_174_600_000));
        assert_eq!(parse_timestamp_ms("2014-07-01T00:30:00"), None);
        assert_eq!(parse_timestamp_ms("2014-07-01"), None);
        assert_eq!(parse_timestamp_ms(""), None);
    }
}
