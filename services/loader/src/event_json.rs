use serde_json::json;

use crate::SeriesRow;

/// Fixed fields of every event the loader produces.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTemplate {
    /// The `event` field, which detector metrics filter on.
    pub event: String,
    /// The `user_id` field; a series has no users, but the schema requires one.
    pub user_id: String,
    /// Prefix of `event_id`, which is `<prefix>-<row index>` so that every
    /// event of a replay has a unique, reproducible id.
    pub event_id_prefix: String,
}

/// Renders one row as a Seismo event JSON object.
pub fn event_json(template: &EventTemplate, row_index: usize, row: &SeriesRow) -> String {
    json!({
        "event_time": row.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "event": template.event,
        "user_id": template.user_id,
        "event_id": format!("{}-{row_index}", template.event_id_prefix),
        "value": row.value,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use seismo_events::Event;

    use super::*;

    #[test]
    fn rendered_event_parses_back() {
        let template = EventTemplate {
            event: "taxi_trips".to_string(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: "nyc_taxi".to_string(),
        };
        let row = SeriesRow {
            timestamp: Utc.with_ymd_and_hms(2014, 7, 1, 0, 30, 0).unwrap(),
            value: 8127.0,
        };

        let text = event_json(&template, 1, &row);
        let limits = seismo_events::ParseLimits {
            max_future: None,
            ..Default::default()
        };
        let event = Event::parse_with(text.as_bytes(), &limits, Utc::now()).unwrap();

        assert_eq!(event.event_time, row.timestamp);
        assert_eq!(event.event, "taxi_trips");
        assert_eq!(event.user_id, "nab-loader");
        assert_eq!(event.event_id.as_deref(), Some("nyc_taxi-1"));
        assert_eq!(event.value, Some(8127.0));
    }
}
