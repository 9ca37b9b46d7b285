//! A TCP forwarder on 127.0.0.1 placed in front of a real server, so a test
//! can make that server unreachable and reachable again.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A TCP forwarder on 127.0.0.1 that can be stopped and started again on
/// the same port, to make ClickHouse unreachable and reachable again.
pub struct TcpProxy {
    port: u16,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts forwarding from a free port of 127.0.0.1 to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        Ok(TcpProxy {
            port,
            target,
            task: Some(tokio::spawn(forward(listener, target))),
        })
    }

    /// `http://127.0.0.1:<port>` of the proxy.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// True between [`TcpProxy::start`] or [`TcpProxy::restart`] and [`TcpProxy::stop`].
    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Closes the listener and every forwarded connection.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Waiting for the aborted task makes sure its sockets are closed.
            let _ = task.await;
        }
    }

    /// Listens again on the same port after [`TcpProxy::stop`]; does nothing
    /// while the proxy runs.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .with_context(|| format!("binding the proxy port {} again", self.port))?;
        self.task = Some(tokio::spawn(forward(listener, self.target)));
        Ok(())
    }
}

/// Accepts connections and copies bytes both ways to `target`. Aborting
/// this task drops the `JoinSet`, which aborts every connection task.
async fn forward(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _peer)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Socket address of an `http://IP:port` ClickHouse URL.
pub fn clickhouse_socket_address(url: &str) -> anyhow::Result<SocketAddr> {
    let authority = url
        .strip_prefix("http://")
        .with_context(|| format!("ClickHouse URL {url:?} is not http://host:port"))?
        .trim_end_matches('/');
    authority
        .parse()
        .with_context(|| format!("ClickHouse URL {url:?} does not name an IP address and port"))
}
