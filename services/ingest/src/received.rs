//! The part of a received Kafka message that the pipeline keeps once its
//! payload is parsed.
//!
//! A stored row needs only the message's position and trace context, so the
//! message itself is not copied (`OwnedMessage` would copy topic, key,
//! payload and headers). A rejected message keeps its dead letter, which
//! copies what the dead-letter topic needs.

use chrono::{DateTime, Utc};
use rdkafka::message::{Headers, Message};
use seismo_events::{Event, EventError, ParseLimits};
use seismo_telemetry::TRACEPARENT;

use crate::dead_letter::DeadLetter;

/// A received message with the result of parsing its payload.
#[derive(Debug)]
pub(crate) struct Received {
    pub partition: i32,
    pub offset: i64,
    /// The message's `traceparent` header, when it has one in UTF-8.
    pub traceparent: Option<String>,
    pub parsed: Result<Event, Rejected>,
}

/// A message whose payload failed validation.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub error: EventError,
    pub dead_letter: DeadLetter,
}

impl Received {
    /// Parses `message`'s payload; `now` bounds event times in the future.
    pub fn parse<M: Message>(message: &M, limits: &ParseLimits, now: DateTime<Utc>) -> Received {
        let payload = message.payload().unwrap_or_default();
        let parsed = Event::parse_with(payload, limits, now).map_err(|error| Rejected {
            dead_letter: DeadLetter::from_message(message, &error),
            error,
        });
        Received {
            partition: message.partition(),
            offset: message.offset(),
            traceparent: traceparent(message).map(str::to_string),
            parsed,
        }
    }
}

fn traceparent<M: Message>(message: &M) -> Option<&str> {
    let headers = message.headers()?;
    let value = headers.iter().find(|header| header.key == TRACEPARENT)?.value?;
    std::str::from_utf8(value).ok()
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    use super::*;

    fn message(payload: &[u8], headers: Option<OwnedHeaders>) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload.to_vec()),
            Some(b"key".to_vec()),
            "events".to_string(),
            Timestamp::CreateTime(1_714_564_800_000),
            3,
            17,
            headers,
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_564_900, 0).expect("valid time")
    }

    #[test]
    fn valid_message_keeps_position_and_traceparent() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let headers = OwnedHeaders::new().insert(Header {
            key: TRACEPARENT,
            value: Some(traceparent),
        });
        let payload = br#"{"event_time": 1714564800123, "event": "view", "user_id": 7}"#;

        let received = Received::parse(&message(payload, Some(headers)), &ParseLimits::default(), now());

        assert_eq!((received.partition, received.offset), (3, 17));
        assert_eq!(received.traceparent.as_deref(), Some(traceparent));
        let event = received.parsed.expect("payload is a valid event");
        assert_eq!(event.user_id, "7");
    }

    #[test]
    fn rejected_message_keeps_its_dead_letter() {
        let received = Received::parse(&message(b"not json", None), &ParseLimits::default(), now());

        assert_eq!(received.traceparent, None);
        let rejected = received.parsed.expect_err("payload is not JSON");
        assert_eq!(rejected.error.kind(), "invalid_json");
        assert_eq!(rejected.dead_letter.source_topic, "events");
        assert_eq!((rejected.dead_letter.partition, rejected.dead_letter.offset), (3, 17));
        assert_eq!(rejected.dead_letter.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(rejected.dead_letter.payload.as_deref(), Some(&b"not json"[..]));
    }
}
