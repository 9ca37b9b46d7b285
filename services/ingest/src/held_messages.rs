//! Messages that arrive while a batch is pending.
//!
//! Consumption must keep being polled during a flush, because librdkafka
//! serves rebalances and the group membership from the poll. Messages
//! received meanwhile wait here and are handled after the flush, at most
//! `pause_at` of them, so memory stays bounded. Each is parsed as it
//! arrives, so parsing overlaps the insert that the flush waits for.
//!
//! Once that many messages wait during an insert or a dead-letter delivery,
//! [`poll_while`] stops receiving instead of pausing. Each such attempt ends
//! within its timeout (30 s by default, under librdkafka's default
//! `max.poll.interval.ms` of 300 s), and librdkafka keeps its prefetched
//! messages. Pausing would discard them, to be fetched again on resume
//! (librdkafka 2.12, `rd_kafka_toppar_pause_resume`). Only the backoff
//! between retries pauses, because a ClickHouse outage makes its total
//! length unbounded, so the consumer must keep polling there.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use seismo_events::ParseLimits;
use tracing::{info, warn};

use crate::consumer::IngestConsumer;
use crate::received::Received;
use crate::stats::IngestStats;

/// Maximum number of messages taken from the consumer in one go, without
/// another pass through `select!`. It is enough to save the per-message
/// waker and timer work. It is also small enough, about 0.5 ms of parsing at
/// the 1.7 µs per event measured in the throughput benchmark, that the other
/// branches are polled often.
pub(crate) const BURST_MESSAGES: usize = 256;

#[derive(Debug)]
pub(crate) struct HeldMessages {
    messages: VecDeque<Received>,
    parse_limits: ParseLimits,
    /// Number of waiting messages at which receiving stops during an
    /// attempt, and fetching is paused during a retry backoff.
    // TODO: one insert at a time, in the consumer's task. In the throughput
    // benchmark on a loaded 2-core machine, a 50 000-row insert took about
    // 145 ms and receiving and handling the next batch about 165 ms
    // (docs/benchmarks.md). A second insert in flight, with commits kept in
    // order, or parsing on another thread are the next steps.
    pause_at: usize,
    paused: bool,
}

impl HeldMessages {
    pub fn new(pause_at: usize, parse_limits: ParseLimits) -> HeldMessages {
        HeldMessages {
            messages: VecDeque::new(),
            parse_limits,
            pause_at,
            paused: false,
        }
    }

    pub fn pop_front(&mut self) -> Option<Received> {
        self.messages.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Returns whether `pause_at` messages wait.
    pub fn is_full(&self) -> bool {
        self.messages.len() >= self.pause_at
    }

    /// Parses and keeps a received message; `now` bounds event times in the
    /// future.
    pub fn hold(&mut self, stats: &IngestStats, received: Result<BorrowedMessage<'_>, KafkaError>, now: DateTime<Utc>) {
        match received {
            Ok(message) => {
                self.messages
                    .push_back(Received::parse(&message, &self.parse_limits, now));
            }
            Err(error) => {
                stats.add_consume_error();
                warn!(%error, "Kafka consumer error while a batch is pending");
            }
        }
    }

    /// Pauses every assigned partition once `pause_at` messages wait.
    /// Pausing again on each later message also covers partitions assigned
    /// after the first pause.
    pub fn pause_if_full(&mut self, consumer: &IngestConsumer) {
        if !self.is_full() {
            return;
        }

        match consumer.assignment().and_then(|assignment| consumer.pause(&assignment)) {
            Ok(()) => {
                if !self.paused {
                    info!(
                        held = self.messages.len(),
                        "pausing consumption until the pending batch is stored"
                    );
                }
                self.paused = true;
            }
            Err(error) => warn!(%error, held = self.messages.len(), "pausing the consumer failed"),
        }
    }

    /// Resumes fetching if [`Self::hold`] paused it.
    pub fn resume(&mut self, consumer: &IngestConsumer) {
        if !self.paused {
            return;
        }
        match consumer
            .assignment()
            .and_then(|assignment| consumer.resume(&assignment))
        {
            Ok(()) => {
                info!(held = self.messages.len(), "consumption resumed");
                self.paused = false;
            }
            Err(error) => warn!(%error, "resuming the consumer failed; retrying after the next batch"),
        }
    }
}

/// Drives `future` to completion while polling the consumer, holding the
/// messages that arrive meanwhile. Once [`HeldMessages::is_full`], it stops
/// receiving until `future` completes, which must be bounded in time.
///
/// After each message that `select!` receives, the messages librdkafka has
/// already fetched are taken too, up to [`BURST_MESSAGES`], with one clock
/// reading for all of them.
pub(crate) async fn poll_while<T>(
    consumer: &IngestConsumer,
    held_messages: &mut HeldMessages,
    stats: &IngestStats,
    future: impl Future<Output = T>,
) -> T {
    tokio::pin!(future);
    loop {
        tokio::select! {
            biased;
            output = &mut future => return output,
            received = consumer.recv(), if !held_messages.is_full() => {
                let now = Utc::now();
                held_messages.hold(stats, received, now);
                for _ in 1..BURST_MESSAGES {
                    if held_messages.is_full() {
                        break;
                    }
                    let Some(received) = consumer.recv().now_or_never() else {
                        break;
                    };
                    held_messages.hold(stats, received, now);
                }
            }
        }
    }
}
