//! The admin HTTP server shared by the services, over real TCP.

use std::net::SocketAddr;

use seismo_telemetry::{Readiness, install_metrics_recorder, start_admin_server};
use tokio_util::sync::CancellationToken;

async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();

    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn admin_server_reports_health_and_metrics() {
    let shutdown = CancellationToken::new();
    let readiness = Readiness::default();
    let server = start_admin_server(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        install_metrics_recorder(),
        readiness.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let address = server.local_addr();

    let (status, _) = get(address, "/healthz").await;
    assert_eq!(status, 200);

    let (status, body) = get(address, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("starting"), "{body}");

    readiness.set_not_ready("ClickHouse unreachable");
    let (_, body) = get(address, "/readyz").await;
    assert!(body.contains("ClickHouse unreachable"), "{body}");

    readiness.set_ready();
    let (status, _) = get(address, "/readyz").await;
    assert_eq!(status, 200);

    metrics::counter!("seismo_test_admin_requests_total").increment(3);
    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("seismo_test_admin_requests_total 3"), "{body}");

    shutdown.cancel();
    server.wait().await.unwrap();
}
