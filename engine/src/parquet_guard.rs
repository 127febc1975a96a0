//! Bad Parquet files stopped at the store, named. Every object store the engine
//! reads tables through is wrapped: a listed `.parquet` file too short to be
//! Parquet (a zero-byte part file would otherwise read as an empty file, its
//! rows silently missing), and a file whose footer does not end in `PAR1` or
//! claims more bytes than the file has (which makes the Parquet reader panic),
//! fail the read with an error that names the file. Footers are checked on the
//! reads that end at a file's end, whose size the listing gave. Hidden files
//! and folders (`.x`, `_x`: exports and loads in progress) are not checked.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// The smallest Parquet file: magic, a 4-byte footer length, magic.
const MIN_PARQUET_BYTES: u64 = 12;

/// The largest tail read whose footer is checked on the way (the reader's
/// footer prefetch is 512 KiB; a whole small file may come in one read).
const MAX_CHECKED_READ: u64 = 64 << 20;

/// An object store whose Parquet files are checked as they are listed and read.
#[derive(Debug)]
pub(crate) struct ParquetGuard {
    inner: Arc<dyn ObjectStore>,
    /// The size of each table file listed, so a read that ends at a file's
    /// end (the reader fetches the footer with the pages before it) is known.
    sizes: Arc<Mutex<HashMap<Path, u64>>>,
}

impl ParquetGuard {
    /// `inner`, guarded.
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        ParquetGuard {
            inner,
            sizes: Arc::default(),
        }
    }

    /// `listed` with every table file checked and its size noted.
    fn checked(
        &self,
        listed: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let sizes = Arc::clone(&self.sizes);
        listed
            .map(move |meta| {
                let meta = check_listed(meta?)?;
                if is_table_file(&meta.location) {
                    lock(&sizes).insert(meta.location.clone(), meta.size);
                }
                Ok(meta)
            })
            .boxed()
    }
}

fn lock(sizes: &Mutex<HashMap<Path, u64>>) -> std::sync::MutexGuard<'_, HashMap<Path, u64>> {
    // a panic while holding the lock cannot leave the map half-updated
    sizes.lock().unwrap_or_else(|p| p.into_inner())
}

impl fmt::Display for ParquetGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// Whether `path` is a table file the engine reads: a `.parquet` name, neither
/// it nor its folder hidden (a staged export's folder is `.NAME.partial-…`).
fn is_table_file(path: &Path) -> bool {
    let parts: Vec<_> = path.parts().collect();
    let hidden = |part: &str| part.starts_with('.') || part.starts_with('_');
    path.filename().is_some_and(|n| n.ends_with(".parquet"))
        && !parts.iter().rev().take(2).any(|p| hidden(p.as_ref()))
}

fn bad_file(path: &Path, why: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "Parquet",
        source: bad_file_message(path.as_ref(), &why).into(),
    }
}

/// What the user reads about the unreadable table file at `path`.
pub(crate) fn bad_file_message(path: &str, why: &str) -> String {
    format!(
        "{path} is not a readable Parquet file: {why}; remove or replace it (its table's other \
         files are fine)"
    )
}

/// An error if a listed table file is too short to be Parquet.
fn check_listed(meta: ObjectMeta) -> Result<ObjectMeta> {
    if is_table_file(&meta.location) && meta.size < MIN_PARQUET_BYTES {
        let why = format!(
            "it has {} bytes, and a Parquet file has at least {MIN_PARQUET_BYTES}",
            meta.size
        );
        return Err(bad_file(&meta.location, why));
    }
    Ok(meta)
}

/// An error unless `tail`, the last bytes of the `size`-byte file at `path`,
/// ends in a footer that fits in the file.
fn check_footer(path: &Path, size: u64, tail: &[u8]) -> Result<()> {
    let Some(end) = tail.len().checked_sub(8).map(|at| &tail[at..]) else {
        return Ok(());
    };
    if &end[4..] != b"PAR1" && &end[4..] != b"PARE" {
        return Err(bad_file(
            path,
            "it does not end with the Parquet magic bytes 'PAR1'".into(),
        ));
    }
    let footer = u64::from(u32::from_le_bytes([end[0], end[1], end[2], end[3]]));
    if footer + MIN_PARQUET_BYTES > size {
        let why = format!("its footer claims {footer} bytes but the file has {size}");
        return Err(bad_file(path, why));
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for ParquetGuard {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        let (size, range) = (result.meta.size, result.range.clone());
        let tail = range.end == size && range.end - range.start <= MAX_CHECKED_READ;
        if head || !tail || !is_table_file(location) {
            return Ok(result);
        }
        let (meta, attributes) = (result.meta.clone(), result.attributes.clone());
        let bytes = result.bytes().await?;
        check_footer(location, size, &bytes)?;
        let payload = futures::stream::once(async move { Ok(bytes) }).boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let data = self.inner.get_ranges(location, ranges).await?;
        let size = lock(&self.sizes).get(location).copied();
        if let Some(size) = size {
            let tail = ranges.iter().zip(&data).find(|(r, _)| r.end == size);
            if let Some((_, bytes)) = tail {
                check_footer(location, size, bytes)?;
            }
        }
        Ok(data)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.checked(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.checked(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer(len: u32) -> Vec<u8> {
        let mut tail = len.to_le_bytes().to_vec();
        tail.extend_from_slice(b"PAR1");
        tail
    }

    #[test]
    fn footers_must_fit_and_end_in_the_magic() {
        let path = Path::from("events/part-0.parquet");
        assert!(check_footer(&path, 1000, &footer(500)).is_ok());
        let e = check_footer(&path, 1000, &footer(u32::MAX))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("events/part-0.parquet") && e.contains("claims 4294967295 bytes"),
            "{e}"
        );
        let e = check_footer(&path, 1000, b"12345678")
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic"), "{e}");
    }

    #[test]
    fn short_table_files_are_refused_and_hidden_ones_ignored() {
        let meta = |name: &str, size| ObjectMeta {
            location: Path::from(name),
            last_modified: chrono::Utc::now(),
            size,
            e_tag: None,
            version: None,
        };
        let e = check_listed(meta("events/zz.parquet", 0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("events/zz.parquet") && e.contains("has 0 bytes"),
            "{e}"
        );
        assert!(check_listed(meta("events/.x.parquet.partial-1/x.parquet", 0)).is_ok());
        assert!(check_listed(meta("tmp/.tmp1/events/zz.parquet", 0)).is_err());
        assert!(check_listed(meta("events/notes.txt", 0)).is_ok());
        assert!(check_listed(meta("events/part-0.parquet", 12)).is_ok());
    }
}
