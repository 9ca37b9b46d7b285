use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn parse(text: &str) -> Result<Event, EventError> {
    Event::parse_with(text.as_bytes(), &ParseLimits::default(), now())
}

fn rejected_field(text: &str) -> &'static str {
    match parse(text) {
        Err(EventError::InvalidField { field, .. }) | Err(EventError::MissingField { field, .. }) => field,
        other => panic!("expected a field error for {text}, got {other:?}"),
    }
}

#[test]
fn full_event_parses() {
    let event = parse(
        r#"{"event_time":"2024-05-01T10:00:00.250Z","event":"view","user_id":42,
            "event_id":"e-1","post_id":7,"receiver_id":"u9","os":"iOS","country":"Russia",
            "city":"Moscow","source":"ads","gender":"female","age":31,"exp_group":2,"value":1.5}"#,
    )
    .unwrap();

    assert_eq!(event.event_time_ms(), 1_714_557_600_250);
    assert_eq!(event.event, "view");
    assert_eq!(event.user_id, "42");
    assert_eq!(event.event_id.as_deref(), Some("e-1"));
    assert_eq!(event.post_id, Some(7));
    assert_eq!(event.receiver_id.as_deref(), Some("u9"));
    assert_eq!(event.dimension("os"), Some("iOS"));
    assert_eq!(event.dimension("source"), Some("ads"));
    assert_eq!(event.age, Some(31));
    assert_eq!(event.exp_group.as_deref(), Some("2"));
    assert_eq!(event.value, Some(1.5));
    assert_eq!(event.extra, "");
}

#[test]
fn epoch_milliseconds_accepted() {
    let event = parse(r#"{"event_time":1714557600000,"event":"like","user_id":"a"}"#).unwrap();

    assert_eq!(event.event_time, Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap());
}

#[test]
fn rfc3339_offset_converted_to_utc() {
    let event = parse(r#"{"event_time":"2024-05-01T13:00:00+03:00","event":"like","user_id":"a"}"#).unwrap();

    assert_eq!(event.event_time, Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap());
}

#[test]
fn unknown_fields_kept_as_json() {
    let event =
        parse(r#"{"event_time":1714557600000,"event":"view","user_id":1,"ab":{"x":[1,2]},"note":"hi"}"#).unwrap();

    let extra: serde_json::Value = serde_json::from_str(&event.extra).unwrap();
    assert_eq!(extra["ab"]["x"][1], 2);
    assert_eq!(extra["note"], "hi");
}

#[test]
fn null_optional_fields_are_absent() {
    let event = parse(r#"{"event_time":1714557600000,"event":"view","user_id":1,"os":null,"value":null}"#).unwrap();

    assert_eq!(event.os, None);
    assert_eq!(event.value, None);
}

#[test]
fn missing_required_fields_rejected() {
    assert_eq!(rejected_field(r#"{"event":"view","user_id":1}"#), "event_time");
    assert_eq!(rejected_field(r#"{"event_time":1714557600000,"user_id":1}"#), "event");
    assert_eq!(
        rejected_field(r#"{"event_time":1714557600000,"event":"view"}"#),
        "user_id"
    );
    assert_eq!(
        rejected_field(r#"{"event_time":1714557600000,"event":"view","user_id":null}"#),
        "user_id"
    );
}

#[test]
fn wrong_types_rejected() {
    let base = r#""event_time":1714557600000,"event":"view","user_id":1"#;
    let cases = [
        (r#""post_id":"12""#, "post_id"),
        (r#""post_id":-1"#, "post_id"),
        (r#""age":"thirty""#, "age"),
        (r#""age":400"#, "age"),
        (r#""value":"1.5""#, "value"),
        (r#""os":7"#, "os"),
        (r#""user_id":1.5"#, "user_id"),
        (r#""event":"""#, "event"),
    ];

    for (field_text, field) in cases {
        let text = format!("{{{base},{field_text}}}");
        assert_eq!(rejected_field(&text), field, "case {field_text}");
    }
}

#[test]
fn invalid_event_times_rejected() {
    let cases = [
        r#""2024-05-01 10:00:00""#,
        r#""yesterday""#,
        "1714557600",
        "1714557600000.5",
        "true",
        "-5",
    ];

    for time in cases {
        let text = format!(r#"{{"event_time":{time},"event":"view","user_id":1}}"#);
        assert_eq!(rejected_field(&text), "event_time", "case {time}");
    }
}

#[test]
fn far_future_rejected_unless_disabled() {
    let text = r#"{"event_time":"2024-05-03T12:00:00Z","event":"view","user_id":1}"#;

    let error = parse(text).unwrap_err();
    assert!(error.to_string().contains("ahead of the ingest clock"), "{error}");

    let limits = ParseLimits {
        max_future: None,
        ..ParseLimits::default()
    };
    assert!(Event::parse_with(text.as_bytes(), &limits, now()).is_ok());

    let limits = ParseLimits {
        max_future: Some(Duration::from_secs(3 * 24 * 3600)),
        ..ParseLimits::default()
    };
    assert!(Event::parse_with(text.as_bytes(), &limits, now()).is_ok());
}

#[test]
fn malformed_messages_rejected_by_kind() {
    let cases: [(&[u8], &str); 6] = [
        (br#"{"event_time":1714557600000,"event":"vi"#, "invalid_json"),
        (br#"{"event":"v\q"}"#, "invalid_json"),
        (b"[1,2,3]", "not_an_object"),
        (b"\"text\"", "not_an_object"),
        (b"{\"event\":\"v\xff\"}", "not_utf8"),
        (b"", "invalid_json"),
    ];

    for (message, kind) in cases {
        let error = Event::parse_with(message, &ParseLimits::default(), now()).unwrap_err();
        assert_eq!(error.kind(), kind, "message {:?}", String::from_utf8_lossy(message));
    }
}

#[test]
fn oversized_message_rejected_before_parsing() {
    let message = vec![b' '; 10 * 1024 * 1024];

    let error = Event::parse_with(&message, &ParseLimits::default(), now()).unwrap_err();

    assert_eq!(error.kind(), "too_large");
    assert!(error.to_string().contains("10485760 bytes"), "{error}");
}

#[test]
fn deep_nesting_rejected_without_overflow() {
    let depth = 100_000;
    let message = format!("{}{}", "[".repeat(depth), "]".repeat(depth));

    let error = Event::parse_with(message.as_bytes(), &ParseLimits::default(), now()).unwrap_err();

    assert_eq!(error.kind(), "invalid_json");
}

#[test]
fn error_names_value_and_fix() {
    let error = parse(r#"{"event_time":1714557600000,"event":"view","user_id":1,"post_id":"abc"}"#).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("`post_id`"), "{message}");
    assert!(message.contains("\"abc\""), "{message}");
    assert!(message.contains("non-negative integer"), "{message}");
}

#[test]
fn long_values_shortened_in_errors() {
    let long = "x".repeat(5000);
    let text = format!(r#"{{"event_time":1714557600000,"event":"view","user_id":1,"os":"{long}"}}"#);

    let message = parse(&text).unwrap_err().to_string();

    assert!(message.len() < 300, "{message}");
    assert!(message.contains('…'), "{message}");
}
