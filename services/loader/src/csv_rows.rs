use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use thiserror::Error;

/// One row of a NAB series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesRow {
    pub timestamp: DateTime<Utc>,
    pub value: f64,
}

#[derive(Debug, Error)]
pub enum CsvError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },

    #[error("{path} line {line}: expected the header `timestamp,value`, found `{found}`")]
    Header { path: PathBuf, line: u64, found: String },

    #[error("{path} line {line}: invalid timestamp `{value}`; expected `YYYY-MM-DD HH:MM:SS` in UTC")]
    Timestamp { path: PathBuf, line: u64, value: String },

    #[error("{path} line {line}: invalid value `{value}`; expected a finite number")]
    Value { path: PathBuf, line: u64, value: String },

    #[error("{path} line {line}: timestamp {timestamp} is not after the previous row's; sort the file by time")]
    Order {
        path: PathBuf,
        line: u64,
        timestamp: String,
    },
}

/// Reads a NAB series file: header `timestamp,value`, timestamps
/// `YYYY-MM-DD HH:MM:SS` without a zone (taken as UTC), strictly increasing.
pub fn read_nab_csv(path: &Path) -> Result<Vec<SeriesRow>, CsvError> {
    let read_error = |source| CsvError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(read_error)?;

    let header = reader.headers().map_err(read_error)?.clone();
    if header.len() < 2 || &header[0] != "timestamp" || &header[1] != "value" {
        return Err(CsvError::Header {
            path: path.to_path_buf(),
            line: 1,
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }

    let mut rows: Vec<SeriesRow> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(read_error)?;
        let line = record.position().map_or(0, |position| position.line());

        let raw_time = record.get(0).unwrap_or_default();
        let timestamp = parse_nab_timestamp(raw_time).ok_or_else(|| CsvError::Timestamp {
            path: path.to_path_buf(),
            line,
            value: raw_time.to_string(),
        })?;

        let raw_value = record.get(1).unwrap_or_default();
        let value = raw_value
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .ok_or_else(|| CsvError::Value {
                path: path.to_path_buf(),
                line,
                value: raw_value.to_string(),
            })?;

        if rows.last().is_some_and(|previous| previous.timestamp >= timestamp) {
            return Err(CsvError::Order {
                path: path.to_path_buf(),
                line,
                timestamp: raw_time.to_string(),
            });
        }
        rows.push(SeriesRow { timestamp, value });
    }
    Ok(rows)
}

/// Parses NAB's `YYYY-MM-DD HH:MM:SS`, with optional fractional seconds as in
/// NAB's label files.
fn parse_nab_timestamp(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write_csv(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn nab_file_read() {
        let file = write_csv("timestamp,value\n2014-07-01 00:00:00,10844\n2014-07-01 00:30:00,8127.5\n");

        let rows = read_nab_csv(file.path()).unwrap();

        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].timestamp.timestamp(), 1_404_172_800);
        assert_eq!(rows[1].value, 8127.5);
    }

    #[test]
    fn bad_rows_name_line_and_fix() {
        let cases = [
            ("timestamp,value\n2014-07-01T00:00:00Z,1\n", "line 2: invalid timestamp"),
            (
                "timestamp,value\n2014-07-01 00:00:00,abc\n",
                "line 2: invalid value `abc`",
            ),
            ("timestamp,value\n2014-07-01 00:00:00,NaN\n", "invalid value `NaN`"),
            (
                "timestamp,value\n2014-07-01 00:30:00,1\n2014-07-01 00:00:00,2\n",
                "line 3: timestamp 2014-07-01 00:00:00 is not after",
            ),
            (
                "time,count\n2014-07-01 00:00:00,1\n",
                "expected the header `timestamp,value`",
            ),
        ];

        for (text, expected) in cases {
            let file = write_csv(text);
            let message = read_nab_csv(file.path()).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        }
    }

    #[test]
    fn missing_file_names_path() {
        let message = read_nab_csv(Path::new("/nonexistent/series.csv"))
            .unwrap_err()
            .to_string();

        assert!(message.contains("/nonexistent/series.csv"), "{message}");
    }
}
