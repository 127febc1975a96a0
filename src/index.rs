//! `audience index tags`: builds the dataset's tag index (the engine's
//! `build_tag_index`) and says how many bitmaps it holds.

use std::path::Path;
use std::time::Instant;

use audience_engine::{Engine, EngineConfig, Location, TAG_BITMAPS};

use crate::cli::IndexArgs;
use crate::error::CliError;
use crate::query::{engine_config, run_task};

pub(crate) fn run_tags(args: IndexArgs) -> Result<(), CliError> {
    let config = engine_config(&args.engine)?;
    let Some(dataset) = config.data.location()? else {
        return Err(CliError::user(
            "index tags writes into a dataset folder: pass --data DIR (or set data.dir in the config)",
        ));
    };
    run_task(args.limit.timeout, async move {
        let started = Instant::now();
        let engine = Engine::start(&config).await?;
        let bitmaps = engine.build_tag_index(&dataset).await?;
        eprintln!(
            "indexed {bitmaps} (tag, value) bitmaps into {} in {:.1} s",
            dataset.join(TAG_BITMAPS),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

/// Builds the tag index of the local dataset folder `dir` (outside any async runtime).
pub(crate) fn index_folder(dir: &Path) -> Result<u64, CliError> {
    let mut config = EngineConfig::default();
    config.data.dir = dir.to_string_lossy().into_owned();
    let dataset = Location::Local(dir.to_path_buf());
    crate::query::runtime()?.block_on(async {
        let engine = Engine::start(&config).await?;
        Ok(engine.build_tag_index(&dataset).await?)
    })
}
