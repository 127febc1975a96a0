//! The `[server]` section of the config file: what `audience serve` listens
//! on, its users, TLS files and limits. Defaults are checked in
//! (`config/server.toml`), then the file, then `AUDIENCE_SERVER_*` variables.

use std::time::Duration;

use audience_engine::{EngineError, parse_duration};
use serde::Deserialize;

/// The checked-in defaults of `[server]`, every key documented.
pub const SERVER_DEFAULTS: &str = include_str!("../config/server.toml");

/// Settings of the Flight SQL server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on.
    pub addr: String,
    /// Longest a query may run, e.g. `"60s"`.
    pub query_timeout: String,
    /// Queries executing at once.
    pub max_concurrent_queries: usize,
    /// Queries that may wait for a slot before the server answers "busy".
    pub max_queued_queries: usize,
    /// Idle lifetime of prepared statements and unredeemed tickets.
    pub handle_ttl: String,
    /// Lifetime of a bearer token.
    pub token_ttl: String,
    /// How long running queries may take to finish after a shutdown signal.
    pub shutdown_timeout: String,
    /// Bytes of finished results kept for repeated queries, e.g. `"64MB"`; `"0"`: none.
    pub result_cache: String,
    /// Serve plaintext on a non-loopback address.
    pub plaintext: bool,
    /// The users who may connect.
    pub users: Vec<UserConfig>,
    /// TLS files.
    pub tls: TlsConfig,
    /// Export permissions.
    pub export: ExportConfig,
}

/// One `[[server.users]]` entry.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// PHC-format password hash from `audience hash-password`.
    pub password_hash: String,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"***")
            .finish()
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only queries.
    Analyst,
    /// Queries and `COPY … TO` under the allowed export prefixes.
    Marketer,
    /// Everything, DDL and `SET` included.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Analyst => "analyst",
            Role::Marketer => "marketer",
            Role::Admin => "admin",
        })
    }
}

/// `[server.tls]`: PEM files, both set or both empty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain file.
    pub cert: String,
    /// Private key file.
    pub key: String,
}

impl TlsConfig {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty()
    }
}

/// `[server.export]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Path prefixes marketers may export under.
    pub allowed_prefixes: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::from_toml("").expect("server defaults parse") // ok: a unit test parses them
    }
}

impl ServerConfig {
    /// The defaults overlaid with the `[server]` section of `text` (a whole
    /// config file; the engine reads its other sections).
    pub fn from_toml(text: &str) -> Result<Self, EngineError> {
        let mut table = audience_engine::layered_toml(SERVER_DEFAULTS, text)?;
        let server = table
            .remove("server")
            .ok_or_else(|| EngineError::Internal("server defaults lack [server]".into()))?;
        server
            .try_into()
            .map_err(|e: toml::de::Error| EngineError::Config(format!("[server]: {e}")))
    }

    /// The defaults overlaid with the `[server]` section of the file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, EngineError> {
        let text = audience_engine::read_config_file(path)?;
        Self::from_toml(&text)
            .map_err(|e| EngineError::Config(format!("config file {}: {e}", path.display())))
    }

    /// Applies `AUDIENCE_SERVER_ADDR`, `AUDIENCE_SERVER_QUERY_TIMEOUT`,
    /// `AUDIENCE_SERVER_MAX_CONCURRENT_QUERIES`, `AUDIENCE_SERVER_MAX_QUEUED_QUERIES`,
    /// `AUDIENCE_SERVER_RESULT_CACHE`, `AUDIENCE_SERVER_TLS_CERT` and
    /// `AUDIENCE_SERVER_TLS_KEY` from `vars`.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), EngineError> {
        let number = |key: &str, value: &str| {
            value.trim().parse().map_err(|_| {
                EngineError::Config(format!("{key} must be a whole number, got '{value}'"))
            })
        };
        for (key, value) in vars {
            match key.strip_prefix("AUDIENCE_SERVER_").unwrap_or("") {
                "ADDR" => self.addr = value,
                "QUERY_TIMEOUT" => self.query_timeout = value,
                "MAX_CONCURRENT_QUERIES" => self.max_concurrent_queries = number(&key, &value)?,
                "MAX_QUEUED_QUERIES" => self.max_queued_queries = number(&key, &value)?,
                "RESULT_CACHE" => self.result_cache = value,
                "TLS_CERT" => self.tls.cert = value,
                "TLS_KEY" => self.tls.key = value,
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks what the TOML types alone do not.
    pub fn validate(&self) -> Result<(), EngineError> {
        for (key, value) in [
            ("query_timeout", &self.query_timeout),
            ("handle_ttl", &self.handle_ttl),
            ("token_ttl", &self.token_ttl),
            ("shutdown_timeout", &self.shutdown_timeout),
        ] {
            parse_duration(value).map_err(|e| EngineError::Config(format!("server.{key}: {e}")))?;
        }
        self.result_cache_bytes()?;
        if self.max_concurrent_queries == 0 {
            return Err(EngineError::Config(
                "server.max_concurrent_queries must be at least 1".into(),
            ));
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            return Err(EngineError::Config(
                "server.tls needs both cert and key (PEM files), or neither".into(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for user in &self.users {
            if !names.insert(&user.name) {
                return Err(EngineError::Config(format!(
                    "server.users: '{}' is listed twice",
                    user.name
                )));
            }
            if !user.password_hash.starts_with('$') {
                return Err(EngineError::Config(format!(
                    "server.users '{}': password_hash must be a PHC string made by `audience hash-password`",
                    user.name
                )));
            }
        }
        Ok(())
    }

    /// The query timeout.
    pub fn query_timeout(&self) -> Duration {
        parse_duration(&self.query_timeout).unwrap_or(Duration::from_secs(60))
    }

    /// Bytes of the result cache (0: off).
    pub fn result_cache_bytes(&self) -> Result<usize, EngineError> {
        match self.result_cache.trim() {
            "0" => Ok(0),
            text => audience_engine::parse_size(text).ok_or_else(|| {
                EngineError::Config(format!(
                    "server.result_cache must be a size like \"64MB\", or \"0\" for none; got \"{text}\""
                ))
            }),
        }
    }

    /// The idle lifetime of handles.
    pub fn handle_ttl(&self) -> Duration {
        parse_duration(&self.handle_ttl).unwrap_or(Duration::from_secs(600))
    }

    /// The lifetime of bearer tokens.
    pub fn token_ttl(&self) -> Duration {
        parse_duration(&self.token_ttl).unwrap_or(Duration::from_secs(12 * 3600))
    }

    /// How long running queries may take to finish after a shutdown signal.
    pub fn shutdown_timeout(&self) -> Duration {
        parse_duration(&self.shutdown_timeout).unwrap_or(Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_the_files_server_section_then_env() -> Result<(), EngineError> {
        let defaults = ServerConfig::default();
        assert_eq!(defaults.addr, "127.0.0.1:50051");
        defaults.validate()?;
        let text = "[engine]\nbatch_size = 7\n[server]\nmax_concurrent_queries = 2\n";
        let mut config = ServerConfig::from_toml(text)?;
        assert_eq!(config.max_concurrent_queries, 2);
        assert_eq!(config.query_timeout, "60s");
        config.apply_env([("AUDIENCE_SERVER_QUERY_TIMEOUT".into(), "5s".into())])?;
        assert_eq!(config.query_timeout(), Duration::from_secs(5));
        assert_eq!(config.result_cache_bytes()?, 64_000_000);
        config.apply_env([("AUDIENCE_SERVER_RESULT_CACHE".into(), "0".into())])?;
        assert_eq!(config.result_cache_bytes()?, 0);
        config.result_cache = "8XB".into();
        let e = config.validate().unwrap_err().to_string();
        assert!(
            e.contains("server.result_cache") && e.contains("8XB"),
            "{e}"
        );
        let e = ServerConfig::from_toml("[server]\nmax_concurent_queries = 2\n").unwrap_err();
        assert!(e.to_string().contains("max_concurent_queries"), "{e}");
        Ok(())
    }
}
