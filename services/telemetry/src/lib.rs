//! Operational plumbing shared by the Seismo services: the admin HTTP server
//! with Prometheus `/metrics`, `/healthz` and `/readyz`, log and trace
//! export setup, W3C trace context helpers and settings files.
//!
//! Services record metrics through the `metrics` facade (`metrics::counter!`
//! and friends); [`install_metrics_recorder`] routes them to a Prometheus
//! recorder that `/metrics` renders.

mod admin;
mod logging;
mod otlp;
mod readiness;
mod readiness_conditions;
mod recorder;
mod settings_file;
mod trace_context;

pub use admin::{AdminServer, start_admin_server};
pub use logging::{LogFormat, init_logging, init_telemetry};
pub use otlp::{OTLP_ENDPOINT_ENV, SERVICE_NAME_ENV, TelemetryGuard};
pub use readiness::Readiness;
pub use readiness_conditions::{ConditionTracker, ReadinessConditions};
pub use recorder::install_metrics_recorder;
pub use settings_file::{
    SETTINGS_FILE_ENV, SETTINGS_FILE_OPTION, SettingsError, apply_settings_file, parse_with_settings_file,
    try_parse_with_settings_file,
};
pub use trace_context::{
    MAX_SPAN_LINKS, TRACEPARENT, link_message_contexts, parse_traceparent, set_remote_parent, span_traceparent,
};
