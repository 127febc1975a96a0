//! The Arrow Flight SQL service of Audience: BI tools (JDBC), Python (ADBC)
//! and dashboards connect here. Layers: [`serve`] (transport: TCP, TLS) →
//! [`FlightSqlServer`] (the protocol: statements, prepared statements,
//! metadata, auth, limits) → [`QueryEngine`] (the engine, one narrow trait).

mod access;
mod auth;
mod cancellation;
mod catalog;
mod config;
mod execution;
mod flight_schema;
mod limits;
mod metadata;
mod placeholders;
mod prepared;
mod query_engine;
mod query_runtime;
mod query_stream;
mod result_cache;
mod server;
mod service;
mod session;
mod statements;
mod status;
mod ttl_map;

pub use auth::hash_password;
pub use config::{ExportConfig, Role, SERVER_DEFAULTS, ServerConfig, TlsConfig, UserConfig};
pub use query_engine::{QueryEngine, SharedEngine, TableInfo};
pub use server::{check_transport, serve};
pub use service::FlightSqlServer;
pub use ttl_map::random_handle;
