//! `init_telemetry` with `OTEL_EXPORTER_OTLP_ENDPOINT` exports spans over
//! OTLP/gRPC: an in-process collector receives them with the service name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use seismo_telemetry::{LogFormat, OTLP_ENDPOINT_ENV, SERVICE_NAME_ENV, init_telemetry};
use tokio_stream::wrappers::TcpListenerStream;

/// Collector stub that keeps every export request.
#[derive(Clone, Default)]
struct Collector {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// (service.name, span name) of every span the collector received.
fn received_spans(collector: &Collector) -> Vec<(String, String)> {
    let requests = collector.requests.lock().unwrap();
    let mut spans = Vec::new();
    for resource_spans in requests.iter().flat_map(|request| &request.resource_spans) {
        let service_name = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
            .map(|value| match value {
                Value::StringValue(name) => name.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                spans.push((service_name.clone(), span.name.clone()));
            }
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_otlp_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    // SAFETY: this is the only test of this binary, and no other thread
    // reads the environment while it is set.
    unsafe {
        std::env::set_var(OTLP_ENDPOINT_ENV, format!("http://{address}"));
        std::env::set_var(SERVICE_NAME_ENV, "seismo-export-test");
    }
    let guard = init_telemetry(LogFormat::Text, "seismo-default-name").unwrap();

    tracing::info_span!("export_probe", rows = 3).in_scope(|| tracing::info!("inside the probe span"));
    // Dropping the guard flushes the batch, so no wait for the batch
    // interval. It is dropped in the async body, as the services' mains do.
    drop(guard);

    let spans = received_spans(&collector);
    assert!(
        spans.contains(&("seismo-export-test".to_string(), "export_probe".to_string())),
        "OTEL_SERVICE_NAME names the service of the exported span; received {spans:?}"
    );
    server.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}
