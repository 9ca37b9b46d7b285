//! What a successfully parsed event promises to the rest of ingest, shared by
//! the libFuzzer target and the stable-Rust mutation test.

use seismo_events::Event;

/// Bounds of `event_time` promised by the parser: 2000-01-01 up to the last
/// second ClickHouse's `DateTime` can store (2106-02-07T06:28:15Z), so the
/// row conversion's `u32` seconds cannot overflow.
pub const MIN_EVENT_TIME_MS: i64 = 946_684_800_000;
pub const MAX_EVENT_TIME_MS: i64 = 4_294_967_295_000;

/// Longest accepted string field, in bytes.
pub const MAX_STRING_BYTES: usize = 1024;

/// Panics with the broken promise if `event`, parsed at `now_ms` with
/// `max_future_ms` of allowed clock skew, breaks the parser's contract.
pub fn check_event_contract(event: &Event, now_ms: i64, max_future_ms: i64) {
    let event_time = event.event_time_ms();
    assert!(
        (MIN_EVENT_TIME_MS..=MAX_EVENT_TIME_MS).contains(&event_time),
        "event_time {event_time} outside 2000..2106"
    );
    assert!(
        event_time <= now_ms + max_future_ms,
        "event_time {event_time} too far ahead of {now_ms}"
    );

    for (name, text) in [("event", &event.event), ("user_id", &event.user_id)] {
        assert!(!text.is_empty(), "{name} is empty");
        assert!(text.len() <= MAX_STRING_BYTES, "{name} is {} bytes", text.len());
    }
    let optional = [
        ("event_id", &event.event_id),
        ("receiver_id", &event.receiver_id),
        ("os", &event.os),
        ("country", &event.country),
        ("city", &event.city),
        ("source", &event.source),
        ("gender", &event.gender),
        ("exp_group", &event.exp_group),
    ];
    for (name, text) in optional {
        if let Some(text) = text {
            assert!(!text.is_empty(), "{name} is Some(\"\")");
            assert!(text.len() <= MAX_STRING_BYTES, "{name} is {} bytes", text.len());
        }
    }
    if let Some(age) = event.age {
        assert!(age <= 150, "age {age}");
    }
    if let Some(value) = event.value {
        assert!(value.is_finite(), "value {value}");
    }
    if !event.extra.is_empty() {
        let extra: serde_json::Value = serde_json::from_str(&event.extra).expect("extra is JSON text");
        assert!(extra.is_object(), "extra is not an object: {}", event.extra);
    }
}
