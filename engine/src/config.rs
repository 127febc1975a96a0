//! The engine's typed configuration: checked-in defaults, then a TOML file,
//! then `AUDIENCE_*` environment variables, then command-line flags.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cluster::ClusterConfig;
use crate::error::EngineError;
use crate::storage::{Location, StorageConfig};

/// The checked-in defaults, every key documented.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// Top-level sections of a config file that other parts of Audience read from
/// the same file (the Flight SQL server's `[server]`); the engine leaves them
/// to their owners.
pub const FOREIGN_SECTIONS: [&str; 1] = ["server"];

/// Everything the engine needs to start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Execution settings.
    pub engine: ExecutionConfig,
    /// The dataset folder.
    pub data: DataConfig,
    /// Tables by name, added to (and overriding) those found in the dataset folder.
    #[serde(default)]
    pub tables: BTreeMap<String, TableConfig>,
    /// Object storage (S3) settings.
    pub storage: StorageConfig,
    /// The Ballista scheduler and executor processes.
    pub cluster: ClusterConfig,
}

/// Execution settings of the `[engine]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Memory limit for all queries together: `"8GB"`, `"512MiB"` or `"75%"` of the machine.
    pub memory_limit: String,
    /// Memory limit for each query: a size, a share of the machine, or `"unlimited"`.
    pub query_memory_limit: String,
    /// Parallel partitions per query; 0 means one per core.
    pub target_partitions: usize,
    /// Rows per record batch.
    pub batch_size: usize,
    /// Folder for spill files; empty means the system temp folder.
    pub spill_dir: String,
    /// Disk all queries' spill files may take together: a size, `"unlimited"`,
    /// or `"0"` for no spilling.
    pub spill_limit: String,
    /// Memory for cached Parquet footers and page indexes: a size or a share
    /// of the machine; `"0"` turns the cache off.
    pub metadata_cache: String,
    /// Where queries run: `""` in this process, `"standalone"` on an
    /// in-process Ballista cluster, `"df://host:port"` on a Ballista scheduler.
    pub remote: String,
}

/// The `[data]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A folder (or `s3://` prefix) with one subfolder of Parquet files per
    /// table; empty for none.
    pub dir: String,
}

impl DataConfig {
    /// The dataset's location, if one is set.
    pub fn location(&self) -> Result<Option<Location>, EngineError> {
        match self.dir.as_str() {
            "" => Ok(None),
            dir => Location::parse("the dataset folder", dir).map(Some),
        }
    }
}

/// One table: a location, with an optional declared sort order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TableConfig {
    /// Just a location (path or URL).
    Location(String),
    /// A location and the columns its files are sorted by.
    Detailed {
        /// Path or URL of a Parquet file or a folder of them.
        location: String,
        /// Columns every file is sorted by, ascending.
        #[serde(default)]
        sort_order: Vec<String>,
    },
}

impl TableConfig {
    /// The table's location.
    pub fn location(&self) -> &str {
        match self {
            TableConfig::Location(l) | TableConfig::Detailed { location: l, .. } => l,
        }
    }

    /// The declared sort order, if any.
    pub fn sort_order(&self) -> &[String] {
        match self {
            TableConfig::Location(_) => &[],
            TableConfig::Detailed { sort_order, .. } => sort_order,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        toml::from_str(DEFAULT_CONFIG).expect("default config parses") // ok: a unit test parses it
    }
}

impl EngineConfig {
    /// Defaults overlaid with the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, EngineError> {
        let text = read_config_file(path)?;
        Self::from_toml(&text)
            .map_err(|e| EngineError::Config(format!("config file {}: {e}", path.display())))
    }

    /// Defaults overlaid with the given TOML text; the [`FOREIGN_SECTIONS`]
    /// are left to their owners, any other unknown key is an error.
    pub fn from_toml(text: &str) -> Result<Self, EngineError> {
        let mut merged = layered_toml(DEFAULT_CONFIG, text)?;
        for section in FOREIGN_SECTIONS {
            merged.remove(section);
        }
        merged
            .try_into()
            .map_err(|e: toml::de::Error| EngineError::Config(e.to_string()))
    }

    /// Applies `AUDIENCE_*` variables from `vars`: `AUDIENCE_MEMORY_LIMIT`,
    /// `AUDIENCE_QUERY_MEMORY_LIMIT`, `AUDIENCE_TARGET_PARTITIONS`, `AUDIENCE_BATCH_SIZE`, `AUDIENCE_SPILL_DIR`,
    /// `AUDIENCE_SPILL_LIMIT`, `AUDIENCE_METADATA_CACHE`, `AUDIENCE_REMOTE`, `AUDIENCE_DATA_DIR`, `AUDIENCE_S3_ENDPOINT`,
    /// and `AUDIENCE_TABLE_<NAME>=<location>` (the server reads its own
    /// `AUDIENCE_SERVER_*`).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), EngineError> {
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("AUDIENCE_") else {
                continue;
            };
            match name {
                "MEMORY_LIMIT" => self.engine.memory_limit = value,
                "QUERY_MEMORY_LIMIT" => self.engine.query_memory_limit = value,
                "TARGET_PARTITIONS" => self.engine.target_partitions = parse_number(&key, &value)?,
                "BATCH_SIZE" => self.engine.batch_size = parse_number(&key, &value)?,
                "SPILL_DIR" => self.engine.spill_dir = value,
                "SPILL_LIMIT" => self.engine.spill_limit = value,
                "DATA_DIR" => self.data.dir = value,
                "METADATA_CACHE" => self.engine.metadata_cache = value,
                "S3_ENDPOINT" => self.storage.s3.endpoint = value,
                "REMOTE" => self.engine.remote = value,
                _ => {
                    if let Some(table) = name.strip_prefix("TABLE_") {
                        self.tables
                            .insert(table.to_ascii_lowercase(), TableConfig::Location(value));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks values that TOML types alone do not: sizes and counts.
    pub fn validate(&self) -> Result<(), EngineError> {
        crate::memory::parse_memory_limit(&self.engine.memory_limit, 1)?;
        let query_limit = &self.engine.query_memory_limit;
        let per_query = crate::memory::parse_memory_limit(query_limit, 1).map_err(|_| {
            EngineError::Config(format!(
                "engine.query_memory_limit must be a size like \"1GB\", a share like \"25%\", \
                 or \"unlimited\"; got \"{query_limit}\""
            ))
        })?;
        // executors run a cluster's queries, each under its own memory_limit
        if per_query.is_some() && !self.engine.remote.trim().is_empty() {
            return Err(EngineError::Config(format!(
                "engine.query_memory_limit (\"{query_limit}\") holds for queries run in this \
                 process; with engine.remote set, each executor's engine.memory_limit bounds its \
                 tasks: set query_memory_limit to \"unlimited\""
            )));
        }
        crate::session::metadata_cache_bytes(&self.engine.metadata_cache)?;
        crate::spill::parse_spill_limit(&self.engine.spill_limit)?;
        self.storage.s3.validate()?;
        crate::cluster::ExecutionMode::parse(&self.engine.remote)?;
        self.cluster.validate()?;
        if self.engine.batch_size == 0 {
            return Err(EngineError::Config(
                "engine.batch_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn parse_number(key: &str, value: &str) -> Result<usize, EngineError> {
    value
        .trim()
        .parse()
        .map_err(|_| EngineError::Config(format!("{key} must be a whole number, got '{value}'")))
}

/// The text of the config file at `path`.
pub fn read_config_file(path: &Path) -> Result<String, EngineError> {
    std::fs::read_to_string(path).map_err(|e| {
        EngineError::Config(format!("cannot read config file {}: {e}", path.display()))
    })
}

/// `defaults` (TOML) overlaid with `text`, table by table: how every part of
/// Audience reads its sections of one config file.
pub fn layered_toml(defaults: &str, text: &str) -> Result<toml::Table, EngineError> {
    let mut merged: toml::Table = toml::from_str(defaults)
        .map_err(|e| EngineError::Internal(format!("default config: {e}")))?;
    let overlay: toml::Table =
        toml::from_str(text).map_err(|e| EngineError::Config(e.to_string()))?;
    merge(&mut merged, overlay);
    Ok(merged)
}

/// Overlays `overlay` on `base`, table by table.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() -> Result<(), EngineError> {
        let c = EngineConfig::default();
        assert_eq!(c.engine.memory_limit, "75%");
        assert_eq!(c.engine.batch_size, 8192);
        c.validate()?;
        Ok(())
    }

    #[test]
    fn file_then_env_override_defaults() -> Result<(), EngineError> {
        let mut c = EngineConfig::from_toml(
            "[engine]\nbatch_size = 100\n[tables]\nevents = { location = \"/x\", sort_order = [\"member_id\"] }\n",
        )?;
        assert_eq!(c.engine.batch_size, 100);
        assert_eq!(c.engine.memory_limit, "75%");
        assert_eq!(c.tables["events"].sort_order(), ["member_id".to_string()]);
        c.apply_env([
            ("AUDIENCE_BATCH_SIZE".into(), "7".into()),
            ("AUDIENCE_TABLE_ORDERS".into(), "/o".into()),
            ("HOME".into(), "/root".into()),
        ])?;
        assert_eq!(c.engine.batch_size, 7);
        assert_eq!(c.tables["orders"].location(), "/o");
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() -> Result<(), EngineError> {
        let e = EngineConfig::from_toml("[engine]\nmemory_limt = \"1GB\"\n")
            .err()
            .ok_or(EngineError::Internal("expected an error".into()))?;
        assert!(e.to_string().contains("memory_limt"), "{e}");
        // the server's section is the server's to check
        EngineConfig::from_toml("[server]\nanything = 1\n")?;
        let mut c = EngineConfig::default();
        let e = c
            .apply_env([("AUDIENCE_BATCH_SIZE".into(), "lots".into())])
            .err()
            .ok_or(EngineError::Internal("expected an error".into()))?;
        assert!(e.to_string().contains("AUDIENCE_BATCH_SIZE"), "{e}");
        c.engine.memory_limit = "12 parsecs".into();
        assert!(c.validate().is_err());
        Ok(())
    }
}
