use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::prometheus_metrics::{
    ABANDONED, BATCH_ROWS, COMMIT_FAILURES, COMMITS, CONNECT_RETRIES, CONSUME_ERRORS, CONSUMED, DEAD_LETTER_RETRIES,
    DEAD_LETTERED, INSERT_RETRIES, INSERTED_ROWS, REJECTED,
};

/// Live counters of a running ingest, readable from other tasks while it
/// runs. All counts start at zero when the service starts.
///
/// Every update is also recorded through the `metrics` facade as a
/// `seismo_ingest_*` Prometheus metric, which accumulates over every run in
/// the process. Without an installed recorder those calls do nothing.
#[derive(Debug, Default)]
pub struct IngestStats {
    consumed: AtomicU64,
    inserted: AtomicU64,
    rejected: AtomicU64,
    dead_lettered: AtomicU64,
    insert_retries: AtomicU64,
    connect_retries: AtomicU64,
    dead_letter_retries: AtomicU64,
    batches: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    consume_errors: AtomicU64,
    abandoned: AtomicU64,
}

/// A snapshot of [`IngestStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct IngestSummary {
    /// Messages received from Kafka.
    pub consumed: u64,
    /// Rows acknowledged by ClickHouse.
    pub inserted: u64,
    /// Messages that failed validation.
    pub rejected: u64,
    /// Rejected messages acknowledged by the dead-letter topic.
    pub dead_lettered: u64,
    /// Failed insert attempts that were retried.
    pub insert_retries: u64,
    /// Failed attempts to reach ClickHouse at startup.
    pub connect_retries: u64,
    /// Failed dead-letter deliveries that were retried.
    pub dead_letter_retries: u64,
    /// Inserts acknowledged by ClickHouse.
    pub batches: u64,
    /// Successful offset commits.
    pub commits: u64,
    /// Failed offset commits; the offsets are committed again later.
    pub commit_failures: u64,
    /// Errors reported by the Kafka consumer.
    pub consume_errors: u64,
    /// Messages neither stored nor dead-lettered when shutdown gave up;
    /// their offsets stay uncommitted, so they are consumed again.
    pub abandoned: u64,
}

impl IngestStats {
    pub fn summary(&self) -> IngestSummary {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IngestSummary {
            consumed: read(&self.consumed),
            inserted: read(&self.inserted),
            rejected: read(&self.rejected),
            dead_lettered: read(&self.dead_lettered),
            insert_retries: read(&self.insert_retries),
            connect_retries: read(&self.connect_retries),
            dead_letter_retries: read(&self.dead_letter_retries),
            batches: read(&self.batches),
            commits: read(&self.commits),
            commit_failures: read(&self.commit_failures),
            consume_errors: read(&self.consume_errors),
            abandoned: read(&self.abandoned),
        }
    }

    pub(crate) fn add_consumed(&self, messages: u64) {
        self.consumed.fetch_add(messages, Ordering::Relaxed);
        metrics::counter!(CONSUMED).increment(messages);
    }

    pub(crate) fn add_inserted(&self, rows: usize) {
        self.inserted.fetch_add(rows as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(INSERTED_ROWS).increment(rows as u64);
        metrics::histogram!(BATCH_ROWS).record(rows as f64);
    }

    /// Counts a message that failed validation. `reason` is
    /// [`seismo_events::EventError::kind`].
    pub(crate) fn add_rejected(&self, reason: &'static str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(REJECTED, "reason" => reason).increment(1);
    }

    /// Counts a delivered dead letter. `reason` is
    /// [`seismo_events::EventError::kind`].
    pub(crate) fn add_dead_lettered(&self, reason: &'static str) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(DEAD_LETTERED, "reason" => reason).increment(1);
    }

    pub(crate) fn add_insert_retry(&self) {
        self.insert_retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(INSERT_RETRIES).increment(1);
    }

    pub(crate) fn add_connect_retry(&self) {
        self.connect_retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECT_RETRIES).increment(1);
    }

    pub(crate) fn add_dead_letter_retry(&self) {
        self.dead_letter_retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(DEAD_LETTER_RETRIES).increment(1);
    }

    pub(crate) fn add_commit(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(COMMITS).increment(1);
    }

    pub(crate) fn add_commit_failure(&self) {
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(COMMIT_FAILURES).increment(1);
    }

    pub(crate) fn add_consume_error(&self) {
        self.consume_errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONSUME_ERRORS).increment(1);
    }

    pub(crate) fn add_abandoned(&self, messages: usize) {
        self.abandoned.fetch_add(messages as u64, Ordering::Relaxed);
        metrics::counter!(ABANDONED).increment(messages as u64);
    }
}
