//! Decides whether the detector can do its work and publishes the result to
//! the [`Readiness`] that `/readyz` reports.

use seismo_telemetry::{ConditionTracker, Readiness, ReadinessConditions};

/// Inputs of the readiness decision.
#[derive(Debug, Default)]
struct Conditions {
    /// The gRPC server accepts connections.
    grpc_serving: bool,
    /// The consumer received its first assignment from the group, which
    /// can be empty when the group has more members than partitions.
    group_joined: bool,
    /// Reason set once shutdown starts. The detector is never ready again
    /// after it.
    stop_reason: Option<String>,
}

impl ReadinessConditions for Conditions {
    /// Ready means: not stopping, the gRPC server serving and the consumer
    /// group joined.
    fn not_ready_reason(&self) -> Option<String> {
        if let Some(reason) = &self.stop_reason {
            return Some(reason.clone());
        }
        if !self.grpc_serving {
            return Some("starting the gRPC server".to_string());
        }
        if !self.group_joined {
            return Some("waiting for a partition assignment from the Kafka consumer group".to_string());
        }
        None
    }
}

/// Shared by the service, the gRPC server and the consumer's rebalance
/// callback. Every change updates the [`Readiness`].
#[derive(Debug)]
pub(crate) struct ReadinessTracker(ConditionTracker<Conditions>);

impl ReadinessTracker {
    /// Leaves `readiness` unchanged until the first update, so it keeps the
    /// caller's reason (`starting` by default) until then.
    pub(crate) fn new(readiness: Readiness) -> ReadinessTracker {
        ReadinessTracker(ConditionTracker::new(readiness))
    }

    pub(crate) fn grpc_serving(&self) {
        self.0.update(|conditions| conditions.grpc_serving = true);
    }

    pub(crate) fn group_joined(&self) {
        self.0.update(|conditions| conditions.group_joined = true);
    }

    /// Marks the detector not ready for good, e.g. `shutting down`. A later
    /// call replaces the reason, e.g. with `stopped`.
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
    fn ready_after_grpc_and_group_join() {
        let (tracker, readiness) = tracker();

        tracker.group_joined();
        assert!(reason(&readiness).contains("gRPC"), "{}", reason(&readiness));

        tracker.grpc_serving();
        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn not_ready_before_group_join() {
        let (tracker, readiness) = tracker();

        tracker.grpc_serving();

        assert!(reason(&readiness).contains("consumer group"), "{}", reason(&readiness));
    }

    #[test]
    fn stopping_overrides_everything() {
        let (tracker, readiness) = tracker();
        tracker.grpc_serving();
        tracker.group_joined();

        tracker.stopping("shutting down".to_string());
        tracker.group_joined();
        tracker.grpc_serving();

        assert_eq!(reason(&readiness), "shutting down");
    }

    #[test]
    fn stopped_replaces_shutting_down() {
        let (tracker, readiness) = tracker();
        tracker.stopping("shutting down".to_string());

        tracker.stopping("stopped".to_string());

        assert_eq!(reason(&readiness), "stopped");
    }
}
