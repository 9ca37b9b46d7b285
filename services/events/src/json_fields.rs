//! Reads one JSON message into the schema's fields in a single pass.
//!
//! The schema's fields are kept as [`Scalar`]s that borrow their text from the
//! message where it has no escapes, so a typical event allocates only the
//! strings the [`crate::Event`] keeps. Fields outside the schema are collected
//! into a `serde_json` map for the event's `extra` text. Validation of the
//! values is left to the caller.
//!
//! Building a `serde_json::Value` first and removing the known fields from its
//! map costs a `String` per key and a tree node per field, which was about
//! half of ingest's CPU per event.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One JSON value of a schema field, as the message wrote it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// Text, borrowed from the message unless it had escapes.
    Str(Cow<'a, str>),
    /// An array or an object.
    Nested(Value),
}

impl Scalar<'_> {
    /// Converts the value back to JSON, for quoting it in an error.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(flag) => Value::Bool(*flag),
            Scalar::Int(number) => Value::from(*number),
            Scalar::UInt(number) => Value::from(*number),
            Scalar::Float(number) => Value::from(*number),
            Scalar::Str(text) => Value::String(text.to_string()),
            Scalar::Nested(value) => value.clone(),
        }
    }
}

/// The schema's fields of one message; `None` where the message omits a
/// field or sets it to `null`. A repeated key keeps its last value, as
/// `serde_json::Value` does.
#[derive(Debug, Default)]
pub(crate) struct JsonFields<'a> {
    pub event_time: Option<Scalar<'a>>,
    pub event: Option<Scalar<'a>>,
    pub user_id: Option<Scalar<'a>>,
    pub event_id: Option<Scalar<'a>>,
    pub post_id: Option<Scalar<'a>>,
    pub receiver_id: Option<Scalar<'a>>,
    pub os: Option<Scalar<'a>>,
    pub country: Option<Scalar<'a>>,
    pub city: Option<Scalar<'a>>,
    pub source: Option<Scalar<'a>>,
    pub gender: Option<Scalar<'a>>,
    pub age: Option<Scalar<'a>>,
    pub exp_group: Option<Scalar<'a>>,
    pub value: Option<Scalar<'a>>,
    /// Fields outside the schema, `null` values included.
    pub extra: Map<String, Value>,
}

/// Top-level content of one message.
// Boxing the large variant would cost an allocation per message, which is
// what this module avoids.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Message<'a> {
    Object(JsonFields<'a>),
    /// Any other JSON value, by the name of its type.
    NotAnObject(&'static str),
}

impl<'a> Message<'a> {
    /// Parses `text` as one JSON value. serde_json stops at 128 levels of
    /// nesting with an error, so deep nesting cannot overflow the stack.
    pub(crate) fn parse(text: &'a str) -> Result<Message<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = JsonFields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::EventTime => &mut fields.event_time,
                Key::Event => &mut fields.event,
                Key::UserId => &mut fields.user_id,
                Key::EventId => &mut fields.event_id,
                Key::PostId => &mut fields.post_id,
                Key::ReceiverId => &mut fields.receiver_id,
                Key::Os => &mut fields.os,
                Key::Country => &mut fields.country,
                Key::City => &mut fields.city,
                Key::Source => &mut fields.source,
                Key::Gender => &mut fields.gender,
                Key::Age => &mut fields.age,
                Key::ExpGroup => &mut fields.exp_group,
                Key::Value => &mut fields.value,
                Key::Other(name) => {
                    let value: Value = map.next_value()?;
                    fields.extra.insert(name, value);
                    continue;
                }
            };
            *slot = match map.next_value::<Scalar>()? {
                Scalar::Null => None,
                value => Some(value),
            };
        }
        Ok(Message::Object(fields))
    }

    // Arrays are read in full, so a message with trailing garbage after them
    // is reported as invalid JSON, like any other.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Message::NotAnObject("array"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Message::NotAnObject("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Message::NotAnObject("boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Message::NotAnObject("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Message::NotAnObject("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Message::NotAnObject("number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Message::NotAnObject("string"))
    }
}

/// A key of the top-level object: one of the schema's fields, or another
/// name.
enum Key {
    EventTime,
    Event,
    UserId,
    EventId,
    PostId,
    ReceiverId,
    Os,
    Country,
    City,
    Source,
    Gender,
    Age,
    ExpGroup,
    Value,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match name {
            "event_time" => Key::EventTime,
            "event" => Key::Event,
            "user_id" => Key::UserId,
            "event_id" => Key::EventId,
            "post_id" => Key::PostId,
            "receiver_id" => Key::ReceiverId,
            "os" => Key::Os,
            "country" => Key::Country,
            "city" => Key::City,
            "source" => Key::Source,
            "gender" => Key::Gender,
            "age" => Key::Age,
            "exp_group" => Key::ExpGroup,
            "value" => Key::Value,
            other => Key::Other(other.to_string()),
        })
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(flag))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
        // serde_json reports non-negative integers through `visit_u64`; this
        // keeps the two variants apart for any other deserializer too.
        Ok(match u64::try_from(number) {
            Ok(unsigned) => Scalar::UInt(unsigned),
            Err(_) => Scalar::Int(number),
        })
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Scalar::UInt(number))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(number))
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Scalar::Nested)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Scalar::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> JsonFields<'_> {
        match Message::parse(text).expect("test message is valid JSON") {
            Message::Object(fields) => fields,
            Message::NotAnObject(found) => panic!("test message is a JSON {found}"),
        }
    }

    #[test]
    fn plain_strings_borrowed_and_escaped_ones_owned() {
        let parsed = fields(r#"{"event":"view","os":"i\u004fS"}"#);

        assert!(matches!(parsed.event, Some(Scalar::Str(Cow::Borrowed("view")))));
        assert!(matches!(parsed.os, Some(Scalar::Str(Cow::Owned(ref text))) if text == "iOS"));
    }

    #[test]
    fn numbers_keep_their_kind() {
        let parsed = fields(r#"{"post_id":7,"age":-3,"value":2.5,"user_id":18446744073709551615}"#);

        assert_eq!(parsed.post_id, Some(Scalar::UInt(7)));
        assert_eq!(parsed.age, Some(Scalar::Int(-3)));
        assert_eq!(parsed.value, Some(Scalar::Float(2.5)));
        assert_eq!(parsed.user_id, Some(Scalar::UInt(u64::MAX)));
    }

    #[test]
    fn null_field_absent_and_last_repeat_wins() {
        let parsed = fields(r#"{"os":"a","os":"b","city":null,"note":null,"note":1}"#);

        assert_eq!(parsed.os, Some(Scalar::Str(Cow::Borrowed("b"))));
        assert_eq!(parsed.city, None);
        assert_eq!(parsed.extra.get("note"), Some(&Value::from(1)));
    }

    #[test]
    fn escaped_key_matches_schema_field() {
        let parsed = fields(r#"{"ev\u0065nt":"like"}"#);

        assert_eq!(parsed.event, Some(Scalar::Str(Cow::Borrowed("like"))));
        assert!(parsed.extra.is_empty());
    }

    #[test]
    fn nested_values_kept_whole() {
        let parsed = fields(r#"{"os":{"name":["x"]},"ab":{"x":[1,2]}}"#);

        assert_eq!(parsed.os, Some(Scalar::Nested(serde_json::json!({"name": ["x"]}))));
        assert_eq!(parsed.extra.get("ab"), Some(&serde_json::json!({"x": [1, 2]})));
    }

    #[test]
    fn other_top_level_values_named() {
        for (text, name) in [
            ("[1,[2]]", "array"),
            ("null", "null"),
            ("true", "boolean"),
            ("-1.5", "number"),
            ("\"a\"", "string"),
        ] {
            match Message::parse(text).expect("valid JSON") {
                Message::NotAnObject(found) => assert_eq!(found, name, "{text}"),
                Message::Object(_) => panic!("{text} read as an object"),
            }
        }
    }

    #[test]
    fn trailing_text_rejected() {
        assert!(Message::parse(r#"{"event":"view"} x"#).is_err());
        assert!(Message::parse("[1] x").is_err());
    }
}
