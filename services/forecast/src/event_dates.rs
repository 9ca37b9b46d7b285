use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::Granularity;

/// UTC calendar days flagged as holidays or events. Every bucket that
/// starts on a flagged day is flagged: 24 buckets of an hourly series, one
/// of a daily series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDates(BTreeSet<NaiveDate>);

impl EventDates {
    pub fn new(dates: impl IntoIterator<Item = NaiveDate>) -> EventDates {
        EventDates(dates.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.0.contains(&time.date_naive())
    }

    /// Returns one flag per bucket for `len` buckets of `granularity` from `start`.
    pub fn flags(&self, start: DateTime<Utc>, granularity: Granularity, len: usize) -> Vec<bool> {
        (0..len)
            .map(|index| self.contains(start + granularity.step() * index as i32))
            .collect()
    }

    /// Parses one date per line as `YYYY-MM-DD`, optionally followed by a
    /// comma and a name (`2026-12-25,Christmas`). Blank lines and lines
    /// starting with `#` are skipped. The error names the line.
    pub fn parse(text: &str) -> Result<EventDates, String> {
        let mut dates = BTreeSet::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }

            let date_text = line.split(',').next().unwrap_or(line).trim();
            if number == 0 && date_text.eq_ignore_ascii_case("date") {
                continue; // A CSV header.
            }
            let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
                .map_err(|error| format!("line {}: `{date_text}` is not a YYYY-MM-DD date: {error}", number + 1))?;
            dates.insert(date);
        }
        Ok(EventDates(dates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_names_comments_and_header() {
        let text = "date,name\n# public holidays\n2026-12-25,Christmas\n\n2026-01-01\n";

        let dates = EventDates::parse(text).unwrap();

        assert_eq!(dates.len(), 2);
        assert!(dates.contains("2026-12-25T13:00:00Z".parse().unwrap()));
    }

    #[test]
    fn parse_rejects_bad_date_with_line() {
        let error = EventDates::parse("2026-01-01\n2026-13-01\n").unwrap_err();

        assert!(error.starts_with("line 2:"), "{error}");
    }

    #[test]
    fn flags_cover_every_hour_of_a_day() {
        let dates = EventDates::parse("2026-01-02").unwrap();
        let start = "2026-01-01T00:00:00Z".parse().unwrap();

        let flags = dates.flags(start, Granularity::Hour, 72);

        assert_eq!(flags.iter().filter(|&&flag| flag).count(), 24);
        assert!(!flags[23]);
        assert!(flags[24]);
        assert!(flags[47]);
        assert!(!flags[48]);
    }
}
