//! Cost of one event through the windowing: the event-time clock, the
//! windows of every metric and slice, and the watermark over Kafka
//! partitions.
//!
//! Run: `cargo bench -p seismo-detector --bench windowing`. Each benchmark
//! pushes a batch of 10,000 events, one every 60 ms of event time, into a
//! fresh `Windower` with two count metrics of 1-minute windows sliced by
//! two dimensions. So every 1,000 events close one window of each series.
//! With partitions, the events go round-robin over them, the worst case:
//! every event then comes from the slowest partition. The `chunks` case
//! gives each partition 100 events in a row, as librdkafka hands over a
//! fetched batch of one partition at a time. `unique_users` counts the
//! distinct users of each window, all 10,000 of them new.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use seismo_detector::MetricsConfig;
use seismo_detector::windowing::Windower;
use seismo_events::Event;

const EVENTS: usize = 10_000;

const CONFIG: &str = r#"
[windowing]
allowed_lateness = "10s"

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os", "country"]

[[metric]]
name = "likes"
events = ["like"]
aggregation = "count"
window = "1m"
dimensions = ["os", "country"]
"#;

/// One unique-users metric of 1-minute windows sliced by OS.
const ACTIVE_USERS: &str = r#"
[windowing]
allowed_lateness = "10s"

[[metric]]
name = "active_users"
events = ["view", "like"]
aggregation = "unique_users"
window = "1m"
dimensions = ["os"]
"#;

/// Events of three OSes and ten countries, two views to one like.
fn events() -> Vec<Event> {
    let start_ms = 1_700_000_040_000;
    (0..EVENTS)
        .map(|index| Event {
            event_time: Utc.timestamp_millis_opt(start_ms + index as i64 * 60).unwrap(),
            event: if index % 3 == 2 { "like" } else { "view" }.to_string(),
            user_id: format!("user-{}", index % 500),
            event_id: None,
            post_id: None,
            receiver_id: None,
            os: Some(["iOS", "Android", "web"][index % 3].to_string()),
            country: Some(format!("C{}", index % 10)),
            city: None,
            source: None,
            gender: None,
            age: None,
            exp_group: None,
            value: None,
            extra: String::new(),
        })
        .collect()
}

fn windowing(c: &mut Criterion) {
    let config = MetricsConfig::parse(CONFIG).expect("the benchmark's metrics file is valid");
    let events = events();
    let mut group = c.benchmark_group("windowing");
    group.throughput(Throughput::Elements(EVENTS as u64));

    bench_without_partitions(&mut group, "without_partitions", &config, &events);

    let cases = [(1, 1), (12, 1), (64, 1), (64, 100)];
    for (partitions, chunk) in cases {
        let assigned: Vec<i32> = (0..partitions).collect();
        let name = if chunk == 1 {
            format!("{partitions}_partitions")
        } else {
            format!("{partitions}_partitions_chunks_of_{chunk}")
        };
        group.bench_function(name, |bencher| {
            bencher.iter_batched(
                || {
                    let mut windower = Windower::new(&config);
                    windower.assign_partitions(&assigned, &mut Vec::new());
                    (windower, events.clone())
                },
                |(mut windower, events)| {
                    let mut closed = Vec::new();
                    for (index, event) in events.into_iter().enumerate() {
                        windower.push_from((index / chunk) as i32 % partitions, event, &mut closed);
                    }
                    black_box(closed.len())
                },
                BatchSize::LargeInput,
            );
        });
    }

    // Every event from a user not seen before in its window: 1,000 new
    // users per window of the total and about 333 of each OS slice.
    let active_users = MetricsConfig::parse(ACTIVE_USERS).expect("the benchmark's metrics file is valid");
    let distinct: Vec<Event> = events
        .iter()
        .enumerate()
        .map(|(index, event)| Event {
            user_id: format!("4f1c2a9e-user-{index:08}"),
            ..event.clone()
        })
        .collect();
    bench_without_partitions(&mut group, "unique_users", &active_users, &distinct);
    group.finish();
}

/// Benchmarks pushing `events` into a fresh windowing of `config` from a
/// source without partitions.
fn bench_without_partitions(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    config: &MetricsConfig,
    events: &[Event],
) {
    group.bench_function(name, |bencher| {
        bencher.iter_batched(
            || (Windower::new(config), events.to_vec()),
            |(mut windower, events)| {
                let mut closed = Vec::new();
                for event in events {
                    windower.push(event, &mut closed);
                }
                black_box(closed.len())
            },
            BatchSize::LargeInput,
        );
    });
}

criterion_group!(benches, windowing);
criterion_main!(benches);
