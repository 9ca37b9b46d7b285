//! Messages that arrive while a batch is pending.
//!
//! Consumption must keep being polled during a flush, because librdkafka
//! serves rebalances and the group membership from the poll. Messages
//! received meanwhile wait here and are handled after the flush, at most
//! `pause_at` of them, so memory stays bounded.
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

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, OwnedMessage};
use tracing::{info, warn};

use crate::consumer::IngestConsumer;
use crate::stats::IngestStats;

#[derive(Debug)]
pub(crate) struct HeldMessages {
    messages: VecDeque<OwnedMessage>,
    /// Number of waiting messages at which receiving stops during an
    /// attempt, and fetching is paused during a retry backoff.
    // TODO: ingest still waits more than it computes. 1 000 000 events in
    // 50 000-row batches take about 8 s after the first row at about 4 s of
    // CPU, while ClickHouse stores such a batch in about 0.05 s
    // (docs/benchmarks.md). Parsing the held messages during the insert did
    // not change the rate in one run. Untested leads: librdkafka's
    // `fetch.queue.backoff.ms` (1 s by default) and overlapping inserts.
    pause_at: usize,
    paused: bool,
}

impl HeldMessages {
    pub fn new(pause_at: usize) -> HeldMessages {
        HeldMessages {
            messages: VecDeque::new(),
            pause_at,
            paused: false,
        }
    }

    pub fn pop_front(&mut self) -> Option<OwnedMessage> {
        self.messages.pop_front()
    }

    /// Returns whether `pause_at` messages wait.
    pub fn is_full(&self) -> bool {
        self.messages.len() >= self.pause_at
    }

    /// Keeps a received message.
    pub fn hold(&mut self, stats: &IngestStats, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => self.messages.push_back(message.detach()),
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
                    info!(held = self.messages.len(), "pausing consumption until the pending batch is stored");
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
        match consumer.assignment().and_then(|assignment| consumer.resume(&assignment)) {
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
            received = consumer.recv(), if !held_messages.is_full() => held_messages.hold(stats, received),
        }
    }
}
