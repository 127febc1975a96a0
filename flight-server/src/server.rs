//! The transport: gRPC over TCP (TLS from PEM files, or plaintext where
//! allowed), serving [`FlightSqlServer`] until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use audience_engine::EngineError;

use crate::config::ServerConfig;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::query_engine::SharedEngine;
use crate::service::FlightSqlServer;

/// Largest message a client may send (bound parameters, DoPut data).
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Serves Flight SQL on `listener` until `shutdown` completes; in-flight
/// requests then finish (the caller bounds how long it waits).
pub async fn serve(
    engine: SharedEngine,
    config: &ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError> {
    config.validate()?;
    let addr = listener
        .local_addr()
        .map_err(|e| EngineError::Invalid(format!("cannot read the listening address: {e}")))?;
    check_transport(config, addr)?;
    let mut builder = Server::builder();
    if config.tls.enabled() {
        audience_engine::install_tls_provider();
        builder = builder
            .tls_config(tls_config(config)?)
            .map_err(|e| EngineError::Config(format!("server.tls: {e}")))?;
    }
    let service = FlightServiceServer::new(FlightSqlServer::new(Arc::clone(&engine), config)?)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    builder
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| EngineError::Internal(format!("the Flight SQL server stopped: {e}")))
}

/// Refuses plaintext on a non-loopback address unless `server.plaintext` allows it.
pub fn check_transport(config: &ServerConfig, addr: SocketAddr) -> Result<(), EngineError> {
    if config.tls.enabled() || config.plaintext || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(EngineError::Config(format!(
        "refusing to serve plaintext on {addr}, which is not a loopback address: configure \
         [server.tls] cert and key, or set server.plaintext = true"
    )))
}

fn tls_config(config: &ServerConfig) -> Result<ServerTlsConfig, EngineError> {
    let read = |what: &str, path: &str| {
        std::fs::read(path)
            .map_err(|e| EngineError::Config(format!("server.tls.{what}: cannot read {path}: {e}")))
    };
    let cert = read("cert", &config.tls.cert)?;
    let key = read("key", &config.tls.key)?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}
