//! gRPC server: `seismo.experiments.v1.Experiments`, the standard health
//! service and server reflection.

use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use prost::Message;
use prost_types::FileDescriptorSet;
use seismo_proto::experiments::v1::experiments_server::{Experiments, ExperimentsServer};
use seismo_proto::experiments::v1::{
    AnalyzeAbTestRequest, AnalyzeAbTestResponse, GroupSummary, Metric as ProtoMetric, TestResult,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::analysis::{AnalysisSettings, GroupStats, Metric, TestOutcome};
use crate::clickhouse_source::{EventsTable, QueryTimeout};
use crate::prometheus_metrics::{ANALYZE_AB_TEST, record_request};
use crate::run::{AbRequest, run_ab_test};
use crate::stats::error::StatsError;

/// Serves A/B analyses of one events table.
#[derive(Debug, Clone)]
pub struct ExperimentsService {
    table: EventsTable,
    /// Settings the request does not carry: buckets, smoothing, bootstrap
    /// size.
    defaults: AnalysisSettings,
}

impl ExperimentsService {
    pub fn new(table: EventsTable, defaults: AnalysisSettings) -> Self {
        ExperimentsService { table, defaults }
    }
}

/// Package of the experiments API in the descriptor set of `seismo-proto`.
const EXPERIMENTS_PACKAGE: &str = "seismo.experiments.v1";

/// Serves the experiments API, health and reflection on `listener` until
/// `shutdown` fires; in-flight requests finish first. Calls `on_serving`
/// once the server is about to accept connections.
pub async fn serve(
    listener: TcpListener,
    service: ExperimentsService,
    shutdown: CancellationToken,
    on_serving: impl FnOnce(),
) -> anyhow::Result<()> {
    let listen = listener.local_addr()?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ExperimentsServer<ExperimentsService>>()
        .await;

    // Both reflection versions, because many clients still speak only v1alpha.
    let descriptors = experiments_descriptors()?;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(descriptors.clone())
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(descriptors)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let stopping = async move {
        shutdown.cancelled().await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        health_reporter
            .set_not_serving::<ExperimentsServer<ExperimentsService>>()
            .await;
    };

    tracing::info!(%listen, "experiments gRPC server started");
    on_serving();
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(ExperimentsServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopping)
        .await
        .map_err(|error| anyhow::anyhow!("the gRPC server on {listen} failed: {error}"))?;
    tracing::info!(%listen, "experiments gRPC server stopped");
    Ok(())
}

/// Returns the files of the experiments API from the descriptor set of
/// `seismo-proto`, which also contains the detector and forecast APIs, so
/// reflection lists only the services this server runs. The experiments
/// proto imports no other file.
fn experiments_descriptors() -> anyhow::Result<FileDescriptorSet> {
    let mut descriptors = FileDescriptorSet::decode(seismo_proto::FILE_DESCRIPTOR_SET)
        .context("the descriptor set of seismo-proto is invalid; rebuild seismo-proto")?;

    descriptors
        .file
        .retain(|file| file.package.as_deref() == Some(EXPERIMENTS_PACKAGE));
    anyhow::ensure!(
        !descriptors.file.is_empty(),
        "the descriptor set of seismo-proto has no file of package {EXPERIMENTS_PACKAGE}"
    );
    Ok(descriptors)
}

#[tonic::async_trait]
impl Experiments for ExperimentsService {
    async fn analyze_ab_test(
        &self,
        request: Request<AnalyzeAbTestRequest>,
    ) -> Result<Response<AnalyzeAbTestResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let result = self.serve_ab_test(&request).await;

        finish_request(ANALYZE_AB_TEST, &request, &result, started);
        result.map(Response::new)
    }
}

/// Records the request's metrics and logs its outcome.
fn finish_request<T>(rpc: &'static str, request: &AnalyzeAbTestRequest, result: &Result<T, Status>, started: Instant) {
    let duration = started.elapsed();
    let code = result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok);
    record_request(rpc, code, duration);

    let duration_ms = duration.as_millis() as u64;
    let control = request.control_group.as_str();
    let treatment = request.treatment_group.as_str();
    match result {
        Ok(_) => tracing::info!(rpc, control, treatment, duration_ms, "served request"),
        // ClickHouse failed, is unreachable or too slow: the operator's
        // problem, not the client's.
        Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
            tracing::warn!(
                rpc,
                control,
                treatment,
                duration_ms,
                code = ?status.code(),
                error = status.message(),
                "A/B analysis request failed"
            )
        }
        Err(status) => tracing::info!(
            rpc,
            control,
            treatment,
            duration_ms,
            code = ?status.code(),
            message = status.message(),
            "rejected request"
        ),
    }
}

impl ExperimentsService {
    async fn serve_ab_test(&self, request: &AnalyzeAbTestRequest) -> Result<AnalyzeAbTestResponse, Status> {
        let ab_request = self.ab_request(request)?;

        let output = run_ab_test(&self.table, &ab_request).await.map_err(|error| {
            if error.is::<StatsError>() {
                Status::failed_precondition(format!("{error:#}"))
            } else if error.is::<QueryTimeout>() {
                Status::deadline_exceeded(format!("{error:#}"))
            } else {
                Status::unavailable(format!("{error:#}"))
            }
        })?;

        let analysis = &output.analysis;
        let tests = analysis.tests.iter().map(test_result).collect();
        Ok(AnalyzeAbTestResponse {
            control: Some(group_summary(&analysis.control)),
            treatment: Some(group_summary(&analysis.treatment)),
            srm_chi_square: analysis.sample_ratio.chi_square,
            srm_p_value: analysis.sample_ratio.p_value,
            tests,
            minimum_detectable_effect: analysis
                .detectable_effect
                .as_ref()
                .map_or(f64::NAN, |effect| effect.absolute),
            report: output.report,
            chart_png: output.chart_png.unwrap_or_default(),
        })
    }
}

impl ExperimentsService {
    /// Maps the request onto the defaults, rejecting invalid fields.
    fn ab_request(&self, request: &AnalyzeAbTestRequest) -> Result<AbRequest, Status> {
        if request.control_group.is_empty() || request.treatment_group.is_empty() {
            return Err(Status::invalid_argument(
                "control_group and treatment_group are required, e.g. \"1\" and \"2\"",
            ));
        }
        if request.control_group == request.treatment_group {
            return Err(Status::invalid_argument(format!(
                "control_group and treatment_group are both `{}`; compare two different groups",
                request.control_group
            )));
        }
        let metric = match ProtoMetric::try_from(request.metric) {
            Ok(ProtoMetric::Unspecified | ProtoMetric::Ctr) => Metric::Ctr,
            Ok(ProtoMetric::Likes) => Metric::Likes,
            Ok(ProtoMetric::Views) => Metric::Views,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "metric {} is unknown; use METRIC_CTR, METRIC_LIKES or METRIC_VIEWS",
                    request.metric
                )));
            }
        };
        let expected_split = match request.expected_split.as_slice() {
            [] => [50.0, 50.0],
            [control, treatment] => [*control, *treatment],
            other => {
                return Err(Status::invalid_argument(format!(
                    "expected_split has {} values; give two shares (control, treatment), e.g. [50, 50]",
                    other.len()
                )));
            }
        };

        let settings = AnalysisSettings {
            metric,
            alpha: if request.alpha == 0.0 {
                self.defaults.alpha
            } else {
                request.alpha
            },
            power: if request.power == 0.0 {
                self.defaults.power
            } else {
                request.power
            },
            expected_split,
            seed: request.seed,
            ..self.defaults.clone()
        };
        Ok(AbRequest {
            control: request.control_group.clone(),
            treatment: request.treatment_group.clone(),
            from: epoch_ms("from_ms", request.from_ms)?,
            to: epoch_ms("to_ms", request.to_ms)?,
            settings,
            with_chart: request.include_chart,
        })
    }
}

fn epoch_ms(field: &str, value: i64) -> Result<DateTime<Utc>, Status> {
    DateTime::from_timestamp_millis(value).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field} {value} is outside the supported time range; send Unix epoch milliseconds"
        ))
    })
}

fn test_result(test: &TestOutcome) -> TestResult {
    let values = match &test.result {
        Ok(values) => values,
        Err(error) => {
            return TestResult {
                name: test.name.to_string(),
                statistic: f64::NAN,
                p_value: f64::NAN,
                effect: f64::NAN,
                ci_lower: f64::NAN,
                ci_upper: f64::NAN,
                relative_effect: f64::NAN,
                error: error.to_string(),
            };
        }
    };

    let effect = values.effect;
    TestResult {
        name: test.name.to_string(),
        statistic: values.statistic,
        p_value: values.p_value,
        effect: effect.map_or(f64::NAN, |effect| effect.estimate),
        ci_lower: effect.map_or(f64::NAN, |effect| effect.lower),
        ci_upper: effect.map_or(f64::NAN, |effect| effect.upper),
        relative_effect: values.relative.map_or(f64::NAN, |relative| relative.estimate),
        error: String::new(),
    }
}

fn group_summary(group: &GroupStats) -> GroupSummary {
    GroupSummary {
        name: group.name.clone(),
        users: group.users as u64,
        views: group.views,
        likes: group.likes,
        mean: group.metric_mean,
    }
}
