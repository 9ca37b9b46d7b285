use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for durations, in seconds: 1 ms to 60 s.
const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Histogram buckets for sizes such as rows per batch.
const SIZE_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0];

/// Interval of the recorder's upkeep, which drains histogram samples into
/// their buckets so memory stays bounded when nothing scrapes `/metrics`.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on first call and returns its
/// handle; later calls return the same handle. Services that run in one
/// process, as in the demo, share it, and their metric names carry the
/// service as a prefix (`seismo_ingest_…`).
///
/// Metrics whose name ends in `_seconds` get duration buckets, and those
/// ending in `_rows` or `_size` get size buckets; other histograms are
/// rendered as summaries.
pub fn install_metrics_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), DURATION_BUCKETS_SECONDS)
                .and_then(|builder| builder.set_buckets_for_metric(Matcher::Suffix("_rows".to_string()), SIZE_BUCKETS))
                .and_then(|builder| builder.set_buckets_for_metric(Matcher::Suffix("_size".to_string()), SIZE_BUCKETS))
                .expect("the bucket lists are non-empty constants");

            match builder.install_recorder() {
                Ok(handle) => {
                    spawn_upkeep(handle.clone());
                    handle
                }
                // Another recorder was installed first, e.g. by a test harness:
                // keep a detached one so /metrics still responds, with a warning.
                Err(error) => {
                    tracing::warn!(%error, "a global metrics recorder is already installed; /metrics shows only its own metrics");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Runs the recorder's upkeep on a plain thread, so it works whatever async
/// runtime, if any, the caller uses.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the metrics upkeep thread; histogram memory grows until /metrics is scraped");
    }
}
