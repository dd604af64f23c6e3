//! Reads a Parquet file from the object store by byte ranges, so that decoding a few columns
//! (e.g. the account ids) fetches only those columns' chunks instead of the whole file.
//!
//! Hand-written on purpose: parquet's `ParquetObjectReader` is deprecated since parquet 59.2
//! ("implement `AsyncFileReader` directly instead", apache/arrow-rs#10308), and this is the
//! implementation parquet's own `examples/object_store.rs` gives, plus two things the lake
//! needs: the size known from listing (bounded range requests, no HEAD to discover it) and a
//! footer prefetch that reads the footer and the metadata in one request instead of two.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

/// Bytes read from the end of a file in the first footer request: the lake's files carry about
/// 15 KB of metadata, so one request usually gets the footer and all of it.
pub const FOOTER_PREFETCH_BYTES: usize = 64 * 1024;

/// An `AsyncFileReader` over one object whose size is known from listing (which saves the
/// request that would otherwise discover it).
pub struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl StoreReader {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> Self {
        StoreReader { store, path, size }
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        self.store
            .get_range(&self.path, range)
            .map_err(external)
            .boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(FOOTER_PREFETCH_BYTES))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}
