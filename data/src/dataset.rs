//! Dataset folders and the stamp that says what generated them. `audience gen`
//! stamps what it writes; [`ensure_dataset`] generates a named dataset only
//! where none is, replaces only a stale dataset of its own, and never deletes a
//! folder that carries no stamp of ours.

use std::path::{Path, PathBuf};

use crate::{GENERATOR_VERSION, GenConfig, Scale};

/// The file in a dataset folder naming what generated it.
pub const STAMP_FILE: &str = ".audience-data";

impl Scale {
    /// The scale's name, as `--scale` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::S => "s",
            Scale::M => "m",
            Scale::L => "l",
            Scale::Xl => "xl",
        }
    }
}

impl GenConfig {
    /// The stamp of what this config generates: the generator version, scale
    /// and seed, and the sizes and end date where they differ from the scale's.
    pub fn stamp(&self) -> String {
        let mut stamp = format!(
            "audience-data {GENERATOR_VERSION} scale={} seed={}",
            self.scale.name(),
            self.seed
        );
        let (members, events) = self.scale.size();
        if (self.members, self.events) != (members, events) {
            stamp.push_str(&format!(" members={} events={}", self.members, self.events));
        }
        if self.end_date != crate::default_end_date() {
            stamp.push_str(&format!(" end={}", self.end_date));
        }
        stamp
    }
}

/// The stamp in `dir`, if it has one.
pub fn read_stamp(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(STAMP_FILE)).ok()?;
    Some(text.trim_end().to_string())
}

/// Writes `stamp` into `dir`.
pub fn write_stamp(dir: &Path, stamp: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(STAMP_FILE), format!("{stamp}\n"))
}

/// Why [`ensure_dataset`] could not provide the dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The folder holds something else, which is left as it is.
    #[error("{0}")]
    Occupied(String),
    /// Building the dataset failed.
    #[error("{0}")]
    Build(String),
    /// Creating, writing or moving a folder failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Makes sure `dir` holds the dataset `stamp` names. If it is absent, or a
/// dataset of ours from another generator version at the same scale, `build`
/// writes it into a folder beside `dir`, which is stamped and renamed into
/// place, so a reader never sees half a dataset; concurrent first uses wait
/// for one another (a lock file beside `dir`). Any other content of `dir` is an [`DatasetError::Occupied`] error.
pub fn ensure_dataset(
    dir: &Path,
    stamp: &str,
    build: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), DatasetError> {
    if read_stamp(dir).as_deref() == Some(stamp) {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(dir).to_path_buf();
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| DatasetError::Io { what, path, source }
    };
    std::fs::create_dir_all(&parent).map_err(io("cannot create", &parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // One process builds or replaces the dataset at a time; the others wait,
    // then find it stamped (a reader never sees it missing or half removed).
    let lock_path = parent.join(format!(".{name}.lock"));
    let lock = std::fs::File::create(&lock_path).map_err(io("cannot create", &lock_path))?;
    lock.lock().map_err(io("cannot lock", &lock_path))?;
    let found = read_stamp(dir);
    if found.as_deref() == Some(stamp) {
        return Ok(());
    }
    if dir.exists() {
        match &found {
            Some(found) if replaceable(found, stamp) => {}
            Some(found) => {
                return Err(DatasetError::Occupied(format!(
                    "{} holds another dataset ({found}), not {stamp}: remove it, or pass --data",
                    dir.display()
                )));
            }
            None => {
                return Err(DatasetError::Occupied(format!(
                    "{} exists but is not a dataset that audience generated (no {STAMP_FILE} \
                     stamp): it is left as it is; remove it, or pass --data",
                    dir.display()
                )));
            }
        }
    }
    let tmp = parent.join(format!(".{name}-{}", std::process::id()));
    let built = build(&tmp)
        .map_err(DatasetError::Build)
        .and_then(|()| write_stamp(&tmp, stamp).map_err(io("cannot write", &tmp)));
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io("cannot remove the stale dataset", dir))?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(io("cannot move the dataset into", dir)(e));
    }
    Ok(())
}

/// Whether a dataset stamped `found` may be replaced by the one stamped
/// `wanted`: both ours, the same scale, another generator version.
fn replaceable(found: &str, wanted: &str) -> bool {
    let tokens = |s: &str| -> Vec<String> { s.split(' ').map(str::to_string).collect() };
    let (found, wanted) = (tokens(found), tokens(wanted));
    let scale = |t: &[String]| t.iter().find(|x| x.starts_with("scale=")).cloned();
    found.first().is_some_and(|t| t == "audience-data")
        && found.get(1) != wanted.get(1)
        && scale(&found) == scale(&wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GenConfig {
        GenConfig::new(Scale::Tiny, "unused")
    }

    #[test]
    fn stamps_name_what_differs_from_the_scale() {
        let mut c = config();
        assert_eq!(
            c.stamp(),
            format!("audience-data {GENERATOR_VERSION} scale=tiny seed=42")
        );
        c.seed = 7;
        c.members = 10;
        assert!(
            c.stamp().ends_with("seed=7 members=10 events=100000"),
            "{}",
            c.stamp()
        );
    }

    #[test]
    fn builds_once_and_never_replaces_a_foreign_folder() -> Result<(), DatasetError> {
        let root = tempfile::tempdir().map_err(|e| DatasetError::Build(e.to_string()))?;
        let dir = root.path().join("tiny");
        let stamp = config().stamp();
        let builds = std::cell::Cell::new(0);
        let build = |tmp: &Path| {
            builds.set(builds.get() + 1);
            std::fs::create_dir_all(tmp.join("events")).map_err(|e| e.to_string())
        };
        ensure_dataset(&dir, &stamp, build)?;
        ensure_dataset(&dir, &stamp, build)?;
        assert_eq!(builds.get(), 1);
        assert!(dir.join("events").is_dir());

        // a stale dataset of ours at the same scale is replaced
        write_stamp(&dir, "audience-data 1 scale=tiny seed=42")
            .map_err(|e| DatasetError::Build(e.to_string()))?;
        ensure_dataset(&dir, &stamp, build)?;
        assert_eq!(builds.get(), 2);
        assert_eq!(read_stamp(&dir).as_deref(), Some(stamp.as_str()));

        // a dataset generated with other settings, or a folder of the user's, is kept
        let other = format!("{stamp} members=10 events=1000");
        write_stamp(&dir, &other).map_err(|e| DatasetError::Build(e.to_string()))?;
        let e = ensure_dataset(&dir, &stamp, build).unwrap_err();
        assert!(e.to_string().contains("another dataset"), "{e}");
        std::fs::remove_file(dir.join(STAMP_FILE))
            .map_err(|e| DatasetError::Build(e.to_string()))?;
        let e = ensure_dataset(&dir, &stamp, build).unwrap_err();
        assert!(
            matches!(e, DatasetError::Occupied(_)) && e.to_string().contains("no .audience-data"),
            "{e}"
        );
        assert!(dir.join("events").is_dir(), "the folder is left as it was");
        assert_eq!(builds.get(), 2);
        Ok(())
    }

    #[test]
    fn concurrent_first_uses_build_once_and_never_see_it_missing() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("tiny");
        let stamp = config().stamp();
        // a stale dataset of ours, replaced by whichever use comes first
        std::fs::create_dir_all(dir.join("events")).unwrap();
        write_stamp(&dir, "audience-data 1 scale=tiny seed=42").unwrap();
        let builds = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    ensure_dataset(&dir, &stamp, |tmp| {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        std::fs::create_dir_all(tmp.join("events")).map_err(|e| e.to_string())
                    })
                    .unwrap();
                    // what each use returns to is there, complete
                    assert_eq!(read_stamp(&dir).as_deref(), Some(stamp.as_str()));
                    assert!(dir.join("events").is_dir());
                });
            }
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }
}
