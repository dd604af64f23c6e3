//! The chain check's checkpoint side. A checkpoint (`<v>.checkpoint.parquet`) is derived from
//! the commits and is not chained, yet every Delta reader takes the table from the newest one
//! and reads only the commits after it: a rewritten checkpoint could hide a file from DuckDB,
//! Spark and the rest while every link of the chain still holds. So each checkpoint the walk
//! passes must list, as its `add` actions, exactly the files the chain has active at its
//! version; one of a version no commit has, or of a form ledgerlake never writes (multi-part,
//! V2), is a problem too.

use std::collections::{BTreeSet, HashSet};

use arrow::array::{Array, AsArray};
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::log::{data_object, is_version};

/// A checkpoint larger than this is not read (ledgerlake's hold the active files with their
/// statistics and at most an hour of removes: a few MiB).
pub const CHECKPOINT_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// The newest checkpoints of a table that a check reads. Older ones serve only readers of old
/// versions, `vacuum` deletes them once superseded, and comparing one needs the set of files
/// active at its version kept through the walk: this bounds that memory on a lake that is
/// never vacuumed.
pub const CHECKPOINTS_CHECKED_MAX: usize = 16;
/// Paths named in a problem's detail, at most.
const PATHS_SHOWN_MAX: usize = 5;

/// What a log object named like a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckpointName {
    /// `<v>.checkpoint.parquet`: what ledgerlake (and delta-rs) write.
    Classic(u64),
    /// `<v>.checkpoint.<part>.<parts>.parquet` or `<v>.checkpoint.<uuid>.{json,parquet}`.
    Other(u64),
}

pub(super) fn checkpoint_name(name: &str) -> Option<CheckpointName> {
    let (v, rest) = name.split_once('.')?;
    if !is_version(v) || !rest.starts_with("checkpoint.") {
        return None;
    }
    let version = v.parse().ok()?;
    if rest == "checkpoint.parquet" {
        Some(CheckpointName::Classic(version))
    } else if rest.ends_with(".parquet") || rest.ends_with(".json") {
        Some(CheckpointName::Other(version))
    } else {
        None
    }
}

/// The data objects a classic checkpoint's `add` actions name (paths decoded, under `table`);
/// `Err` says why the bytes are not such a checkpoint.
pub(super) fn added_objects(table: &str, bytes: bytes::Bytes) -> Result<HashSet<Path>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| format!("not a Parquet file: {e}"))?;
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.path().string() == "add.path")
        .map(|(i, _)| i)
        .collect();
    if leaves.len() != 1 {
        return Err("no add.path column: not a Delta checkpoint".to_string());
    }
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut objects = HashSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot be decoded: {e}"))?;
        let add = batch
            .column_by_name("add")
            .and_then(|c| c.as_struct_opt())
            .ok_or("the add column is not a struct")?;
        let path = add.column_by_name("path").ok_or("add has no path")?;
        let strings: Vec<Option<&str>> = if let Some(s) = path.as_string_opt::<i32>() {
            s.iter().collect()
        } else if let Some(s) = path.as_string_opt::<i64>() {
            s.iter().collect()
        } else if let Some(s) = path.as_string_view_opt() {
            s.iter().collect()
        } else {
            return Err(format!("add.path is {}, not a string", path.data_type()));
        };
        for (row, p) in strings.into_iter().enumerate() {
            if add.is_null(row) {
                continue;
            }
            let p = p.ok_or("an add action without a path")?;
            let object =
                data_object(table, p).ok_or_else(|| format!("add path {p:?} names no file"))?;
            objects.insert(object);
        }
    }
    Ok(objects)
}

/// How a checkpoint's files differ from those the chain has active at its version; `None`
/// if they are the same.
pub(super) fn difference(chain: &HashSet<Path>, checkpoint: &HashSet<Path>) -> Option<String> {
    let sorted = |s: std::collections::hash_set::Difference<'_, Path, _>| -> BTreeSet<String> {
        s.map(|p| p.to_string()).collect()
    };
    let missing = sorted(chain.difference(checkpoint));
    let extra = sorted(checkpoint.difference(chain));
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    let shown = |set: &BTreeSet<String>| -> String {
        let mut names: Vec<&str> = set
            .iter()
            .take(PATHS_SHOWN_MAX)
            .map(String::as_str)
            .collect();
        if set.len() > PATHS_SHOWN_MAX {
            names.push("…");
        }
        names.join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "leaves out {} file(s) the chain has active ({})",
            missing.len(),
            shown(&missing)
        ));
    }
    if !extra.is_empty() {
        parts.push(format!(
            "lists {} file(s) the chain does not have active ({})",
            extra.len(),
            shown(&extra)
        ));
    }
    Some(format!(
        "{}: readers that start from it see another table than the chained log; it was \
         rewritten",
        parts.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_are_told_apart() {
        let v = "00000000000000000100";
        assert_eq!(
            checkpoint_name(&format!("{v}.checkpoint.parquet")),
            Some(CheckpointName::Classic(100))
        );
        for other in [
            format!("{v}.checkpoint.0000000001.0000000002.parquet"),
            format!("{v}.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json"),
            format!("{v}.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet"),
        ] {
            assert_eq!(checkpoint_name(&other), Some(CheckpointName::Other(100)));
        }
        for not in [
            "_last_checkpoint".to_string(),
            format!("{v}.json"),
            format!("{v}.crc"),
            "100.checkpoint.parquet".to_string(),
            format!("{v}.checkpoint.txt"),
        ] {
            assert_eq!(checkpoint_name(&not), None, "{not}");
        }
    }

    #[test]
    fn differences_name_both_sides() {
        let set =
            |names: &[&str]| -> HashSet<Path> { names.iter().map(|n| Path::from(*n)).collect() };
        assert_eq!(
            difference(&set(&["t/a", "t/b"]), &set(&["t/b", "t/a"])),
            None
        );
        let d = difference(&set(&["t/a", "t/b"]), &set(&["t/b", "t/c"])).unwrap();
        assert!(
            d.contains("leaves out 1 file(s) the chain has active (t/a)"),
            "{d}"
        );
        assert!(
            d.contains("lists 1 file(s) the chain does not have active (t/c)"),
            "{d}"
        );
        let many: Vec<String> = (0..7).map(|i| format!("t/{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let d = difference(&set(&many), &set(&[])).unwrap();
        assert!(
            d.contains("7 file(s)") && d.contains('…') && !d.contains("t/6"),
            "{d}"
        );
    }

    #[test]
    fn bytes_that_are_no_checkpoint_say_why() {
        let err =
            added_objects("transfers", bytes::Bytes::from_static(b"PAR1 no PAR1")).unwrap_err();
        assert!(err.contains("not a Parquet file"), "{err}");
    }
}
