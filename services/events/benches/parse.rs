//! Cost of parsing and validating one event message.
//!
//! Run: `cargo bench -p seismo-events --bench parse`. The typical message
//! is shaped like the ingest throughput benchmark's: about 200 bytes of JSON
//! with eleven schema fields. The other one also carries fields outside the
//! schema, which go to `extra`.

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use seismo_events::{Event, ParseLimits};

const TYPICAL: &str = r#"{"age":42,"city":"Porto","country":"Portugal","event":"view","event_id":"e-123456","event_time":1714564801230,"exp_group":"2","os":"Android","post_id":456,"source":"ads","user_id":"user-23456"}"#;

const WITH_EXTRA: &str = r#"{"event_time":"2024-05-01T12:00:01.230Z","event":"like","user_id":23456,"event_id":"e-123456","os":"iOS","country":"Portugal","app_version":"5.2.1","ab":{"feed":"b"},"screen":"home"}"#;

fn bench_parse(c: &mut Criterion) {
    // Fixed, so the future-time check judges every run alike: 2024-05-01T12:00:00Z.
    let now = DateTime::from_timestamp_millis(1_714_564_800_000).expect("a valid time");
    let limits = ParseLimits::default();

    let mut group = c.benchmark_group("parse");
    for (name, message) in [("typical", TYPICAL), ("with_extra", WITH_EXTRA)] {
        Event::parse_with(message.as_bytes(), &limits, now).expect("benchmark message is a valid event");
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| Event::parse_with(black_box(message.as_bytes()), &limits, now))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
