//! Each query's own memory limit. The engine's pool (`engine.memory_limit`)
//! bounds all running queries together; `engine.query_memory_limit` bounds
//! each one, so that one heavy query cannot take the memory every dashboard
//! query needs. A session lowers it for its own queries with
//! `SET audience.query_memory_limit = '64MB'` (any role may: it can only
//! lower what the operator configured).
//!
//! A query runs over a pool of its own, built as the engine's is (operators
//! that spill share it fairly; see `memory`), in front of the engine's: a
//! reservation must fit both. Its peak is recorded for the query's log line.

use std::any::Any;
use std::sync::Arc;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, PeakRecordingPool,
};
use datafusion::execution::runtime_env::RuntimeEnv;

use crate::memory::{memory_pool, parse_memory_limit, total_memory};

/// The session settings Audience adds to DataFusion's, under `audience.`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AudienceOptions {
    /// `engine.query_memory_limit` in bytes (`None`: unlimited) and as
    /// written; not settable.
    configured: (Option<usize>, String),
    /// `audience.query_memory_limit` as set in this session, in bytes and as written.
    session: Option<(Option<usize>, String)>,
}

impl AudienceOptions {
    /// The options of a session of an engine configured with
    /// `query_memory_limit` (bytes, and as written).
    pub(crate) fn configured(bytes: Option<usize>, text: &str) -> Self {
        AudienceOptions {
            configured: (bytes, text.trim().to_string()),
            session: None,
        }
    }

    /// The limit a query of this session runs under: bytes, and the setting
    /// that set it, with its value as written.
    fn limit(&self) -> Option<(usize, String)> {
        let configured = |c: usize| {
            (
                c,
                format!("engine.query_memory_limit ({})", self.configured.1),
            )
        };
        let session = |s: usize, text: &str| (s, format!("audience.query_memory_limit ({text})"));
        match (self.configured.0, &self.session) {
            (Some(c), Some((Some(s), _))) if c <= *s => Some(configured(c)),
            (_, Some((Some(s), text))) => Some(session(*s, text)),
            (Some(c), _) => Some(configured(c)),
            (None, _) => None,
        }
    }
}

impl ConfigExtension for AudienceOptions {
    const PREFIX: &'static str = "audience";
}

impl ExtensionOptions for AudienceOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if key != "query_memory_limit" {
            return Err(DataFusionError::Configuration(format!(
                "there is no setting audience.{key}; the one Audience setting is \
                 audience.query_memory_limit"
            )));
        }
        let bytes = parse_memory_limit(value, total_memory()).map_err(|_| {
            DataFusionError::Configuration(format!(
                "audience.query_memory_limit must be a size like '64MB' or '1GiB', a share \
                 of the machine like '10%', or 'unlimited'; got '{value}'"
            ))
        })?;
        self.session = Some((bytes, value.trim().to_string()));
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let value = match &self.session {
            Some((_, text)) => text.clone(),
            None if self.configured.1.is_empty() => "unlimited".to_string(),
            None => self.configured.1.clone(),
        };
        vec![ConfigEntry {
            key: "audience.query_memory_limit".to_string(),
            value: Some(value),
            description: "Memory one query of this session may use; lowers, never raises, \
                          the server's engine.query_memory_limit",
        }]
    }
}

/// `task` with its own pool in front of the engine's, as the session's
/// settings say, and that pool's peak recorder.
pub fn query_task(task: TaskContext) -> (Arc<TaskContext>, Arc<PeakRecordingPool>) {
    let shared = task.runtime_env();
    let limit = task
        .session_config()
        .options()
        .extensions
        .get::<AudienceOptions>()
        .and_then(AudienceOptions::limit);
    let pool: Arc<dyn MemoryPool> = match limit {
        Some((bytes, setting)) => Arc::new(QueryPool {
            query: memory_pool(bytes),
            shared: Arc::clone(&shared.memory_pool),
            bytes,
            setting,
        }),
        None => Arc::clone(&shared.memory_pool),
    };
    let peak = Arc::new(PeakRecordingPool::new(pool));
    let runtime = RuntimeEnv {
        memory_pool: Arc::clone(&peak) as Arc<dyn MemoryPool>,
        disk_manager: Arc::clone(&shared.disk_manager),
        cache_manager: Arc::clone(&shared.cache_manager),
        object_store_registry: Arc::clone(&shared.object_store_registry),
    };
    (Arc::new(task.with_runtime(Arc::new(runtime))), peak)
}

/// The hint for a refusal by a query's pool (the message names the setting
/// that set its limit), or `None` for any other message.
pub(crate) fn refusal_hint(message: &str) -> Option<&'static str> {
    if message.contains("than audience.query_memory_limit (") {
        Some(
            "\nhint: this session lowered its queries' memory (SET \
             audience.query_memory_limit); raise it, up to engine.query_memory_limit, or narrow \
             the query",
        )
    } else if message.contains("than engine.query_memory_limit (") {
        Some(
            "\nhint: raise the memory each query may use (engine.query_memory_limit, \
             AUDIENCE_QUERY_MEMORY_LIMIT) or narrow the query",
        )
    } else {
        None
    }
}

/// One query's pool of `bytes`, in front of the engine's `shared` pool.
#[derive(Debug)]
struct QueryPool {
    query: Arc<dyn MemoryPool>,
    shared: Arc<dyn MemoryPool>,
    bytes: usize,
    /// The setting that set `bytes`, with its value, named when a reservation does not fit.
    setting: String,
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a query's pool, {}, over {}", self.setting, self.shared)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "QueryPool"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.query.register(consumer);
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.query.unregister(consumer);
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.query.grow(reservation, additional);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.query.shrink(reservation, shrink);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.query.try_grow(reservation, additional).map_err(|e| {
            DataFusionError::ResourcesExhausted(format!(
                "the query needs more memory than {} allows: {}",
                self.setting,
                e.find_root()
                    .to_string()
                    .trim_start_matches("Resources exhausted: ")
            ))
        })?;
        self.shared
            .try_grow(reservation, additional)
            .inspect_err(|_| self.query.shrink(reservation, additional))
    }

    fn reserved(&self) -> usize {
        self.query.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.shared.memory_limit() {
            MemoryLimit::Finite(shared) => MemoryLimit::Finite(shared.min(self.bytes)),
            _ => MemoryLimit::Finite(self.bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::human_readable_size;
    use datafusion::prelude::SessionConfig;

    /// A task of a session with `configured` and, when given, `SET` to `session`.
    fn task(shared: usize, configured: Option<usize>, session: Option<&str>) -> TaskContext {
        let mut config = SessionConfig::new().with_option_extension(AudienceOptions::configured(
            configured,
            &configured.map_or("unlimited".into(), human_readable_size),
        ));
        if let Some(value) = session {
            config
                .options_mut()
                .set("audience.query_memory_limit", value)
                .unwrap();
        }
        let runtime = RuntimeEnv {
            memory_pool: memory_pool(shared),
            ..RuntimeEnv::default()
        };
        TaskContext::default()
            .with_session_config(config)
            .with_runtime(Arc::new(runtime))
    }

    fn reserve(task: &TaskContext, bytes: usize) -> Result<MemoryReservation> {
        let reservation = MemoryConsumer::new("HashJoinInput").register(task.memory_pool());
        reservation.try_grow(bytes)?;
        Ok(reservation)
    }

    #[test]
    fn a_query_is_held_to_its_limit_while_the_engine_has_room() {
        let (query, peak) = query_task(task(100 << 20, Some(10 << 20), None));
        let fits = reserve(&query, 6 << 20).unwrap();
        let refused = reserve(&query, 6 << 20).unwrap_err().to_string();
        assert!(
            refused.contains("more memory than engine.query_memory_limit (10.0 MB) allows"),
            "{refused}"
        );
        // a refused reservation leaves nothing behind, in either pool
        assert_eq!(query.runtime_env().memory_pool.reserved(), 6 << 20);
        assert_eq!(peak.peak_reserved(), 6 << 20);
        // another query has a limit of its own
        let (other, _) = query_task(task(100 << 20, Some(10 << 20), None));
        let _other = reserve(&other, 8 << 20).unwrap();
        drop(fits);
        assert_eq!(query.runtime_env().memory_pool.reserved(), 0);
    }

    #[test]
    fn the_engine_pool_bounds_queries_together() {
        let shared = memory_pool(10 << 20);
        let with_shared = |t: TaskContext| {
            let runtime = RuntimeEnv {
                memory_pool: Arc::clone(&shared),
                ..RuntimeEnv::default()
            };
            query_task(t.with_runtime(Arc::new(runtime))).0
        };
        let a = with_shared(task(0, Some(8 << 20), None));
        let b = with_shared(task(0, Some(8 << 20), None));
        let _a = reserve(&a, 6 << 20).unwrap();
        let refused = reserve(&b, 6 << 20).unwrap_err().to_string();
        assert!(!refused.contains("query_memory_limit"), "{refused}");
        // the refusal by the engine's pool is not counted against the query
        assert_eq!(b.runtime_env().memory_pool.reserved(), 0);
        assert_eq!(shared.reserved(), 6 << 20);
        let _b = reserve(&b, 4 << 20).unwrap();
    }

    #[test]
    fn a_session_lowers_the_limit_and_never_raises_it() {
        let lowered = query_task(task(100 << 20, Some(10 << 20), Some("2MB"))).0;
        let refused = reserve(&lowered, 3 << 20).unwrap_err().to_string();
        assert!(
            refused.contains("audience.query_memory_limit (2MB)"),
            "{refused}"
        );
        let raised = query_task(task(100 << 20, Some(10 << 20), Some("1GB"))).0;
        let refused = reserve(&raised, 12 << 20).unwrap_err().to_string();
        assert!(refused.contains("engine.query_memory_limit"), "{refused}");
        let unlimited = query_task(task(100 << 20, None, None)).0;
        let _ = reserve(&unlimited, 50 << 20).unwrap();
        let session_only = query_task(task(100 << 20, None, Some("1MB"))).0;
        assert!(reserve(&session_only, 2 << 20).is_err());
    }

    #[test]
    fn a_per_query_limit_is_refused_where_executors_run_the_queries() {
        let mut config = crate::EngineConfig::default();
        config.engine.remote = "df://127.0.0.1:50050".into();
        config.engine.query_memory_limit = "1GB".into();
        let Err(refused) = crate::session::new_context(&config) else {
            panic!("a per-query limit accepted with engine.remote set");
        };
        let refused = refused.to_string();
        assert!(
            refused.contains(
                "engine.query_memory_limit (\"1GB\") holds for queries run in this process"
            ),
            "{refused}"
        );
        config.engine.query_memory_limit = "unlimited".into();
        assert!(crate::session::new_context(&config).is_ok());
    }

    #[test]
    fn a_bad_setting_is_named() {
        let mut config = SessionConfig::new().with_option_extension(AudienceOptions::default());
        let options = config.options_mut();
        let bad = options
            .set("audience.query_memory_limit", "lots")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("audience.query_memory_limit must be a size") && bad.contains("'lots'"),
            "{bad}"
        );
        let unknown = options
            .set("audience.memory", "1GB")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("no setting audience.memory"), "{unknown}");
    }
}
