//! The `[server]` section of the configuration: what `audience serve` listens on,
//! its users, TLS files and limits.

use std::time::Duration;

use serde::Deserialize;

use crate::error::EngineError;

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

impl ServerConfig {
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

/// Parses `"250ms"`, `"60s"`, `"5m"`, `"12h"` or `"1d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration like \"60s\" or \"500ms\", got '{text}'"))?;
    let seconds = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' in '{text}'; use ms, s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(n * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 weeks").unwrap_err().contains("weeks"));
    }
}
