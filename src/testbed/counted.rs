//! A store that counts what it serves (log reads and their bytes, data reads, listings, reads in
//! flight at once), so that tests and benchmarks bound what opening or reading a lake costs in
//! objects and concurrency, not seconds.
//!
//! Its listings come back in lexical order, as `Lake::from_store` needs (a local directory
//! lists in directory order: wrapped here, it can back `Lake::from_store`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// What a [`CountedStore`] served since it was made or last reset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    /// Reads of objects under a `_delta_log/`.
    pub log_reads: u64,
    /// Bytes served by those reads.
    pub log_bytes_read: u64,
    /// Reads of every other object but the lake's metadata file (`_ledgerlake.json`), in the
    /// order they started.
    pub data_reads: Vec<Path>,
    /// Listings of any kind.
    pub lists: u64,
    /// Listings whose prefix or offset lies under a `_delta_log/`.
    pub log_lists: u64,
    /// The most distinct `_delta_log/` objects read at the same time.
    pub log_reading_max: usize,
    /// The most distinct other objects read at the same time.
    pub data_reading_max: usize,
}

#[derive(Debug, Default)]
struct Seen {
    counts: Counts,
    /// Objects with a read in progress, and how many reads each.
    reading: HashMap<Path, usize>,
}

/// Counts the reads and listings `inner` serves (see the module comment); each read can be
/// slowed (`with_read_delay`) so that concurrent reads overlap and their number shows.
#[derive(Debug)]
pub struct CountedStore {
    inner: Arc<dyn ObjectStore>,
    read_delay: Duration,
    seen: Mutex<Seen>,
}

impl CountedStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> CountedStore {
        CountedStore {
            inner,
            read_delay: Duration::ZERO,
            seen: Mutex::default(),
        }
    }

    /// Each read waits `delay` before it is served.
    pub fn with_read_delay(mut self, delay: Duration) -> CountedStore {
        self.read_delay = delay;
        self
    }

    pub fn counts(&self) -> Counts {
        self.seen().counts.clone()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        self.seen().counts = Counts::default();
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().expect("not poisoned")
    }

    fn count_list(&self, paths: &[Option<&Path>]) {
        let counts = &mut self.seen().counts;
        counts.lists += 1;
        if paths.iter().flatten().any(|p| is_log(p)) {
            counts.log_lists += 1;
        }
    }

    fn read_started(&self, path: &Path) {
        let mut seen = self.seen();
        *seen.reading.entry(path.clone()).or_default() += 1;
        let log = seen.reading.keys().filter(|p| is_log(p)).count();
        let data = seen.reading.len() - log;
        let counts = &mut seen.counts;
        counts.log_reading_max = counts.log_reading_max.max(log);
        counts.data_reading_max = counts.data_reading_max.max(data);
        if is_log(path) {
            counts.log_reads += 1;
        } else if path.as_ref() != "_ledgerlake.json" {
            counts.data_reads.push(path.clone());
        }
    }

    fn read_ended(&self, path: &Path, served: u64) {
        let mut seen = self.seen();
        if is_log(path) {
            seen.counts.log_bytes_read += served;
        }
        let reads = seen.reading.get_mut(path).expect("counted when it started");
        *reads -= 1;
        if *reads == 0 {
            seen.reading.remove(path);
        }
    }
}

fn is_log(path: &Path) -> bool {
    path.as_ref().contains("_delta_log")
}

impl fmt::Display for CountedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counted({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountedStore {
    async fn put_opts(&self, p: &Path, payload: PutPayload, o: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(p, payload, o).await
    }
    async fn put_multipart_opts(
        &self,
        p: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(p, o).await
    }
    async fn get_opts(&self, p: &Path, o: GetOptions) -> Result<GetResult> {
        self.read_started(p);
        tokio::time::sleep(self.read_delay).await;
        let result = self.inner.get_opts(p, o).await;
        let served = result.as_ref().map_or(0, |r| r.range.end - r.range.start);
        self.read_ended(p, served);
        result
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.count_list(&[prefix]);
        sorted(self.inner.list(prefix))
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.count_list(&[prefix, Some(offset)]);
        sorted(self.inner.list_with_offset(prefix, offset))
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.count_list(&[prefix]);
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

/// A listing in lexical order (what the Delta kernel does itself for a local directory it
/// opens by URL).
fn sorted(list: BoxStream<'static, Result<ObjectMeta>>) -> BoxStream<'static, Result<ObjectMeta>> {
    futures::stream::once(async move {
        let mut all: Vec<ObjectMeta> = list.try_collect().await?;
        all.sort_unstable_by(|a, b| a.location.cmp(&b.location));
        Ok::<_, object_store::Error>(futures::stream::iter(all.into_iter().map(Ok)))
    })
    .try_flatten()
    .boxed()
}
