//! Forecasts and backtests of metrics stored in the real ClickHouse server:
//! four weeks of hourly events with daily and weekly cycles, loaded through
//! the SQL of seismo-forecast, through its command-line layer and over gRPC.

use std::fmt::Write;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Parser;
use seismo_forecast::Granularity;
use seismo_forecast::cli::{Cli, Command};
use seismo_forecast::clickhouse_source::{ClickHouseSettings, load_series};
use seismo_forecast::commands::{run_backtest, run_forecast};
use seismo_forecast::metric_query::{MetricDefinition, SeriesQuery};
use seismo_forecast::service::{ServiceConfig, start};
use seismo_forecast::synthetic::SeasonalShape;
use seismo_proto::forecast::v1 as proto;
use seismo_proto::forecast::v1::forecast_client::ForecastClient;
use seismo_telemetry::{Readiness, install_metrics_recorder};
use seismo_tests::clickhouse::TestDatabase;
use tokio_util::sync::CancellationToken;

/// Hours of history: four weeks.
const HOURS: usize = 672;

/// Start of the history, a Monday: 2026-11-02T00:00:00Z.
const START_EPOCH: i64 = 1_793_577_600;

/// Distinct users per hour at most: event i of an hour has user i % 40.
const USERS: u64 = 40;

fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(START_EPOCH, 0).unwrap()
}

fn end_time() -> DateTime<Utc> {
    start_time() + chrono::TimeDelta::hours(HOURS as i64)
}

/// Views per hour: daily and weekly cycles, a slight trend and noise.
fn hourly_views() -> Vec<u64> {
    let shape = SeasonalShape {
        level: 60.0,
        slope: 0.02,
        seasons: vec![(24, 30.0), (168, 10.0)],
        noise: 4.0,
    };
    shape
        .generate(HOURS, 11)
        .into_iter()
        .map(|value| value.round().max(0.0) as u64)
        .collect()
}

/// Creates the events table from the deploy DDL and inserts `views[h]`
/// views in hour h, one like per ten views (events 0, 10, 20, … of the
/// hour) and every third event on iOS, the rest on Android.
async fn fill_events(database: &TestDatabase, views: &[u64]) -> anyhow::Result<()> {
    let ddl = include_str!("../../deploy/clickhouse/events-before-19.3.sql")
        .split(';')
        .nth(1)
        .context("the deploy file has no CREATE TABLE statement")?
        .replace("`seismo`.", &format!("`{}`.", database.name()));
    database.client().query(&ddl).execute().await?;

    let mut pairs = String::new();
    for (hour, count) in views.iter().enumerate() {
        let separator = if hour == 0 { "" } else { ", " };
        write!(pairs, "{separator}({hour}, {count})")?;
    }
    for (event, condition, offset) in [("view", "1", 0), ("like", "i % 10 = 0", 1)] {
        let sql = format!(
            "INSERT INTO `{database}`.events \
             (event_time, event_time_ms, event, user_id, os, extra, kafka_partition, kafka_offset) \
             SELECT toDateTime(toUInt32({START_EPOCH} + h * 3600 + (i * 53) % 3600)), 0, '{event}', \
                    toString(i % {USERS}), if(i % 3 = 0, 'iOS', 'Android'), '', 0, h * 1000000 + i * 2 + {offset} \
             FROM (SELECT t.1 AS h, t.2 AS c FROM (SELECT arrayJoin([{pairs}]) AS t)) \
             ARRAY JOIN range(c) AS i WHERE {condition}",
            database = database.name()
        );
        database
            .client()
            .query(&sql)
            .execute()
            .await
            .with_context(|| format!("inserting {event} events"))?;
    }
    Ok(())
}

fn settings(database: &TestDatabase) -> ClickHouseSettings {
    ClickHouseSettings {
        url: database.url(),
        user: None,
        password: None,
        database: database.name().to_string(),
        table: "events".to_string(),
        timeout: Duration::from_secs(30),
    }
}

fn query(metric: &str, slice: &[(&str, &str)]) -> SeriesQuery {
    SeriesQuery {
        metric: MetricDefinition::by_name(metric).unwrap(),
        granularity: Granularity::Hour,
        slice: slice
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        from: start_time(),
        to: end_time(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_series_load_from_clickhouse() -> anyhow::Result<()> {
    let database = TestDatabase::create("forecast_series").await?;
    let views = hourly_views();
    fill_events(&database, &views).await?;
    let settings = settings(&database);

    let loaded = load_series(&settings, &query("views", &[])).await?;
    let expected: Vec<f64> = views.iter().map(|&count| count as f64).collect();
    assert_eq!(loaded.start, start_time());
    assert_eq!(loaded.values, expected);

    let ios = load_series(&settings, &query("views", &[("os", "iOS")])).await?;
    let expected_ios: Vec<f64> = views.iter().map(|&count| count.div_ceil(3) as f64).collect();
    assert_eq!(ios.values, expected_ios);

    let users = load_series(&settings, &query("active_users", &[])).await?;
    let expected_users: Vec<f64> = views.iter().map(|&count| count.min(USERS) as f64).collect();
    assert_eq!(users.values, expected_users);

    let ctr = load_series(&settings, &query("ctr", &[])).await?;
    for (hour, (&rate, &count)) in ctr.values.iter().zip(&views).enumerate() {
        if count > 0 {
            let expected_rate = count.div_ceil(10) as f64 / count as f64;
            assert!(
                (rate - expected_rate).abs() < 1e-12,
                "hour {hour}: {rate} vs {expected_rate}"
            );
        }
    }

    let missing = load_series(&settings, &query("count:sign_up", &[])).await.unwrap_err();
    assert!(
        missing.to_string().contains("no events for `sign_up` events (total)"),
        "{missing}"
    );

    let missing_slice = load_series(&settings, &query("views", &[("os", "Symbian")]))
        .await
        .unwrap_err();
    assert!(missing_slice.to_string().contains("(os=Symbian)"), "{missing_slice}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_and_backtest_commands() -> anyhow::Result<()> {
    let database = TestDatabase::create("forecast_commands").await?;
    fill_events(&database, &hourly_views()).await?;
    let common = [
        "--metric",
        "views",
        "--granularity",
        "hour",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-30",
        "--clickhouse-url",
        &database.url(),
        "--database",
        database.name(),
    ];

    let forecast_args = [
        "seismo-forecast",
        "forecast",
        "--horizon",
        "48",
        "--level",
        "0.9",
        "--format",
        "csv",
    ];
    let cli = Cli::try_parse_from(forecast_args.iter().chain(&common))?;
    let Command::Forecast(args) = cli.command else {
        panic!("forecast parsed as another command");
    };
    let csv = run_forecast(args).await?;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 49, "{csv}");
    assert_eq!(lines[0], "time,point,lower,upper,flagged");
    assert!(lines[1].starts_with("2026-11-30T00:00:00+00:00,"), "{}", lines[1]);
    for line in &lines[1..] {
        let fields: Vec<f64> = line
            .split(',')
            .skip(1)
            .take(3)
            .map(|field| field.parse().unwrap())
            .collect();
        assert!(fields[1] <= fields[0], "lower above point: {line}");
        assert!(fields[0] <= fields[2], "point above upper: {line}");
    }

    let backtest_args = [
        "seismo-forecast",
        "backtest",
        "--horizon",
        "24",
        "--origins",
        "rolling",
        "--format",
        "json",
    ];
    let cli = Cli::try_parse_from(backtest_args.iter().chain(&common))?;
    let Command::Backtest(args) = cli.command else {
        panic!("backtest parsed as another command");
    };
    let json: serde_json::Value = serde_json::from_str(&run_backtest(args).await?)?;
    // Default window 504: origins every 24 hours from hour 504 to 648.
    assert_eq!(json["folds"], 7);
    assert_eq!(json["origins"], "rolling");
    let model_mae = json["mstl_ets"]["mae"].as_f64().unwrap();
    let baseline_mae = json["seasonal_naive"]["mae"].as_f64().unwrap();
    assert!(model_mae < baseline_mae, "{json:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_grpc_round_trip() -> anyhow::Result<()> {
    let database = TestDatabase::create("forecast_grpc").await?;
    fill_events(&database, &hourly_views()).await?;
    let metrics = install_metrics_recorder();
    let shutdown = CancellationToken::new();
    let readiness = Readiness::default();
    let config = ServiceConfig {
        listen: "127.0.0.1:0".parse()?,
        clickhouse: settings(&database),
    };
    let running = start(config, readiness.clone(), shutdown.clone()).await?;
    let mut client = ForecastClient::connect(format!("http://{}", running.local_addr())).await?;
    let series = |metric: &str| proto::SeriesSource {
        granularity: proto::Granularity::Hour as i32,
        source: Some(proto::series_source::Source::Query(proto::MetricQuery {
            metric: metric.to_string(),
            slice: vec![proto::SliceFilter {
                name: "os".to_string(),
                value: "Android".to_string(),
            }],
            from_ms: start_time().timestamp_millis(),
            to_ms: end_time().timestamp_millis(),
        })),
    };

    let forecast = client
        .forecast(proto::ForecastRequest {
            series: Some(series("views")),
            horizon: 24,
            level: 0.0,
            event_dates: vec!["2026-11-30".to_string()],
        })
        .await?
        .into_inner();
    assert_eq!(forecast.points.len(), 24);
    assert_eq!(forecast.points[0].time_ms, end_time().timestamp_millis());
    assert!(forecast.points.iter().all(|point| point.flagged));
    assert_eq!(forecast.periods, vec![24, 168]);
    assert_eq!(forecast.training_points, HOURS as u32);
    assert_eq!(forecast.level, 0.95);
    // No past flagged day, so no effect to apply.
    assert_eq!(forecast.event_effect, None);
    assert!(readiness.status().is_ok());

    let backtest = client
        .backtest(proto::BacktestRequest {
            series: Some(series("views")),
            horizon: 24,
            step: 48,
            window: 0,
            origins: proto::Origins::Expanding as i32,
            level: 0.9,
            event_dates: Vec::new(),
        })
        .await?
        .into_inner();
    // Default window 504: origins at hours 504, 552, 600 and 648.
    assert_eq!(backtest.folds, 4);
    assert_eq!(backtest.model.unwrap().count, 4 * 24);
    assert_eq!(backtest.baseline_period, 168);

    let unknown = client
        .forecast(proto::ForecastRequest {
            series: Some(series("count:sign_up")),
            horizon: 24,
            level: 0.9,
            event_dates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown}");
    let invalid = client
        .forecast(proto::ForecastRequest {
            series: Some(series("views")),
            horizon: 0,
            level: 0.9,
            event_dates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument, "{invalid}");

    let inline = |values: Vec<f64>| proto::SeriesSource {
        granularity: proto::Granularity::Day as i32,
        source: Some(proto::series_source::Source::Inline(proto::InlineSeries {
            start_ms: start_time().timestamp_millis(),
            values,
        })),
    };
    let weekly: Vec<f64> = (0..56)
        .map(|day| [5.0, 6.0, 7.0, 8.0, 9.0, 3.0, 2.0][day % 7])
        .collect();
    let daily = client
        .forecast(proto::ForecastRequest {
            series: Some(inline(weekly)),
            horizon: 7,
            level: 0.8,
            event_dates: Vec::new(),
        })
        .await?
        .into_inner();
    assert_eq!(daily.periods, vec![7]);
    // 56 days from Monday 2026-11-02: the forecast starts on Monday 2026-12-28.
    assert_eq!(
        daily.points[0].time_ms,
        (start_time() + chrono::TimeDelta::days(56)).timestamp_millis()
    );
    assert!((daily.points[0].point - 5.0).abs() < 0.5, "{:?}", daily.points[0]);
    let short = client
        .forecast(proto::ForecastRequest {
            series: Some(inline(vec![1.0; 10])),
            horizon: 7,
            level: 0.8,
            event_dates: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(short.code(), tonic::Code::FailedPrecondition, "{short}");

    let rendered = metrics.render();
    for expected in [
        r#"seismo_forecast_requests_total{rpc="forecast",code="Ok"} 2"#,
        r#"seismo_forecast_requests_total{rpc="forecast",code="NotFound"} 1"#,
        r#"seismo_forecast_requests_total{rpc="forecast",code="InvalidArgument"} 1"#,
        r#"seismo_forecast_requests_total{rpc="forecast",code="FailedPrecondition"} 1"#,
        r#"seismo_forecast_requests_total{rpc="backtest",code="Ok"} 1"#,
        r#"seismo_forecast_request_duration_seconds_count{rpc="forecast"} 5"#,
    ] {
        assert!(rendered.contains(expected), "missing {expected} in:\n{rendered}");
    }

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.wait()).await??;
    assert!(readiness.status().is_err());
    Ok(())
}
