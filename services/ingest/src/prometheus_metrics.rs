//! Names and help texts of the Prometheus metrics that the ingest service
//! records through the `metrics` facade. The counters mirror
//! [`crate::IngestStats`] and are incremented in the same calls.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub(crate) const CONSUMED: &str = "seismo_ingest_consumed_total";
/// Label `reason`: [`seismo_events::EventError::kind`].
pub(crate) const REJECTED: &str = "seismo_ingest_rejected_total";
pub(crate) const INSERTED_ROWS: &str = "seismo_ingest_inserted_rows_total";
/// Label `reason`: [`seismo_events::EventError::kind`].
pub(crate) const DEAD_LETTERED: &str = "seismo_ingest_dead_lettered_total";
pub(crate) const INSERT_RETRIES: &str = "seismo_ingest_insert_retries_total";
pub(crate) const CONNECT_RETRIES: &str = "seismo_ingest_connect_retries_total";
pub(crate) const DEAD_LETTER_RETRIES: &str = "seismo_ingest_dead_letter_retries_total";
pub(crate) const COMMITS: &str = "seismo_ingest_commits_total";
pub(crate) const COMMIT_FAILURES: &str = "seismo_ingest_commit_failures_total";
pub(crate) const CONSUME_ERRORS: &str = "seismo_ingest_consume_errors_total";
pub(crate) const ABANDONED: &str = "seismo_ingest_abandoned_total";
pub(crate) const BATCH_ROWS: &str = "seismo_ingest_batch_rows";
/// Label `outcome`: `success` or `failure`.
pub(crate) const INSERT_DURATION: &str = "seismo_ingest_insert_duration_seconds";
/// Labels `topic` and `partition`.
pub(crate) const CONSUMER_LAG: &str = "seismo_ingest_consumer_lag_messages";

/// Registers the help text and unit of every ingest metric with the
/// installed recorder. Without a recorder this does nothing.
pub(crate) fn describe_metrics() {
    describe_counter!(CONSUMED, Unit::Count, "Messages received from Kafka.");
    describe_counter!(REJECTED, Unit::Count, "Messages that failed validation, by reason.");
    describe_counter!(INSERTED_ROWS, Unit::Count, "Rows acknowledged by ClickHouse.");
    describe_counter!(
        DEAD_LETTERED,
        Unit::Count,
        "Rejected messages acknowledged by the dead-letter topic, by reason."
    );
    describe_counter!(
        INSERT_RETRIES,
        Unit::Count,
        "Failed ClickHouse inserts that were retried."
    );
    describe_counter!(
        CONNECT_RETRIES,
        Unit::Count,
        "Failed attempts to reach ClickHouse and create the table at startup."
    );
    describe_counter!(
        DEAD_LETTER_RETRIES,
        Unit::Count,
        "Failed dead-letter deliveries that were retried."
    );
    describe_counter!(COMMITS, Unit::Count, "Successful Kafka offset commits.");
    describe_counter!(
        COMMIT_FAILURES,
        Unit::Count,
        "Failed Kafka offset commits, retried later."
    );
    describe_counter!(CONSUME_ERRORS, Unit::Count, "Errors reported by the Kafka consumer.");
    describe_counter!(
        ABANDONED,
        Unit::Count,
        "Messages neither stored nor dead-lettered when shutdown gave up, consumed again after a restart."
    );

    describe_histogram!(BATCH_ROWS, Unit::Count, "Rows per insert acknowledged by ClickHouse.");
    describe_histogram!(
        INSERT_DURATION,
        Unit::Seconds,
        "Duration of one ClickHouse insert attempt, by outcome."
    );

    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Messages between the high watermark and the consumer position, per assigned partition."
    );

    // Incremented by 0, not set, so the series exist from the start (a
    // dashboard shows 0, not "no data") and another ingest in the same
    // process keeps its counts.
    for counter in [
        CONSUMED,
        INSERTED_ROWS,
        INSERT_RETRIES,
        CONNECT_RETRIES,
        DEAD_LETTER_RETRIES,
        COMMITS,
        COMMIT_FAILURES,
        CONSUME_ERRORS,
        ABANDONED,
    ] {
        metrics::counter!(counter).increment(0);
    }
}

/// Records the duration of one insert attempt.
pub(crate) fn record_insert_duration(elapsed: Duration, succeeded: bool) {
    let outcome = if succeeded { "success" } else { "failure" };
    metrics::histogram!(INSERT_DURATION, "outcome" => outcome).record(elapsed);
}
