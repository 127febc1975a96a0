//! Delta tables on a Ballista cluster: a cluster carries a plain listing of
//! files to its executors, not our table provider, so such a table is
//! registered as the files of one version — and registered again, at the
//! newest version, whenever a commit moved it on, before the next request.
//! A finished load is then visible to the next query there too.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use deltalake_core::kernel::Version;
use tokio::sync::Mutex;

use crate::delta_tables::DeltaTableProvider;
use crate::error::EngineError;

/// A Delta table registered as a listing of one version's files.
pub(crate) struct ListedVersion {
    name: String,
    table: DeltaTableProvider,
    version: Version,
}

impl ListedVersion {
    /// Registers `table` as `name`, at its newest version.
    pub(crate) async fn register(
        ctx: &SessionContext,
        name: &str,
        table: DeltaTableProvider,
    ) -> Result<Self, EngineError> {
        let snapshot = table.newest().await?;
        ctx.register_table(name, Arc::new(table.listing(ctx, &snapshot).await?))?;
        Ok(ListedVersion {
            name: name.to_string(),
            table,
            version: snapshot.version,
        })
    }

    /// Registers the table again if a newer version was committed since.
    async fn refresh(&mut self, ctx: &SessionContext) -> Result<(), EngineError> {
        let snapshot = self.table.newest().await?;
        if snapshot.version == self.version {
            return Ok(());
        }
        let listing = self.table.listing(ctx, &snapshot).await?;
        ctx.deregister_table(self.name.as_str())?;
        ctx.register_table(self.name.as_str(), Arc::new(listing))?;
        tracing::debug!(table = %self.name, from = self.version, to = snapshot.version, "listed a newer version");
        self.version = snapshot.version;
        Ok(())
    }
}

/// The session's tables registered as listings of a version.
#[derive(Default)]
pub(crate) struct ListedVersions(Mutex<Vec<ListedVersion>>);

impl ListedVersions {
    pub(crate) async fn add(&self, listed: ListedVersion) {
        let mut tables = self.0.lock().await;
        tables.retain(|t| t.name != listed.name);
        tables.push(listed);
    }

    /// Stops keeping `name` up to date (its table was dropped).
    pub(crate) async fn forget(&self, name: &str) {
        self.0.lock().await.retain(|t| t.name != name);
    }

    /// Brings every listed table to its newest version.
    pub(crate) async fn refresh(&self, ctx: &SessionContext) -> Result<(), EngineError> {
        for table in self.0.lock().await.iter_mut() {
            table.refresh(ctx).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    use crate::{BadRows, Engine, EngineConfig, LoadProgress, LoadRequest, Location};

    async fn count(engine: &Engine) -> i64 {
        let frame = engine.sql("SELECT count(*) FROM events").await.unwrap();
        let batches = frame.collect().await.unwrap();
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_is_seen_by_the_next_query_on_a_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("dataset");
        std::fs::create_dir_all(&data).unwrap();
        let mut config = EngineConfig::default();
        config.data.dir = data.to_str().unwrap().to_string();
        let load = |n: i64| LoadRequest {
            table: "events".into(),
            target: Location::parse("the table", data.join("events").to_str().unwrap()).unwrap(),
            sources: Vec::new(),
            format: None,
            sql: Some(format!(
                "SELECT v AS member_id, to_timestamp_micros(v) AS ts, 'view' AS event \
                 FROM generate_series(1, {n}) AS t(v)"
            )),
            batch_id: None,
            schema: None,
            bad_rows: BadRows::Reject,
        };
        let local = Engine::start(&config).await.unwrap();
        let progress = std::sync::Arc::new(LoadProgress::default());
        local.load(&load(3), &progress).await.unwrap();
        config.engine.remote = "standalone".to_string();
        let cluster = Engine::start(&config).await.unwrap();
        assert_eq!(count(&cluster).await, 3);
        local.load(&load(5), &progress).await.unwrap();
        // the cluster reads the version it listed until the next request's refresh
        assert_eq!(count(&cluster).await, 3);
        cluster.refresh_tables().await.unwrap();
        assert_eq!(count(&cluster).await, 8);
    }
}
