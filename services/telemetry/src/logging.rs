use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

use crate::otlp::{self, TelemetryGuard};

/// Output format of the service logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("invalid log format `{other}`; use `text` or `json`")),
        }
    }
}

/// Installs the global `tracing` subscriber writing to stderr. The filter
/// comes from `RUST_LOG` (default `info`). Does nothing when a subscriber is
/// already installed, so services started in one process can all call it.
/// Exports no spans; services use [`init_telemetry`].
pub fn init_logging(format: LogFormat) {
    let _already_installed = install_subscriber(format, None);
}

/// Installs the global `tracing` subscriber as [`init_logging`] does and,
/// when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports spans over OTLP/gRPC
/// with the service name `OTEL_SERVICE_NAME` or else `service_name`. Sets
/// the W3C trace context propagator in either case.
///
/// Call it inside a tokio runtime and keep the returned guard until
/// shutdown: dropping it flushes the spans not yet exported.
pub fn init_telemetry(format: LogFormat, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let Some(provider) = otlp::build_provider(service_name)? else {
        init_logging(format);
        return Ok(TelemetryGuard::default());
    };

    let tracer = provider.tracer(service_name.to_string());
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    if install_subscriber(format, Some(otel_layer)).is_err() {
        tracing::warn!("a tracing subscriber is already installed; spans of this process are not exported");
    } else {
        tracing::info!(endpoint = %std::env::var(otlp::OTLP_ENDPOINT_ENV).unwrap_or_default(), "exporting spans over OTLP");
    }
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard::new(provider))
}

type OtelLayer = tracing_opentelemetry::OpenTelemetryLayer<Registry, opentelemetry_sdk::trace::SdkTracer>;

/// Installs the global subscriber: the OpenTelemetry layer, if any, and the
/// fmt layer. The `RUST_LOG` filter applies to the fmt layer only, so spans
/// below the log level are still exported. Fails when a global subscriber
/// exists.
fn install_subscriber(format: LogFormat, otel_layer: Option<OtelLayer>) -> Result<(), TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (text, json) = match format {
        // Colour codes only for a terminal, so files and log collectors get plain text.
        LogFormat::Text => (
            Some(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(fmt::layer().json().flatten_event(true).with_writer(std::io::stderr)),
        ),
    };

    tracing_subscriber::registry()
        .with(otel_layer)
        .with(text.with_filter(filter.clone()))
        .with(json.with_filter(filter))
        .try_init()
}
