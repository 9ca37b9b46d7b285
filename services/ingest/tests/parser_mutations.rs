//! Stable-Rust property test of the event parser that ingest runs on every
//! Kafka payload: random bytes, mutated valid events and generated JSON with
//! wrong types must never panic, and every accepted event must keep the
//! contract in `fuzz/event_contract.rs`. The libFuzzer target in `fuzz/`
//! explores further where nightly Rust is available.
//!
//! Bounded by case count, not time. `SEISMO_PARSER_CASES` raises the count
//! and `SEISMO_PARSER_SEED` replays a failing run (its seed is printed).

use std::time::Duration;

use chrono::DateTime;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seismo_events::{Event, ParseLimits};

#[path = "../fuzz/event_contract.rs"]
mod event_contract;

use event_contract::check_event_contract;

/// Fixed reference time of every parse: 2024-05-01T12:00:00Z.
const NOW_MS: i64 = 1_714_564_800_000;
const MAX_FUTURE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_CASES: usize = 20_000;

/// Valid events that the mutations start from.
const SEEDS: &[&str] = &[
    r#"{"event_time": 1714564800123, "event": "view", "user_id": 7, "post_id": 9, "os": "iOS", "age": 31, "value": 2.5, "campaign": "x"}"#,
    r#"{"event_time": "2024-05-01T12:00:00.5+02:00", "event": "like", "user_id": "u-1", "event_id": "e-1", "receiver_id": 12, "country": "PT", "city": "Porto", "source": "ads", "gender": "f", "exp_group": 3, "extra": {"nested": [1, {"a": null}]}}"#,
    r#"{"event_time": 1714564800000, "event": "vi\u00e9w\n", "user_id": "\ud83d\ude00"}"#,
];

/// Values of every JSON type, including edge cases of each field's type.
const VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "150",
    "151",
    "1e308",
    "-0.0",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "1714564800000",
    "4294967295000",
    "4294967295001",
    "946684799999",
    "99999999999999999999999",
    "1.5",
    "\"\"",
    "\"x\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\q\"",
    "\"2024-05-01T12:00:00Z\"",
    "\"2106-02-07T06:28:16Z\"",
    "\"1999-12-31T23:59:59Z\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"yesterday\"",
    "[]",
    "{}",
    "[1,[2,[3]]]",
    "{\"a\":{\"b\":1}}",
];

const FIELDS: &[&str] = &[
    "event_time",
    "event",
    "user_id",
    "event_id",
    "post_id",
    "receiver_id",
    "os",
    "country",
    "city",
    "source",
    "gender",
    "age",
    "exp_group",
    "value",
    "extra",
    "unknown",
];

fn parse(message: &[u8]) -> Result<Event, seismo_events::EventError> {
    let now = DateTime::from_timestamp_millis(NOW_MS).expect("NOW_MS is a valid time");
    let limits = ParseLimits {
        max_message_bytes: 64 * 1024,
        max_future: Some(MAX_FUTURE),
    };
    Event::parse_with(message, &limits, now)
}

/// Parses `message` and checks the outcome: no panic, the contract for an
/// accepted event, a labelled reason for a rejected one, and the same
/// outcome on a second parse.
fn check(message: &[u8]) -> bool {
    let outcome = parse(message);
    match &outcome {
        Ok(event) => check_event_contract(event, NOW_MS, MAX_FUTURE.as_millis() as i64),
        Err(error) => {
            assert!(!error.kind().is_empty());
            assert!(!error.to_string().is_empty());
        }
    }
    assert_eq!(
        parse(message),
        outcome,
        "parsing {message:?} twice gave different results"
    );
    outcome.is_ok()
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let length = rng.random_range(0..256);
    (0..length).map(|_| rng.random()).collect()
}

/// Applies 1 to 8 byte-level mutations to a valid event.
fn mutated_seed(rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = SEEDS[rng.random_range(0..SEEDS.len())].as_bytes().to_vec();
    for _ in 0..rng.random_range(1..=8) {
        if bytes.is_empty() {
            bytes.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..6) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => {
                bytes.remove(at);
            }
            3 => bytes.insert(at, *b"{}[]\",:\\0-e.".get(rng.random_range(0..13)).unwrap_or(&b'x')),
            4 => bytes.truncate(at),
            _ => {
                let end = rng.random_range(at..bytes.len());
                let copied: Vec<u8> = bytes[at..=end].to_vec();
                let into = rng.random_range(0..bytes.len());
                bytes.splice(into..into, copied);
            }
        }
    }
    bytes
}

/// Builds a JSON object with random fields set to values of random types.
fn generated_object(rng: &mut StdRng) -> Vec<u8> {
    let mut members = Vec::new();
    // Usually a valid base, so the checks of later fields are reached.
    if rng.random_bool(0.7) {
        members.push(r#""event_time": 1714564800000"#.to_string());
        members.push(r#""event": "view""#.to_string());
        members.push(r#""user_id": "u""#.to_string());
    }
    for _ in 0..rng.random_range(0..6) {
        let field = FIELDS[rng.random_range(0..FIELDS.len())];
        let value = VALUES[rng.random_range(0..VALUES.len())];
        members.push(format!("\"{field}\": {value}"));
    }
    format!("{{{}}}", members.join(", ")).into_bytes()
}

/// Nests arrays or objects `depth` levels deep inside an otherwise valid event.
fn nested(depth: usize, object: bool) -> Vec<u8> {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    format!(
        r#"{{"event_time": 1714564800000, "event": "view", "user_id": "u", "deep": {}1{}}}"#,
        open.repeat(depth),
        close.repeat(depth)
    )
    .into_bytes()
}

#[test]
fn parser_survives_random_and_mutated_input() {
    let seed: u64 = std::env::var("SEISMO_PARSER_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(rand::random);
    let cases: usize = std::env::var("SEISMO_PARSER_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    println!("parser mutation test: seed {seed}, {cases} cases (SEISMO_PARSER_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut accepted = [0_usize; 3];
    for case in 0..cases {
        let kind = case % 3;
        let message = match kind {
            0 => random_bytes(&mut rng),
            1 => mutated_seed(&mut rng),
            _ => generated_object(&mut rng),
        };
        if check(&message) {
            accepted[kind] += 1;
        }
    }
    println!(
        "accepted: random {}, mutated {}, generated {}",
        accepted[0], accepted[1], accepted[2]
    );

    // Without accepted inputs the contract checks would never run.
    assert!(
        accepted[1] > 0,
        "no mutated seed was accepted; the mutations are too destructive"
    );
    assert!(accepted[2] > 0, "no generated object was accepted");
}

#[test]
fn parser_rejects_deep_nesting_without_overflow() {
    for depth in [1, 100, 126, 127, 128, 129, 1_000, 10_000] {
        for object in [false, true] {
            let message = nested(depth, object);
            let outcome = parse(&message);
            // serde_json's recursion limit is 128 levels including the event
            // object itself; deeper input is invalid JSON, never a crash.
            if depth >= 128 {
                let error = outcome.expect_err("nesting beyond 128 levels is rejected");
                assert_eq!(error.kind(), "invalid_json", "depth {depth}");
            } else if depth <= 100 {
                let event = outcome.expect("moderate nesting is accepted");
                assert!(event.extra.starts_with(r#"{"deep":"#), "depth {depth}: {}", event.extra);
            }
            check(&message);
        }
    }
}

#[test]
fn parser_seeds_are_accepted() {
    for seed in SEEDS {
        assert!(
            check(seed.as_bytes()),
            "seed {seed} is rejected: {:?}",
            parse(seed.as_bytes())
        );
    }
}
