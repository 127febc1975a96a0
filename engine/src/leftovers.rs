//! What killed processes leave behind — a half-written output file, an
//! export's staging folder, a spill folder — named with their process id, and
//! removed by the next process that writes to the same place.

use std::path::Path;

/// Removes what gone processes left in `dir`: entries named `PREFIX<pid>…`
/// whose process is gone (a live process's entries are left alone). Liveness is
/// read from `/proc`; where there is none, nothing is removed. Entries that
/// held files are logged; empty folders (a spill folder of a process that
/// exited normally) go quietly.
pub fn remove_left_by_gone_processes(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        let held_files = holds_files(&path);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) if held_files => {
                tracing::info!(path = %path.display(), pid, "removed what a killed writer left")
            }
            Ok(()) => {
                tracing::debug!(path = %path.display(), pid, "removed an empty folder of a gone process")
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot remove a stale staging entry")
            }
        }
    }
}

/// Whether `path` is a file or a folder with a file somewhere inside.
fn holds_files(path: &Path) -> bool {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.flatten().any(|entry| holds_files(&entry.path())),
        Err(_) => path.exists(),
    }
}
