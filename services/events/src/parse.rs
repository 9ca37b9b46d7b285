use std::time::Duration;

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::json_fields::{Message, Scalar};
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
    pub fn parse_with(message: &[u8], limits: &ParseLimits, now: DateTime<Utc>) -> Result<Event, EventError> {
        if message.len() > limits.max_message_bytes {
            return Err(EventError::TooLarge {
                size: message.len(),
                limit: limits.max_message_bytes,
            });
        }

        let text = std::str::from_utf8(message).map_err(|error| EventError::NotUtf8 {
            position: error.valid_up_to(),
        })?;

        let fields = match Message::parse(text) {
            Ok(Message::Object(fields)) => fields,
            Ok(Message::NotAnObject(found)) => return Err(EventError::NotAnObject { found }),
            Err(error) => {
                return Err(EventError::InvalidJson {
                    reason: error.to_string(),
                });
            }
        };

        let event_time = event_time(fields.event_time, limits, now)?;
        let event = required(
            string("event", fields.event)?,
            "event",
            "send the action name, e.g. \"view\"",
        )?;
        let user_id = required(
            id("user_id", fields.user_id)?,
            "user_id",
            "send the acting user's id as a string or an integer",
        )?;

        let parsed = Event {
            event_time,
            event,
            user_id,
            event_id: id("event_id", fields.event_id)?,
            post_id: unsigned("post_id", fields.post_id)?,
            receiver_id: id("receiver_id", fields.receiver_id)?,
            os: string("os", fields.os)?,
            country: string("country", fields.country)?,
            city: string("city", fields.city)?,
            source: string("source", fields.source)?,
            gender: string("gender", fields.gender)?,
            age: age(fields.age)?,
            exp_group: id("exp_group", fields.exp_group)?,
            value: number("value", fields.value)?,
            extra: if fields.extra.is_empty() {
                String::new()
            } else {
                Value::Object(fields.extra).to_string()
            },
        };
        Ok(parsed)
    }
}

fn event_time(raw: Option<Scalar>, limits: &ParseLimits, now: DateTime<Utc>) -> Result<DateTime<Utc>, EventError> {
    let raw = raw.ok_or(EventError::MissingField {
        field: "event_time",
        hint: "send an RFC 3339 time such as \"2024-05-01T12:00:00Z\" or Unix epoch milliseconds",
    })?;

    let millis = match &raw {
        Scalar::Str(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|error| {
                invalid(
                    "event_time",
                    &raw,
                    format!("{error}; use RFC 3339 with a zone, e.g. \"2024-05-01T12:00:00Z\""),
                )
            })?
            .timestamp_millis(),
        Scalar::Int(number) => *number,
        Scalar::UInt(number) => i64::try_from(*number).map_err(|_| {
            invalid(
                "event_time",
                &raw,
                "epoch time must be an integer number of milliseconds".to_string(),
            )
        })?,
        Scalar::Float(_) => {
            return Err(invalid(
                "event_time",
                &raw,
                "epoch time must be an integer number of milliseconds".to_string(),
            ));
        }
        Scalar::Null | Scalar::Bool(_) | Scalar::Nested(_) => {
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

fn required<T>(value: Option<T>, field: &'static str, hint: &'static str) -> Result<T, EventError> {
    value.ok_or(EventError::MissingField { field, hint })
}

fn string(name: &'static str, raw: Option<Scalar>) -> Result<Option<String>, EventError> {
    match raw {
        None => Ok(None),
        Some(Scalar::Str(text)) => checked_text(name, text).map(Some),
        Some(other) => Err(invalid(name, &other, "expected a string".to_string())),
    }
}

/// Reads an identifier that producers send either as a string or an integer.
fn id(name: &'static str, raw: Option<Scalar>) -> Result<Option<String>, EventError> {
    match raw {
        None => Ok(None),
        Some(Scalar::Str(text)) => checked_text(name, text).map(Some),
        Some(Scalar::UInt(number)) => Ok(Some(number.to_string())),
        Some(Scalar::Int(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(invalid(name, &other, "expected a string or an integer".to_string())),
    }
}

fn checked_text(name: &'static str, text: Cow<str>) -> Result<String, EventError> {
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
            value: quote(&Value::String(text.to_string())),
            reason: format!("{} bytes, longer than the limit of {MAX_STRING_BYTES}", text.len()),
        });
    }
    Ok(text.into_owned())
}

fn unsigned(name: &'static str, raw: Option<Scalar>) -> Result<Option<u64>, EventError> {
    match raw {
        None => Ok(None),
        Some(Scalar::UInt(number)) => Ok(Some(number)),
        Some(other) => Err(invalid(name, &other, "expected a non-negative integer".to_string())),
    }
}

fn age(raw: Option<Scalar>) -> Result<Option<u16>, EventError> {
    match raw {
        None => Ok(None),
        Some(Scalar::UInt(age)) if age <= 150 => Ok(Some(age as u16)),
        Some(other) => Err(invalid(
            "age",
            &other,
            "expected an integer number of years from 0 to 150".to_string(),
        )),
    }
}

fn number(name: &'static str, raw: Option<Scalar>) -> Result<Option<f64>, EventError> {
    // serde_json rejects NaN and infinities in its input, so any number here is finite.
    match raw {
        None => Ok(None),
        Some(Scalar::UInt(number)) => Ok(Some(number as f64)),
        Some(Scalar::Int(number)) => Ok(Some(number as f64)),
        Some(Scalar::Float(number)) => Ok(Some(number)),
        Some(other) => Err(invalid(name, &other, "expected a number".to_string())),
    }
}

fn invalid(field: &'static str, value: &Scalar, reason: String) -> EventError {
    EventError::InvalidField {
        field,
        value: quote(&value.to_value()),
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

#[cfg(test)]
mod tests;
