//! gRPC client helpers.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::Channel;

/// Opens a plaintext gRPC channel to a server the test started.
///
/// # Panics
/// If the server does not accept the connection within 5 s.
pub async fn connect(address: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .expect("a socket address makes a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_or_else(|error| panic!("gRPC server at {address} did not accept a connection: {error}"))
}
