//! Names and help texts of the Prometheus metrics that the detector records
//! through the `metrics` facade. The counters mirror [`crate::DetectorStats`]
//! and are updated in the same calls.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub(crate) const MESSAGES: &str = "seismo_detector_messages_total";
/// Label `reason`: [`seismo_events::EventError::kind`].
pub(crate) const INVALID: &str = "seismo_detector_invalid_total";
pub(crate) const RECEIVE_ERRORS: &str = "seismo_detector_receive_errors_total";
pub(crate) const PARTITIONS_IDLED: &str = "seismo_detector_partitions_idled_total";
pub(crate) const EVENTS_ACCEPTED: &str = "seismo_detector_events_accepted_total";
pub(crate) const EVENTS_LATE: &str = "seismo_detector_events_late_total";
pub(crate) const EVENTS_UNMATCHED: &str = "seismo_detector_events_unmatched_total";
pub(crate) const EVENTS_HELD_FUTURE: &str = "seismo_detector_events_held_future";
pub(crate) const EVENTS_REJECTED_FUTURE: &str = "seismo_detector_events_rejected_future_total";
pub(crate) const SLICES_REJECTED: &str = "seismo_detector_slices_rejected_total";
pub(crate) const WINDOWS_EVALUATED: &str = "seismo_detector_windows_evaluated_total";
/// Label `metric`: the metric name from the metrics file.
pub(crate) const ANOMALIES_FIRED: &str = "seismo_detector_anomalies_fired_total";
/// Label `metric`: the metric name from the metrics file.
pub(crate) const ANOMALIES_ESCALATED: &str = "seismo_detector_anomalies_escalated_total";
/// Label `metric`: the metric name from the metrics file.
pub(crate) const ANOMALIES_RESOLVED: &str = "seismo_detector_anomalies_resolved_total";
pub(crate) const EVALUATION_DURATION: &str = "seismo_detector_evaluation_duration_seconds";
pub(crate) const SERIES: &str = "seismo_detector_series";
pub(crate) const GRPC_SUBSCRIBERS: &str = "seismo_detector_grpc_subscribers";
pub(crate) const WATERMARK_LAG: &str = "seismo_detector_watermark_lag_seconds";
pub(crate) const EXPERIMENT_EVENTS: &str = "seismo_detector_experiment_events_total";
pub(crate) const EXPERIMENT_GROUP_CONFLICTS: &str = "seismo_detector_experiment_group_conflicts_total";
pub(crate) const EXPERIMENT_UNKNOWN_GROUPS: &str = "seismo_detector_experiment_unknown_groups_total";

/// Label of the anomaly counters.
pub(crate) const METRIC: &str = "metric";
/// Label of the invalid-message counter.
pub(crate) const REASON: &str = "reason";

/// Registers the help text and unit of every detector metric with the
/// installed recorder, and creates the unlabelled counters and the gauges
/// that have a value from the start at 0, so `/metrics` lists them before
/// the first event. Without a recorder this does nothing.
pub(crate) fn register_metrics() {
    for counter in [
        MESSAGES,
        RECEIVE_ERRORS,
        PARTITIONS_IDLED,
        EVENTS_ACCEPTED,
        EVENTS_LATE,
        EVENTS_UNMATCHED,
        EVENTS_REJECTED_FUTURE,
        SLICES_REJECTED,
        WINDOWS_EVALUATED,
        EXPERIMENT_EVENTS,
        EXPERIMENT_GROUP_CONFLICTS,
        EXPERIMENT_UNKNOWN_GROUPS,
    ] {
        metrics::counter!(counter).increment(0);
    }
    // Incremented by 0, not set, so another detector in the same process
    // keeps its share.
    for gauge in [EVENTS_HELD_FUTURE, SERIES, GRPC_SUBSCRIBERS] {
        metrics::gauge!(gauge).increment(0.0);
    }

    describe_counter!(MESSAGES, Unit::Count, "Kafka messages read from the events topic.");
    describe_counter!(
        INVALID,
        Unit::Count,
        "Messages skipped because they are not valid events, by reason."
    );
    describe_counter!(
        RECEIVE_ERRORS,
        Unit::Count,
        "Errors returned by the Kafka consumer instead of a message."
    );
    describe_counter!(
        PARTITIONS_IDLED,
        Unit::Count,
        "Times a Kafka partition stopped holding windows open because it delivered no event while the detector waited partition_idle_timeout for messages."
    );
    describe_counter!(
        EVENTS_ACCEPTED,
        Unit::Count,
        "Valid events admitted by the event-time clock."
    );
    describe_counter!(
        EVENTS_LATE,
        Unit::Count,
        "Events dropped for at least one metric because its window had closed."
    );
    describe_counter!(
        EVENTS_UNMATCHED,
        Unit::Count,
        "Events that no configured metric counts."
    );
    describe_gauge!(
        EVENTS_HELD_FUTURE,
        Unit::Count,
        "Events held back now because they lie too far ahead of the event-time clock."
    );
    describe_counter!(
        EVENTS_REJECTED_FUTURE,
        Unit::Count,
        "Held far-future events dropped because the hold buffer was full."
    );
    describe_counter!(
        SLICES_REJECTED,
        Unit::Count,
        "Slice updates skipped because a dimension had too many values."
    );
    describe_counter!(
        WINDOWS_EVALUATED,
        Unit::Count,
        "Closed windows judged by a series detector."
    );
    describe_counter!(
        ANOMALIES_FIRED,
        Unit::Count,
        "Anomalies that started firing, by metric."
    );
    describe_counter!(
        ANOMALIES_ESCALATED,
        Unit::Count,
        "Open anomalies whose severity rose, by metric."
    );
    describe_counter!(ANOMALIES_RESOLVED, Unit::Count, "Anomalies that resolved, by metric.");
    describe_histogram!(
        EVALUATION_DURATION,
        Unit::Seconds,
        "Time to judge the windows that one event closed and publish the anomaly changes."
    );
    describe_counter!(
        EXPERIMENT_EVENTS,
        Unit::Count,
        "Events counted by at least one watched experiment."
    );
    describe_counter!(
        EXPERIMENT_GROUP_CONFLICTS,
        Unit::Count,
        "Experiment events skipped because their user was first seen in another group."
    );
    describe_counter!(
        EXPERIMENT_UNKNOWN_GROUPS,
        Unit::Count,
        "Events in an experiment's time range whose exp_group is none of its groups."
    );
    describe_gauge!(SERIES, Unit::Count, "Series the detector keeps history for.");
    describe_gauge!(GRPC_SUBSCRIBERS, Unit::Count, "Open StreamAnomalies gRPC streams.");
    describe_gauge!(
        WATERMARK_LAG,
        Unit::Seconds,
        "Wall clock minus the event-time watermark; includes allowed_lateness and grows while no events arrive."
    );
}
