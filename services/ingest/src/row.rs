//! Rows as the clickhouse crate serializes them (RowBinary, by field order).
//!
//! The crate names the inserted columns after the struct fields, so field
//! names must match [`crate::schema::table_columns`]; a unit test checks the
//! names. Types are not checked when validation is off, which is why the
//! integration tests read stored rows back field by field.

use clickhouse::Row;
use seismo_events::Event;
use serde::Serialize;

/// One consumed event waiting in a batch, with its Kafka position.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub event: Event,
    pub partition: i32,
    pub offset: i64,
}

/// Row for servers with `DateTime64`.
#[derive(Debug, Row, Serialize)]
pub(crate) struct EventRow<'a> {
    /// Unix epoch milliseconds, the RowBinary form of `DateTime64(3)`.
    pub event_time: i64,
    pub event: &'a str,
    pub user_id: &'a str,
    pub event_id: Option<&'a str>,
    pub post_id: Option<u64>,
    pub receiver_id: Option<&'a str>,
    pub os: Option<&'a str>,
    pub country: Option<&'a str>,
    pub city: Option<&'a str>,
    pub source: Option<&'a str>,
    pub gender: Option<&'a str>,
    pub age: Option<u16>,
    pub exp_group: Option<&'a str>,
    pub value: Option<f64>,
    pub extra: &'a str,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

/// Row for servers without `DateTime64`: whole seconds plus milliseconds.
#[derive(Debug, Row, Serialize)]
pub(crate) struct LegacyEventRow<'a> {
    /// Unix epoch seconds, the RowBinary form of `DateTime`. Parsing bounds
    /// `event_time` to 2000..2106, which fits `u32`.
    pub event_time: u32,
    /// Millisecond part of `event_time`, 0..=999.
    pub event_time_ms: u16,
    pub event: &'a str,
    pub user_id: &'a str,
    pub event_id: Option<&'a str>,
    pub post_id: Option<u64>,
    pub receiver_id: Option<&'a str>,
    pub os: Option<&'a str>,
    pub country: Option<&'a str>,
    pub city: Option<&'a str>,
    pub source: Option<&'a str>,
    pub gender: Option<&'a str>,
    pub age: Option<u16>,
    pub exp_group: Option<&'a str>,
    pub value: Option<f64>,
    pub extra: &'a str,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

impl<'a> From<&'a BatchRow> for EventRow<'a> {
    fn from(row: &'a BatchRow) -> Self {
        let event = &row.event;
        EventRow {
            event_time: event.event_time_ms(),
            event: &event.event,
            user_id: &event.user_id,
            event_id: event.event_id.as_deref(),
            post_id: event.post_id,
            receiver_id: event.receiver_id.as_deref(),
            os: event.os.as_deref(),
            country: event.country.as_deref(),
            city: event.city.as_deref(),
            source: event.source.as_deref(),
            gender: event.gender.as_deref(),
            age: event.age,
            exp_group: event.exp_group.as_deref(),
            value: event.value,
            extra: &event.extra,
            kafka_partition: row.partition,
            kafka_offset: row.offset,
        }
    }
}

impl<'a> From<&'a BatchRow> for LegacyEventRow<'a> {
    fn from(row: &'a BatchRow) -> Self {
        let event = &row.event;
        let millis = event.event_time_ms();
        LegacyEventRow {
            event_time: u32::try_from(millis.div_euclid(1000))
                .expect("parsing bounds event_time to 2000..2106, inside the u32 seconds range"),
            event_time_ms: millis.rem_euclid(1000) as u16,
            event: &event.event,
            user_id: &event.user_id,
            event_id: event.event_id.as_deref(),
            post_id: event.post_id,
            receiver_id: event.receiver_id.as_deref(),
            os: event.os.as_deref(),
            country: event.country.as_deref(),
            city: event.city.as_deref(),
            source: event.source.as_deref(),
            gender: event.gender.as_deref(),
            age: event.age,
            exp_group: event.exp_group.as_deref(),
            value: event.value,
            extra: &event.extra,
            kafka_partition: row.partition,
            kafka_offset: row.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use clickhouse::Row;
    use seismo_events::Event;

    use super::*;
    use crate::schema::table_columns;
    use crate::server_version::{ServerFeatures, ServerVersion};

    /// Columns the server fills itself, absent from the rows on purpose.
    const SERVER_FILLED: &[&str] = &["inserted_at"];

    fn inserted_columns(features: &ServerFeatures) -> Vec<&'static str> {
        table_columns(features)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !SERVER_FILLED.contains(name))
            .collect()
    }

    #[test]
    fn legacy_row_names_match_18_16_table() {
        let features = ServerFeatures::for_version(ServerVersion::new(18, 16, 1));
        let mut expected = inserted_columns(&features);
        let mut actual = LegacyEventRow::COLUMN_NAMES.to_vec();
        expected.sort_unstable();
        actual.sort_unstable();
        assert_eq!(actual, expected);
    }

    #[test]
    fn datetime64_row_names_match_24_8_table() {
        let features = ServerFeatures::for_version(ServerVersion::new(24, 8, 4));
        let mut expected = inserted_columns(&features);
        let mut actual = EventRow::COLUMN_NAMES.to_vec();
        expected.sort_unstable();
        actual.sort_unstable();
        assert_eq!(actual, expected);
    }

    fn sample_row() -> BatchRow {
        let event = Event::parse(
            br#"{"event_time": 1714564800123, "event": "view", "user_id": 7, "post_id": 9, "os": "iOS", "age": 31, "value": 2.5, "campaign": "x"}"#,
        )
        .expect("sample event is valid");
        BatchRow {
            event,
            partition: 2,
            offset: 41,
        }
    }

    #[test]
    fn legacy_row_splits_milliseconds() {
        let batch_row = sample_row();
        let row = LegacyEventRow::from(&batch_row);
        assert_eq!(row.event_time, 1_714_564_800);
        assert_eq!(row.event_time_ms, 123);
        assert_eq!(row.user_id, "7");
        assert_eq!(row.os, Some("iOS"));
        assert_eq!(row.country, None);
        assert_eq!(row.extra, r#"{"campaign":"x"}"#);
        assert_eq!(row.kafka_partition, 2);
        assert_eq!(row.kafka_offset, 41);
    }

    #[test]
    fn datetime64_row_keeps_milliseconds() {
        let batch_row = sample_row();
        let row = EventRow::from(&batch_row);
        assert_eq!(row.event_time, 1_714_564_800_123);
        assert_eq!(row.post_id, Some(9));
        assert_eq!(row.age, Some(31));
        assert_eq!(row.value, Some(2.5));
    }
}
