//! The Delta Lake log of each lake table, through `delta_kernel`: creating a table, opening a
//! snapshot (latest or at a version), listing its active files, reading the consumer position
//! (a `txn` action), and committing adds and removes with the chained `commitInfo.ledgerlake`
//! object of schemas/lake.md. No log file is written by hand: the kernel writes commits and
//! checkpoints; this module reads commit files only to hash them for the chain.
//!
//! The kernel's API is synchronous and drives its object store through a task executor, so
//! every kernel call runs on a blocking thread of one small multi-threaded runtime owned by
//! this module (`kernel_runtime`), whatever runtime the caller uses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::engine_data::FilteredEngineData;
use delta_kernel::expressions::Scalar;
use delta_kernel::scan::state::ScanFile;
use delta_kernel::schema::{DataType as KernelType, StructField, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use delta_kernel::{Engine, FileMeta, Snapshot, SnapshotRef};
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use delta_kernel_default_engine::stats::collect_stats;
use delta_kernel_default_engine::{build_add_file_metadata, DefaultEngine, DefaultEngineBuilder};
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use url::Url;

use super::layout::Table;
use super::{LakeError, FORMAT_VERSION};

/// A checkpoint is written after every this many commits of a table, so that opening a table
/// reads `_last_checkpoint`, one checkpoint and fewer than this many commits.
pub const CHECKPOINT_INTERVAL_COMMITS: u64 = 100;
/// How long a checkpoint keeps the remove action of a file removed from the table (Delta's
/// tombstone retention, `delta.deletedFileRetentionDuration`, set on every table ledgerlake
/// creates). A checkpoint holds one remove per file removed within it, and compaction removes a
/// file per segment sealed (one a second on an active stream), so this bounds the checkpoints:
/// about 3,600 tombstones of ~250 B at a segment a second, against 600,000 with Delta's default
/// of 7 days. ledgerlake's own `vacuum` reads the removes from the commits, not from
/// checkpoints; it is also the default retention of other engines' `VACUUM` (docs/DESIGN.md,
/// "The life of a file").
pub const TOMBSTONE_RETENTION: std::time::Duration = std::time::Duration::from_secs(3_600);
/// A table whose tombstone retention is unset or longer than this (a table created before
/// ledgerlake set one, or changed since) makes the exporter warn at start: its checkpoints grow
/// with that much of the lake's compaction history.
pub const TOMBSTONE_RETENTION_WARN: std::time::Duration = std::time::Duration::from_secs(86_400);
/// How many times a commit is retried after losing a race to this same writer's own earlier
/// attempt (an ambiguous failure) before giving up.
const OWN_CONFLICT_RETRIES_MAX: u32 = 3;
/// Worker threads of the runtime that runs the kernel's object store I/O.
const KERNEL_WORKER_THREADS: usize = 2;
/// `engineInfo` of every commit.
fn engine_info() -> String {
    format!("ledgerlake/{}", env!("CARGO_PKG_VERSION"))
}

fn kernel_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(KERNEL_WORKER_THREADS)
            .thread_name("ledgerlake-log")
            .enable_all()
            .build()
            .expect("the log runtime starts (threads and an I/O driver)")
    })
}

type KernelEngine = DefaultEngine<TokioMultiThreadExecutor>;

/// A data file to add in a commit.
#[derive(Debug, Clone)]
pub(crate) struct AddFile {
    /// The file's name inside its partition directory (or the table root, unpartitioned).
    pub name: String,
    /// The `date` partition value (`YYYY-MM-DD`), for partitioned tables.
    pub date: Option<String>,
    pub size: u64,
    pub sha256: [u8; 32],
    /// The file's rows, for the statistics in the add action.
    pub batch: RecordBatch,
}

impl AddFile {
    /// The path of the file relative to its table root (`add.path`).
    pub fn table_path(&self) -> String {
        match &self.date {
            Some(d) => format!("date={d}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One commit to one table.
#[derive(Debug, Clone)]
pub(crate) struct CommitRequest {
    pub table: Table,
    pub adds: Vec<AddFile>,
    /// `add.path`s of active files to remove.
    pub removes: Vec<String>,
    /// The consumer position this commit records (the table's `txn` version).
    pub position: i64,
    /// Whether a table position at or past `position` means this commit was already made (an
    /// append); `false` for commits that may move the position back (orphan removal).
    pub skip_if_covered: bool,
    /// The versions of the other tables this commit is consistent with (`transfers` commits
    /// record the `accounts` and `swept_accounts` versions they follow: time travel reads them).
    pub pins: Option<Pins>,
}

/// What a compaction commit replaced (`commitInfo.ledgerlake.compaction`, schemas/lake.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactionInfo {
    /// Files the commit removes.
    pub removed_files: u64,
    /// Rows of the file it adds (the events, or the deduplicated account records).
    pub rows: u64,
}

/// The kind of a commit: an append (data change, records the position) or a compaction
/// (`dataChange = false`, no position: the table's position stays what it was).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Append,
    Compaction(CompactionInfo),
}

/// The `accounts` and `swept_accounts` versions a `transfers` version follows
/// (`commitInfo.ledgerlake.tableVersions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pins {
    pub accounts: u64,
    pub swept_accounts: u64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    Version(u64),
    /// The table's position already covered the request: nothing was written.
    AlreadyCovered,
}

/// An active file of a table snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveFile {
    /// `add.path`: relative to the table root.
    pub path: String,
    pub size: u64,
    pub date: Option<String>,
}

/// A table version and when it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableVersion {
    pub version: u64,
    /// Commit time, milliseconds since the epoch (the commit's `timestamp`).
    pub timestamp_ms: i64,
}

/// What the writer knows of a table between its commits: the snapshot after its last commit
/// and the position it records, so that a commit needs no log replay (the exporter is the only
/// writer; a commit made by anyone else makes ours conflict, and the cache is then dropped).
#[derive(Clone)]
struct Known {
    snapshot: SnapshotRef,
    position: Option<i64>,
}

/// The log of a lake's three tables.
pub(crate) struct Log {
    engine: Arc<KernelEngine>,
    root: Url,
    writer: String,
    /// The tombstone retention of the tables this log creates (`TOMBSTONE_RETENTION`).
    tombstone_retention: std::time::Duration,
    known: std::sync::Mutex<HashMap<Table, Known>>,
    /// Held across the commits of one multi-commit write (a segment, a compaction).
    writes: tokio::sync::Mutex<()>,
}

fn kernel_err(table: Table, source: delta_kernel::KernelError) -> LakeError {
    LakeError::Log {
        table: table.dir(),
        source: Box::new(source),
    }
}

/// The application id of a table's consumer position.
pub(crate) fn app_id(cluster_id: u128, table: Table) -> String {
    format!("ledgerlake-{cluster_id}-{}", table.dir())
}

/// The Delta schema of a table: its data columns, plus `date` for partitioned tables.
fn delta_schema(table: Table) -> Result<Arc<StructType>, LakeError> {
    let arrow = super::table_arrow_schema(table);
    let base = StructType::try_from_arrow(arrow.as_ref()).map_err(|e| {
        kernel_err(
            table,
            delta_kernel::KernelError::generic(format!("schema: {e}")),
        )
    })?;
    let mut fields: Vec<StructField> = base.fields().cloned().collect();
    if table != Table::SweptAccounts {
        fields.push(StructField::not_null("date", KernelType::DATE));
    }
    StructType::try_new(fields)
        .map(Arc::new)
        .map_err(|e| kernel_err(table, e))
}

fn days_since_epoch(date: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The one-row `commitInfo` contribution: `{"ledgerlake": {...}}` (schemas/lake.md).
fn commit_info(
    writer: &str,
    previous: Option<String>,
    adds: &[AddFile],
    pins: Option<Pins>,
) -> Result<(RecordBatch, Arc<StructType>), arrow::error::ArrowError> {
    commit_info_of_kind(writer, previous, adds, pins, Kind::Append)
}

/// `commitInfo.ledgerlake.compaction`: `{"removedFiles": n, "rows": n}`.
fn compaction_column(info: CompactionInfo) -> Result<(Field, ArrayRef), arrow::error::ArrowError> {
    let fields = Fields::from(vec![
        Field::new("removedFiles", DataType::Int64, false),
        Field::new("rows", DataType::Int64, false),
    ]);
    let array = StructArray::try_new(
        fields.clone(),
        vec![
            Arc::new(Int64Array::from(vec![info.removed_files as i64])) as ArrayRef,
            Arc::new(Int64Array::from(vec![info.rows as i64])),
        ],
        None,
    )?;
    Ok((
        Field::new("compaction", DataType::Struct(fields), false),
        Arc::new(array),
    ))
}

fn commit_info_of_kind(
    writer: &str,
    previous: Option<String>,
    adds: &[AddFile],
    pins: Option<Pins>,
    kind: Kind,
) -> Result<(RecordBatch, Arc<StructType>), arrow::error::ArrowError> {
    let file_fields = Fields::from(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("sha256", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
    ]);
    let files = StructArray::try_new(
        file_fields.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                adds.iter().map(AddFile::table_path),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                adds.iter().map(|a| hex(&a.sha256)),
            )),
            Arc::new(Int64Array::from_iter_values(
                adds.iter().map(|a| a.size as i64),
            )),
        ],
        None,
    )?;
    let item = Arc::new(Field::new("element", DataType::Struct(file_fields), false));
    let list = ListArray::try_new(
        item.clone(),
        OffsetBuffer::from_lengths([adds.len()]),
        Arc::new(files),
        None,
    )?;
    let pin_fields = Fields::from(vec![
        Field::new("accounts", DataType::Int64, false),
        Field::new("swept_accounts", DataType::Int64, false),
    ]);
    let pinned = StructArray::try_new(
        pin_fields.clone(),
        vec![
            Arc::new(Int64Array::from(
                vec![pins.map_or(0, |p| p.accounts as i64)],
            )) as ArrayRef,
            Arc::new(Int64Array::from(vec![
                pins.map_or(0, |p| p.swept_accounts as i64)
            ])),
        ],
        Some(vec![pins.is_some()].into()),
    )?;
    let mut inner_fields = vec![
        Field::new("formatVersion", DataType::Int32, false),
        Field::new("writer", DataType::Utf8, false),
        Field::new("previousCommitSha256", DataType::Utf8, true),
        Field::new("addedFiles", DataType::List(item), false),
        Field::new("tableVersions", DataType::Struct(pin_fields), true),
    ];
    let mut inner_columns = vec![
        Arc::new(Int32Array::from(vec![FORMAT_VERSION as i32])) as ArrayRef,
        Arc::new(StringArray::from(vec![writer])),
        Arc::new(StringArray::from(vec![previous])),
        Arc::new(list),
        Arc::new(pinned),
    ];
    if let Kind::Compaction(info) = kind {
        let (field, column) = compaction_column(info)?;
        inner_fields.push(field);
        inner_columns.push(column);
    }
    let inner_fields = Fields::from(inner_fields);
    let inner = StructArray::try_new(inner_fields.clone(), inner_columns, None)?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "ledgerlake",
        DataType::Struct(inner_fields),
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(inner)])?;
    let kernel_schema = StructType::try_from_arrow(schema.as_ref())?;
    Ok((batch, Arc::new(kernel_schema)))
}

fn collect_file(files: &mut Vec<ActiveFile>, f: ScanFile) {
    files.push(ActiveFile {
        path: f.path,
        size: u64::try_from(f.size).unwrap_or(0),
        date: f.partition_values.get("date").cloned(),
    });
}

/// The raw bytes of commit `version` of the table at `url`.
fn read_commit(
    engine: &dyn Engine,
    url: &Url,
    version: u64,
) -> delta_kernel::KernelResult<Vec<u8>> {
    let file = url.join(&format!("_delta_log/{version:020}.json"))?;
    let mut parts = engine
        .storage_handler()
        .read_files(vec![(file.clone(), None)])?;
    match parts.next() {
        Some(bytes) => Ok(bytes?.to_vec()),
        None => Err(delta_kernel::KernelError::FileNotFound(file.to_string())),
    }
}

/// The `commitInfo` action of a commit's bytes (newline-delimited JSON actions), if any.
fn commit_info_of(commit: &[u8]) -> Option<serde_json::Value> {
    commit
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .find_map(|mut v| v.get_mut("commitInfo").map(serde_json::Value::take))
}

/// The `commitInfo.ledgerlake.tableVersions` of a commit's bytes.
pub(super) fn pins_in(commit: &[u8]) -> Option<Pins> {
    let info = commit_info_of(commit)?;
    let pins = info.get("ledgerlake")?.get("tableVersions")?;
    Some(Pins {
        accounts: pins.get("accounts")?.as_u64()?,
        swept_accounts: pins.get("swept_accounts")?.as_u64()?,
    })
}

/// The `commitInfo.timestamp` of a commit's bytes (0 if it has none).
pub(super) fn commit_timestamp(commit: &[u8]) -> i64 {
    commit_info_of(commit)
        .and_then(|info| info.get("timestamp")?.as_i64())
        .unwrap_or(0)
}

/// The `commitInfo.ledgerlake.writer` of a commit's bytes, if any.
pub(super) fn writer_of(commit: &[u8]) -> Option<String> {
    let info = commit_info_of(commit)?;
    info.get("ledgerlake")?
        .get("writer")?
        .as_str()
        .map(String::from)
}

/// The outcome of one commit attempt inside the kernel.
enum Attempt {
    /// With what is known of the table afterwards.
    Done(Committed, Known),
    /// Another commit took the version first; its writer.
    Conflict {
        version: u64,
        writer: Option<String>,
    },
}

impl Log {
    /// `root` is the lake root as a directory URL (ending in `/`) of `store`, which is the
    /// store's root (not the lake's prefix): the kernel resolves URL paths against it.
    pub fn new(store: Arc<dyn ObjectStore>, root: Url) -> Log {
        assert!(
            root.path().ends_with('/'),
            "the lake root URL is a directory"
        );
        let executor = Arc::new(TokioMultiThreadExecutor::new(
            kernel_runtime().handle().clone(),
        ));
        let engine = DefaultEngineBuilder::new(store)
            .with_task_executor(executor)
            .build();
        let writer = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            crate::timefmt::now_ns()
        );
        Log {
            engine: Arc::new(engine),
            root,
            writer,
            tombstone_retention: TOMBSTONE_RETENTION,
            known: std::sync::Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// Serializes this process's multi-commit writes: a segment's two commits and a
    /// compaction's two commits never interleave (the exporter and its background compactor
    /// share one `Log`). Single commits serialize by themselves: the log is create-only, and a
    /// commit that loses a version to this writer retries.
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    /// Sets the tombstone retention of the tables this log creates from now on (tests and
    /// benchmarks model an hour of a live stream in seconds with it).
    pub fn set_tombstone_retention(&mut self, retention: std::time::Duration) {
        assert!(
            retention.as_secs() > 0 && retention.subsec_nanos() == 0,
            "a tombstone retention of whole seconds"
        );
        self.tombstone_retention = retention;
    }

    /// The table's tombstone retention as its metadata says (`None`: unset, Delta's default of
    /// 7 days applies).
    pub async fn tombstone_retention(
        &self,
        table: Table,
    ) -> Result<Option<std::time::Duration>, LakeError> {
        let snapshot = self.snapshot(table, None).await?;
        Ok(snapshot.table_properties().deleted_file_retention_duration)
    }

    /// Forgets what the writer knew of every table: the next commit reads the log again.
    pub fn forget(&self) {
        self.known.lock().expect("not poisoned").clear();
    }

    fn known(&self, table: Table) -> Option<Known> {
        self.known
            .lock()
            .expect("not poisoned")
            .get(&table)
            .cloned()
    }

    fn set_known(&self, table: Table, known: Option<Known>) {
        let mut map = self.known.lock().expect("not poisoned");
        match known {
            Some(k) => map.insert(table, k),
            None => map.remove(&table),
        };
    }

    /// The table's latest version as the writer knows it (reading the log if it knows nothing).
    pub async fn known_version(&self, table: Table, cluster_id: u128) -> Result<u64, LakeError> {
        if self.known(table).is_none() {
            self.known_position(table, cluster_id).await?;
        }
        Ok(self.known(table).map_or(0, |k| k.snapshot.version()))
    }

    /// The `tableVersions` a commit of `table` recorded (`None`: it recorded none).
    pub async fn pins_of(&self, table: Table, version: u64) -> Result<Option<Pins>, LakeError> {
        let url = self.table_url(table);
        self.run(table, move |engine| {
            let bytes = read_commit(engine, &url, version).map_err(|e| kernel_err(table, e))?;
            Ok(pins_in(&bytes))
        })
        .await
    }

    /// The table's position as the writer knows it (reading the log if it knows nothing).
    pub async fn known_position(
        &self,
        table: Table,
        cluster_id: u128,
    ) -> Result<Option<i64>, LakeError> {
        if let Some(k) = self.known(table) {
            return Ok(k.position);
        }
        let snapshot = self.snapshot(table, None).await?;
        let position = self
            .position(table, snapshot.clone(), app_id(cluster_id, table))
            .await?;
        self.set_known(table, Some(Known { snapshot, position }));
        Ok(position)
    }

    pub fn table_url(&self, table: Table) -> Url {
        self.root
            .join(&format!("{}/", table.dir()))
            .expect("a table directory name is a valid relative URL")
    }

    /// Runs `f` with the engine on a blocking thread of the kernel runtime.
    async fn run<T: Send + 'static>(
        &self,
        table: Table,
        f: impl FnOnce(&KernelEngine) -> Result<T, LakeError> + Send + 'static,
    ) -> Result<T, LakeError> {
        let engine = self.engine.clone();
        kernel_runtime()
            .spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| {
                kernel_err(
                    table,
                    delta_kernel::KernelError::generic(format!("log task failed: {e}")),
                )
            })?
    }

    /// The table's snapshot, latest or at `version`.
    ///
    /// The latest is what this writer knows after its own last commit when it knows one
    /// (`Known`), read without touching the store: the exporter is the lake's one writer, so
    /// that is the latest there is (a commit by anyone else makes this writer's next commit
    /// conflict, and it stops). So the background compactor, which reads the latest snapshots
    /// several times a pass, lists no log: a listing of a local `_delta_log` reads the whole
    /// directory, which grows by a commit a second (BENCHMARKS.md, "a lake that scales with
    /// time"). A process that has not committed (every reading command) builds the snapshot
    /// from the log.
    pub async fn snapshot(
        &self,
        table: Table,
        version: Option<u64>,
    ) -> Result<SnapshotRef, LakeError> {
        if version.is_none() {
            if let Some(known) = self.known(table) {
                return Ok(known.snapshot);
            }
        }
        let url = self.table_url(table);
        self.run(table, move |engine| {
            let mut builder = Snapshot::builder_for(url.as_str());
            if let Some(v) = version {
                builder = builder.at_version(v);
            }
            builder.build(engine).map_err(|e| kernel_err(table, e))
        })
        .await
    }

    /// Creates the table (empty, with the lake's schema and properties) if `exists` is false;
    /// losing a creation race to another process is not an error.
    pub async fn create(&self, table: Table, cluster_id: u128) -> Result<(), LakeError> {
        let url = self.table_url(table);
        if url.scheme() == "file" {
            // The kernel wants a local table directory to exist before its first commit.
            if let Ok(dir) = url.to_file_path() {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    kernel_err(
                        table,
                        delta_kernel::KernelError::generic(format!("{dir:?}: {e}")),
                    )
                })?;
            }
        }
        let schema = delta_schema(table)?;
        let writer = self.writer.clone();
        let retention = format!("interval {} seconds", self.tombstone_retention.as_secs());
        self.run(table, move |engine| {
            let (info, info_schema) = commit_info(&writer, None, &[], None).map_err(|e| {
                kernel_err(table, delta_kernel::KernelError::generic(e.to_string()))
            })?;
            let mut builder = create_table(url.as_str(), schema, engine_info(), true)
                .with_table_properties([
                    ("ledgerlake.formatVersion", FORMAT_VERSION.to_string()),
                    ("ledgerlake.clusterId", cluster_id.to_string()),
                    ("ledgerlake.table", table.dir().to_string()),
                    ("delta.deletedFileRetentionDuration", retention),
                ]);
            if table != Table::SweptAccounts {
                builder = builder.with_data_layout(DataLayout::partitioned(["date"]));
            }
            let txn = builder
                .build(engine, Box::new(FileSystemCommitter::new()))
                .map_err(|e| kernel_err(table, e))?
                .with_commit_info(Box::new(ArrowEngineData::new(info)), info_schema);
            match txn.commit(engine).map_err(|e| kernel_err(table, e))? {
                CommitResult::Committed(_) | CommitResult::Conflicted(_) => Ok(()),
                CommitResult::Retryable(r) => Err(kernel_err(table, r.error)),
            }
        })
        .await
    }

    /// The active files of a snapshot.
    pub async fn active_files(
        &self,
        table: Table,
        snapshot: SnapshotRef,
    ) -> Result<Vec<ActiveFile>, LakeError> {
        self.run(table, move |engine| {
            let scan = snapshot
                .scan_builder()
                .build()
                .map_err(|e| kernel_err(table, e))?;
            let mut files = Vec::new();
            for meta in scan
                .scan_metadata(engine)
                .map_err(|e| kernel_err(table, e))?
            {
                let meta = meta.map_err(|e| kernel_err(table, e))?;
                files = meta
                    .visit_scan_files(files, collect_file)
                    .map_err(|e| kernel_err(table, e))?;
            }
            Ok(files)
        })
        .await
    }

    /// The consumer position a snapshot records for `app`.
    pub async fn position(
        &self,
        table: Table,
        snapshot: SnapshotRef,
        app: String,
    ) -> Result<Option<i64>, LakeError> {
        self.run(table, move |engine| {
            snapshot
                .get_app_id_version(&app, engine)
                .map_err(|e| kernel_err(table, e))
        })
        .await
    }

    /// Every version of a table with its commit time, oldest first (reads each commit's
    /// `commitInfo`: for `ls`, not for the hot path).
    pub async fn versions(
        &self,
        table: Table,
        latest: u64,
    ) -> Result<Vec<TableVersion>, LakeError> {
        let url = self.table_url(table);
        self.run(table, move |engine| {
            let mut out = Vec::new();
            for version in 0..=latest {
                let bytes = read_commit(engine, &url, version).map_err(|e| kernel_err(table, e))?;
                let timestamp_ms = commit_timestamp(&bytes);
                out.push(TableVersion {
                    version,
                    timestamp_ms,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Commits `request` on top of the latest snapshot: the adds (whose data files the caller
    /// has written), the removes, the position and the chained commit info. A table position
    /// already at or past the request's (when `skip_if_covered`) means it was committed before.
    /// Losing the version to another writer is `LakeError::AnotherWriter`.
    pub async fn commit(
        &self,
        request: CommitRequest,
        cluster_id: u128,
    ) -> Result<Committed, LakeError> {
        self.commit_of_kind(request, cluster_id, Kind::Append).await
    }

    /// Commits a compaction: the request's removes and its one add in ONE commit with
    /// `dataChange = false`, `commitInfo.ledgerlake.compaction = info`, and no `txn` action (the
    /// table's consumer position stays what it was). Its `position` and `skip_if_covered` are
    /// ignored. A file to remove that is no longer active is an error (nothing is committed).
    pub async fn commit_compaction(
        &self,
        request: CommitRequest,
        cluster_id: u128,
        info: CompactionInfo,
    ) -> Result<Committed, LakeError> {
        assert_eq!(request.adds.len(), 1, "a compaction adds one file");
        assert!(!request.removes.is_empty(), "a compaction removes files");
        let request = CommitRequest {
            skip_if_covered: false,
            ..request
        };
        self.commit_of_kind(request, cluster_id, Kind::Compaction(info))
            .await
    }

    async fn commit_of_kind(
        &self,
        request: CommitRequest,
        cluster_id: u128,
        kind: Kind,
    ) -> Result<Committed, LakeError> {
        let table = request.table;
        for _ in 0..=OWN_CONFLICT_RETRIES_MAX {
            let request = request.clone();
            let url = self.table_url(table);
            let writer = self.writer.clone();
            let app = app_id(cluster_id, table);
            let known = self.known(table);
            // Until this commit is known to have landed, the cache may be stale.
            self.set_known(table, None);
            let attempt = self
                .run(table, move |engine| {
                    commit_once(engine, &url, &writer, &app, known, request, kind)
                })
                .await?;
            match attempt {
                Attempt::Done(done, known) => {
                    self.set_known(table, Some(known));
                    return Ok(done);
                }
                Attempt::Conflict { version, writer } => {
                    if writer.as_deref() != Some(self.writer.as_str()) {
                        return Err(LakeError::AnotherWriter {
                            table: table.dir(),
                            version,
                            writer: writer.unwrap_or_else(|| "another tool".into()),
                        });
                    }
                    // Our own earlier attempt landed after all: the next attempt sees it.
                }
            }
        }
        Err(kernel_err(
            table,
            delta_kernel::KernelError::generic(
                "commit kept conflicting with this writer's own commits",
            ),
        ))
    }
}

fn commit_once(
    engine: &KernelEngine,
    url: &Url,
    writer: &str,
    app: &str,
    known: Option<Known>,
    request: CommitRequest,
    kind: Kind,
) -> Result<Attempt, LakeError> {
    let table = request.table;
    let err = |e: delta_kernel::KernelError| kernel_err(table, e);
    let known = match known {
        Some(k) => k,
        None => {
            let snapshot = Snapshot::builder_for(url.as_str())
                .build(engine)
                .map_err(err)?;
            let position = snapshot.get_app_id_version(app, engine).map_err(err)?;
            Known { snapshot, position }
        }
    };
    if request.skip_if_covered && known.position.is_some_and(|p| p >= request.position) {
        return Ok(Attempt::Done(Committed::AlreadyCovered, known));
    }
    let position_before = known.position;
    let snapshot = known.snapshot;
    let base = snapshot.version();
    let previous = hex(&sha256(&read_commit(engine, url, base).map_err(err)?));
    let (info, info_schema) =
        commit_info_of_kind(writer, Some(previous), &request.adds, request.pins, kind)
            .map_err(|e| err(delta_kernel::KernelError::generic(e.to_string())))?;

    let (operation, data_change) = match kind {
        Kind::Append => (UpdateTableOperation::Write, true),
        Kind::Compaction(_) => (UpdateTableOperation::Optimize, false),
    };
    let mut txn = snapshot
        .clone()
        .update_table(operation, engine_info(), data_change)
        .build(engine, Box::new(FileSystemCommitter::new()))
        .map_err(err)?;
    if let Kind::Append = kind {
        txn = txn.with_transaction_id(app.to_string(), request.position);
    }
    let mut txn = txn.with_commit_info(Box::new(ArrowEngineData::new(info)), info_schema);

    let write_state = txn.write_state().map_err(err)?;
    for add in &request.adds {
        let mut builder = write_state.write_context_builder();
        if let Some(date) = &add.date {
            let days = days_since_epoch(date).unwrap_or_else(|| panic!("bad date {date:?}"));
            builder = builder
                .with_partition_values(HashMap::from([("date".to_string(), Scalar::Date(days))]));
        }
        let context = builder.build().map_err(err)?;
        let stats = collect_stats(
            &add.batch,
            context.stats_columns(),
            context.physical_data_schema(),
        )
        .map_err(err)?;
        let location = context
            .write_dir()
            .join(&add.name)
            .map_err(|e| err(e.into()))?;
        let path = context.resolve_file_path(&location).map_err(err)?;
        assert_eq!(
            path,
            add.table_path(),
            "the data file was written where the log will point"
        );
        let file = FileMeta::new(location, crate::timefmt::now_ms(), add.size);
        let metadata =
            build_add_file_metadata(DataFileMetadata::new(file, stats), &context).map_err(err)?;
        txn.add_files(metadata);
    }

    if !request.removes.is_empty() {
        let wanted: HashSet<&str> = request.removes.iter().map(String::as_str).collect();
        let mut found = 0usize;
        let scan = snapshot.clone().scan_builder().build().map_err(err)?;
        for meta in scan.scan_metadata(engine).map_err(err)? {
            let scan_files = meta.map_err(err)?.scan_files;
            let (data, selection) = scan_files.into_parts();
            let paths = file_paths(data.as_ref()).map_err(err)?;
            let keep: Vec<bool> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    selection.get(i).copied().unwrap_or(true) && wanted.contains(p.as_str())
                })
                .collect();
            found += keep.iter().filter(|&&k| k).count();
            let data = without_stats(data).map_err(err)?;
            txn.remove_files(FilteredEngineData::try_new(data, keep).map_err(err)?);
        }
        if let Kind::Compaction(_) = kind {
            if found != wanted.len() {
                return Err(err(delta_kernel::KernelError::generic(format!(
                    "{} of the {} files to compact are no longer active",
                    wanted.len() - found,
                    wanted.len()
                ))));
            }
        }
        assert_eq!(found, wanted.len(), "every file to remove is active");
    }

    match txn.commit(engine).map_err(err)? {
        CommitResult::Committed(done) => {
            let version = done.commit_version();
            let post = match done.post_commit_snapshot() {
                Some(post) => post.clone(),
                None => Snapshot::builder_for(url.as_str())
                    .at_version(version)
                    .build(engine)
                    .map_err(err)?,
            };
            let post = if version % CHECKPOINT_INTERVAL_COMMITS == 0 {
                post.checkpoint(engine, None).map_err(err)?.1
            } else {
                post
            };
            let position = match kind {
                Kind::Append => Some(request.position),
                Kind::Compaction(_) => position_before,
            };
            let known = Known {
                snapshot: post,
                position,
            };
            Ok(Attempt::Done(Committed::Version(version), known))
        }
        CommitResult::Conflicted(c) => {
            let version = c.conflict_version();
            let writer = read_commit(engine, url, version)
                .ok()
                .and_then(|b| writer_of(&b));
            Ok(Attempt::Conflict { version, writer })
        }
        CommitResult::Retryable(r) => Err(err(r.error)),
    }
}

/// Scan-file rows with their `stats` column null, for remove actions: the Delta protocol makes a
/// remove's statistics optional, no reader of a table uses them, and every checkpoint repeats
/// the remove of every file removed within the tombstone retention, so statistics there (about
/// 2.5 KB per file with 39 columns) would make the checkpoints grow by that much per removed file.
fn without_stats(
    data: Box<dyn delta_kernel::EngineData>,
) -> delta_kernel::KernelResult<Box<dyn delta_kernel::EngineData>> {
    let batch: RecordBatch = (*ArrowEngineData::try_from_engine_data(data)?).into();
    let schema = batch.schema();
    let Ok(i) = schema.index_of("stats") else {
        return Ok(Box::new(ArrowEngineData::new(batch)));
    };
    let mut columns = batch.columns().to_vec();
    columns[i] = arrow::array::new_null_array(schema.field(i).data_type(), batch.num_rows());
    let batch = RecordBatch::try_new(schema, columns)?;
    Ok(Box::new(ArrowEngineData::new(batch)))
}

/// The `path` column of scan-file rows.
fn file_paths(data: &dyn delta_kernel::EngineData) -> delta_kernel::KernelResult<Vec<String>> {
    let arrow = data
        .any_ref()
        .downcast_ref::<ArrowEngineData>()
        .ok_or_else(|| delta_kernel::KernelError::generic("scan files are not Arrow data"))?;
    let batch = arrow.record_batch();
    let column = batch
        .column_by_name("path")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| delta_kernel::KernelError::generic("scan files have no path column"))?;
    Ok(column
        .iter()
        .map(|p| p.unwrap_or_default().to_string())
        .collect())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string())
}
