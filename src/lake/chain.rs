//! Tamper evidence, the reading side: checks each table's chained Delta log (schemas/lake.md,
//! "Tamper evidence: a chained log") straight from the object store, without the Delta reader,
//! so that what it trusts is only the bytes of the log and of the data files.
//!
//! For every table it reads the JSON commits in version order, `COMMIT_READS_IN_FLIGHT_MAX` at
//! a time (bounded memory: a commit file over `COMMIT_BYTES_MAX` is a problem, not a read), each
//! hashed once, checks that versions run 0, 1, 2, … without a gap, that each commit's `commitInfo.ledgerlake.previousCommitSha256` is the SHA-256 of the
//! previous commit's bytes, and that its `addedFiles` list exactly its `add` actions. Then it
//! hashes every active data file (added and not removed since), streaming, with at most
//! `HASHES_IN_FLIGHT_MAX` objects read at once, and compares digest and size with the log;
//! and it names every object under the table that no `add` action names. Checkpoints
//! (`<v>.checkpoint.parquet`, `_last_checkpoint`) are derived from the commits and are not part
//! of the chain, but readers start from them: each of the newest `CHECKPOINTS_CHECKED_MAX`
//! must list exactly the files the chain has active at its version (`checkpoint`).
//!
//! Started from a head an earlier check recorded (`ChainStart`: the head's version and digest
//! and the files active then), it reads only the head commit (which must still hash to the
//! recorded digest) and the commits after it; see `check_chain_from` for what that proves less.
//!
//! What it finds wrong is a `ChainProblem` in the report (naming table, version and file); only
//! a failing object store (listing, or a read that is not "not found") is an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use serde_with::{serde_as, DisplayFromStr};
use sha2::{Digest, Sha256};

use super::{Lake, LakeError};

mod checkpoint;
mod files;
mod log;
use checkpoint::{CheckpointName, CHECKPOINTS_CHECKED_MAX, CHECKPOINT_BYTES_MAX};
use files::DataFiles;
pub(crate) use log::data_object;
use log::{log_object, Active, LogObject, Walk};

/// The lake's tables, each a Delta table with a chained log, in the order they are checked.
pub const CHAIN_TABLES: [&str; 3] = ["transfers", "accounts", "swept_accounts"];
/// A commit file larger than this is not read (a commit of one segment is a few KiB).
pub const COMMIT_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Data files hashed at once (each a streaming read of one object).
pub const HASHES_IN_FLIGHT_MAX: usize = 8;
/// Commit files read ahead of the one being checked (each at most `COMMIT_BYTES_MAX`; a commit
/// of one segment is a few KiB).
pub const COMMIT_READS_IN_FLIGHT_MAX: usize = 16;
/// The first format whose commits carry `commitInfo.ledgerlake`.
pub const CHAIN_FORMAT_VERSION_MIN: u32 = 2;
/// The directory of a Delta table's log.
pub const LOG_DIR: &str = "_delta_log";

/// The chain of every table of the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub tables: Vec<TableChain>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.tables.iter().all(|t| t.problems.is_empty())
    }

    pub fn problems(&self) -> impl Iterator<Item = &ChainProblem> {
        self.tables.iter().flat_map(|t| t.problems.iter())
    }

    /// Whether any table has a log object at all (a format-1 lake has none).
    pub fn has_log(&self) -> bool {
        self.tables.iter().any(|t| t.log_objects > 0)
    }
}

/// One table's chain.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableChain {
    pub table: String,
    /// Commit files found.
    #[serde_as(as = "DisplayFromStr")]
    pub versions: u64,
    /// The newest commit's version.
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub head_version: Option<u64>,
    /// The SHA-256 (hex) of the newest commit's bytes: recorded by an auditor, it proves later
    /// that no commit up to it, and no data file they name, has changed since.
    pub head_sha256: Option<String>,
    /// Data files added and not removed since.
    #[serde_as(as = "DisplayFromStr")]
    pub active_files: u64,
    /// Objects in the log directory: commits, checkpoints and anything else.
    #[serde_as(as = "DisplayFromStr")]
    pub log_objects: u64,
    /// Checkpoints compared with the chain (the newest `CHECKPOINTS_CHECKED_MAX` the walk
    /// passed).
    #[serde_as(as = "DisplayFromStr")]
    pub checkpoints_checked: u64,
    /// Older checkpoints, and with a recorded head those before it: not read.
    #[serde_as(as = "DisplayFromStr")]
    pub checkpoints_not_checked: u64,
    /// The data files active at the head, with the digest and size the log records, sorted by
    /// path: what a later check started from this head (`ChainStart`) takes as proven.
    pub files: Vec<ChainFile>,
    /// The version the walk started from (`None`: version 0, every commit read).
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub since_version: Option<u64>,
    /// Started from a head: objects no walked commit names whose range lies before that head's
    /// newest file, not checked (the files of compactions before the head that are still in the
    /// store look the same; a full check names them).
    #[serde_as(as = "DisplayFromStr")]
    pub objects_not_checked: u64,
    pub problems: Vec<ChainProblem>,
    /// Data files written before a commit that never happened (`FileUncommitted`): named, but
    /// not problems.
    pub notes: Vec<ChainProblem>,
}

/// A data file active at a table's head, as the log records it.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainFile {
    /// The path as the log's `add` action writes it (relative to the table).
    pub path: String,
    /// The commit that added it.
    #[serde_as(as = "DisplayFromStr")]
    pub version: u64,
    /// Its SHA-256 (hex) and size, from that commit's `addedFiles`.
    pub sha256: String,
    #[serde_as(as = "DisplayFromStr")]
    pub size: u64,
    /// Its `date` partition value (`transfers`, `accounts`); absent in reports of an older
    /// ledgerlake.
    #[serde(default)]
    pub date: Option<String>,
}

/// Where a table's walk starts instead of version 0: a head an earlier full check recorded,
/// with the files active at it. Trusted as given (the auditor keeps it outside the lake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStart {
    pub head_version: u64,
    pub head_sha256: String,
    pub files: Vec<ChainFile>,
}

/// What a chain problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainCheck {
    /// A version below the newest has no commit file (a removed commit).
    MissingCommit,
    /// A commit file that cannot be read as newline-delimited JSON actions, or over
    /// `COMMIT_BYTES_MAX`.
    UnreadableCommit,
    /// A commit without a valid `commitInfo.ledgerlake` (written by another tool or edited), or
    /// of a format this ledgerlake does not know.
    NotChained,
    /// `previousCommitSha256` is not the digest of the previous commit: that commit was
    /// rewritten (or this link was).
    BrokenLink,
    /// An `add` not in the commit's `addedFiles`, an `addedFiles` entry without its `add`, or
    /// the two disagreeing on the size.
    AddedFilesMismatch,
    /// An active data file whose bytes are not those the log recorded (digest or size).
    FileAltered,
    /// An active data file that is not in the store.
    FileMissing,
    /// An object under the table that no `add` action names.
    FileUnreferenced,
    /// An object no `add` names, but named like a data file and holding the bytes its name's
    /// digest says: a data file written before a commit that never happened (a crash). Not
    /// part of the table, and not a problem: reported as a note.
    FileUncommitted,
    /// An `add` or `remove` path that does not name an object under the table.
    BadPath,
    /// An object in the log directory that is neither a commit nor a checkpoint.
    UnexpectedLogObject,
    /// A compaction commit (removes files, adds one) whose added file does not hold exactly
    /// the rows of the files it removes.
    CompactionMismatch,
    /// Started from a recorded head: the commit at that version is missing or no longer hashes
    /// to the recorded digest (the log was rewritten at or before the head).
    HeadChanged,
    /// A checkpoint that does not list exactly the files the chain has active at its version,
    /// cannot be read, has a version no commit has, or is of a form ledgerlake never writes
    /// (multi-part, V2): readers starting from it could see another table.
    CheckpointMismatch,
}

impl ChainCheck {
    pub fn name(self) -> &'static str {
        match self {
            ChainCheck::MissingCommit => "missing_commit",
            ChainCheck::UnreadableCommit => "unreadable_commit",
            ChainCheck::NotChained => "not_chained",
            ChainCheck::BrokenLink => "broken_link",
            ChainCheck::AddedFilesMismatch => "added_files_mismatch",
            ChainCheck::FileAltered => "file_altered",
            ChainCheck::FileMissing => "file_missing",
            ChainCheck::FileUnreferenced => "file_unreferenced",
            ChainCheck::FileUncommitted => "file_uncommitted",
            ChainCheck::BadPath => "bad_path",
            ChainCheck::UnexpectedLogObject => "unexpected_log_object",
            ChainCheck::CompactionMismatch => "compaction_mismatch",
            ChainCheck::HeadChanged => "head_changed",
            ChainCheck::CheckpointMismatch => "checkpoint_mismatch",
        }
    }
}

impl fmt::Display for ChainCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One break, with the place to look at.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    pub table: String,
    /// The commit concerned: the one that breaks (a link, a missing version) or that added the
    /// data file; none for an object no commit names.
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub version: Option<u64>,
    /// The object, relative to the lake root: a commit file or a data file.
    pub file: String,
    pub check: ChainCheck,
    pub detail: String,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(
                f,
                "{} version {v}: {}: {}",
                self.table, self.file, self.detail
            ),
            None => write!(f, "{}: {}: {}", self.table, self.file, self.detail),
        }
    }
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The path of commit `version` of `table`, relative to the lake root.
pub fn commit_path(table: &str, version: u64) -> Path {
    Path::from(format!("{table}/{LOG_DIR}/{version:020}.json"))
}

/// Checks one commit of `table` on its own (its actions, its `commitInfo.ledgerlake`, its link
/// to `previous_sha256`, its `addedFiles`), as `check_table_chain` checks each commit.
pub(super) fn check_one_commit(
    table: &str,
    version: u64,
    commit: &[u8],
    previous_sha256: Option<&str>,
) -> Vec<ChainProblem> {
    let mut walk = Walk {
        table,
        active: HashMap::new(),
        named: HashSet::new(),
        problems: Vec::new(),
        compactions: Vec::new(),
    };
    walk.commit(version, commit, previous_sha256);
    walk.problems
}

impl Lake {
    /// Checks the chained log of every table (see the module comment). Problems are in the
    /// report; an error means the store could not be read.
    pub async fn check_chain(&self) -> Result<ChainReport, LakeError> {
        self.check_chain_from(&HashMap::new()).await
    }

    /// `check_chain`, each table in `starts` from its recorded head instead of version 0: the
    /// head commit must still hash to the recorded digest, and only the commits after it are
    /// read (linked to that digest, checked as in a full walk); the files active at the head
    /// are taken from the start, and the active files at the end are hashed as in a full walk.
    /// What this does not prove, and a full check does: that the commits before the head are
    /// unchanged (only the head itself is hashed), that the compactions before the head hold
    /// their removed files' rows, and that no object older than the head's newest file is
    /// unnamed (such objects are counted in `objects_not_checked`).
    pub async fn check_chain_from(
        &self,
        starts: &HashMap<String, ChainStart>,
    ) -> Result<ChainReport, LakeError> {
        let mut tables = Vec::with_capacity(CHAIN_TABLES.len());
        for table in CHAIN_TABLES {
            tables.push(
                self.check_table_chain_from(table, starts.get(table))
                    .await?,
            );
        }
        self.check_pinned_versions(&mut tables).await?;
        Ok(ChainReport { tables })
    }

    /// The newest transfers commit records the `accounts` and `swept_accounts` versions it was
    /// committed after (`commitInfo.ledgerlake.tableVersions`). A table whose log ends below
    /// its pinned version lost its newest commits, which its own chain cannot show: no later
    /// commit of it is left to break a link. (The tables are listed transfers first and a writer
    /// commits the others before the transfers commit, so a live export never trips this.)
    async fn check_pinned_versions(&self, tables: &mut [TableChain]) -> Result<(), LakeError> {
        let Some(head) = tables
            .iter()
            .find(|t| t.table == "transfers")
            .and_then(|t| t.head_version)
        else {
            return Ok(());
        };
        let path = commit_path("transfers", head);
        let bytes = match self.store.get(&path).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            // Reported by the transfers chain.
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        let Some(pins) = super::log::pins_in(&bytes) else {
            return Ok(());
        };
        for (name, pinned) in [
            ("accounts", pins.accounts),
            ("swept_accounts", pins.swept_accounts),
        ] {
            let Some(chain) = tables.iter_mut().find(|t| t.table == name) else {
                continue;
            };
            if chain.head_version.is_some_and(|h| h >= pinned) {
                continue;
            }
            let missing = chain.head_version.map_or(0, |h| h + 1);
            let ends = chain.head_version.map_or("has no commit".to_string(), |h| {
                format!("ends at version {h}")
            });
            chain.problems.push(ChainProblem {
                table: name.to_string(),
                version: Some(missing),
                file: commit_path(name, missing).to_string(),
                check: ChainCheck::MissingCommit,
                detail: format!(
                    "transfers version {head} was committed after {name} version {pinned}, but \
                     the {name} log {ends}: its newest commits were removed"
                ),
            });
        }
        Ok(())
    }

    /// Whether any table directory holds an object (a log or a data file, committed or not).
    /// Lists at most one object per table.
    pub async fn holds_table_objects(&self) -> Result<bool, LakeError> {
        for table in CHAIN_TABLES {
            let dir = Path::from(table);
            match self.store.list(Some(&dir)).next().await {
                None => {}
                Some(Ok(_)) => return Ok(true),
                Some(Err(e)) => return Err(LakeError::store(&dir, e)),
            }
        }
        Ok(false)
    }

    /// Checks one table's chain from version 0.
    pub async fn check_table_chain(&self, table: &str) -> Result<TableChain, LakeError> {
        self.check_table_chain_from(table, None).await
    }

    /// Checks one table's chain, from version 0 or from a recorded head (`start`).
    pub async fn check_table_chain_from(
        &self,
        table: &str,
        start: Option<&ChainStart>,
    ) -> Result<TableChain, LakeError> {
        let dir = Path::from(table);
        let log_prefix = Path::from_iter([table, LOG_DIR]);
        let mut commits: BTreeMap<u64, ObjectMeta> = BTreeMap::new();
        let mut checkpoints: BTreeMap<u64, ObjectMeta> = BTreeMap::new();
        let mut data: BTreeMap<Path, ObjectMeta> = BTreeMap::new();
        let mut walk = Walk {
            table,
            active: HashMap::new(),
            named: HashSet::new(),
            problems: Vec::new(),
            compactions: Vec::new(),
        };
        let mut log_objects = 0;
        for object in self.list(Some(&dir)).await? {
            let Some(rest) = object.location.prefix_match(&log_prefix) else {
                data.insert(object.location.clone(), object);
                continue;
            };
            log_objects += 1;
            let name = rest
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/");
            match log_object(&name) {
                LogObject::Commit(v) => {
                    commits.insert(v, object);
                }
                LogObject::Derived => match checkpoint::checkpoint_name(&name) {
                    Some(CheckpointName::Classic(v)) => {
                        checkpoints.insert(v, object);
                    }
                    Some(CheckpointName::Other(v)) => walk.problem(
                        Some(v),
                        object.location.to_string(),
                        ChainCheck::CheckpointMismatch,
                        "a multi-part or V2 checkpoint, which ledgerlake never writes: readers \
                         may take the table from it, and it is not checked against the chain"
                            .to_string(),
                    ),
                    None => {}
                },
                LogObject::Unexpected => walk.problem(
                    None,
                    object.location.to_string(),
                    ChainCheck::UnexpectedLogObject,
                    "neither a commit nor a checkpoint: not part of the log".to_string(),
                ),
            }
        }

        // Where the walk starts: version 0, or the recorded head (its files active, its digest
        // the link the next commit must name).
        let mut expected = 0;
        let mut previous: Option<String> = None;
        let mut head_sha256 = None;
        if let Some(start) = start {
            expected = start.head_version;
            for f in &start.files {
                let Some(object) = data_object(table, &f.path) else {
                    let detail =
                        format!("the recorded head names {:?}: no file of the table", f.path);
                    walk.problem(
                        Some(f.version),
                        format!("{table}/{}", f.path),
                        ChainCheck::BadPath,
                        detail,
                    );
                    continue;
                };
                walk.named.insert(object.clone());
                walk.active.insert(
                    f.path.clone(),
                    Active {
                        version: f.version,
                        object,
                        recorded: Some((f.sha256.to_ascii_lowercase(), f.size)),
                        date: f.date.clone(),
                    },
                );
            }
            let head = start.head_version;
            if !commits.contains_key(&head) {
                let detail = format!(
                    "the recorded head (version {head}, SHA-256 {}) is not in the log",
                    start.head_sha256
                );
                let file = commit_path(table, head).to_string();
                walk.problem(Some(head), file, ChainCheck::HeadChanged, detail);
                expected = head + 1;
                previous = Some(start.head_sha256.to_ascii_lowercase());
            }
        }
        // The checkpoints compared with the chain: the newest few at or after the start, each
        // with the files the chain has active at its version, taken as the walk passes it.
        let checked: BTreeMap<u64, ObjectMeta> = checkpoints
            .range(expected..)
            .rev()
            .take(CHECKPOINTS_CHECKED_MAX)
            .map(|(&v, meta)| (v, meta.clone()))
            .collect();
        let checkpoints_not_checked = (checkpoints.len() - checked.len()) as u64;
        let mut active_at: BTreeMap<u64, HashSet<Path>> = BTreeMap::new();
        let to_read: Vec<(u64, ObjectMeta)> = commits
            .range(expected..)
            .map(|(&v, meta)| (v, meta.clone()))
            .collect();
        let mut reads = futures::stream::iter(to_read)
            .map(|(version, meta)| async move {
                let read = self.fetch_commit(&meta).await;
                (version, meta, read)
            })
            .buffered(COMMIT_READS_IN_FLIGHT_MAX);
        while let Some((version, meta, read)) = reads.next().await {
            if version > expected {
                let detail = if version - expected == 1 {
                    format!("commit {expected} is missing")
                } else {
                    format!("commits {expected}..={} are missing", version - 1)
                };
                let file = commit_path(table, expected).to_string();
                walk.problem(Some(expected), file, ChainCheck::MissingCommit, detail);
                previous = None;
            }
            expected = version + 1;
            let file = meta.location.to_string();
            let bytes = match read? {
                Ok(bytes) => bytes,
                Err((check, detail)) => {
                    walk.problem(Some(version), file, check, detail);
                    head_sha256 = None;
                    previous = None;
                    continue;
                }
            };
            let digest = sha256_hex(&bytes);
            head_sha256 = Some(digest.clone());
            match start.filter(|s| s.head_version == version) {
                // The recorded head: its files are the recorded ones; only its bytes are
                // checked, and the next commit must link to what was recorded.
                Some(s) => {
                    let recorded = s.head_sha256.to_ascii_lowercase();
                    if digest != recorded {
                        let detail = format!(
                            "the recorded head hashes to {digest}, not to the recorded \
                             {recorded}: it was rewritten"
                        );
                        walk.problem(Some(version), file, ChainCheck::HeadChanged, detail);
                    }
                    previous = Some(recorded);
                }
                None => {
                    walk.commit(version, &bytes, previous.as_deref());
                    previous = Some(digest);
                }
            }
            // After a missing or unreadable commit the set is not known (already a problem).
            let known = !walk.problems.iter().any(|p| {
                matches!(
                    p.check,
                    ChainCheck::MissingCommit | ChainCheck::UnreadableCommit
                )
            });
            if known && checked.contains_key(&version) {
                let active = walk.active.values().map(|a| a.object.clone()).collect();
                active_at.insert(version, active);
            }
        }
        let checkpoints_checked = self
            .check_checkpoints(&checked, &commits, &active_at, &mut walk)
            .await?;
        let head_version = commits.keys().next_back().copied();

        let DataFiles {
            files,
            active_files,
            problems,
            notes,
            objects_not_checked,
        } = self
            .check_data_files(table, &data, &mut walk, start)
            .await?;
        walk.problems.extend(problems);
        Ok(TableChain {
            table: table.to_string(),
            versions: commits.len() as u64,
            head_version,
            head_sha256,
            active_files,
            log_objects,
            checkpoints_checked,
            checkpoints_not_checked,
            files,
            since_version: start.map(|s| s.head_version),
            objects_not_checked,
            problems: walk.problems,
            notes,
        })
    }

    /// Compares each checkpoint in `checked` with the files the chain had active at its
    /// version (`active_at`, taken during the walk); returns how many were compared. One of a
    /// version beyond the newest commit is a problem; one the walk has no set for (a missing
    /// or unreadable commit at or before it) is left to the problem that commit already is.
    async fn check_checkpoints(
        &self,
        checked: &BTreeMap<u64, ObjectMeta>,
        commits: &BTreeMap<u64, ObjectMeta>,
        active_at: &BTreeMap<u64, HashSet<Path>>,
        walk: &mut Walk<'_>,
    ) -> Result<u64, LakeError> {
        let mut compared = 0;
        for (&version, meta) in checked {
            let file = meta.location.to_string();
            let mismatch = |walk: &mut Walk<'_>, detail: String| {
                walk.problem(
                    Some(version),
                    file.clone(),
                    ChainCheck::CheckpointMismatch,
                    detail,
                )
            };
            let Some(active) = active_at.get(&version) else {
                if commits
                    .keys()
                    .next_back()
                    .is_none_or(|&head| version > head)
                {
                    let detail = format!(
                        "a checkpoint of version {version}, beyond the newest commit: readers \
                         may take the table from it"
                    );
                    mismatch(walk, detail);
                }
                continue;
            };
            if meta.size > CHECKPOINT_BYTES_MAX {
                let detail = format!(
                    "{} bytes, over the limit of {CHECKPOINT_BYTES_MAX} bytes for a checkpoint: \
                     not checked",
                    meta.size
                );
                mismatch(walk, detail);
                continue;
            }
            let bytes = match self.store.get(&meta.location).await {
                Ok(result) => result.bytes().await,
                Err(e) => Err(e),
            };
            let bytes = match bytes {
                Ok(bytes) => bytes,
                // Replaced by a newer one (a writer) or deleted (vacuum) since the listing.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(LakeError::store(&meta.location, e)),
            };
            compared += 1;
            match checkpoint::added_objects(walk.table, bytes) {
                Ok(listed) => {
                    if let Some(detail) = checkpoint::difference(active, &listed) {
                        mismatch(walk, detail);
                    }
                }
                Err(reason) => mismatch(walk, format!("not a readable checkpoint: {reason}")),
            }
        }
        Ok(compared)
    }

    /// Reads one commit file: its bytes, or what makes it a problem (over the size limit,
    /// vanished since the listing).
    async fn fetch_commit(
        &self,
        meta: &ObjectMeta,
    ) -> Result<Result<bytes::Bytes, (ChainCheck, String)>, LakeError> {
        if meta.size > COMMIT_BYTES_MAX {
            let detail = format!(
                "{} bytes, over the limit of {COMMIT_BYTES_MAX} bytes for a commit",
                meta.size
            );
            return Ok(Err((ChainCheck::UnreadableCommit, detail)));
        }
        let bytes = match self.store.get(&meta.location).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => {
                let detail = "vanished while the log was read".to_string();
                return Ok(Err((ChainCheck::MissingCommit, detail)));
            }
            Err(e) => return Err(LakeError::store(&meta.location, e)),
        };
        if bytes.len() as u64 > COMMIT_BYTES_MAX {
            let detail = format!("over the limit of {COMMIT_BYTES_MAX} bytes for a commit");
            return Ok(Err((ChainCheck::UnreadableCommit, detail)));
        }
        Ok(Ok(bytes))
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
