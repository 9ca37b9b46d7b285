//! Fuzzes `Event::parse_with`, the code that reads untrusted Kafka payloads
//! in ingest. Besides "no panic, no hang, no unbounded memory", it checks the
//! contract that the ClickHouse row conversion relies on.

#![no_main]

use std::time::Duration;

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use seismo_events::{Event, ParseLimits};

#[path = "../event_contract.rs"]
mod event_contract;

/// Fixed reference time, so a crash reproduces: 2024-05-01T12:00:00Z.
const NOW_MS: i64 = 1_714_564_800_000;

const MAX_FUTURE: Duration = Duration::from_secs(24 * 3600);

fuzz_target!(|message: &[u8]| {
    let now = DateTime::from_timestamp_millis(NOW_MS).expect("NOW_MS is a valid time");
    let limits = ParseLimits {
        max_message_bytes: 64 * 1024,
        max_future: Some(MAX_FUTURE),
    };

    let Ok(event) = Event::parse_with(message, &limits, now) else {
        return;
    };
    event_contract::check_event_contract(&event, NOW_MS, MAX_FUTURE.as_millis() as i64);
    assert_eq!(
        Event::parse_with(message, &limits, now).as_ref(),
        Ok(&event),
        "parsing the same bytes twice gave different results"
    );
});
