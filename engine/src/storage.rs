//! Object storage: where tables, datasets and exports live (a local path,
//! `file://` or `s3://bucket/prefix`), the `[storage.s3]` settings, and the
//! object-store registry that connects to any S3 bucket on first use.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use serde::Deserialize;
use url::Url;

use crate::duration::parse_duration;
use crate::error::EngineError;
use crate::parquet_guard::ParquetGuard;

/// Where a table, a dataset or an export lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file or folder (a plain path or a `file://` URL).
    Local(PathBuf),
    /// An object or a prefix in an S3 bucket: `s3://bucket/key`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix inside it, without a leading `/` (may be empty).
        key: String,
    },
}

impl Location {
    /// Parses a local path, `file://` URL or `s3://bucket/key`; `what` names the
    /// location in the error for anything else.
    pub fn parse(what: &str, text: &str) -> Result<Self, EngineError> {
        if let Some(rest) = text.strip_prefix("file://") {
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(EngineError::Invalid(format!(
                    "{what}: '{text}' names no bucket; write s3://bucket/prefix"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.trim_matches('/').to_string(),
            });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(EngineError::Invalid(format!(
                "{what}: {scheme}:// locations are not supported; use a local path, file:// or s3://"
            )));
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    /// The location of `name` inside this folder or prefix.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::S3 { bucket, key } if key.is_empty() => Location::S3 {
                bucket: bucket.clone(),
                key: name.to_string(),
            },
            Location::S3 { bucket, key } => Location::S3 {
                bucket: bucket.clone(),
                key: format!("{key}/{name}"),
            },
        }
    }

    /// The last component of the path or key, if any.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::S3 { key, .. } => key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        }
    }

    /// The object-store path of an S3 location's key (the local path for a local one).
    pub fn object_path(&self) -> ObjectPath {
        match self {
            Location::Local(p) => ObjectPath::from(p.to_string_lossy().as_ref()),
            Location::S3 { key, .. } => ObjectPath::from(key.as_str()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// The `[storage]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// S3 and S3-compatible stores.
    pub s3: S3Config,
}

/// The `[storage.s3]` section. Empty values fall back to the standard `AWS_*`
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL of an S3-compatible server; empty for AWS.
    pub endpoint: String,
    /// Region; empty for `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never logged).
    pub secret_access_key: String,
    /// Session token for temporary credentials (never logged).
    pub session_token: String,
    /// Allow `http://` endpoints.
    pub allow_http: bool,
    /// Address buckets as `bucket.host` (virtual-hosted style) instead of `host/bucket`.
    pub virtual_hosted_style: bool,
    /// One request (connect to last byte) fails after this long: "30s".
    pub request_timeout: String,
    /// Connecting fails after this long: "5s".
    pub connect_timeout: String,
    /// Retries of a failed request (with backoff).
    pub max_retries: usize,
    /// No retry starts after this long since the first attempt: "60s".
    pub retry_timeout: String,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |s: &str| if s.is_empty() { "" } else { "***" };
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &masked(&self.secret_access_key))
            .field("session_token", &masked(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .finish()
    }
}

impl S3Config {
    /// Checks the durations.
    pub fn validate(&self) -> Result<(), EngineError> {
        for (key, value) in [
            ("storage.s3.request_timeout", &self.request_timeout),
            ("storage.s3.connect_timeout", &self.connect_timeout),
            ("storage.s3.retry_timeout", &self.retry_timeout),
        ] {
            duration(key, value)?;
        }
        Ok(())
    }

    /// A client for `bucket`: these settings over the `AWS_*` environment.
    pub fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, EngineError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let set = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if let Some(v) = set(&self.endpoint) {
            builder = builder.with_endpoint(v);
        }
        if let Some(v) = set(&self.region) {
            builder = builder.with_region(v);
        }
        if let Some(v) = set(&self.access_key_id) {
            builder = builder.with_access_key_id(v);
        }
        if let Some(v) = set(&self.secret_access_key) {
            builder = builder.with_secret_access_key(v);
        }
        if let Some(v) = set(&self.session_token) {
            builder = builder.with_token(v);
        }
        if self.allow_http {
            builder = builder.with_allow_http(true);
        }
        let request = duration("storage.s3.request_timeout", &self.request_timeout)?;
        let connect = duration("storage.s3.connect_timeout", &self.connect_timeout)?;
        let retry_timeout = duration("storage.s3.retry_timeout", &self.retry_timeout)?;
        let store = builder
            .with_virtual_hosted_style_request(self.virtual_hosted_style)
            // Set key by key: `with_client_options` would replace what the
            // environment and `allow_http` set.
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                format!("{}ms", request.as_millis()),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                format!("{}ms", connect.as_millis()),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: self.max_retries,
                retry_timeout,
            })
            .build()
            .map_err(|e| EngineError::Config(format!("s3://{bucket}: {e}")))?;
        Ok(Arc::new(store))
    }
}

fn duration(key: &str, value: &str) -> Result<Duration, EngineError> {
    parse_duration(value).map_err(|e| EngineError::Config(format!("{key}: {e}")))
}

/// The object store serving `location`, with the path inside it; stores for S3
/// buckets are created from `s3`.
pub fn object_store_for(
    s3: &S3Config,
    location: &Location,
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), EngineError> {
    match location {
        Location::Local(path) => {
            let path = std::path::absolute(path).map_err(|e| {
                EngineError::Invalid(format!("cannot resolve {}: {e}", path.display()))
            })?;
            let object_path = ObjectPath::from_absolute_path(&path)
                .map_err(|e| EngineError::Invalid(format!("{}: {e}", path.display())))?;
            Ok((
                Arc::new(object_store::local::LocalFileSystem::new()),
                object_path,
            ))
        }
        Location::S3 { bucket, .. } => Ok((s3.store(bucket)?, location.object_path())),
    }
}

/// Uploads the local `file` to `key` of `store` (part of `target`, named in
/// errors) in parts, streaming; a failed upload is aborted.
pub async fn upload_file(
    store: &Arc<dyn ObjectStore>,
    file: &std::path::Path,
    key: ObjectPath,
    target: &Location,
) -> Result<(), EngineError> {
    use tokio::io::AsyncWriteExt;
    let mut source = tokio::fs::File::open(file)
        .await
        .map_err(|e| EngineError::Invalid(format!("cannot read {}: {e}", file.display())))?;
    let mut upload = object_store::buffered::BufWriter::new(Arc::clone(store), key);
    let finished = match tokio::io::copy(&mut source, &mut upload).await {
        Ok(_) => upload.shutdown().await,
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    };
    finished.map_err(|e| {
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        };
        storage_error(target, e)
    })
}

/// A storage error on `location` explained for the user: a missing bucket,
/// refused credentials, or the store's own words.
pub fn storage_error(location: &Location, e: object_store::Error) -> EngineError {
    if let Some(known) = s3_failure(location, &format!("{e:?}")) {
        return known;
    }
    let unauthorized = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    );
    match (location, e) {
        (Location::S3 { bucket, .. }, _) if unauthorized => denied(location, bucket),
        (_, object_store::Error::NotFound { .. }) => {
            EngineError::NotFound(format!("{location}: not found"))
        }
        (_, e) => EngineError::Invalid(format!("{location}: {e}")),
    }
}

/// The error a user can act on for an S3 failure described by `text` (an
/// object-store error, possibly wrapped by DataFusion): no credentials, a
/// missing bucket, or access denied; `None` for anything else.
pub(crate) fn s3_failure(location: &Location, text: &str) -> Option<EngineError> {
    let Location::S3 { bucket, .. } = location else {
        return None;
    };
    // With no key configured, the client falls back to the EC2 instance metadata service.
    if text.contains("/latest/api/token") || text.contains("/latest/meta-data") {
        return Some(EngineError::Invalid(format!(
            "{location}: no S3 credentials found for bucket '{bucket}': set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key in [storage.s3]"
        )));
    }
    if text.contains("NoSuchBucket") {
        return Some(EngineError::NotFound(format!(
            "{location}: bucket '{bucket}' does not exist"
        )));
    }
    let denied_codes = [
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "Forbidden",
    ];
    denied_codes
        .iter()
        .any(|code| text.contains(code))
        .then(|| denied(location, bucket))
}

fn denied(location: &Location, bucket: &str) -> EngineError {
    EngineError::Invalid(format!(
        "{location}: access to bucket '{bucket}' was denied: check the access key and secret \
         ([storage.s3] or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the bucket's permissions"
    ))
}

/// DataFusion's object-store registry, plus an S3 client for any bucket on first
/// use, so `s3://` works in tables, `CREATE EXTERNAL TABLE` and `COPY … TO`.
#[derive(Debug)]
pub(crate) struct StoreRegistry {
    stores: DefaultObjectStoreRegistry,
    s3: S3Config,
}

impl StoreRegistry {
    /// The local file system and S3 buckets, each behind a [`ParquetGuard`].
    pub(crate) fn new(s3: S3Config) -> Self {
        let stores = DefaultObjectStoreRegistry::new();
        if let Ok(url) = Url::parse("file://") {
            let local = Arc::new(object_store::local::LocalFileSystem::new());
            stores.register_store(&url, Arc::new(ParquetGuard::new(local)));
        }
        StoreRegistry { stores, s3 }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.stores.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.stores.get_store(url) {
            return Ok(store);
        }
        match (url.scheme(), url.host_str()) {
            ("s3", Some(bucket)) => {
                let bucket = self
                    .s3
                    .store(bucket)
                    .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
                let store: Arc<dyn ObjectStore> = Arc::new(ParquetGuard::new(bucket));
                self.stores.register_store(url, Arc::clone(&store));
                Ok(store)
            }
            _ => self.stores.get_store(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() -> Result<(), EngineError> {
        assert_eq!(
            Location::parse("t", "s3://b/a/b/")?,
            Location::S3 {
                bucket: "b".into(),
                key: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("t", "s3://b")?.join("events").to_string(),
            "s3://b/events"
        );
        assert_eq!(
            Location::parse("t", "file:///x/y")?,
            Location::Local(PathBuf::from("/x/y"))
        );
        let e = Location::parse("table 'e'", "gs://b/x")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("table 'e'") && e.contains("gs://")));
        assert!(Location::parse("t", "s3:///x").is_err());
        Ok(())
    }

    #[test]
    fn secrets_are_masked() {
        let c = S3Config {
            endpoint: String::new(),
            region: String::new(),
            access_key_id: "AKID".into(),
            secret_access_key: "topsecret".into(),
            session_token: "tok".into(),
            allow_http: false,
            virtual_hosted_style: false,
            request_timeout: "30s".into(),
            connect_timeout: "5s".into(),
            max_retries: 3,
            retry_timeout: "60s".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID") && !shown.contains("topsecret") && !shown.contains("tok\""));
    }
}
