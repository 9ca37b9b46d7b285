//! Event-time clock: the latest accepted event time, guarded against
//! single events stamped far in the future.
//!
//! Rule: an event more than `max_future_jump` ahead of the latest accepted
//! event time is held back. Held events are released in time order once the
//! clock comes within `max_future_jump` of them. The clock also jumps once
//! `future_confirmations` held events lie within `max_future_jump` of each
//! other, because that many agreeing events mean event time really moved on
//! (for example after a quiet night or a producer backlog). Until the first confirmation every
//! event counts as ahead, so the very first event cannot set the clock alone.
//! When more than `max_held_events` are held, the latest ones are rejected.

use seismo_events::Event;

use crate::config::WindowingSettings;

/// An event with where and when it arrived.
#[derive(Debug)]
pub(crate) struct Arrival {
    /// Kafka partition, `None` for a source without partitions.
    pub partition: Option<i32>,
    /// Position in the order the windowing received events, from 0.
    pub sequence: u64,
    pub event: Event,
}

impl Arrival {
    fn event_time_ms(&self) -> i64 {
        self.event.event_time_ms()
    }
}

#[derive(Debug)]
pub(crate) struct EventClock {
    max_event_ms: Option<i64>,
    /// Events waiting for confirmation, sorted by event time (arrival order
    /// among equal times).
    held: Vec<Arrival>,
    max_future_jump_ms: i64,
    confirmations: usize,
    max_held_events: usize,
}

/// Outcome of [`EventClock::admit`] for one incoming event.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Events to apply now, in event-time order: the incoming one if it was
    /// accepted, plus any held events it released.
    pub released: Vec<Arrival>,
    /// Held events dropped because the hold buffer overflowed.
    pub rejected: u64,
}

impl EventClock {
    pub(crate) fn new(settings: &WindowingSettings) -> EventClock {
        EventClock {
            max_event_ms: None,
            held: Vec::new(),
            max_future_jump_ms: settings.max_future_jump_ms,
            confirmations: settings.future_confirmations,
            max_held_events: settings.max_held_events,
        }
    }

    /// Latest accepted event time, Unix epoch ms; `None` before the first
    /// confirmation.
    pub(crate) fn max_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    /// Moves the clock to at least `max_event_ms`, the latest event time of
    /// restored history, so later events are admitted relative to it.
    pub(crate) fn resume_at(&mut self, max_event_ms: i64) {
        self.max_event_ms = Some(
            self.max_event_ms
                .map_or(max_event_ms, |max_ms| max_ms.max(max_event_ms)),
        );
    }

    pub(crate) fn held_count(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn admit(&mut self, arrival: Arrival) -> Admission {
        let mut admission = Admission::default();
        let time_ms = arrival.event_time_ms();

        match self.max_event_ms {
            Some(max_ms) if time_ms <= max_ms.saturating_add(self.max_future_jump_ms) => {
                self.max_event_ms = Some(max_ms.max(time_ms));
                admission.released.push(arrival);
            }
            _ => {
                let position = self.held.partition_point(|held| held.event_time_ms() <= time_ms);
                self.held.insert(position, arrival);
                self.confirm_jump();
            }
        }

        self.release_within_reach(&mut admission.released);
        admission.rejected = self.evict_overflow();
        admission
    }

    /// Moves the clock to the end of the earliest group of
    /// `confirmations` held events spanning at most `max_future_jump`.
    fn confirm_jump(&mut self) {
        if self.held.len() < self.confirmations {
            return;
        }

        let span = self.confirmations - 1;
        let confirmed = (0..self.held.len() - span).find(|&first| {
            let earliest = self.held[first].event_time_ms();
            let latest = self.held[first + span].event_time_ms();
            latest - earliest <= self.max_future_jump_ms
        });

        if let Some(first) = confirmed {
            let confirmed_ms = self.held[first + span].event_time_ms();
            self.max_event_ms = Some(
                self.max_event_ms
                    .map_or(confirmed_ms, |max_ms| max_ms.max(confirmed_ms)),
            );
        }
    }

    /// Releases held events that the clock now reaches, oldest first; each
    /// release may bring later held events within reach.
    fn release_within_reach(&mut self, released: &mut Vec<Arrival>) {
        let Some(mut max_ms) = self.max_event_ms else {
            return;
        };
        if self.held.is_empty() {
            return;
        }

        let mut reachable = 0;
        for event in &self.held {
            let time_ms = event.event_time_ms();
            if time_ms > max_ms.saturating_add(self.max_future_jump_ms) {
                break;
            }
            max_ms = max_ms.max(time_ms);
            reachable += 1;
        }

        released.extend(self.held.drain(..reachable));
        released.sort_by_key(Arrival::event_time_ms);
        self.max_event_ms = Some(max_ms);
    }

    fn evict_overflow(&mut self) -> u64 {
        if self.held.len() <= self.max_held_events {
            return 0;
        }

        let excess = self.held.len() - self.max_held_events;
        self.held.truncate(self.max_held_events);
        excess as u64
    }
}
