use chrono::{DateTime, Utc};
use serde::Serialize;

/// Optional string fields that metrics can slice by, in schema order.
pub const DIMENSION_FIELDS: &[&str] = &["os", "country", "city", "source", "gender", "exp_group"];

/// One validated user action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Time the action happened, from the producer, millisecond precision.
    pub event_time: DateTime<Utc>,
    /// The action, e.g. `view`, `like`, `message`, `sign_up`.
    pub event: String,
    /// The acting user; numbers are kept in their decimal text form.
    pub user_id: String,
    /// Producer-assigned unique id, used to deduplicate retries.
    pub event_id: Option<String>,
    pub post_id: Option<u64>,
    /// The other user of a two-party action such as `message`.
    pub receiver_id: Option<String>,
    pub os: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    /// Traffic source, e.g. `ads` or `organic`.
    pub source: Option<String>,
    pub gender: Option<String>,
    /// Age in years.
    pub age: Option<u16>,
    /// Experiment group the user is assigned to.
    pub exp_group: Option<String>,
    /// Numeric payload for `sum` metrics, e.g. an order amount.
    pub value: Option<f64>,
    /// Fields outside the schema, as a JSON object text; empty when none.
    pub extra: String,
}

impl Event {
    /// Returns the value of a slicing dimension by its field name, or `None`
    /// when the event does not carry it or the name is not a dimension.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        match name {
            "os" => self.os.as_deref(),
            "country" => self.country.as_deref(),
            "city" => self.city.as_deref(),
            "source" => self.source.as_deref(),
            "gender" => self.gender.as_deref(),
            "exp_group" => self.exp_group.as_deref(),
            "event" => Some(self.event.as_str()),
            _ => None,
        }
    }

    /// Event time as Unix epoch milliseconds.
    pub fn event_time_ms(&self) -> i64 {
        self.event_time.timestamp_millis()
    }
}
