//! Running aggregate of one window of one series.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use seismo_events::Event;

use crate::config::{Aggregate, Aggregation, MetricValue};

/// Partial aggregate of the events of one window and slice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Accumulator {
    Count(u64),
    Sum(f64),
    /// 64-bit hashes of the window's user ids (see [`user_key`]). A slot
    /// takes 9 bytes and the table is between 7/16 and 7/8 full, so a large
    /// window takes about 10 to 21 bytes per user. A copy of each id took a
    /// 24-byte `String` plus the id's bytes on the heap.
    // TODO: a HyperLogLog-style sketch would bound memory per window at a
    // fixed size, at the price of an estimate instead of a count.
    UniqueUsers(HashSet<u64>),
    Ratio(Box<(Accumulator, Accumulator)>),
    /// A window's final value, aggregated elsewhere (a warm start's SQL);
    /// `None` for a ratio whose denominator is 0.
    Loaded(Option<f64>),
}

impl Accumulator {
    pub(crate) fn new(value: &MetricValue) -> Accumulator {
        match value {
            MetricValue::Aggregate(aggregate) => Accumulator::for_aggregation(aggregate.aggregation),
            MetricValue::Ratio { numerator, denominator } => Accumulator::Ratio(Box::new((
                Accumulator::for_aggregation(numerator.aggregation),
                Accumulator::for_aggregation(denominator.aggregation),
            ))),
        }
    }

    fn for_aggregation(aggregation: Aggregation) -> Accumulator {
        match aggregation {
            Aggregation::Count => Accumulator::Count(0),
            Aggregation::Sum => Accumulator::Sum(0.0),
            Aggregation::UniqueUsers => Accumulator::UniqueUsers(HashSet::new()),
        }
    }

    /// Adds an event that [`matches`] `value`. A ratio adds it to each part
    /// whose filter it passes.
    pub(crate) fn add(&mut self, value: &MetricValue, event: &Event) {
        match (self, value) {
            (Accumulator::Ratio(parts), MetricValue::Ratio { numerator, denominator }) => {
                let (numerator_part, denominator_part) = parts.as_mut();
                add_if_matching(numerator_part, numerator, event);
                add_if_matching(denominator_part, denominator, event);
            }
            (accumulator, _) => accumulator.add_plain(event),
        }
    }

    fn add_plain(&mut self, event: &Event) {
        match self {
            Accumulator::Count(count) => *count += 1,
            Accumulator::Sum(sum) => *sum += event.value.unwrap_or(0.0),
            Accumulator::UniqueUsers(users) => {
                users.insert(user_key(&event.user_id));
            }
            Accumulator::Ratio(_) => unreachable!("a ratio accumulator is always paired with a ratio metric"),
            // Loaded windows close before any event is applied, because a
            // restore ends by closing every window it loaded.
            Accumulator::Loaded(_) => {}
        }
    }

    /// The window's value; `None` for a ratio whose denominator is 0.
    pub(crate) fn value(&self) -> Option<f64> {
        match self {
            Accumulator::Count(count) => Some(*count as f64),
            Accumulator::Sum(sum) => Some(*sum),
            Accumulator::UniqueUsers(users) => Some(users.len() as f64),
            Accumulator::Ratio(parts) => {
                let numerator = parts.0.value()?;
                let denominator = parts.1.value()?;
                (denominator != 0.0).then(|| numerator / denominator)
            }
            Accumulator::Loaded(value) => *value,
        }
    }
}

/// Key of `user_id` in a unique-users set: its 64-bit hash by the standard
/// library's SipHash-1-3 (in Rust 1.95). The keys are drawn at random once
/// per process, so every window of the process uses the same ones and
/// clients cannot pick ids that collide. The expected number of user pairs
/// of one window that share a key is about n² / 2^65 for n users: under 3
/// in a million for 10 million users, so the count is exact in practice.
fn user_key(user_id: &str) -> u64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new).hash_one(user_id)
}

fn add_if_matching(accumulator: &mut Accumulator, aggregate: &Aggregate, event: &Event) {
    if aggregate.filter.matches(event) {
        accumulator.add_plain(event);
    }
}

/// True if `event` counts for the metric at all.
pub(crate) fn matches(value: &MetricValue, event: &Event) -> bool {
    match value {
        MetricValue::Aggregate(aggregate) => aggregate.filter.matches(event),
        MetricValue::Ratio { numerator, denominator } => {
            numerator.filter.matches(event) || denominator.filter.matches(event)
        }
    }
}

/// Value of a window in which a series had no event: 0 for counts, sums and
/// unique users, none for a ratio (0 / 0).
pub(crate) fn empty_value(value: &MetricValue) -> Option<f64> {
    match value {
        MetricValue::Aggregate(_) => Some(0.0),
        MetricValue::Ratio { .. } => None,
    }
}
