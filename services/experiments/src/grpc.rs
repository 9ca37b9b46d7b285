//! The `seismo.experiments.v1.Experiments` gRPC service.

use chrono::{DateTime, Utc};
use seismo_proto::experiments::v1::experiments_server::{Experiments, ExperimentsServer};
use seismo_proto::experiments::v1::{
    AnalyzeAbTestRequest, AnalyzeAbTestResponse, GroupSummary, Metric as ProtoMetric, TestResult,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::analysis::{AnalysisSettings, GroupStats, Metric, TestOutcome};
use crate::clickhouse_source::EventsTable;
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

/// Serves the service on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, service: ExperimentsService, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listen = listener.local_addr()?;
    tracing::info!(%listen, "experiments gRPC server started");
    tonic::transport::Server::builder()
        .add_service(ExperimentsServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await
        .map_err(|error| anyhow::anyhow!("the gRPC server on {listen} failed: {error}"))?;
    tracing::info!(%listen, "experiments gRPC server stopped");
    Ok(())
}

#[tonic::async_trait]
impl Experiments for ExperimentsService {
    async fn analyze_ab_test(&self, request: Request<AnalyzeAbTestRequest>) -> Result<Response<AnalyzeAbTestResponse>, Status> {
        let request = request.into_inner();
        let ab_request = self.ab_request(&request)?;

        let output = run_ab_test(&self.table, &ab_request).await.map_err(|error| {
            tracing::warn!(
                control = %request.control_group,
                treatment = %request.treatment_group,
                error = format!("{error:#}"),
                "A/B analysis request failed"
            );
            match error.downcast_ref::<StatsError>() {
                Some(_) => Status::failed_precondition(format!("{error:#}")),
                None => Status::unavailable(format!("{error:#}")),
            }
        })?;

        let analysis = &output.analysis;
        let tests = analysis.tests.iter().map(test_result).collect();
        Ok(Response::new(AnalyzeAbTestResponse {
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
        }))
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
        let metric = match ProtoMetric::try_from(request.metric) {
            Ok(ProtoMetric::Unspecified | ProtoMetric::Ctr) => Metric::Ctr,
            Ok(ProtoMetric::Likes) => Metric::Likes,
            Ok(ProtoMetric::Views) => Metric::Views,
            Err(_) => return Err(Status::invalid_argument(format!("metric {} is unknown; use METRIC_CTR, METRIC_LIKES or METRIC_VIEWS", request.metric))),
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
            alpha: if request.alpha == 0.0 { self.defaults.alpha } else { request.alpha },
            power: if request.power == 0.0 { self.defaults.power } else { request.power },
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
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| Status::invalid_argument(format!("{field} {value} is outside the supported time range; send Unix epoch milliseconds")))
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
