//! Names and help texts of the Prometheus metrics that the forecast service
//! records through the `metrics` facade.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_histogram};

/// Labels `rpc` (`forecast` or `backtest`) and `code` (the gRPC status code
/// name, `Ok` on success).
pub(crate) const REQUESTS: &str = "seismo_forecast_requests_total";
/// Label `rpc`.
pub(crate) const REQUEST_DURATION: &str = "seismo_forecast_request_duration_seconds";

/// Registers the help text and unit of every forecast service metric with
/// the installed recorder. Without a recorder this does nothing.
pub(crate) fn register_metrics() {
    for rpc in ["forecast", "backtest"] {
        metrics::counter!(REQUESTS, "rpc" => rpc, "code" => "Ok").increment(0);
    }
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "Forecast and Backtest requests served, by RPC and gRPC status code."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to serve one Forecast or Backtest request, including the ClickHouse query and the model fits."
    );
}

/// Counts one finished request and records its duration.
pub(crate) fn record_request(rpc: &'static str, code: tonic::Code, duration: Duration) {
    metrics::counter!(REQUESTS, "rpc" => rpc, "code" => format!("{code:?}")).increment(1);
    metrics::histogram!(REQUEST_DURATION, "rpc" => rpc).record(duration.as_secs_f64());
}
