//! Turning a lake location (a path or URL) into an object store rooted at the lake, and into a
//! display form that is safe to log (`crate::secret::redact_url`).
//!
//! The lake's own code then only ever sees paths relative to the lake root: a prefix in the URL
//! (`s3://bucket/some/prefix`) is applied by wrapping the store in a `PrefixStore`.
//!
//! Retries happen at two levels, and the S3 store's `RetryConfig` is set here so that they add
//! up instead of multiplying. object_store retries one request (on 5xx, 429, a reset or timed-out
//! connection) to ride out a blip: here at most `S3_RETRIES_MAX` times within
//! `S3_RETRY_TIMEOUT`, backing off from 100 ms to at most 1 s. The exporter retries a whole
//! commit (create-only, so a retry never alters a committed file) for `--lake-retry-max`
//! (5 minutes by default) to ride out an outage. With object_store's defaults (10 retries,
//! 15 s backoff cap, 3 minutes per request) one outer attempt could itself last 3 minutes, so the
//! exporter's limit would be overshot by up to that much and each outer attempt would hide 10
//! inner ones; with these settings an outer attempt gives up within about 10 s plus one request
//! timeout (object_store's default, 30 s, left as is: it comes with `AWS_*` client settings
//! that `from_env` reads and a replaced `ClientOptions` would drop). Google Cloud Storage
//! (`gs://bucket/prefix`) and Azure Blob Storage (`az://container/prefix`) get the same retry
//! settings; each takes its credentials from its cloud's standard environment variables
//! (`GOOGLE_SERVICE_ACCOUNT`/`GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME` and
//! `AZURE_STORAGE_ACCOUNT_KEY` or the other `AZURE_*` ones, read by each builder's `from_env`),
//! never from the URL. Every backend makes a create-only write (`PutMode::Create`, which the
//! lake and the Delta kernel's commit use) a conditional request the server enforces: S3
//! `If-None-Match: *`, GCS `x-goog-if-generation-match: 0`, Azure `If-None-Match: *`
//! (tests/backends.rs checks it against each server). Other schemes (http://) are built by
//! `parse_url_opts` and keep object_store's defaults.
//!
//! Every cloud store is wrapped in [`OffsetChecked`]: `list_with_offset` passes the offset to
//! the server (`start-after`), and the Delta kernel lists the log from a version that way and
//! takes what comes back as the versions after it. A server that ignores the parameter (some
//! S3-compatible servers and emulators do; fake-gcs-server does) would hand it earlier commits
//! too, so the offset is also applied here: a listing never yields a path at or before it.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    parse_url_opts, BackoffConfig, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RetryConfig,
};
use url::Url;

use super::LakeError;
use crate::secret::redact_url;

pub struct Opened {
    /// Rooted at the lake (the URL's prefix applied).
    pub store: Arc<dyn ObjectStore>,
    /// Safe to print: no credentials, no query string.
    pub display: String,
    /// The same store without the prefix, and the lake root as a directory URL of it: the Delta
    /// kernel resolves table URLs against the store's own root (see `lake::log`).
    pub base: Arc<dyn ObjectStore>,
    pub root: Url,
}

/// `scheme://host/prefix/`: the lake root as a directory URL, without credentials or query.
fn root_url(scheme: &str, host: &str, prefix: &Path) -> Result<Url, String> {
    let mut root = format!("{scheme}://{host}/");
    if !prefix.as_ref().is_empty() {
        root.push_str(prefix.as_ref());
        root.push('/');
    }
    Url::parse(&root).map_err(|e| format!("cannot form the lake root URL: {e}"))
}

/// How many times object_store retries one request to a cloud store (see the module comment).
pub const S3_RETRIES_MAX: usize = 3;
/// How long after the first attempt object_store still retries one request to a cloud store.
pub const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(10);

fn cloud_retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: S3_RETRIES_MAX,
        retry_timeout: S3_RETRY_TIMEOUT,
    }
}

/// The S3 store of `bucket`, with the lake's retry settings on top of `builder`'s.
fn s3_store(builder: AmazonS3Builder, bucket: &str) -> object_store::Result<AmazonS3> {
    builder
        .with_url(format!("s3://{bucket}"))
        .with_retry(cloud_retry_config())
        .build()
}

/// Refuses a user name or password in a URL (they would be logged; credentials come from the
/// environment, `hint` says which variables).
fn refuse_url_credentials(location: &str, url: &Url, hint: &str) -> Result<(), LakeError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            location,
            format!("credentials do not belong in the URL; {hint}"),
        ));
    }
    Ok(())
}

/// A cloud store rooted at `bucket`, with the lake's prefix (`url_path`) applied.
fn cloud(
    location: &str,
    display: String,
    base: Arc<dyn ObjectStore>,
    scheme: &str,
    bucket: &str,
    url_path: &str,
) -> Result<Opened, LakeError> {
    let prefix =
        Path::from_url_path(url_path).map_err(|e| bad(location, format!("bad prefix: {e}")))?;
    let root = root_url(scheme, bucket, &prefix).map_err(|r| bad(location, r))?;
    let base: Arc<dyn ObjectStore> = Arc::new(OffsetChecked::new(base));
    Ok(Opened {
        store: with_prefix(base.clone(), prefix),
        display,
        base,
        root,
    })
}

/// A location for display: a local path as given, a URL redacted.
fn shown(location: &str) -> String {
    if location.contains("://") {
        redact_url(location)
    } else {
        location.to_string()
    }
}

fn bad(location: &str, reason: impl Into<String>) -> LakeError {
    LakeError::BadLocation {
        location: shown(location),
        reason: reason.into(),
    }
}

/// A store whose `list_with_offset` yields only paths after the offset, whatever the server
/// does with it (see the module comment); everything else passes through.
#[derive(Debug)]
pub struct OffsetChecked {
    inner: Arc<dyn ObjectStore>,
}

impl OffsetChecked {
    pub fn new(inner: Arc<dyn ObjectStore>) -> OffsetChecked {
        OffsetChecked { inner }
    }
}

impl std::fmt::Display for OffsetChecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OffsetChecked({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for OffsetChecked {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        after_offset(self.inner.list_with_offset(prefix, offset), offset.clone())
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// The entries of `listing` after `offset`.
fn after_offset(
    listing: BoxStream<'static, object_store::Result<ObjectMeta>>,
    offset: Path,
) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
    listing
        .try_filter(move |meta| futures::future::ready(meta.location > offset))
        .boxed()
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: Path) -> Arc<dyn ObjectStore> {
    if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// A directory on the local file system, created if missing. fsync is on: the exporter
/// acknowledges CDC messages once their segment is committed, so a committed file must
/// survive power loss.
fn open_local(location: &str, dir: &std::path::Path) -> Result<Opened, LakeError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(location, format!("cannot create directory: {e}")))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| bad(location, e.to_string()))?
        .with_fsync(true);
    let canonical =
        std::fs::canonicalize(dir).map_err(|e| bad(location, format!("cannot resolve: {e}")))?;
    let root = Url::from_directory_path(&canonical)
        .map_err(|()| bad(location, "not an absolute directory path"))?;
    Ok(Opened {
        store: Arc::new(store),
        display: canonical.display().to_string(),
        base: Arc::new(LocalFileSystem::new().with_fsync(true)),
        root,
    })
}

/// Environment variables handed to `parse_url_opts` for schemes other than the ones handled
/// here; each builder ignores the keys it does not know.
fn store_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            ["AWS_", "GOOGLE_", "AZURE_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

pub fn open_store(location: &str) -> Result<Opened, LakeError> {
    if location.trim().is_empty() {
        return Err(bad(location, "empty location"));
    }
    if !location.contains("://") {
        return open_local(location, std::path::Path::new(location));
    }
    let url = Url::parse(location).map_err(|e| bad(location, format!("not a valid URL: {e}")))?;
    let display = redact_url(location);
    match url.scheme() {
        "file" => {
            if !matches!(url.host_str(), None | Some("") | Some("localhost")) {
                return Err(bad(
                    location,
                    "file:// URLs must name a local path (file:///dir)",
                ));
            }
            let dir = url
                .to_file_path()
                .map_err(|()| bad(location, "not a local file path"))?;
            open_local(location, &dir)
        }
        "memory" => {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            Ok(Opened {
                store: store.clone(),
                display: "memory://".into(),
                base: store,
                root: Url::parse("memory:///").expect("a valid URL"),
            })
        }
        "s3" | "s3a" => {
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(
                    location,
                    "credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY",
                ));
            }
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| bad(location, "no bucket (expected s3://bucket/prefix)"))?;
            // from_env reads every AWS_* variable, including AWS_ENDPOINT_URL (S3-compatible
            // servers such as MinIO) and AWS_ALLOW_HTTP.
            let s3 = s3_store(AmazonS3Builder::from_env(), bucket)
                .map_err(|e| bad(location, e.to_string()))?;
            cloud(location, display, Arc::new(s3), "s3", bucket, url.path())
        }
        "gs" => {
            refuse_url_credentials(
                location,
                &url,
                "set GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
            )?;
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| bad(location, "no bucket (expected gs://bucket/prefix)"))?;
            // from_env reads GOOGLE_SERVICE_ACCOUNT(_KEY), GOOGLE_APPLICATION_CREDENTIALS and
            // GOOGLE_BASE_URL (an emulator such as fake-gcs-server).
            let gcs = GoogleCloudStorageBuilder::from_env()
                .with_url(format!("gs://{bucket}"))
                .with_retry(cloud_retry_config())
                .build()
                .map_err(|e| bad(location, e.to_string()))?;
            cloud(location, display, Arc::new(gcs), "gs", bucket, url.path())
        }
        "az" | "azure" | "abfs" | "abfss" => {
            if url.password().is_some() {
                return Err(bad(
                    location,
                    "credentials do not belong in the URL; set AZURE_STORAGE_ACCOUNT_NAME and \
                     AZURE_STORAGE_ACCOUNT_KEY (or another AZURE_* credential)",
                ));
            }
            // az://container/prefix, or az://container@account.blob.core.windows.net/prefix.
            let container = match url.username() {
                "" => url.host_str().unwrap_or_default(),
                user => user,
            };
            if container.is_empty() {
                return Err(bad(
                    location,
                    "no container (expected az://container/prefix)",
                ));
            }
            let mut store_url = url.clone();
            store_url.set_path("");
            store_url.set_query(None);
            store_url.set_fragment(None);
            // from_env reads AZURE_STORAGE_ACCOUNT_NAME/_KEY, the SAS and service-principal
            // variables, and AZURE_STORAGE_USE_EMULATOR / AZURE_STORAGE_ENDPOINT (Azurite).
            let azure = MicrosoftAzureBuilder::from_env()
                .with_url(store_url.as_str())
                .with_retry(cloud_retry_config())
                .build()
                .map_err(|e| bad(location, e.to_string()))?;
            let container = container.to_string();
            cloud(
                location,
                display,
                Arc::new(azure),
                "az",
                &container,
                url.path(),
            )
        }
        _ => {
            let (store, prefix) =
                parse_url_opts(&url, store_env()).map_err(|e| bad(location, e.to_string()))?;
            let base: Arc<dyn ObjectStore> = Arc::from(store);
            let host = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_string(),
            };
            let root = root_url(url.scheme(), &host, &prefix).map_err(|r| bad(location, r))?;
            Ok(Opened {
                store: with_prefix(base.clone(), prefix),
                display,
                base,
                root,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_shown_without_secrets() {
        for (input, want) in [
            (
                "s3://AKIA:secret@bucket/p?x-amz-signature=abc",
                "s3://***:***@bucket/p?x-amz-signature=***",
            ),
            (
                "https://user:pa@ss@host:9000/b/p#frag",
                "https://***:***@host:9000/b/p",
            ),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("s3://bucket", "s3://bucket"),
            ("/var/lib/lake", "/var/lib/lake"),
            ("::not a url:://u:secret@x", crate::secret::UNPARSEABLE),
        ] {
            assert_eq!(shown(input), want, "{input}");
            assert!(!shown(input).contains("secret"));
        }
    }

    #[test]
    fn bad_locations_are_explained_without_secrets() {
        for location in [
            "",
            "s3://",
            "s3://key:secret@bucket/p",
            "gs://key:secret@bucket/p",
            "gs://",
            "az://container:secret@account/p",
            "az://",
            "file://otherhost/dir",
            "nonsense://x",
            "::not a url:://u:secret@x",
        ] {
            match open_store(location) {
                Err(e @ LakeError::BadLocation { .. }) => {
                    assert!(!e.to_string().contains("secret"), "{e}")
                }
                Err(e) => panic!("{location}: unexpected error {e}"),
                Ok(_) => panic!("{location} was accepted"),
            }
        }
    }

    #[test]
    fn a_query_in_a_location_is_never_shown() {
        match open_store("gs://bucket/p?token=secret") {
            Ok(opened) => {
                assert!(!opened.display.contains("secret"), "{}", opened.display);
                assert!(!opened.root.as_str().contains("secret"), "{}", opened.root);
            }
            Err(e) => assert!(!e.to_string().contains("secret"), "{e}"),
        }
    }

    #[test]
    fn local_directories_are_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let opened = open_store(dir.to_str().unwrap()).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            opened.display,
            dir.canonicalize().unwrap().display().to_string()
        );
        let url = format!("file://{}", tmp.path().join("c").display());
        open_store(&url).unwrap();
        assert!(tmp.path().join("c").is_dir());
    }

    /// Against a port nobody listens on, a request gives up after `S3_RETRIES_MAX` retries
    /// within `S3_RETRY_TIMEOUT`, not after object_store's default 10 retries and 3 minutes.
    #[tokio::test]
    async fn s3_requests_retry_within_the_lake_limits() {
        use futures::StreamExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let builder = AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("key")
            .with_secret_access_key("secret");
        let store = s3_store(builder, "bucket").unwrap();
        let started = std::time::Instant::now();
        let error = store.list(None).next().await.unwrap().unwrap_err();
        let elapsed = started.elapsed();
        let text = format!("{error}");
        assert!(
            text.contains(&format!("max_retries: {S3_RETRIES_MAX}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("after {S3_RETRIES_MAX} retries")),
            "{text}"
        );
        assert!(
            elapsed < S3_RETRY_TIMEOUT + Duration::from_secs(5),
            "{elapsed:?}"
        );
    }

    /// A server that ignores the offset (a plain listing of everything): the listing still
    /// starts after it.
    #[tokio::test]
    async fn listings_never_yield_paths_at_or_before_the_offset() {
        let memory = InMemory::new();
        for i in 0..6 {
            memory
                .put_opts(
                    &Path::from(format!("log/{i:03}.json")),
                    PutPayload::from_static(b"{}"),
                    PutOptions::default(),
                )
                .await
                .unwrap();
        }
        let everything = memory.list(Some(&Path::from("log")));
        let after: Vec<String> = after_offset(everything, Path::from("log/002.json"))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(after, ["log/003.json", "log/004.json", "log/005.json"]);
        // Through the adapter, on a store that honours offsets, nothing changes.
        let checked = OffsetChecked::new(Arc::new(memory));
        let after: Vec<String> = checked
            .list_with_offset(Some(&Path::from("log")), &Path::from("log/004.json"))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(after, ["log/005.json"]);
    }

    #[test]
    fn gs_urls_build_with_a_prefix() {
        let opened = open_store("gs://bucket/some/prefix").unwrap();
        assert_eq!(opened.display, "gs://bucket/some/prefix");
        assert_eq!(opened.root.as_str(), "gs://bucket/some/prefix/");
    }

    #[test]
    fn s3_urls_build_with_a_prefix() {
        let opened = open_store("s3://bucket/some/prefix").unwrap();
        assert_eq!(opened.display, "s3://bucket/some/prefix");
    }
}
