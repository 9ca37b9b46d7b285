//! `seismo-experiments serve` as the binary runs it, started in-process:
//! gRPC health and reflection on the gRPC port, and `/metrics`, `/healthz`
//! and `/readyz` on the admin port. ClickHouse is a closed port on
//! 127.0.0.1, or a listener that never responds, so analyses fail with
//! UNAVAILABLE while the service stays ready. The analysis itself is tested
//! in `experiments_grpc.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use seismo_experiments::analysis::AnalysisSettings;
use seismo_experiments::clickhouse_source::EventsTable;
use seismo_experiments::service::{ServiceConfig, start};
use seismo_proto::experiments::v1::AnalyzeAbTestRequest;
use seismo_proto::experiments::v1::experiments_client::ExperimentsClient;
use seismo_tests::admin_http::{get, metric_value, scrape, wait_for_readyz};
use seismo_tests::grpc::connect;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const WAIT: Duration = Duration::from_secs(10);

const SERVICE: &str = "seismo.experiments.v1.Experiments";

/// Services the server lists through reflection: the experiments API alone
/// of the seismo-proto APIs, plus health and reflection.
const LISTED_SERVICES: [&str; 3] = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", SERVICE];

/// Returns an address on 127.0.0.1 that nothing listens on: a port the
/// kernel just handed out and that was closed again.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_health_reflection_admin() {
    let clickhouse = closed_port().await;
    let config = ServiceConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        table: EventsTable {
            url: format!("http://{clickhouse}"),
            user: "default".to_string(),
            password: String::new(),
            database: "experiments_admin".to_string(),
            table: "events".to_string(),
            view_event: "view".to_string(),
            like_event: "like".to_string(),
            query_timeout: Duration::from_secs(60),
        },
        defaults: AnalysisSettings::default(),
    };
    let shutdown = CancellationToken::new();
    let running = start(config, shutdown.clone()).await.unwrap();
    let admin = running.admin_addr();
    let channel = connect(running.local_addr()).await;

    let mut health = HealthClient::new(channel.clone());
    for service in ["", SERVICE] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of {service:?}");
    }

    let mut listed = reflected_services(channel.clone()).await;
    listed.sort();
    assert_eq!(listed, LISTED_SERVICES);
    let mut listed_v1alpha = reflected_services_v1alpha(channel.clone()).await;
    listed_v1alpha.sort();
    assert_eq!(
        listed_v1alpha,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            SERVICE
        ]
    );

    assert_eq!(get(admin, "/healthz").await.unwrap(), (200, "ok\n".to_string()));
    assert_eq!(get(admin, "/readyz").await.unwrap(), (200, "ready\n".to_string()));
    let before = scrape(admin).await.unwrap();
    let ok_series = r#"seismo_experiments_requests_total{rpc="analyze_ab_test",code="Ok"}"#;
    assert_eq!(metric_value(&before, ok_series), Some(0.0), "{before}");

    let unavailable = ExperimentsClient::new(channel.clone())
        .analyze_ab_test(AnalyzeAbTestRequest {
            control_group: "1".to_string(),
            treatment_group: "2".to_string(),
            from_ms: 1_404_172_800_000,
            to_ms: 1_404_259_200_000,
            ..AnalyzeAbTestRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), tonic::Code::Unavailable, "{unavailable}");

    let invalid = ExperimentsClient::new(channel.clone())
        .analyze_ab_test(AnalyzeAbTestRequest::default())
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument, "{invalid}");

    // The shutdown test shares this process's recorder and also fails a
    // request with UNAVAILABLE, so that count is at least 1. Only this test
    // sends invalid requests.
    let after = scrape(admin).await.unwrap();
    let unavailable_series = r#"seismo_experiments_requests_total{rpc="analyze_ab_test",code="Unavailable"}"#;
    let invalid_series = r#"seismo_experiments_requests_total{rpc="analyze_ab_test",code="InvalidArgument"}"#;
    let invalid_duration_series =
        r#"seismo_experiments_request_duration_seconds_count{rpc="analyze_ab_test",code="InvalidArgument"}"#;
    let unavailable_count = metric_value(&after, unavailable_series).unwrap_or(0.0);
    assert!(unavailable_count >= 1.0, "{after}");
    assert_eq!(metric_value(&after, invalid_series), Some(1.0), "{after}");
    assert_eq!(metric_value(&after, invalid_duration_series), Some(1.0), "{after}");
    assert_eq!(metric_value(&after, ok_series), Some(0.0), "{after}");
    // ClickHouse is queried per request, so its outage leaves the service ready.
    assert_eq!(get(admin, "/readyz").await.unwrap(), (200, "ready\n".to_string()));

    shutdown.cancel();
    tokio::time::timeout(WAIT, running.wait())
        .await
        .expect("the service stops in time")
        .unwrap();
    assert!(
        get(admin, "/healthz").await.is_err(),
        "the admin server stops with the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clickhouse_deadline_exceeded() {
    // The kernel accepts the connection into the backlog, and nothing ever
    // responds to the query.
    let clickhouse = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServiceConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        table: EventsTable {
            url: format!("http://{}", clickhouse.local_addr().unwrap()),
            user: "default".to_string(),
            password: String::new(),
            database: "experiments_timeout".to_string(),
            table: "events".to_string(),
            view_event: "view".to_string(),
            like_event: "like".to_string(),
            query_timeout: Duration::from_millis(300),
        },
        defaults: AnalysisSettings::default(),
    };
    let shutdown = CancellationToken::new();
    let running = start(config, shutdown.clone()).await.unwrap();
    let mut client = ExperimentsClient::new(connect(running.local_addr()).await);

    let status = tokio::time::timeout(
        WAIT,
        client.analyze_ab_test(AnalyzeAbTestRequest {
            control_group: "1".to_string(),
            treatment_group: "2".to_string(),
            from_ms: 1_404_172_800_000,
            to_ms: 1_404_259_200_000,
            ..AnalyzeAbTestRequest::default()
        }),
    )
    .await
    .expect("the query timeout ends the request")
    .unwrap_err();

    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert!(status.message().contains("timed out after 300ms"), "{status}");
    shutdown.cancel();
    running.wait().await.unwrap();
}

/// Service names the server lists through gRPC server reflection.
async fn reflected_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.next())
        .await
        .expect("reflection answers in time")
        .expect("reflection sends one response")
        .unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|service| service.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

/// Service names listed through the older v1alpha reflection protocol.
async fn reflected_services_v1alpha(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.next())
        .await
        .expect("reflection answers in time")
        .expect("reflection sends one response")
        .unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|service| service.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_request_in_flight() {
    // A "ClickHouse" that accepts the query's connection and never responds,
    // so the request stays in flight until the test closes the connection.
    let clickhouse = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServiceConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        table: EventsTable {
            url: format!("http://{}", clickhouse.local_addr().unwrap()),
            user: "default".to_string(),
            password: String::new(),
            database: "experiments_shutdown".to_string(),
            table: "events".to_string(),
            view_event: "view".to_string(),
            like_event: "like".to_string(),
            query_timeout: Duration::from_secs(60),
        },
        defaults: AnalysisSettings::default(),
    };
    let shutdown = CancellationToken::new();
    let running = start(config, shutdown.clone()).await.unwrap();
    let admin = running.admin_addr();
    let mut client = ExperimentsClient::new(connect(running.local_addr()).await);
    wait_for_readyz(admin, 200, "ready").await.unwrap();

    let in_flight = tokio::spawn(async move {
        client
            .analyze_ab_test(AnalyzeAbTestRequest {
                control_group: "1".to_string(),
                treatment_group: "2".to_string(),
                from_ms: 1_404_172_800_000,
                to_ms: 1_404_259_200_000,
                ..AnalyzeAbTestRequest::default()
            })
            .await
    });
    let (query_connection, _) = tokio::time::timeout(WAIT, clickhouse.accept())
        .await
        .expect("the service queries ClickHouse")
        .unwrap();

    shutdown.cancel();
    wait_for_readyz(admin, 503, "shutting down").await.unwrap();
    assert!(
        !in_flight.is_finished(),
        "the request ended before ClickHouse responded"
    );

    drop(query_connection);
    let response = tokio::time::timeout(WAIT, in_flight)
        .await
        .expect("the request finishes once ClickHouse closes the connection")
        .unwrap();
    let status = response.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    tokio::time::timeout(WAIT, running.wait())
        .await
        .expect("the service stops after the request in flight")
        .unwrap();
}
