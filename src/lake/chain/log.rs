//! One table's log, commit by commit: which objects of the log directory are commits, what an
//! `add` path names, and the checks of one commit against the one before it (its link, its
//! `addedFiles`), keeping the set of active files for the data-file checks.

use std::collections::{HashMap, HashSet};

use object_store::path::{Path, PathPart};
use serde::Deserialize;

use super::{commit_path, ChainCheck, ChainProblem, CHAIN_FORMAT_VERSION_MIN};
use crate::lake::compact::CompactionCommit;

// The parts of the log this check reads; serde skips every other field and action.

#[derive(Deserialize)]
struct Action {
    add: Option<FileAction>,
    remove: Option<FileAction>,
    #[serde(rename = "commitInfo")]
    commit_info: Option<CommitInfo>,
}

#[derive(Deserialize)]
struct FileAction {
    path: String,
    size: Option<u64>,
    #[serde(rename = "partitionValues")]
    partition_values: Option<HashMap<String, Option<String>>>,
}

#[derive(Deserialize)]
struct CommitInfo {
    ledgerlake: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LedgerlakeInfo {
    format_version: u32,
    previous_commit_sha256: Option<String>,
    added_files: Vec<AddedFile>,
}

#[derive(Deserialize)]
struct AddedFile {
    path: String,
    sha256: String,
    size: u64,
}

/// What a log directory entry is.
pub(super) enum LogObject {
    Commit(u64),
    /// Checkpoints, `_last_checkpoint`, version checksums, log compactions: derived.
    Derived,
    Unexpected,
}

pub(super) fn is_version(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn log_object(name: &str) -> LogObject {
    if let Some(v) = name.strip_suffix(".json").filter(|v| is_version(v)) {
        return match v.parse() {
            Ok(v) => LogObject::Commit(v),
            Err(_) => LogObject::Unexpected,
        };
    }
    let derived = name == "_last_checkpoint"
        || name.starts_with("_sidecars/")
        || name.split_once('.').is_some_and(|(v, rest)| {
            is_version(v)
                && (rest == "crc"
                    || (rest.starts_with("checkpoint.")
                        && (rest.ends_with(".parquet") || rest.ends_with(".json")))
                    || (rest.ends_with(".compacted.json")))
        });
    if derived {
        LogObject::Derived
    } else {
        LogObject::Unexpected
    }
}

/// Decodes `%XX` escapes (an `add.path` is a relative URI); `None` if malformed.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The object an `add`/`remove` path names, under `table`; `None` if it names none (an
/// absolute URI, an empty, `.` or `..` segment, a bad escape).
pub(crate) fn data_object(table: &str, add_path: &str) -> Option<Path> {
    if add_path.contains("://") || add_path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode(add_path)?;
    let segments: Vec<&str> = decoded.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return None;
    }
    Some(Path::from_iter(
        std::iter::once(PathPart::from(table)).chain(segments.into_iter().map(PathPart::from)),
    ))
}

/// An active data file, as the log records it.
pub(super) struct Active {
    pub(super) version: u64,
    pub(super) object: Path,
    /// `(sha256, size)` from `addedFiles`; none if the adding commit had no valid record.
    pub(super) recorded: Option<(String, u64)>,
    /// `add.partitionValues.date` (the date-partitioned tables).
    pub(super) date: Option<String>,
}

/// One table's walk through its log.
pub(super) struct Walk<'a> {
    pub(super) table: &'a str,
    /// By `add.path`.
    pub(super) active: HashMap<String, Active>,
    /// Every object some `add` named (active or removed since).
    pub(super) named: HashSet<Path>,
    pub(super) problems: Vec<ChainProblem>,
    /// Commits that remove files and add some (compactions), for the content check.
    pub(super) compactions: Vec<CompactionCommit>,
}

impl Walk<'_> {
    pub(super) fn problem(
        &mut self,
        version: Option<u64>,
        file: String,
        check: ChainCheck,
        detail: String,
    ) {
        self.problems.push(ChainProblem {
            table: self.table.to_string(),
            version,
            file,
            check,
            detail,
        });
    }

    /// Checks commit `version` (its `bytes`) against the previous commit's digest, and applies
    /// its `add` and `remove` actions.
    pub(super) fn commit(&mut self, version: u64, bytes: &[u8], previous_sha256: Option<&str>) {
        let file = commit_path(self.table, version).to_string();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        let mut infos = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Action>(line) {
                Ok(action) => {
                    adds.extend(action.add);
                    removes.extend(action.remove);
                    infos.extend(action.commit_info);
                }
                Err(e) => {
                    let detail = format!("line {} is not a Delta action: {e}", i + 1);
                    self.problem(Some(version), file, ChainCheck::UnreadableCommit, detail);
                    return;
                }
            }
        }
        if !adds.is_empty() && !removes.is_empty() {
            let objects = |files: &[FileAction]| -> Vec<Path> {
                files
                    .iter()
                    .filter_map(|f| data_object(self.table, &f.path))
                    .collect()
            };
            self.compactions.push(CompactionCommit {
                version,
                removed: objects(&removes),
                added: objects(&adds),
            });
        }
        let info = self.ledgerlake_info(version, &file, infos);
        if let Some(info) = &info {
            self.check_link(version, &file, info, previous_sha256);
            self.check_added_files(version, &adds, info);
        }
        for remove in removes {
            if data_object(self.table, &remove.path).is_none() {
                let detail = format!("remove path {:?} names no file of the table", remove.path);
                self.problem(Some(version), file.clone(), ChainCheck::BadPath, detail);
            }
            self.active.remove(&remove.path);
        }
        for add in adds {
            let Some(object) = data_object(self.table, &add.path) else {
                let detail = format!("add path {:?} names no file of the table", add.path);
                self.problem(Some(version), file.clone(), ChainCheck::BadPath, detail);
                continue;
            };
            let recorded = info.as_ref().and_then(|i| {
                i.added_files
                    .iter()
                    .find(|f| f.path == add.path)
                    .map(|f| (f.sha256.to_ascii_lowercase(), f.size))
            });
            self.named.insert(object.clone());
            let date = add
                .partition_values
                .and_then(|mut p| p.remove("date"))
                .flatten();
            self.active.insert(
                add.path,
                Active {
                    version,
                    object,
                    recorded,
                    date,
                },
            );
        }
    }

    fn ledgerlake_info(
        &mut self,
        version: u64,
        file: &str,
        infos: Vec<CommitInfo>,
    ) -> Option<LedgerlakeInfo> {
        let mut infos = infos.into_iter();
        let (first, more) = (infos.next(), infos.next());
        if more.is_some() {
            let detail = "more than one commitInfo action".to_string();
            self.problem(Some(version), file.into(), ChainCheck::NotChained, detail);
            return None;
        }
        let Some(value) = first.and_then(|c| c.ledgerlake) else {
            let detail = "no commitInfo.ledgerlake: not written by ledgerlake (another tool or a \
                          hand edit), so the chain cannot vouch for it"
                .to_string();
            self.problem(Some(version), file.into(), ChainCheck::NotChained, detail);
            return None;
        };
        let info = match serde_json::from_value::<LedgerlakeInfo>(value) {
            Ok(info) => info,
            Err(e) => {
                let detail = format!("commitInfo.ledgerlake is malformed: {e}");
                self.problem(Some(version), file.into(), ChainCheck::NotChained, detail);
                return None;
            }
        };
        let newest = crate::lake::FORMAT_VERSION.max(CHAIN_FORMAT_VERSION_MIN);
        if !(CHAIN_FORMAT_VERSION_MIN..=newest).contains(&info.format_version) {
            let detail = format!(
                "commitInfo.ledgerlake.formatVersion is {}; this ledgerlake checks {}..={newest}",
                info.format_version, CHAIN_FORMAT_VERSION_MIN
            );
            self.problem(Some(version), file.into(), ChainCheck::NotChained, detail);
            return None;
        }
        Some(info)
    }

    fn check_link(
        &mut self,
        version: u64,
        file: &str,
        info: &LedgerlakeInfo,
        previous_sha256: Option<&str>,
    ) {
        let recorded = info
            .previous_commit_sha256
            .as_deref()
            .map(str::to_ascii_lowercase);
        let detail = match (version, recorded.as_deref(), previous_sha256) {
            (0, None, _) => return,
            (0, Some(r), _) => format!("version 0 names a previous commit ({r})"),
            (_, None, _) => "previousCommitSha256 is null in a commit after version 0".to_string(),
            // The previous commit is missing or unreadable: reported there.
            (_, Some(_), None) => return,
            (_, Some(r), Some(p)) if r == p => return,
            (v, Some(r), Some(p)) => format!(
                "previousCommitSha256 is {r}, but commit {} hashes to {p}: commit {} (or this \
                 commit) was rewritten",
                v - 1,
                v - 1
            ),
        };
        self.problem(Some(version), file.into(), ChainCheck::BrokenLink, detail);
    }

    fn check_added_files(&mut self, version: u64, adds: &[FileAction], info: &LedgerlakeInfo) {
        let listed: HashMap<&str, &AddedFile> = info
            .added_files
            .iter()
            .map(|f| (f.path.as_str(), f))
            .collect();
        let added: HashSet<&str> = adds.iter().map(|a| a.path.as_str()).collect();
        let mut found = Vec::new();
        for add in adds {
            match listed.get(add.path.as_str()) {
                None => found.push((
                    add.path.clone(),
                    "an add action not in commitInfo.ledgerlake.addedFiles".to_string(),
                )),
                Some(f) if add.size.is_some_and(|s| s != f.size) => found.push((
                    add.path.clone(),
                    format!(
                        "add.size is {}, addedFiles says {}",
                        add.size.unwrap_or_default(),
                        f.size
                    ),
                )),
                Some(_) => {}
            }
        }
        for f in &info.added_files {
            if !added.contains(f.path.as_str()) {
                found.push((
                    f.path.clone(),
                    "listed in commitInfo.ledgerlake.addedFiles without an add action".to_string(),
                ));
            }
        }
        for (path, detail) in found {
            let file = data_object(self.table, &path)
                .map_or_else(|| format!("{}/{path}", self.table), |p| p.to_string());
            self.problem(Some(version), file, ChainCheck::AddedFilesMismatch, detail);
        }
    }
}
