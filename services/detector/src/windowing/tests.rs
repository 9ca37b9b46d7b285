use chrono::{TimeZone, Utc};

use super::*;

/// A minute boundary: 2023-11-14T22:14:00Z.
const T0: i64 = 1_700_000_040_000;
const MINUTE: i64 = 60_000;

fn event(time_ms: i64, name: &str, user: &str) -> Event {
    Event {
        event_time: Utc.timestamp_millis_opt(time_ms).unwrap(),
        event: name.to_string(),
        user_id: user.to_string(),
        event_id: None,
        post_id: None,
        receiver_id: None,
        os: None,
        country: None,
        city: None,
        source: None,
        gender: None,
        age: None,
        exp_group: None,
        value: None,
        extra: String::new(),
    }
}

fn with_os(mut event: Event, os: &str) -> Event {
    event.os = Some(os.to_string());
    event
}

fn with_source(mut event: Event, source: &str) -> Event {
    event.source = Some(source.to_string());
    event
}

fn with_value(mut event: Event, value: f64) -> Event {
    event.value = Some(value);
    event
}

/// Builds a windower over `metrics` (TOML `[[metric]]` tables) with
/// `windowing` settings (TOML keys).
fn windower(windowing: &str, metrics: &str) -> Windower {
    let text = format!("[windowing]\n{windowing}\n{metrics}");
    Windower::new(&MetricsConfig::parse(&text).unwrap())
}

const VIEWS_1M: &str = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
"#;

/// Settings that accept every event at once, with 10 s of lateness.
const IMMEDIATE: &str = "allowed_lateness = \"10s\"\nfuture_confirmations = 1";

fn push_all(windower: &mut Windower, events: Vec<Event>) -> Vec<ClosedWindow> {
    let mut closed = Vec::new();
    for event in events {
        windower.push(event, &mut closed);
    }
    closed
}

fn values(closed: &[ClosedWindow]) -> Vec<(String, i64, f64)> {
    closed
        .iter()
        .map(|window| {
            (
                window.slice.to_string(),
                (window.window_start_ms - T0) / MINUTE,
                window.value,
            )
        })
        .collect()
}

#[test]
fn window_closes_once_after_watermark() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);

    let closed = push_all(
        &mut windower,
        vec![
            event(T0, "view", "a"),
            event(T0 + 30_000, "view", "b"),
            event(T0 + MINUTE + 5_000, "view", "c"),
        ],
    );
    assert!(
        closed.is_empty(),
        "closed before the watermark passed the end: {closed:?}"
    );

    let closed = push_all(&mut windower, vec![event(T0 + MINUTE + 10_000, "view", "d")]);
    assert_eq!(values(&closed), vec![("total".to_string(), 0, 2.0)]);
    assert_eq!(closed[0].window_end_ms, T0 + MINUTE);
    assert_eq!(closed[0].metric_index, 0);

    let closed = push_all(&mut windower, vec![event(T0 + MINUTE + 20_000, "view", "e")]);
    assert!(closed.is_empty(), "window closed twice: {closed:?}");
    assert_eq!(windower.counters().windows_closed, 1);
}

#[test]
fn event_within_lateness_counts() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);

    let mut closed = push_all(
        &mut windower,
        vec![
            event(T0, "view", "a"),
            event(T0 + MINUTE + 5_000, "view", "b"),
            event(T0 + 50_000, "view", "late but allowed"),
        ],
    );
    closed.extend(push_all(
        &mut windower,
        vec![event(T0 + 2 * MINUTE + 10_000, "view", "c")],
    ));

    assert_eq!(
        values(&closed),
        vec![("total".to_string(), 0, 2.0), ("total".to_string(), 1, 1.0)]
    );
    assert_eq!(windower.counters().events_late, 0);
}

#[test]
fn late_event_is_counted_and_dropped() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);
    let closed = push_all(
        &mut windower,
        vec![event(T0, "view", "a"), event(T0 + MINUTE + 10_000, "view", "b")],
    );
    assert_eq!(values(&closed), vec![("total".to_string(), 0, 1.0)]);

    let closed = push_all(&mut windower, vec![event(T0 + 30_000, "view", "too late")]);

    assert!(closed.is_empty(), "late event changed output: {closed:?}");
    assert_eq!(windower.counters().events_late, 1);
    assert_eq!(windower.counters().events_accepted, 3);

    let closed = push_all(&mut windower, vec![event(T0 + 2 * MINUTE + 10_000, "view", "c")]);
    assert_eq!(values(&closed), vec![("total".to_string(), 1, 1.0)]);
}

#[test]
fn far_future_event_does_not_close_windows() {
    let mut windower = windower(
        "allowed_lateness = \"10s\"\nmax_future_jump = \"1h\"\nfuture_confirmations = 3",
        VIEWS_1M,
    );
    push_all(
        &mut windower,
        vec![
            event(T0, "view", "a"),
            event(T0 + 1_000, "view", "b"),
            event(T0 + 2_000, "view", "c"),
        ],
    );
    let watermark_before = windower.watermark_ms();
    assert_eq!(watermark_before, Some(T0 + 2_000 - 10_000));

    let closed = push_all(&mut windower, vec![event(T0 + 24 * 60 * MINUTE, "view", "clock skew")]);

    assert!(closed.is_empty(), "far-future event closed windows: {closed:?}");
    assert_eq!(windower.watermark_ms(), watermark_before);
    assert_eq!(windower.counters().events_held, 1);

    let closed = push_all(
        &mut windower,
        vec![
            event(T0 + 20_000, "view", "d"),
            event(T0 + MINUTE + 10_000, "view", "e"),
        ],
    );
    assert_eq!(values(&closed), vec![("total".to_string(), 0, 4.0)]);
    assert_eq!(windower.counters().events_held, 1);
    assert_eq!(windower.counters().events_late, 0);
}

#[test]
fn confirmed_jump_advances_clock() {
    let mut windower = windower(
        "allowed_lateness = \"10s\"\nmax_future_jump = \"1h\"\nfuture_confirmations = 3",
        VIEWS_1M,
    );
    push_all(
        &mut windower,
        vec![
            event(T0, "view", "a"),
            event(T0 + 1_000, "view", "b"),
            event(T0 + 2_000, "view", "c"),
        ],
    );
    let gap_start = T0 + 3 * 60 * MINUTE;

    let closed = push_all(
        &mut windower,
        vec![event(gap_start, "view", "d"), event(gap_start + 1_000, "view", "e")],
    );
    assert!(closed.is_empty(), "two events confirmed the jump: {closed:?}");
    assert_eq!(windower.counters().events_held, 2);

    let closed = push_all(&mut windower, vec![event(gap_start + 2_000, "view", "f")]);

    assert_eq!(windower.counters().events_held, 0);
    assert_eq!(windower.watermark_ms(), Some(gap_start + 2_000 - 10_000));
    // The first window, then a zero for every minute of the quiet gap up to
    // the watermark (gap_start - 8 s), which closes minutes 0 to 178.
    assert_eq!(closed.len(), 179, "{:?}", values(&closed));
    assert_eq!(closed[0].value, 3.0);
    assert!(closed[1..].iter().all(|window| window.value == 0.0));
    assert_eq!(closed.last().unwrap().window_start_ms, gap_start - 2 * MINUTE);
}

#[test]
fn first_event_alone_does_not_start_clock() {
    let mut windower = windower(
        "allowed_lateness = \"10s\"\nmax_future_jump = \"1h\"\nfuture_confirmations = 3",
        VIEWS_1M,
    );

    push_all(
        &mut windower,
        vec![event(T0 + 365 * 24 * 60 * MINUTE, "view", "bogus first")],
    );
    assert_eq!(windower.watermark_ms(), None);
    push_all(
        &mut windower,
        vec![event(T0, "view", "a"), event(T0 + 1_000, "view", "b")],
    );
    assert_eq!(windower.watermark_ms(), None);

    push_all(&mut windower, vec![event(T0 + 2_000, "view", "c")]);

    assert_eq!(windower.watermark_ms(), Some(T0 + 2_000 - 10_000));
    assert_eq!(windower.counters().events_held, 1);
    assert_eq!(windower.counters().events_accepted, 3);
}

#[test]
fn held_overflow_rejects_latest() {
    let mut windower = windower(
        "allowed_lateness = \"10s\"\nmax_future_jump = \"1h\"\nfuture_confirmations = 2\nmax_held_events = 2",
        VIEWS_1M,
    );
    push_all(
        &mut windower,
        vec![event(T0, "view", "a"), event(T0 + 1_000, "view", "b")],
    );
    let day = 24 * 60 * MINUTE;

    // Three isolated future events, each more than an hour from the others.
    push_all(
        &mut windower,
        vec![
            event(T0 + 3 * day, "view", "x"),
            event(T0 + day, "view", "y"),
            event(T0 + 2 * day, "view", "z"),
        ],
    );

    assert_eq!(windower.counters().events_held, 2);
    assert_eq!(windower.counters().events_rejected_future, 1);
    assert_eq!(windower.watermark_ms(), Some(T0 + 1_000 - 10_000));
}

#[test]
fn held_event_released_when_clock_reaches_it() {
    let mut windower = windower(
        "allowed_lateness = \"0s\"\nmax_future_jump = \"10m\"\nfuture_confirmations = 2",
        VIEWS_1M,
    );
    push_all(
        &mut windower,
        vec![event(T0, "view", "a"), event(T0 + 1_000, "view", "b")],
    );
    push_all(&mut windower, vec![event(T0 + 15 * MINUTE, "view", "early")]);
    assert_eq!(windower.counters().events_held, 1);

    let closed = push_all(&mut windower, vec![event(T0 + 6 * MINUTE, "view", "c")]);

    assert_eq!(windower.counters().events_held, 0);
    assert_eq!(windower.watermark_ms(), Some(T0 + 15 * MINUTE));
    let minutes: Vec<i64> = closed
        .iter()
        .map(|window| (window.window_start_ms - T0) / MINUTE)
        .collect();
    assert_eq!(minutes, (0..15).collect::<Vec<_>>());
    assert_eq!(closed[6].value, 1.0);
}

/// Pushes `(partition, event)` pairs in order and returns the windows they
/// close.
fn push_partitioned(windower: &mut Windower, events: Vec<(i32, Event)>) -> Vec<ClosedWindow> {
    let mut closed = Vec::new();
    for (partition, event) in events {
        windower.push_from(partition, event, &mut closed);
    }
    closed
}

/// Returns views of partition 0 at each of `seconds` after `T0`, steps of
/// less than the clock's 1-minute jump in the tests that use it.
fn partition_0_steps(seconds: &[i64]) -> Vec<(i32, Event)> {
    seconds
        .iter()
        .map(|&at| (0, event(T0 + at * 1_000, "view", "step")))
        .collect()
}

#[test]
fn lagging_partition_keeps_its_windows_open() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);
    let mut closed = Vec::new();
    windower.assign_partitions(&[0, 1], &mut closed);

    // Partition 0 delivers three minutes before partition 1 delivers any.
    closed.extend(push_partitioned(
        &mut windower,
        vec![
            (0, event(T0, "view", "a")),
            (0, event(T0 + MINUTE, "view", "b")),
            (0, event(T0 + 3 * MINUTE, "view", "c")),
        ],
    ));
    assert!(
        closed.is_empty(),
        "closed while partition 1 had delivered nothing: {closed:?}"
    );
    assert_eq!(windower.watermark_ms(), None);

    closed.extend(push_partitioned(
        &mut windower,
        vec![
            (1, event(T0 + 10_000, "view", "d")),
            (1, event(T0 + MINUTE + 20_000, "view", "e")),
        ],
    ));
    assert_eq!(values(&closed), vec![("total".to_string(), 0, 2.0)]);
    assert_eq!(windower.watermark_ms(), Some(T0 + MINUTE + 20_000 - 10_000));
    assert_eq!(windower.counters().events_late, 0);
}

#[test]
fn released_partition_stops_holding_windows() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);
    let mut closed = Vec::new();
    windower.assign_partitions(&[0, 1], &mut closed);
    closed.extend(push_partitioned(
        &mut windower,
        vec![
            (0, event(T0, "view", "a")),
            (0, event(T0 + 2 * MINUTE + 30_000, "view", "b")),
        ],
    ));
    assert!(closed.is_empty());

    // Partition 1 reached the end of its log.
    windower.release_partition(1, &mut closed);
    assert_eq!(
        values(&closed),
        vec![("total".to_string(), 0, 1.0), ("total".to_string(), 1, 0.0)]
    );
    assert!(!windower.is_partition_holding(1));

    // Its next event holds the watermark where that event is.
    closed = push_partitioned(
        &mut windower,
        vec![
            (1, event(T0 + 2 * MINUTE + 5_000, "view", "c")),
            (0, event(T0 + 5 * MINUTE, "view", "d")),
        ],
    );
    assert!(windower.is_partition_holding(1));
    assert!(closed.is_empty(), "closed past partition 1's latest event: {closed:?}");
    assert_eq!(windower.watermark_ms(), Some(T0 + 2 * MINUTE + 30_000 - 10_000));
}

#[test]
fn revoked_partition_no_longer_holds_windows() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);
    let mut closed = Vec::new();
    windower.assign_partitions(&[0, 1], &mut closed);
    push_partitioned(
        &mut windower,
        vec![
            (1, event(T0, "view", "a")),
            (0, event(T0 + 2 * MINUTE + 30_000, "view", "b")),
        ],
    );

    windower.assign_partitions(&[0], &mut closed);

    assert_eq!(
        values(&closed),
        vec![("total".to_string(), 0, 1.0), ("total".to_string(), 1, 0.0)]
    );
}

#[test]
fn new_partition_does_not_move_the_watermark_back() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);
    let mut closed = Vec::new();
    windower.assign_partitions(&[0], &mut closed);
    closed.extend(push_partitioned(
        &mut windower,
        vec![
            (0, event(T0, "view", "a")),
            (0, event(T0 + MINUTE + 30_000, "view", "b")),
        ],
    ));
    assert_eq!(values(&closed), vec![("total".to_string(), 0, 1.0)]);

    windower.assign_partitions(&[0, 1], &mut closed);
    closed = push_partitioned(&mut windower, vec![(1, event(T0 + 5_000, "view", "c"))]);

    assert!(closed.is_empty());
    assert_eq!(windower.watermark_ms(), Some(T0 + MINUTE + 30_000 - 10_000));
    assert_eq!(windower.counters().events_late, 1, "window 0 was already judged");
}

#[test]
fn held_event_counts_for_its_partition_once_released() {
    let mut windower = windower(
        "allowed_lateness = \"10s\"\nmax_future_jump = \"1m\"\nfuture_confirmations = 2",
        VIEWS_1M,
    );
    let mut closed = Vec::new();
    windower.assign_partitions(&[0, 1], &mut closed);
    let second = 1_000;
    push_partitioned(
        &mut windower,
        vec![
            (0, event(T0, "view", "a")),
            (0, event(T0 + second, "view", "b")),
            (1, event(T0 + 5 * second, "view", "c")),
        ],
    );
    assert_eq!(windower.watermark_ms(), Some(T0 + second - 10 * second));

    // Far ahead of the clock: held, so partition 1 still holds at T0 + 5 s
    // while partition 0 moves on in steps the clock admits.
    push_partitioned(&mut windower, vec![(1, event(T0 + 10 * MINUTE, "view", "d"))]);
    assert_eq!(windower.counters().events_held, 1);
    closed = push_partitioned(&mut windower, partition_0_steps(&[50, 100, 150]));
    assert!(
        closed.is_empty(),
        "closed past partition 1's applied events: {closed:?}"
    );

    // Within a minute of the held event, the clock releases it and it
    // counts for partition 1, behind partition 0.
    closed = push_partitioned(
        &mut windower,
        partition_0_steps(&[200, 250, 300, 350, 400, 450, 500, 550, 570]),
    );
    assert_eq!(windower.counters().events_held, 0);
    assert_eq!(closed.len(), 9, "windows 0 to 8: {:?}", values(&closed));
    assert_eq!(windower.watermark_ms(), Some(T0 + 560 * second));
    assert_eq!(windower.counters().events_late, 0);
}

#[test]
fn held_event_ignored_after_end_of_log() {
    let mut windower = windower(
        "allowed_lateness = \"10s\"\nmax_future_jump = \"1m\"\nfuture_confirmations = 2",
        VIEWS_1M,
    );
    let mut closed = Vec::new();
    windower.assign_partitions(&[0, 1], &mut closed);
    let second = 1_000;
    push_partitioned(
        &mut windower,
        vec![
            (0, event(T0, "view", "a")),
            (0, event(T0 + second, "view", "b")),
            (1, event(T0 + 10 * MINUTE, "view", "far ahead")),
        ],
    );
    assert_eq!(windower.counters().events_held, 1);

    // The end of partition 1's log comes after its held event, and no
    // second report follows when that event is applied.
    windower.release_partition(1, &mut closed);
    push_partitioned(
        &mut windower,
        partition_0_steps(&[50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 570]),
    );

    assert_eq!(windower.counters().events_held, 0);
    assert!(!windower.is_partition_holding(1));
    assert_eq!(windower.watermark_ms(), Some(T0 + 560 * second));
}

#[test]
fn empty_assignment_closes_no_window() {
    let mut windower = windower(IMMEDIATE, VIEWS_1M);
    let mut closed = Vec::new();
    windower.assign_partitions(&[0], &mut closed);
    push_partitioned(&mut windower, vec![(0, event(T0, "view", "a"))]);

    windower.assign_partitions(&[], &mut closed);
    closed.extend(push_partitioned(
        &mut windower,
        vec![(0, event(T0 + 5 * MINUTE, "view", "queued before the revocation"))],
    ));

    assert!(closed.is_empty(), "closed during a rebalance: {closed:?}");
}

#[test]
fn slices_per_dimension_value() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os", "source"]
"#;
    let mut windower = windower(IMMEDIATE, metrics);

    let closed = push_all(
        &mut windower,
        vec![
            with_source(with_os(event(T0, "view", "a"), "iOS"), "ads"),
            with_os(event(T0 + 1_000, "view", "b"), "iOS"),
            with_source(with_os(event(T0 + 2_000, "view", "c"), "Android"), "organic"),
            event(T0 + 3_000, "view", "no dimensions"),
            event(T0 + MINUTE + 10_000, "view", "closer"),
        ],
    );

    assert_eq!(
        values(&closed),
        vec![
            ("total".to_string(), 0, 4.0),
            ("os=Android".to_string(), 0, 1.0),
            ("os=iOS".to_string(), 0, 2.0),
            ("source=ads".to_string(), 0, 1.0),
            ("source=organic".to_string(), 0, 1.0),
        ]
    );
    assert_eq!(windower.series_count(), 5);
}

#[test]
fn slice_limit_keeps_total() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;
    let mut windower = windower(&format!("{IMMEDIATE}\nmax_slices_per_dimension = 2"), metrics);

    let closed = push_all(
        &mut windower,
        vec![
            with_os(event(T0, "view", "a"), "iOS"),
            with_os(event(T0 + 1_000, "view", "b"), "Android"),
            with_os(event(T0 + 2_000, "view", "c"), "KaiOS"),
            with_os(event(T0 + 3_000, "view", "d"), "iOS"),
            event(T0 + MINUTE + 10_000, "view", "closer"),
        ],
    );

    assert_eq!(
        values(&closed),
        vec![
            ("total".to_string(), 0, 4.0),
            ("os=Android".to_string(), 0, 1.0),
            ("os=iOS".to_string(), 0, 2.0),
        ]
    );
    assert_eq!(windower.counters().slices_rejected, 1);
}

#[test]
fn ratio_per_window_and_slice() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"

[[metric]]
name = "likes"
events = ["like"]
aggregation = "count"
window = "1m"

[[metric]]
name = "ctr"
aggregation = "ratio"
numerator = "likes"
denominator = "views"
window = "1m"
dimensions = ["os"]
"#;
    let mut windower = windower(IMMEDIATE, metrics);

    let closed = push_all(
        &mut windower,
        vec![
            with_os(event(T0, "view", "a"), "iOS"),
            with_os(event(T0 + 1_000, "view", "b"), "iOS"),
            with_os(event(T0 + 2_000, "view", "c"), "iOS"),
            with_os(event(T0 + 3_000, "view", "d"), "iOS"),
            with_os(event(T0 + 4_000, "like", "a"), "iOS"),
            with_os(event(T0 + 5_000, "like", "b"), "Android"),
            with_os(event(T0 + 6_000, "view", "e"), "Android"),
            with_os(event(T0 + 7_000, "view", "f"), "Android"),
            // Minute 1: likes only, so the ratio has no value.
            with_os(event(T0 + MINUTE, "like", "g"), "iOS"),
            event(T0 + 2 * MINUTE + 10_000, "view", "closer"),
        ],
    );

    let ratio: Vec<(String, i64, f64)> = values(
        &closed
            .iter()
            .filter(|window| window.metric_index == 2)
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        ratio,
        vec![
            ("total".to_string(), 0, 2.0 / 6.0),
            ("os=Android".to_string(), 0, 0.5),
            ("os=iOS".to_string(), 0, 0.25),
        ]
    );
}

#[test]
fn unique_users_counts_distinct() {
    let metrics = r#"
[[metric]]
name = "active_users"
events = ["view", "like"]
aggregation = "unique_users"
window = "1m"
"#;
    let mut windower = windower(IMMEDIATE, metrics);

    let closed = push_all(
        &mut windower,
        vec![
            event(T0, "view", "alice"),
            event(T0 + 1_000, "like", "alice"),
            event(T0 + 2_000, "view", "bob"),
            event(T0 + 3_000, "message", "carol"),
            event(T0 + MINUTE, "view", "alice"),
            event(T0 + 2 * MINUTE + 10_000, "view", "closer"),
        ],
    );

    assert_eq!(
        values(&closed),
        vec![("total".to_string(), 0, 2.0), ("total".to_string(), 1, 1.0)]
    );
    assert_eq!(windower.counters().events_unmatched, 1);
}

#[test]
fn sum_adds_values() {
    let metrics = r#"
[[metric]]
name = "taxi_trips"
events = ["taxi_trips"]
aggregation = "sum"
window = "30m"
"#;
    let mut windower = windower(IMMEDIATE, metrics);
    let half_hour = 30 * MINUTE;
    let base = 1_700_001_000_000 / half_hour * half_hour;

    let closed = push_all(
        &mut windower,
        vec![
            with_value(event(base, "taxi_trips", "loader"), 10_844.0),
            with_value(event(base + 60_000, "taxi_trips", "loader"), 0.5),
            event(base + 120_000, "taxi_trips", "no value"),
            with_value(event(base + half_hour + 10_000, "taxi_trips", "loader"), 8_127.0),
        ],
    );

    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].value, 10_844.5);
    assert_eq!(closed[0].window_start_ms, base);
    assert_eq!(closed[0].window_end_ms, base + half_hour);
}

#[test]
fn empty_windows_emit_zero_for_existing_series() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;
    let mut windower = windower(IMMEDIATE, metrics);

    let closed = push_all(
        &mut windower,
        vec![
            with_os(event(T0, "view", "a"), "iOS"),
            with_os(event(T0 + 2 * MINUTE, "view", "b"), "Android"),
            event(T0 + 3 * MINUTE + 10_000, "view", "closer"),
        ],
    );

    assert_eq!(
        values(&closed),
        vec![
            ("total".to_string(), 0, 1.0),
            ("os=iOS".to_string(), 0, 1.0),
            ("total".to_string(), 1, 0.0),
            ("os=iOS".to_string(), 1, 0.0),
            ("total".to_string(), 2, 1.0),
            ("os=Android".to_string(), 2, 1.0),
            ("os=iOS".to_string(), 2, 0.0),
        ]
    );
}

#[test]
fn idle_series_stops_getting_zeros() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;
    let mut windower = windower(&format!("{IMMEDIATE}\nseries_idle_limit = \"2m\""), metrics);

    let closed = push_all(
        &mut windower,
        vec![
            with_os(event(T0, "view", "a"), "iOS"),
            event(T0 + MINUTE, "view", "b"),
            event(T0 + 2 * MINUTE, "view", "c"),
            event(T0 + 3 * MINUTE, "view", "d"),
            event(T0 + 4 * MINUTE, "view", "e"),
            event(T0 + 5 * MINUTE + 10_000, "view", "closer"),
        ],
    );

    let ios_minutes: Vec<i64> = closed
        .iter()
        .filter(|window| !window.slice.is_total())
        .map(|window| (window.window_start_ms - T0) / MINUTE)
        .collect();
    assert_eq!(ios_minutes, vec![0, 1, 2]);
    assert_eq!(windower.series_count(), 1);
}

#[test]
fn new_series_starts_at_first_event() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;
    let mut windower = windower("allowed_lateness = \"5m\"\nfuture_confirmations = 1", metrics);

    let closed = push_all(
        &mut windower,
        vec![
            event(T0, "view", "a"),
            with_os(event(T0 + 3 * MINUTE, "view", "b"), "iOS"),
            event(T0 + 9 * MINUTE, "view", "closer"),
        ],
    );

    let ios_minutes: Vec<i64> = closed
        .iter()
        .filter(|window| !window.slice.is_total())
        .map(|window| (window.window_start_ms - T0) / MINUTE)
        .collect();
    assert_eq!(ios_minutes, vec![3], "{:?}", values(&closed));
    assert_eq!(closed.iter().filter(|window| window.slice.is_total()).count(), 4);
}

#[test]
fn metrics_close_on_their_own_window() {
    let metrics = r#"
[[metric]]
name = "views_1m"
events = ["view"]
aggregation = "count"
window = "1m"

[[metric]]
name = "views_5m"
events = ["view"]
aggregation = "count"
window = "5m"
"#;
    let mut windower = windower(IMMEDIATE, metrics);
    let base = T0 / (5 * MINUTE) * (5 * MINUTE) + 5 * MINUTE;

    let mut events: Vec<Event> = (0..5)
        .map(|minute| event(base + minute * MINUTE, "view", "a"))
        .collect();
    events.push(event(base + 5 * MINUTE + 10_000, "view", "closer"));
    let closed = push_all(&mut windower, events);

    let five_minute: Vec<&ClosedWindow> = closed.iter().filter(|window| window.metric_index == 1).collect();
    assert_eq!(five_minute.len(), 1);
    assert_eq!(five_minute[0].value, 5.0);
    assert_eq!(closed.iter().filter(|window| window.metric_index == 0).count(), 5);
}

#[test]
fn forgotten_slice_frees_its_place() {
    let metrics = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;
    let mut windower = windower(
        &format!("{IMMEDIATE}\nseries_idle_limit = \"2m\"\nmax_slices_per_dimension = 1"),
        metrics,
    );

    let closed = push_all(
        &mut windower,
        vec![
            with_os(event(T0, "view", "a"), "iOS"),
            with_os(event(T0 + MINUTE, "view", "b"), "Android"),
            event(T0 + 5 * MINUTE, "view", "c"),
            with_os(event(T0 + 6 * MINUTE, "view", "d"), "Android"),
            event(T0 + 7 * MINUTE + 10_000, "view", "closer"),
        ],
    );

    let slices: Vec<(String, i64)> = closed
        .iter()
        .filter(|window| !window.slice.is_total())
        .map(|window| (window.slice.to_string(), (window.window_start_ms - T0) / MINUTE))
        .collect();
    assert_eq!(
        slices,
        vec![
            ("os=iOS".to_string(), 0),
            ("os=iOS".to_string(), 1),
            ("os=iOS".to_string(), 2),
            ("os=Android".to_string(), 6),
        ]
    );
    assert_eq!(windower.counters().slices_rejected, 1);
}

const VIEWS_BY_OS_1M: &str = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "1m"
dimensions = ["os"]
"#;

/// Views over `minutes` minutes: iOS every minute, Android only in even
/// minutes, so restored history must fill Android's empty windows with 0.
fn os_views(minutes: i64) -> Vec<Event> {
    let mut events = Vec::new();
    for minute in 0..minutes {
        for index in 0..(3 + minute % 4) {
            events.push(with_os(event(T0 + minute * MINUTE + index * 1_000, "view", "u"), "iOS"));
        }
        if minute % 2 == 0 {
            events.push(with_os(event(T0 + minute * MINUTE + 30_000, "view", "u"), "Android"));
        }
    }
    events
}

/// Counts `events` per minute and slice (total and `os`), as a warm start's
/// SQL returns them: only windows with events, sorted by start.
fn aggregate_by_minute(events: &[Event]) -> Vec<LoadedWindow> {
    let mut counts: std::collections::BTreeMap<(i64, SliceKey), f64> = std::collections::BTreeMap::new();
    for event in events {
        let start = event.event_time_ms().div_euclid(MINUTE) * MINUTE;
        *counts.entry((start, SliceKey::total())).or_default() += 1.0;
        if let Some(os) = &event.os {
            *counts.entry((start, SliceKey::single("os", os))).or_default() += 1.0;
        }
    }
    counts
        .into_iter()
        .map(|((window_start_ms, slice), value)| LoadedWindow {
            window_start_ms,
            slice,
            value: Some(value),
        })
        .collect()
}

#[test]
fn restored_history_matches_live_windows() {
    let events = os_views(12);
    let mut live = windower(IMMEDIATE, VIEWS_BY_OS_1M);
    let live_closed = push_all(&mut live, events.clone());

    // History: minutes 0..6 aggregated elsewhere, the rest as live events.
    let boundary = T0 + 6 * MINUTE;
    let (history, tail): (Vec<Event>, Vec<Event>) =
        events.into_iter().partition(|event| event.event_time_ms() < boundary);
    let mut restored = windower(IMMEDIATE, VIEWS_BY_OS_1M);
    let mut closed = Vec::new();
    restored.restore_history(0, &aggregate_by_minute(&history), boundary, &mut closed);
    restored.resume_clock(history.last().unwrap().event_time_ms());
    closed.extend(push_all(&mut restored, tail));

    assert_eq!(values(&closed), values(&live_closed));
    assert!(
        values(&closed).contains(&("os=Android".to_string(), 5, 0.0)),
        "empty window of a known slice"
    );
    assert_eq!(restored.watermark_ms(), live.watermark_ms());
}

#[test]
fn restore_closes_until_boundary_only() {
    let events = os_views(4);
    let mut restored = windower(IMMEDIATE, VIEWS_BY_OS_1M);
    let mut closed = Vec::new();

    restored.restore_history(0, &aggregate_by_minute(&events), T0 + 6 * MINUTE, &mut closed);

    let last_start = closed.iter().map(|window| window.window_start_ms).max();
    assert_eq!(
        last_start,
        Some(T0 + 5 * MINUTE),
        "windows 4 and 5 have no events but close as zeros"
    );
    assert_eq!(restored.counters().windows_closed, closed.len() as u64);
    assert_eq!(restored.watermark_ms(), None, "restoring does not move the clock");
}

#[test]
fn event_before_restored_boundary_is_late() {
    let mut restored = windower(IMMEDIATE, VIEWS_BY_OS_1M);
    let mut closed = Vec::new();
    restored.restore_history(0, &aggregate_by_minute(&os_views(3)), T0 + 3 * MINUTE, &mut closed);
    restored.resume_clock(T0 + 3 * MINUTE - 1);

    let pushed = push_all(&mut restored, vec![event(T0 + 2 * MINUTE + 5_000, "view", "late")]);

    assert!(pushed.is_empty());
    assert_eq!(restored.counters().events_late, 1);
}

#[test]
fn restore_respects_slice_limit() {
    let mut restored = windower("max_slices_per_dimension = 1", VIEWS_BY_OS_1M);
    let mut closed = Vec::new();
    let loaded = vec![
        LoadedWindow {
            window_start_ms: T0,
            slice: SliceKey::total(),
            value: Some(3.0),
        },
        LoadedWindow {
            window_start_ms: T0,
            slice: SliceKey::single("os", "Android"),
            value: Some(1.0),
        },
        LoadedWindow {
            window_start_ms: T0,
            slice: SliceKey::single("os", "iOS"),
            value: Some(2.0),
        },
    ];

    restored.restore_history(0, &loaded, T0 + MINUTE, &mut closed);

    assert_eq!(
        values(&closed),
        vec![("total".to_string(), 0, 3.0), ("os=Android".to_string(), 0, 1.0)]
    );
    assert_eq!(restored.counters().slices_rejected, 1);
    restored.reset_counters();
    assert_eq!(restored.counters(), WindowingCounters::default());
}
