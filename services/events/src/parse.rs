use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::{Event, EventError};

/// Longest accepted text of a string field, in bytes.
const MAX_STRING_BYTES: usize = 1024;

/// Longest offending value quoted back in an error, in characters.
const MAX_QUOTED_CHARS: usize = 80;

/// Earliest accepted `event_time`: 2000-01-01T00:00:00Z. Older stamps are
/// almost always a unit mistake (seconds sent as milliseconds).
const MIN_EVENT_TIME_MS: i64 = 946_684_800_000;

/// Latest `event_time` ClickHouse's `DateTime` can store: 2106-02-07T06:28:15Z.
const MAX_EVENT_TIME_MS: i64 = 4_294_967_295_000;

/// Bounds applied while parsing, so one hostile message cannot cost unbounded
/// memory or poison time-based processing downstream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParseLimits {
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// How far `event_time` may lie ahead of the wall clock; `None` disables
    /// the check, which replays of historical data with skewed clocks need.
    pub max_future: Option<Duration>,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_message_bytes: 1024 * 1024,
            max_future: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

impl Event {
    /// Parses and validates one message with the default [`ParseLimits`],
    /// judging future timestamps against the current time.
    pub fn parse(message: &[u8]) -> Result<Event, EventError> {
        Event::parse_with(message, &ParseLimits::default(), Utc::now())
    }

    /// Parses and validates one message; `now` is the reference for the
    /// `max_future` check.
    pub fn parse_with(
        message: &[u8],
        limits: &ParseLimits,
        now: DateTime<Utc>,
    ) -> Result<Event, EventError> {
        if message.len() > limits.max_message_bytes {
            return Err(EventError::TooLarge {
                size: message.len(),
                limit: limits.max_message_bytes,
            });
        }

        let text = std::str::from_utf8(message).map_err(|error| EventError::NotUtf8 {
            position: error.valid_up_to(),
        })?;

        // serde_json stops at 128 levels of nesting with an error, so deep
        // nesting cannot overflow the stack.
        let value: Value = serde_json::from_str(text).map_err(|error| EventError::InvalidJson {
            reason: error.to_string(),
        })?;
        let Value::Object(mut fields) = value else {
            return Err(EventError::NotAnObject {
                found: json_type_name(&value),
            });
        };

        let event_time = take_event_time(&mut fields, limits, now)?;
        let event = take_required_string(&mut fields, "event", "send the action name, e.g. \"view\"")?;
        let user_id = take_id(&mut fields, "user_id")?.ok_or(EventError::MissingField {
            field: "user_id",
            hint: "send the acting user's id as a string or an integer",
        })?;

        let parsed = Event {
            event_time,
            event,
            user_id,
            event_id: take_id(&mut fields, "event_id")?,
            post_id: take_unsigned(&mut fields, "post_id")?,
            receiver_id: take_id(&mut fields, "receiver_id")?,
            os: take_string(&mut fields, "os")?,
            country: take_string(&mut fields, "country")?,
            city: take_string(&mut fields, "city")?,
            source: take_string(&mut fields, "source")?,
            gender: take_string(&mut fields, "gender")?,
            age: take_age(&mut fields)?,
            exp_group: take_id(&mut fields, "exp_group")?,
            value: take_number(&mut fields, "value")?,
            extra: if fields.is_empty() {
                String::new()
            } else {
                Value::Object(fields).to_string()
            },
        };
        Ok(parsed)
    }
}

fn take_event_time(
    fields: &mut Map<String, Value>,
    limits: &ParseLimits,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, EventError> {
    let raw = take_present(fields, "event_time").ok_or(EventError::MissingField {
        field: "event_time",
        hint: "send an RFC 3339 time such as \"2024-05-01T12:00:00Z\" or Unix epoch milliseconds",
    })?;

    let millis = match &raw {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|error| invalid("event_time", &raw, format!("{error}; use RFC 3339 with a zone, e.g. \"2024-05-01T12:00:00Z\"")))?
            .timestamp_millis(),
        Value::Number(number) => number.as_i64().ok_or_else(|| {
            invalid("event_time", &raw, "epoch time must be an integer number of milliseconds".to_string())
        })?,
        _ => {
            return Err(invalid(
                "event_time",
                &raw,
                "expected an RFC 3339 string or Unix epoch milliseconds".to_string(),
            ));
        }
    };

    if !(MIN_EVENT_TIME_MS..=MAX_EVENT_TIME_MS).contains(&millis) {
        return Err(invalid(
            "event_time",
            &raw,
            "outside 2000-01-01..2106-02-07; epoch times are milliseconds, not seconds".to_string(),
        ));
    }
    let time = Utc
        .timestamp_millis_opt(millis)
        .single()
        .expect("milliseconds inside the checked range map to one instant");

    if let Some(max_future) = limits.max_future {
        let ahead_ms = millis - now.timestamp_millis();
        if ahead_ms > max_future.as_millis() as i64 {
            return Err(invalid(
                "event_time",
                &raw,
                format!(
                    "{} s ahead of the ingest clock, more than the allowed {} s; check the producer's clock",
                    ahead_ms / 1000,
                    max_future.as_secs()
                ),
            ));
        }
    }
    Ok(time)
}

/// Removes a field, treating JSON `null` as absent.
fn take_present(fields: &mut Map<String, Value>, name: &str) -> Option<Value> {
    match fields.remove(name) {
        None | Some(Value::Null) => None,
        Some(value) => Some(value),
    }
}

fn take_required_string(
    fields: &mut Map<String, Value>,
    name: &'static str,
    hint: &'static str,
) -> Result<String, EventError> {
    take_string(fields, name)?.ok_or(EventError::MissingField { field: name, hint })
}

fn take_string(fields: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>, EventError> {
    let Some(raw) = take_present(fields, name) else {
        return Ok(None);
    };
    match raw {
        Value::String(text) => checked_text(name, text).map(Some),
        other => Err(invalid(name, &other, "expected a string".to_string())),
    }
}

/// Takes an identifier that producers send either as a string or an integer.
fn take_id(fields: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>, EventError> {
    let Some(raw) = take_present(fields, name) else {
        return Ok(None);
    };
    match raw {
        Value::String(text) => checked_text(name, text).map(Some),
        Value::Number(ref number) if number.is_i64() || number.is_u64() => Ok(Some(number.to_string())),
        other => Err(invalid(name, &other, "expected a string or an integer".to_string())),
    }
}

fn checked_text(name: &'static str, text: String) -> Result<String, EventError> {
    if text.is_empty() {
        return Err(EventError::InvalidField {
            field: name,
            value: "\"\"".to_string(),
            reason: "must not be empty; omit the field instead".to_string(),
        });
    }
    if text.len() > MAX_STRING_BYTES {
        return Err(EventError::InvalidField {
            field: name,
            value: quote(&Value::String(text.clone())),
            reason: format!("{} bytes, longer than the limit of {MAX_STRING_BYTES}", text.len()),
        });
    }
    Ok(text)
}

fn take_unsigned(fields: &mut Map<String, Value>, name: &'static str) -> Result<Option<u64>, EventError> {
    let Some(raw) = take_present(fields, name) else {
        return Ok(None);
    };
    raw.as_u64()
        .map(Some)
        .ok_or_else(|| invalid(name, &raw, "expected a non-negative integer".to_string()))
}

fn take_age(fields: &mut Map<String, Value>) -> Result<Option<u16>, EventError> {
    let Some(raw) = take_present(fields, "age") else {
        return Ok(None);
    };
    match raw.as_u64() {
        Some(age) if age <= 150 => Ok(Some(age as u16)),
        _ => Err(invalid("age", &raw, "expected an integer number of years from 0 to 150".to_string())),
    }
}

fn take_number(fields: &mut Map<String, Value>, name: &'static str) -> Result<Option<f64>, EventError> {
    let Some(raw) = take_present(fields, name) else {
        return Ok(None);
    };
    // serde_json rejects NaN and infinities in its input, so any number here is finite.
    raw.as_f64()
        .map(Some)
        .ok_or_else(|| invalid(name, &raw, "expected a number".to_string()))
}

fn invalid(field: &'static str, value: &Value, reason: String) -> EventError {
    EventError::InvalidField {
        field,
        value: quote(value),
        reason,
    }
}

/// Renders a value for an error message, cut to a readable length.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    format!("{cut}…")
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
