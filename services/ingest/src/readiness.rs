//! Decides whether ingest can do its work and publishes the result to the
//! [`Readiness`] that `/readyz` reports.

use seismo_telemetry::{ConditionTracker, Readiness, ReadinessConditions};

/// Inputs of the readiness decision.
#[derive(Debug, Default)]
struct Conditions {
    /// ClickHouse responded and the events table exists.
    clickhouse_connected: bool,
    /// The consumer received its first assignment from the group, which
    /// can be empty when the group has more members than partitions.
    group_joined: bool,
    /// The failure that is being retried, cleared by the next success.
    retrying: Option<String>,
    /// Reason set once shutdown starts. Ingest is never ready again after it.
    stop_reason: Option<String>,
}

impl ReadinessConditions for Conditions {
    /// Ready means: not stopping, nothing being retried, ClickHouse
    /// connected and the consumer group joined.
    fn not_ready_reason(&self) -> Option<String> {
        if let Some(reason) = &self.stop_reason {
            return Some(reason.clone());
        }
        if let Some(reason) = &self.retrying {
            return Some(reason.clone());
        }
        if !self.clickhouse_connected {
            return Some("connecting to ClickHouse".to_string());
        }
        if !self.group_joined {
            return Some("waiting for a partition assignment from the Kafka consumer group".to_string());
        }
        None
    }
}

/// Shared by the pipeline and the consumer's rebalance callback. Every
/// change updates the [`Readiness`].
#[derive(Debug)]
pub(crate) struct ReadinessTracker(ConditionTracker<Conditions>);

impl ReadinessTracker {
    /// Leaves `readiness` unchanged until the first update, so it keeps the
    /// caller's reason (`starting` by default) until then.
    pub(crate) fn new(readiness: Readiness) -> ReadinessTracker {
        ReadinessTracker(ConditionTracker::new(readiness))
    }

    /// Records a successful ClickHouse setup, which also ends a connection retry.
    pub(crate) fn clickhouse_connected(&self) {
        self.0.update(|conditions| {
            conditions.clickhouse_connected = true;
            conditions.retrying = None;
        });
    }

    pub(crate) fn group_joined(&self) {
        self.0.update(|conditions| conditions.group_joined = true);
    }

    /// Marks ingest not ready while a failed request is retried. `reason`
    /// names the request and its error.
    pub(crate) fn retrying(&self, reason: String) {
        self.0.update(|conditions| conditions.retrying = Some(reason));
    }

    /// Clears the failure set by [`Self::retrying`] after a request
    /// succeeded. Called after every request, so it publishes only when a
    /// failure was set.
    pub(crate) fn retry_succeeded(&self) {
        self.0.update_if(|conditions| conditions.retrying.take().is_some());
    }

    /// Marks ingest not ready for good, e.g. `shutting down`.
    pub(crate) fn stopping(&self, reason: String) {
        self.0.update(|conditions| conditions.stop_reason = Some(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> (ReadinessTracker, Readiness) {
        let readiness = Readiness::default();
        (ReadinessTracker::new(readiness.clone()), readiness)
    }

    fn reason(readiness: &Readiness) -> String {
        readiness.status().expect_err("readiness should be not ready")
    }

    #[test]
    fn starting_until_first_update() {
        let (_tracker, readiness) = tracker();
        assert_eq!(reason(&readiness), "starting");
    }

    #[test]
    fn ready_after_clickhouse_and_group_join() {
        let (tracker, readiness) = tracker();

        tracker.group_joined();
        assert!(reason(&readiness).contains("ClickHouse"));

        tracker.clickhouse_connected();
        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn not_ready_before_group_join() {
        let (tracker, readiness) = tracker();
        tracker.clickhouse_connected();
        assert!(reason(&readiness).contains("consumer group"), "{}", reason(&readiness));
    }

    #[test]
    fn connection_retry_shows_error_until_connected() {
        let (tracker, readiness) = tracker();
        tracker.retrying("ClickHouse setup failed: connection refused".to_string());
        assert_eq!(reason(&readiness), "ClickHouse setup failed: connection refused");

        tracker.clickhouse_connected();
        tracker.group_joined();
        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn insert_retry_clears_on_success() {
        let (tracker, readiness) = tracker();
        tracker.clickhouse_connected();
        tracker.group_joined();

        tracker.retrying("ClickHouse insert failed: timed out".to_string());
        assert_eq!(reason(&readiness), "ClickHouse insert failed: timed out");

        tracker.retry_succeeded();
        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn stopping_overrides_everything() {
        let (tracker, readiness) = tracker();
        tracker.clickhouse_connected();
        tracker.group_joined();
        tracker.retrying("ClickHouse insert failed".to_string());

        tracker.stopping("shutting down".to_string());
        tracker.retry_succeeded();
        tracker.clickhouse_connected();

        assert_eq!(reason(&readiness), "shutting down");
    }
}
