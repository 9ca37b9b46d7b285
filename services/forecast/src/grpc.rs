//! gRPC server: `seismo.forecast.v1.Forecast`, the standard health service
//! and server reflection.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use seismo_proto::forecast::v1 as proto;
use seismo_proto::forecast::v1::forecast_server::{Forecast, ForecastServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::cli::default_window;
use crate::clickhouse_source::{ClickHouseSettings, LoadError, load_series};
use crate::metric_query::{MetricDefinition, SeriesQuery};
use crate::prometheus_metrics::record_request;
use crate::{
    BacktestOptions, BacktestReport, ErrorMetrics, EventDates, ForecastError, ForecastOptions, ForecastResult,
    Granularity, Origins, Series, backtest, forecast,
};

/// Level used when a request leaves `level` at 0.
const DEFAULT_LEVEL: f64 = 0.95;

/// Longest accepted horizon, in buckets: a year of hours. Bounds the work
/// and the response size of one request.
const MAX_HORIZON: u32 = 8_760;

/// Longest accepted inline series, in values (ten years of hours).
const MAX_INLINE_VALUES: usize = 87_600;

/// Implementation of `seismo.forecast.v1.Forecast` over ClickHouse.
#[derive(Debug, Clone)]
pub struct ForecastService {
    clickhouse: ClickHouseSettings,
}

impl ForecastService {
    pub fn new(clickhouse: ClickHouseSettings) -> ForecastService {
        ForecastService { clickhouse }
    }

    /// Resolves the request's series: the inline values or a ClickHouse
    /// query.
    async fn load(&self, source: Option<proto::SeriesSource>) -> Result<Series, Status> {
        let source = source.ok_or_else(|| Status::invalid_argument("`series` is missing"))?;
        let granularity = match proto::Granularity::try_from(source.granularity) {
            Ok(proto::Granularity::Hour) => Granularity::Hour,
            Ok(proto::Granularity::Day) => Granularity::Day,
            _ => {
                return Err(Status::invalid_argument(
                    "`series.granularity` must be GRANULARITY_HOUR or GRANULARITY_DAY",
                ));
            }
        };

        match source.source {
            Some(proto::series_source::Source::Inline(inline)) => {
                if inline.values.len() > MAX_INLINE_VALUES {
                    return Err(Status::invalid_argument(format!(
                        "`series.inline.values` has {} values, more than the limit of {MAX_INLINE_VALUES}",
                        inline.values.len()
                    )));
                }
                let start = DateTime::from_timestamp_millis(inline.start_ms)
                    .ok_or_else(|| Status::invalid_argument("`series.inline.start_ms` is out of range"))?;
                Ok(Series::new(granularity.bucket_start(start), granularity, inline.values))
            }
            Some(proto::series_source::Source::Query(query)) => {
                let query = series_query(query, granularity, Utc::now())?;
                load_series(&self.clickhouse, &query).await.map_err(load_status)
            }
            None => Err(Status::invalid_argument("`series` needs `query` or `inline`")),
        }
    }
}

#[tonic::async_trait]
impl Forecast for ForecastService {
    async fn forecast(
        &self,
        request: Request<proto::ForecastRequest>,
    ) -> Result<Response<proto::ForecastResponse>, Status> {
        let started = Instant::now();
        let result = self.serve_forecast(request.into_inner()).await;
        finish_request("forecast", &result, started);
        result.map(Response::new)
    }

    async fn backtest(
        &self,
        request: Request<proto::BacktestRequest>,
    ) -> Result<Response<proto::BacktestResponse>, Status> {
        let started = Instant::now();
        let result = self.serve_backtest(request.into_inner()).await;
        finish_request("backtest", &result, started);
        result.map(Response::new)
    }
}

/// Records the request's metrics and logs its outcome.
fn finish_request<T>(rpc: &'static str, result: &Result<T, Status>, started: Instant) {
    let duration = started.elapsed();
    let code = result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok);
    record_request(rpc, code, duration);

    let duration_ms = duration.as_millis() as u64;
    match result {
        Ok(_) => tracing::info!(rpc, duration_ms, "served request"),
        Err(status) => {
            tracing::info!(rpc, duration_ms, code = ?status.code(), message = status.message(), "rejected request")
        }
    }
}

impl ForecastService {
    async fn serve_forecast(&self, request: proto::ForecastRequest) -> Result<proto::ForecastResponse, Status> {
        let horizon = check_horizon(request.horizon)?;
        let options = ForecastOptions {
            horizon,
            level: level_or_default(request.level),
            event_dates: parse_event_dates(&request.event_dates)?,
        };
        let series = self.load(request.series).await?;
        let points = series.len();

        let result = tokio::task::spawn_blocking(move || forecast(&series, &options))
            .await
            .map_err(|error| Status::internal(format!("forecast task failed: {error}")))?
            .map_err(forecast_status)?;

        tracing::debug!(points, horizon, "forecast computed");
        Ok(forecast_response(&result))
    }

    async fn serve_backtest(&self, request: proto::BacktestRequest) -> Result<proto::BacktestResponse, Status> {
        let horizon = check_horizon(request.horizon)?;
        let origins = match proto::Origins::try_from(request.origins) {
            Ok(proto::Origins::Rolling) => Origins::Rolling,
            Ok(proto::Origins::Expanding | proto::Origins::Unspecified) => Origins::Expanding,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "`origins` {} is unknown",
                    request.origins
                )));
            }
        };
        let event_dates = parse_event_dates(&request.event_dates)?;
        let series = self.load(request.series).await?;
        let points = series.len();
        let options = BacktestOptions {
            horizon,
            step: if request.step == 0 {
                horizon
            } else {
                request.step as usize
            },
            window: if request.window == 0 {
                default_window(series.granularity)
            } else {
                request.window as usize
            },
            origins,
            level: level_or_default(request.level),
            event_dates,
        };

        let report = tokio::task::spawn_blocking(move || backtest(&series, &options))
            .await
            .map_err(|error| Status::internal(format!("backtest task failed: {error}")))?
            .map_err(forecast_status)?;

        tracing::debug!(points, folds = report.folds, "backtest computed");
        Ok(backtest_response(&report))
    }
}

fn check_horizon(horizon: u32) -> Result<usize, Status> {
    if horizon == 0 || horizon > MAX_HORIZON {
        return Err(Status::invalid_argument(format!(
            "`horizon` must be between 1 and {MAX_HORIZON} buckets, got {horizon}"
        )));
    }
    Ok(horizon as usize)
}

fn level_or_default(level: f64) -> f64 {
    if level == 0.0 { DEFAULT_LEVEL } else { level }
}

fn parse_event_dates(dates: &[String]) -> Result<EventDates, Status> {
    let parsed: Result<Vec<NaiveDate>, Status> = dates
        .iter()
        .map(|text| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| Status::invalid_argument(format!("`event_dates` entry `{text}` is not a YYYY-MM-DD date")))
        })
        .collect();
    Ok(EventDates::new(parsed?))
}

fn series_query(
    query: proto::MetricQuery,
    granularity: Granularity,
    now: DateTime<Utc>,
) -> Result<SeriesQuery, Status> {
    let metric = MetricDefinition::by_name(&query.metric)
        .map_err(|error| Status::invalid_argument(format!("`metric`: {error}")))?;
    let time = |field: &str, milliseconds: i64| {
        DateTime::from_timestamp_millis(milliseconds)
            .ok_or_else(|| Status::invalid_argument(format!("`{field}` is out of range")))
    };

    let to = match query.to_ms {
        0 => SeriesQuery::default_end(granularity, now),
        milliseconds => time("to_ms", milliseconds)?,
    };
    let from = match query.from_ms {
        0 => to - SeriesQuery::default_lookback(granularity),
        milliseconds => time("from_ms", milliseconds)?,
    };
    Ok(SeriesQuery {
        metric,
        granularity,
        slice: query
            .slice
            .into_iter()
            .map(|filter| (filter.name, filter.value))
            .collect(),
        from,
        to,
    })
}

fn load_status(error: LoadError) -> Status {
    match &error {
        LoadError::InvalidQuery(_) => Status::invalid_argument(error.to_string()),
        LoadError::NoEvents(_) => Status::not_found(error.to_string()),
        LoadError::TimedOut(_) => Status::deadline_exceeded(error.to_string()),
        LoadError::ClickHouse(_) => {
            tracing::warn!(%error, "series query failed");
            Status::unavailable(error.to_string())
        }
    }
}

fn forecast_status(error: ForecastError) -> Status {
    match error {
        ForecastError::Model(_) => {
            tracing::warn!(%error, "model fit failed");
            Status::internal(error.to_string())
        }
        ForecastError::NotEnoughHistory { .. } | ForecastError::NoBacktestOrigin { .. } => {
            Status::failed_precondition(error.to_string())
        }
        _ => Status::invalid_argument(error.to_string()),
    }
}

fn forecast_response(result: &ForecastResult) -> proto::ForecastResponse {
    proto::ForecastResponse {
        points: result
            .steps
            .iter()
            .map(|step| proto::ForecastPoint {
                time_ms: step.time.timestamp_millis(),
                point: step.point,
                lower: step.lower,
                upper: step.upper,
                flagged: step.flagged,
            })
            .collect(),
        periods: result.periods.iter().map(|&period| period as u32).collect(),
        training_points: result.training_points as u32,
        masked_points: result.masked_points as u32,
        event_effect: result.event_effect,
        interval_scale: result.interval_scale,
        level: result.level,
    }
}

fn backtest_response(report: &BacktestReport) -> proto::BacktestResponse {
    proto::BacktestResponse {
        folds: report.folds as u32,
        model: Some(metrics_message(&report.model)),
        baseline: Some(metrics_message(&report.baseline)),
        baseline_period: report.baseline_period as u32,
        interval_coverage: report.interval_coverage,
        window: report.window as u32,
        horizon: report.horizon as u32,
        step: report.step as u32,
        origins: match report.origins {
            Origins::Rolling => proto::Origins::Rolling,
            Origins::Expanding => proto::Origins::Expanding,
        } as i32,
    }
}

fn metrics_message(metrics: &ErrorMetrics) -> proto::ErrorMetrics {
    proto::ErrorMetrics {
        count: metrics.count as u32,
        mae: metrics.mae,
        rmse: metrics.rmse,
        mape: metrics.mape,
        mape_skipped: metrics.mape_skipped as u32,
        smape: metrics.smape,
        wmape: metrics.wmape,
    }
}

/// Serves the forecast API, health and reflection on `listener` until
/// `shutdown` fires; in-flight requests finish first. Calls `on_serving`
/// once the server is about to accept connections.
pub async fn serve(
    listener: TcpListener,
    service: ForecastService,
    shutdown: CancellationToken,
    on_serving: impl FnOnce(),
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ForecastServer<ForecastService>>().await;

    // Both reflection versions: grpcurl before 1.9 and many client libraries
    // still speak only v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(seismo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(seismo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let stopping = async move {
        shutdown.cancelled().await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        health_reporter
            .set_not_serving::<ForecastServer<ForecastService>>()
            .await;
    };

    on_serving();
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(ForecastServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopping)
        .await?;
    Ok(())
}
