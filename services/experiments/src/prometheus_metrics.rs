//! Names and help texts of the Prometheus metrics that the experiments
//! service records through the `metrics` facade.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_histogram};

/// Labels `rpc` (`analyze_ab_test`) and `code` (the gRPC status code name,
/// `Ok` on success).
pub(crate) const REQUESTS: &str = "seismo_experiments_requests_total";
/// Labels `rpc` and `code`, as [`REQUESTS`].
pub(crate) const REQUEST_DURATION: &str = "seismo_experiments_request_duration_seconds";

/// RPC label of `AnalyzeAbTest`.
pub(crate) const ANALYZE_AB_TEST: &str = "analyze_ab_test";

/// Registers the help text and unit of every experiments service metric
/// with the installed recorder, and a zero success count, so `/metrics`
/// lists the series before the first request. Without a recorder this does
/// nothing.
pub(crate) fn register_metrics() {
    metrics::counter!(REQUESTS, "rpc" => ANALYZE_AB_TEST, "code" => "Ok").increment(0);
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "AnalyzeAbTest requests served, by RPC and gRPC status code."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to serve one request, including the ClickHouse query, the tests and the chart, by RPC and gRPC status code."
    );
}

/// Counts one finished request and records its duration.
pub(crate) fn record_request(rpc: &'static str, code: tonic::Code, duration: Duration) {
    let code = format!("{code:?}");
    metrics::counter!(REQUESTS, "rpc" => rpc, "code" => code.clone()).increment(1);
    metrics::histogram!(REQUEST_DURATION, "rpc" => rpc, "code" => code).record(duration.as_secs_f64());
}
