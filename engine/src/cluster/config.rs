//! Where queries run (`engine.remote`) and the `[cluster]` section: the
//! addresses of `audience scheduler` and `audience executor`.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::error::EngineError;

/// Where a session's queries run (`engine.remote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionMode {
    /// In this process, on DataFusion (`""`).
    Local,
    /// On a Ballista scheduler and executor started inside this process (`"standalone"`).
    Standalone,
    /// On a Ballista cluster: the scheduler's `df://host:port` URL.
    Remote(String),
}

impl ExecutionMode {
    /// Parses `engine.remote`.
    pub fn parse(text: &str) -> Result<Self, EngineError> {
        let text = text.trim();
        match text {
            "" | "local" => return Ok(ExecutionMode::Local),
            "standalone" => return Ok(ExecutionMode::Standalone),
            _ => {}
        }
        let valid = text
            .strip_prefix("df://")
            .is_some_and(|address| host_port("engine.remote", address).is_ok());
        if !valid {
            return Err(EngineError::Config(format!(
                "engine.remote (--remote) must be \"\" (local), \"standalone\" or \
                 \"df://host:port\" (a Ballista scheduler), got \"{text}\""
            )));
        }
        Ok(ExecutionMode::Remote(text.to_string()))
    }
}

/// The `[cluster]` section: addresses of `audience scheduler` and `audience executor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The scheduler's gRPC listen address.
    pub scheduler_addr: String,
    /// The executor's Arrow Flight (shuffle data) listen address.
    pub executor_addr: String,
    /// The executor's gRPC port, on the host of `executor_addr`.
    pub executor_grpc_port: u16,
    /// The scheduler an executor registers with (`host:port`).
    pub scheduler: String,
    /// Tasks an executor runs at once; 0 means one per core.
    pub executor_tasks: usize,
    /// Folder for an executor's shuffle files; empty means a temporary folder.
    pub executor_work_dir: String,
}

impl ClusterConfig {
    /// Checks the addresses.
    pub fn validate(&self) -> Result<(), EngineError> {
        socket_addr("cluster.scheduler_addr", &self.scheduler_addr)?;
        socket_addr("cluster.executor_addr", &self.executor_addr)?;
        host_port("cluster.scheduler", &self.scheduler)?;
        Ok(())
    }
}

pub(super) fn socket_addr(key: &str, text: &str) -> Result<SocketAddr, EngineError> {
    text.parse().map_err(|_| {
        EngineError::Config(format!(
            "{key} must be an IP address and port like 127.0.0.1:50050, got \"{text}\""
        ))
    })
}

pub(super) fn host_port(key: &str, text: &str) -> Result<(String, u16), EngineError> {
    text.rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse().ok()?)))
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| {
            EngineError::Config(format!(
                "{key} must be host:port like 127.0.0.1:50050, got \"{text}\""
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_bad_ones_are_named() {
        assert_eq!(ExecutionMode::parse("").unwrap(), ExecutionMode::Local);
        assert_eq!(
            ExecutionMode::parse("standalone").unwrap(),
            ExecutionMode::Standalone
        );
        assert_eq!(
            ExecutionMode::parse("df://10.0.0.5:50050").unwrap(),
            ExecutionMode::Remote("df://10.0.0.5:50050".into())
        );
        for bad in ["df://host", "http://h:1", "df://:50050", "cluster"] {
            let e = ExecutionMode::parse(bad).unwrap_err().to_string();
            assert!(e.contains("df://host:port") && e.contains(bad), "{e}");
        }
    }
}
