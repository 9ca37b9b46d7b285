//! OTLP trace export: active when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use anyhow::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Standard variable with the OTLP collector's gRPC address, e.g.
/// `http://otel-collector:4317`.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Standard variable overriding the service name in exported spans.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// Flushes and stops the span export when dropped, so spans of the last
/// seconds before shutdown reach the collector. Holds nothing when export
/// is off.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        if let Err(error) = provider.shutdown() {
            eprintln!("failed to flush the last spans to the OTLP collector: {error}");
        }
    }
}

impl TelemetryGuard {
    pub(crate) fn new(provider: SdkTracerProvider) -> TelemetryGuard {
        TelemetryGuard {
            provider: Some(provider),
        }
    }
}

/// Builds a tracer provider exporting over OTLP/gRPC in batches, or `None`
/// when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset or empty. The service name is
/// `OTEL_SERVICE_NAME` or else `default_service_name`.
///
/// Must run inside a tokio runtime: the gRPC channel runs on it, while the
/// batch processor waits for exports on a thread of its own.
pub(crate) fn build_provider(default_service_name: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    let endpoint = std::env::var(OTLP_ENDPOINT_ENV).unwrap_or_default();
    if endpoint.trim().is_empty() {
        return Ok(None);
    }

    let service_name = std::env::var(SERVICE_NAME_ENV)
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default_service_name.to_string());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .with_context(|| format!("invalid OTLP exporter settings for {OTLP_ENDPOINT_ENV}={endpoint}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();

    Ok(Some(provider))
}
