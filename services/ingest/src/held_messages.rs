//! Messages that arrive while a batch is pending.
//!
//! Consumption must keep being polled during a flush, because librdkafka
//! serves rebalances and the group membership from the poll. Messages
//! received meanwhile wait here and are handled after the flush. Once a
//! batch worth of them is waiting, fetching is paused, so memory stays
//! bounded during a long outage. Fast flushes never pause, which matters
//! because pausing discards a partition's prefetched messages, to be fetched
//! again on resume (librdkafka 2.12, `rd_kafka_toppar_pause_resume`).

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
    /// Number of waiting messages at which fetching is paused.
    // TODO: with the default 10 000-row batches this pause, and the refetch
    // after it, holds ingest to about 24 000 rows/s on the mock cluster
    // (docs/benchmarks.md). A higher threshold or a byte bound may help.
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

    /// Keeps a received message, pausing every assigned partition once
    /// `pause_at` messages wait. Pausing again on each later message also
    /// covers partitions assigned after the first pause.
    pub fn hold(&mut self, consumer: &IngestConsumer, stats: &IngestStats, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => self.messages.push_back(message.detach()),
            Err(error) => {
                stats.add_consume_error();
                warn!(%error, "Kafka consumer error while a batch is pending");
                return;
            }
        }
        if self.messages.len() < self.pause_at {
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
/// messages that arrive meanwhile.
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
            received = consumer.recv() => held_messages.hold(consumer, stats, received),
        }
    }
}
