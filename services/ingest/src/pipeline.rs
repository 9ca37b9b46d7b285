//! The service loop: consume, validate, batch, store, dead-letter, commit.
//!
//! Delivery to ClickHouse is at least once. Offsets are committed only for
//! messages that ClickHouse acknowledged or the dead-letter topic
//! acknowledged, so a crash or a give-up at shutdown loses nothing. A row can
//! be stored twice when a retried insert had partly succeeded, the process
//! died between an insert and its commit, or a rebalance moved a partition in
//! the middle of a batch. Both copies carry the same `kafka_partition` and
//! `kafka_offset`, so the table's ReplacingMergeTree engine and queries
//! counting distinct positions see each event once (see [`crate::schema`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use seismo_telemetry::{MAX_SPAN_LINKS, Readiness, link_message_contexts};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::batch::Batch;
use crate::config::{IngestConfig, redact_url};
use crate::consumer::{self, IngestConsumer, assigned_partitions};
use crate::dead_letter::{DeadLetterQueue, is_too_large};
use crate::error::IngestError;
use crate::held_messages::{BURST_MESSAGES, HeldMessages, poll_while};
use crate::log_limit::LogLimiter;
use crate::offsets::OffsetTracker;
use crate::prometheus_metrics::{describe_metrics, record_insert_duration};
use crate::readiness::ReadinessTracker;
use crate::received::{Received, Rejected};
use crate::row::BatchRow;
use crate::sink::ClickHouseSink;
use crate::stats::{IngestStats, IngestSummary};

/// Minimum time between two log lines about rejected messages or consumer
/// errors; the lines in between are counted.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the ingest service until `cancel` fires, then stops consuming,
/// stores the pending batch, commits and returns the final counts.
///
/// ClickHouse being unreachable, at startup or later, is retried with
/// backoff and never ends the run. `stats` is updated while the service runs,
/// so another task can read it.
///
/// `readiness` becomes ready once ClickHouse is set up and the consumer got
/// its first partition assignment. It is not ready, with the error as
/// reason, while an insert or a dead-letter delivery is being retried, and
/// for good once shutdown starts. Pass `Readiness::default()` when nothing
/// reads it.
pub async fn run(
    config: IngestConfig,
    stats: Arc<IngestStats>,
    readiness: Readiness,
    cancel: CancellationToken,
) -> Result<IngestSummary, IngestError> {
    let readiness = Arc::new(ReadinessTracker::new(readiness));
    let result = run_until_stopped(config, stats, Arc::clone(&readiness), cancel).await;

    let reason = match &result {
        Ok(_) => "stopped".to_string(),
        Err(error) => format!("stopped: {error}"),
    };
    readiness.stopping(reason);
    result
}

async fn run_until_stopped(
    config: IngestConfig,
    stats: Arc<IngestStats>,
    readiness: Arc<ReadinessTracker>,
    cancel: CancellationToken,
) -> Result<IngestSummary, IngestError> {
    config.validate()?;
    describe_metrics();
    info!(
        brokers = %config.brokers,
        topic = %config.topic,
        group_id = %config.group_id,
        dead_letter_topic = %config.dead_letter_topic,
        clickhouse_url = %redact_url(&config.clickhouse.url),
        batch_max_rows = config.batch.max_rows,
        batch_max_wait_ms = config.batch.max_wait.as_millis() as u64,
        "ingest starting"
    );

    // Kafka clients connect as soon as they exist, so they are created only
    // once there is somewhere to store what they consume.
    let Some(sink) = connect_with_retry(&config, &stats, &readiness, &cancel).await else {
        info!("ingest cancelled before ClickHouse became reachable");
        return Ok(stats.summary());
    };
    let dead_letters = DeadLetterQueue::new(
        &config.brokers,
        &config.dead_letter_topic,
        config.dead_letter_delivery_timeout,
        &config.kafka_properties,
    )?;
    let consumer = consumer::subscribe(&config, Arc::clone(&readiness))?;

    let mut pipeline = Pipeline {
        consumer,
        sink,
        held_messages: HeldMessages::new(config.batch.max_rows, config.parse_limits),
        state: State {
            batch: Batch::default(),
            offsets: OffsetTracker::default(),
            dead_letters,
            stats: stats.clone(),
            rejection_log: LogLimiter::new(LOG_INTERVAL),
            trace_contexts: Vec::new(),
            unreported_consumed: 0,
        },
        consume_error_log: LogLimiter::new(LOG_INTERVAL),
        assignment: AssignmentView::default(),
        stop_deadline: None,
        commit_retry: None,
        config: &config,
        readiness,
        cancel,
    };
    pipeline.consume_until_cancelled().await;
    pipeline.shut_down().await;

    let summary = stats.summary();
    info!(
        consumed = summary.consumed,
        inserted = summary.inserted,
        dead_lettered = summary.dead_lettered,
        insert_retries = summary.insert_retries,
        abandoned = summary.abandoned,
        "ingest stopped"
    );
    Ok(summary)
}

/// Connects to ClickHouse, retrying with backoff; `None` when cancelled
/// first.
async fn connect_with_retry(
    config: &IngestConfig,
    stats: &IngestStats,
    readiness: &ReadinessTracker,
    cancel: &CancellationToken,
) -> Option<ClickHouseSink> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = tokio::select! {
            result = ClickHouseSink::connect(&config.clickhouse) => result,
            _ = cancel.cancelled() => return None,
        };
        let error = match result {
            Ok(sink) => {
                readiness.clickhouse_connected();
                return Some(sink);
            }
            Err(error) => error,
        };

        stats.add_connect_retry();
        let url = redact_url(&config.clickhouse.url);
        readiness.retrying(format!(
            "ClickHouse setup failed (attempt {attempt}) at {url}, retrying: {error}"
        ));
        let backoff = config.retry.backoff(attempt);
        warn!(
            %error,
            clickhouse_url = %url,
            attempt,
            backoff_ms = backoff.as_millis() as u64,
            "ClickHouse setup failed; retrying"
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return None,
        }
    }
}

struct Pipeline<'a> {
    consumer: IngestConsumer,
    sink: ClickHouseSink,
    /// Messages received while a batch was pending, handled in order before
    /// new ones.
    held_messages: HeldMessages,
    state: State,
    consume_error_log: LogLimiter,
    assignment: AssignmentView,
    /// Set once cancellation is seen: retries stop at this time.
    stop_deadline: Option<Instant>,
    /// Failed commits in a row and when to try again.
    commit_retry: Option<(u32, Instant)>,
    config: &'a IngestConfig,
    readiness: Arc<ReadinessTracker>,
    cancel: CancellationToken,
}

/// The part of the pipeline that handles one message; kept apart from the
/// consumer because a received message borrows the consumer.
struct State {
    batch: Batch,
    offsets: OffsetTracker,
    dead_letters: DeadLetterQueue,
    stats: Arc<IngestStats>,
    rejection_log: LogLimiter,
    /// Distinct `traceparent` headers of the batch's messages, at most
    /// `MAX_SPAN_LINKS + 1` (one parent plus links).
    trace_contexts: Vec<String>,
    /// Messages handled since the consumed count was last reported, so the
    /// counters are updated once per burst instead of once per message.
    unreported_consumed: u64,
}

/// One clock reading shared by the messages handled in one burst.
#[derive(Debug, Clone, Copy)]
struct Now {
    /// Bounds event times in the future when parsing.
    utc: chrono::DateTime<Utc>,
    /// Opens a batch and limits rejection logs.
    instant: std::time::Instant,
}

impl Now {
    fn read() -> Now {
        Now {
            utc: Utc::now(),
            instant: std::time::Instant::now(),
        }
    }
}

/// Result of one flush.
#[derive(Debug, PartialEq, Eq)]
enum Flush {
    Done,
    /// Shutdown gave up; the batch keeps what was not stored or delivered.
    GaveUp,
}

impl Pipeline<'_> {
    async fn consume_until_cancelled(&mut self) {
        let cancel = self.cancel.clone();
        loop {
            if cancel.is_cancelled() {
                break;
            }

            if !self.held_messages.is_empty() {
                self.handle_held();
                self.flush_if_due().await;
                continue;
            }

            let wake_at = self.next_wake();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = sleep_until_or_never(wake_at) => {
                    if self.commit_retry.is_some_and(|(_, at)| Instant::now() >= at) {
                        self.commit();
                    }
                }
                received = self.consumer.recv() => {
                    // Messages librdkafka already fetched are handled in the
                    // same go, without another pass through this select and
                    // its timer, and with one clock reading.
                    let now = Now::read();
                    let mut next = Some(received);
                    let mut handled = 0;
                    while let Some(received) = next.take() {
                        Self::handle_received(
                            &self.consumer,
                            &mut self.assignment,
                            &mut self.state,
                            &mut self.consume_error_log,
                            self.config,
                            received,
                            now,
                        );
                        handled += 1;
                        let batch_full = self.state.batch.messages() >= self.config.batch.max_rows;
                        if handled < BURST_MESSAGES && !batch_full {
                            next = self.consumer.recv().now_or_never();
                        }
                    }
                }
            }
            self.flush_if_due().await;
        }
    }

    /// Parses a received message and adds it to the batch. Takes the
    /// fields apart because the message borrows the consumer.
    fn handle_received(
        consumer: &IngestConsumer,
        assignment: &mut AssignmentView,
        state: &mut State,
        consume_error_log: &mut LogLimiter,
        config: &IngestConfig,
        received: Result<BorrowedMessage<'_>, KafkaError>,
        now: Now,
    ) {
        match received {
            Ok(message) => {
                assignment.sync(consumer, &mut state.offsets, &config.topic);
                let received = Received::parse(&message, &config.parse_limits, now.utc);
                state.handle(received, now.instant);
            }
            Err(error) => note_consume_error(&state.stats, consume_error_log, &error),
        }
    }

    /// Handles up to [`BURST_MESSAGES`] held messages in order, stopping
    /// early once the batch is full so that it is flushed first.
    fn handle_held(&mut self) {
        let now = std::time::Instant::now();
        for _ in 0..BURST_MESSAGES {
            if self.state.batch.messages() >= self.config.batch.max_rows {
                break;
            }
            let Some(held) = self.held_messages.pop_front() else {
                break;
            };
            self.assignment
                .sync(&self.consumer, &mut self.state.offsets, &self.config.topic);
            if self.assignment.owns(held.partition) {
                self.state.handle(held, now);
            } else {
                // The new owner reads it again from the committed offset.
                debug!(
                    partition = held.partition,
                    offset = held.offset,
                    "skipping a held message of a partition revoked meanwhile"
                );
            }
        }
    }

    /// Returns the earliest time the loop must wake without a message: the
    /// batch deadline or a commit retry.
    fn next_wake(&self) -> Option<Instant> {
        let batch_due = self
            .state
            .batch
            .opened_at()
            .map(|opened_at| Instant::from_std(self.config.batch.deadline(opened_at)));
        let commit_due = self.commit_retry.map(|(_, at)| at);
        match (batch_due, commit_due) {
            (Some(batch), Some(commit)) => Some(batch.min(commit)),
            (batch, commit) => batch.or(commit),
        }
    }

    async fn flush_if_due(&mut self) {
        self.state.report_consumed();
        let Some(opened_at) = self.state.batch.opened_at() else {
            return;
        };
        let due = self
            .config
            .batch
            .is_due(self.state.batch.messages(), opened_at, std::time::Instant::now());
        if due {
            self.flush().await;
        }
    }

    /// Stores the batch, delivers its dead letters and commits. Retries until
    /// done, or until the shutdown deadline once cancelled. Meanwhile no new
    /// message is handled: arriving ones wait in [`HeldMessages`].
    async fn flush(&mut self) -> Flush {
        self.state.report_consumed();
        if self.state.batch.is_empty() {
            self.commit();
            return Flush::Done;
        }

        let batch = &self.state.batch;
        // Time from the batch's first message to its flush, spent receiving
        // and handling its messages, in milliseconds.
        let fill_ms = batch
            .opened_at()
            .map_or(0, |opened_at| opened_at.elapsed().as_millis() as u64);
        let span = info_span!(
            "ingest_batch",
            messages = batch.messages(),
            rows = batch.rows().len(),
            fill_ms,
            offsets = %batch.describe_offsets(),
        );
        let trace_contexts = std::mem::take(&mut self.state.trace_contexts);
        link_message_contexts(&span, trace_contexts.iter().map(String::as_str));
        self.flush_batch().instrument(span).await
    }

    async fn flush_batch(&mut self) -> Flush {
        let rows = self.state.batch.rows().len();
        if rows > 0 {
            if !self.store_rows().await {
                return Flush::GaveUp;
            }
            for row in self.state.batch.rows() {
                self.state.offsets.complete(row.partition, row.offset);
            }
            self.state.stats.add_inserted(rows);
            self.state.batch.clear_rows();
            self.commit();
        }

        let delivered = self.deliver_dead_letters().await;
        self.commit();
        if !delivered {
            return Flush::GaveUp;
        }
        self.state.batch.clear();

        self.held_messages.resume(&self.consumer);
        Flush::Done
    }

    /// Inserts the batch's rows, retrying with backoff. Returns false only
    /// when shutdown gave up.
    async fn store_rows(&mut self) -> bool {
        let rows = self.state.batch.rows().len();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let insert = self.sink.insert(self.state.batch.rows(), &self.config.topic);
            let result = poll_while(&self.consumer, &mut self.held_messages, &self.state.stats, insert).await;
            record_insert_duration(started.elapsed(), result.is_ok());
            let error = match result {
                Ok(()) => {
                    debug!(
                        rows,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "batch stored"
                    );
                    self.readiness.retry_succeeded();
                    return true;
                }
                Err(error) => error,
            };

            // Past the shutdown deadline there is no retry to announce: the
            // caller reports what it gave up.
            if self.observe_cancel().is_some_and(|deadline| Instant::now() >= deadline) {
                warn!(%error, attempt, rows, "ClickHouse insert failed at the shutdown deadline");
                return false;
            }

            self.state.stats.add_insert_retry();
            let url = redact_url(&self.config.clickhouse.url);
            self.readiness.retrying(format!(
                "ClickHouse insert failed (attempt {attempt}) at {url}, retrying: {error}"
            ));
            let backoff = self.config.retry.backoff(attempt);
            warn!(
                %error,
                clickhouse_url = %url,
                attempt,
                rows,
                backoff_ms = backoff.as_millis() as u64,
                "ClickHouse insert failed; retrying the same batch, offsets stay uncommitted"
            );
            if !self.wait_before_retry(backoff).await {
                return false;
            }
        }
    }

    /// Waits for each dead letter's delivery in consumption order,
    /// re-producing failed ones. Returns false only when shutdown gave up.
    async fn deliver_dead_letters(&mut self) -> bool {
        while let Some(mut pending) = self.state.dead_letters.pop_front() {
            loop {
                // A letter put back by an earlier give-up has no delivery yet.
                let delivery = match pending.delivery.take() {
                    Some(delivery) => delivery,
                    None => self.state.dead_letters.send(&pending.letter),
                };
                let (failure, too_large) = match delivery {
                    Err(enqueue_error) => (
                        format!("enqueueing failed: {enqueue_error}"),
                        is_too_large(&enqueue_error),
                    ),
                    Ok(delivery) => {
                        match poll_while(&self.consumer, &mut self.held_messages, &self.state.stats, delivery).await {
                            Ok(Ok(_delivered)) => break,
                            Ok(Err((error, _message))) => (error.to_string(), is_too_large(&error)),
                            Err(_canceled) => ("the producer dropped the delivery".to_string(), false),
                        }
                    }
                };
                if too_large && pending.letter.payload.is_some() {
                    // The broker allows less than the producer; a retry with
                    // the same record would fail the same way forever.
                    warn!(
                        error = %failure,
                        source_partition = pending.letter.partition,
                        source_offset = pending.letter.offset,
                        bytes = pending.letter.key_and_payload_bytes(),
                        "dead letter too large for the dead-letter topic; sending it without its payload"
                    );
                    pending.letter.omit_payload();
                    pending.delivery = Some(self.state.dead_letters.send(&pending.letter));
                    continue;
                }

                pending.failures += 1;
                self.state.stats.add_dead_letter_retry();
                self.readiness.retrying(format!(
                    "dead-letter delivery to {} failed (attempt {}), retrying: {failure}",
                    self.state.dead_letters.topic(),
                    pending.failures
                ));
                let backoff = self.config.retry.backoff(pending.failures);
                warn!(
                    error = %failure,
                    attempt = pending.failures,
                    topic = %self.state.dead_letters.topic(),
                    source_partition = pending.letter.partition,
                    source_offset = pending.letter.offset,
                    backoff_ms = backoff.as_millis() as u64,
                    "dead-letter delivery failed; retrying, offsets stay uncommitted past this message"
                );
                if !self.wait_before_retry(backoff).await {
                    self.state.dead_letters.push_front(pending);
                    return false;
                }
                pending.delivery = Some(self.state.dead_letters.send(&pending.letter));
            }

            if pending.failures > 0 {
                self.readiness.retry_succeeded();
            }
            let letter = &pending.letter;
            self.state.offsets.complete(letter.partition, letter.offset);
            self.state.batch.uncount_dead_letter();
            self.state.stats.add_dead_lettered(letter.error_kind);
            debug!(
                source_partition = letter.partition,
                source_offset = letter.offset,
                kind = letter.error_kind,
                "dead letter delivered"
            );
        }
        true
    }

    /// Sleeps `backoff` while keeping the consumer polled. Returns false
    /// when the shutdown deadline has passed, so the caller gives up.
    async fn wait_before_retry(&mut self, backoff: Duration) -> bool {
        let retry_at = Instant::now() + backoff;
        let cancel = self.cancel.clone();
        loop {
            let stop_deadline = self.observe_cancel();
            if stop_deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            if Instant::now() >= retry_at {
                return true;
            }

            let wake_at = stop_deadline.map_or(retry_at, |deadline| deadline.min(retry_at));
            tokio::select! {
                _ = sleep_until(wake_at) => {}
                _ = cancel.cancelled(), if stop_deadline.is_none() => {}
                received = self.consumer.recv() => {
                    self.held_messages.hold(&self.state.stats, received, Utc::now());
                    self.held_messages.pause_if_full(&self.consumer);
                }
            }
        }
    }

    /// Returns the shutdown deadline, starting it when cancellation is first
    /// seen.
    fn observe_cancel(&mut self) -> Option<Instant> {
        if self.stop_deadline.is_none() && self.cancel.is_cancelled() {
            self.readiness.stopping("shutting down".to_string());
            let timeout = self.config.shutdown_timeout;
            self.stop_deadline = Some(Instant::now() + timeout);
            let pending = self.state.batch.messages();
            if pending > 0 {
                info!(
                    messages = pending,
                    shutdown_timeout_ms = timeout.as_millis() as u64,
                    "shutdown requested; storing the pending batch before stopping"
                );
            }
        }
        self.stop_deadline
    }

    async fn shut_down(&mut self) {
        self.observe_cancel();
        if self.flush().await == Flush::GaveUp {
            let abandoned = self.state.batch.messages();
            self.state.stats.add_abandoned(abandoned);
            error!(
                messages = abandoned,
                "gave up storing messages at shutdown; their offsets stay uncommitted, so they are consumed again after a restart"
            );
        }
        self.commit();
    }

    /// Commits every partition's position that moved. A failed commit is
    /// tried again after a backoff or at the next flush.
    fn commit(&mut self) {
        self.assignment
            .sync(&self.consumer, &mut self.state.offsets, &self.config.topic);
        let candidates = self.state.offsets.commit_candidates();
        if candidates.is_empty() {
            self.commit_retry = None;
            return;
        }

        let mut list = TopicPartitionList::new();
        for &(partition, next_offset) in &candidates {
            list.add_partition_offset(&self.config.topic, partition, Offset::Offset(next_offset))
                .expect("a non-negative offset is valid in a partition list");
        }

        // A synchronous commit blocks this task for one broker round trip per
        // flush, which keeps a failure visible right here.
        let started = std::time::Instant::now();
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                for &(partition, next_offset) in &candidates {
                    self.state.offsets.mark_committed(partition, next_offset);
                }
                self.state.stats.add_commit();
                self.commit_retry = None;
                debug!(
                    offsets = ?candidates,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "offsets committed"
                );
            }
            Err(error) => {
                self.state.stats.add_commit_failure();
                let failures = self.commit_retry.map_or(1, |(failures, _)| failures + 1);
                let backoff = self.config.retry.backoff(failures);
                self.commit_retry = Some((failures, Instant::now() + backoff));
                warn!(
                    %error,
                    offsets = ?candidates,
                    attempt = failures,
                    backoff_ms = backoff.as_millis() as u64,
                    "offset commit failed; retrying"
                );
            }
        }
    }
}

impl State {
    fn record_trace_context(&mut self, traceparent: Option<String>) {
        if self.trace_contexts.len() > MAX_SPAN_LINKS {
            return;
        }
        let Some(traceparent) = traceparent else {
            return;
        };
        if !self.trace_contexts.contains(&traceparent) {
            self.trace_contexts.push(traceparent);
        }
    }

    /// Adds a parsed message to the batch, or to the dead letters when its
    /// payload was rejected. `now` is a recent clock reading.
    fn handle(&mut self, received: Received, now: std::time::Instant) {
        self.unreported_consumed += 1;
        let Received {
            partition,
            offset,
            traceparent,
            parsed,
        } = received;
        self.offsets.track(partition, offset);
        self.record_trace_context(traceparent);

        match parsed {
            Ok(event) => self.batch.push_row(
                BatchRow {
                    event,
                    partition,
                    offset,
                },
                now,
            ),
            Err(Rejected { error, dead_letter }) => {
                self.stats.add_rejected(error.kind());
                if let Some(suppressed) = self.rejection_log.allow(now) {
                    warn!(
                        partition,
                        offset,
                        kind = error.kind(),
                        %error,
                        suppressed,
                        "message rejected; sending it to the dead-letter topic"
                    );
                }
                self.dead_letters.push(dead_letter);
                self.batch.count_dead_letter(partition, offset, now);
            }
        }
    }

    /// Adds the messages handled since the last call to the consumed count.
    fn report_consumed(&mut self) {
        if self.unreported_consumed > 0 {
            self.stats.add_consumed(self.unreported_consumed);
            self.unreported_consumed = 0;
        }
    }
}

/// The partitions assigned to this member as of the last rebalance seen.
#[derive(Debug, Default)]
struct AssignmentView {
    rebalances_seen: u64,
    /// `None` until the first rebalance, or after reading the assignment
    /// failed; then every partition counts as owned.
    assigned: Option<BTreeSet<i32>>,
}

impl AssignmentView {
    /// Rereads the assignment after a rebalance and drops the offsets of
    /// partitions no longer assigned, so they are never committed.
    fn sync(&mut self, consumer: &IngestConsumer, offsets: &mut OffsetTracker, topic: &str) {
        let rebalances = consumer.context().rebalances();
        if rebalances == self.rebalances_seen {
            return;
        }
        self.rebalances_seen = rebalances;

        match assigned_partitions(consumer, topic) {
            Ok(assigned) => {
                offsets.retain_partitions(|partition| assigned.contains(&partition));
                self.assigned = Some(assigned);
            }
            Err(error) => {
                warn!(%error, "reading the assignment after a rebalance failed");
                self.assigned = None;
            }
        }
    }

    fn owns(&self, partition: i32) -> bool {
        self.assigned
            .as_ref()
            .is_none_or(|assigned| assigned.contains(&partition))
    }
}

fn note_consume_error(stats: &IngestStats, log: &mut LogLimiter, error: &KafkaError) {
    stats.add_consume_error();
    if let Some(suppressed) = log.allow(std::time::Instant::now()) {
        warn!(%error, suppressed, "Kafka consumer error");
    }
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
