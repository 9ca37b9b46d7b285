//! HTTP helpers for the services' admin endpoints (`/metrics`, `/healthz`,
//! `/readyz`), over plain TCP so the tests need no HTTP client.

use std::net::SocketAddr;

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wait::wait_for;

/// Sends `GET path` over HTTP/1.1 and returns the status code and body.
pub async fn get(address: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to the admin server at {address}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;

    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("response to GET {path} has no status line: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Returns the value of `series` (name with labels, as rendered) in a
/// Prometheus text exposition.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
}

/// Returns the `/metrics` exposition, failing unless the status is 200.
pub async fn scrape(address: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = get(address, "/metrics").await?;
    ensure!(status == 200, "/metrics responded {status}: {body}");
    Ok(body)
}

/// Waits until `/readyz` responds `status` with a body containing `text`.
pub async fn wait_for_readyz(address: SocketAddr, status: u16, text: &str) -> anyhow::Result<()> {
    wait_for(&format!("/readyz {status} containing {text:?}"), async || {
        let (actual, body) = get(address, "/readyz").await?;
        Ok((actual == status && body.contains(text), format!("{actual} {body}")))
    })
    .await
}
