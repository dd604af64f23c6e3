//! Tests of the chain check on hand-written logs that follow schemas/lake.md ("Tamper evidence:
//! a chained log"): an honest lake passes, and each way of tampering with it is detected and
//! named by table, version and file — in memory, and on disk where `scripts/check-chain.py`
//! must find exactly the same.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;

use super::*;

const DATE: &str = "2026-11-21";

/// A data file of the fixture: its `add.path` (relative to the table) and bytes.
#[derive(Clone)]
struct DataFile {
    add_path: String,
    bytes: Vec<u8>,
}

fn transfers_file(n: u64) -> DataFile {
    let first = 1_795_000_000_000_000_000 + n * 1_000;
    let bytes = format!("PAR1 transfers file {n} rows 3 PAR1\n").repeat(64 + n as usize);
    DataFile {
        add_path: format!(
            "date={DATE}/{first:020}-{:020}-{}.parquet",
            first + 999,
            &sha256_hex(bytes.as_bytes())[..16]
        ),
        bytes: bytes.into_bytes(),
    }
}

fn accounts_file() -> DataFile {
    DataFile {
        add_path: format!("date={DATE}/00000000000000000001-00000000000000000002-0.parquet"),
        bytes: b"PAR1 accounts PAR1".to_vec(),
    }
}

/// A swept file of 1 MiB and a bit, so that a local store streams it in several pieces.
fn swept_file() -> DataFile {
    let bytes: Vec<u8> = (0..(1 << 20) + 17).map(|i: u32| (i % 251) as u8).collect();
    DataFile {
        add_path: format!(
            "00000000000000000001-00000000000000000009-{}.parquet",
            &sha256_hex(&bytes)[..16]
        ),
        bytes,
    }
}

fn object(table: &str, file: &DataFile) -> Path {
    Path::from(format!("{table}/{}", file.add_path))
}

fn file_name(table: &str, file: &DataFile) -> String {
    object(table, file).to_string()
}

fn commit_name(table: &str, version: u64) -> String {
    commit_path(table, version).to_string()
}

/// How a hand-written commit is shaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Ledgerlake,
    /// Without `commitInfo.ledgerlake`, as another Delta writer makes it.
    Foreign,
    /// `addedFiles` lists nothing.
    Unlisted,
}

/// The bytes of commit `version`: `commitInfo` (with `ledgerlake`), protocol and metadata at
/// version 0, a `txn`, the removes and the adds (with stats).
fn commit_bytes(
    table: &str,
    version: u64,
    previous_sha256: Option<&str>,
    adds: &[DataFile],
    removes: &[DataFile],
    shape: Shape,
) -> Vec<u8> {
    let added_files: Vec<_> = adds
        .iter()
        .filter(|_| shape != Shape::Unlisted)
        .map(|f| json!({"path": f.add_path, "sha256": sha256_hex(&f.bytes), "size": f.bytes.len()}))
        .collect();
    let mut commit_info = json!({
        "timestamp": 1_795_000_000_000u64 + version,
        "operation": if version == 0 { "CREATE TABLE" } else { "WRITE" },
        "engineInfo": "ledgerlake-test",
    });
    if shape != Shape::Foreign {
        commit_info["ledgerlake"] = json!({
            "formatVersion": 2,
            "writer": "test-host/1/2026-11-21T00:00:00Z",
            "previousCommitSha256": previous_sha256,
            "addedFiles": added_files,
        });
        // Version 0 has no previous commit: `null` in transfers, absent elsewhere (as a JSON
        // writer that omits nulls makes it); both mean none.
        if previous_sha256.is_none() && table != "transfers" {
            commit_info["ledgerlake"]
                .as_object_mut()
                .unwrap()
                .remove("previousCommitSha256");
        }
    }
    let mut lines = vec![json!({ "commitInfo": commit_info })];
    if version == 0 {
        lines.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
        lines.push(json!({"metaData": {
            "id": format!("{table}-id"),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": "{\"type\":\"struct\",\"fields\":[]}",
            "partitionColumns": if table == "swept_accounts" { json!([]) } else { json!(["date"]) },
            "configuration": {"ledgerlake.formatVersion": "2", "ledgerlake.table": table},
            "createdTime": 1_795_000_000_000u64,
        }}));
    }
    if version > 0 {
        lines.push(
            json!({"txn": {"appId": format!("ledgerlake-7-{table}"), "version": version * 1000}}),
        );
    }
    for f in removes {
        lines.push(json!({"remove": {"path": f.add_path, "deletionTimestamp": 1_795_000_000_000u64, "dataChange": true}}));
    }
    for f in adds {
        let partition = if table == "swept_accounts" {
            json!({})
        } else {
            json!({ "date": DATE })
        };
        let stats = json!({
            "numRecords": 3,
            "minValues": {"amount": 5},
            "maxValues": {"amount": 500},
            "nullCount": {"amount": 0},
        });
        lines.push(json!({"add": {
            "path": f.add_path,
            "partitionValues": partition,
            "size": f.bytes.len(),
            "modificationTime": 1_795_000_000_000u64,
            "dataChange": true,
            "stats": stats.to_string(),
        }}));
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

async fn put(store: &dyn ObjectStore, path: &Path, bytes: Vec<u8>) {
    store.put(path, PutPayload::from(bytes)).await.unwrap();
}

/// A table written commit by commit, as the spec says.
struct TableLog {
    table: &'static str,
    commits: Vec<Vec<u8>>,
}

impl TableLog {
    fn new(table: &'static str) -> TableLog {
        TableLog {
            table,
            commits: Vec::new(),
        }
    }

    fn head_sha256(&self) -> Option<String> {
        self.commits.last().map(|c| sha256_hex(c))
    }

    async fn commit(
        &mut self,
        store: &dyn ObjectStore,
        adds: &[DataFile],
        removes: &[DataFile],
        shape: Shape,
    ) {
        for f in adds {
            put(store, &object(self.table, f), f.bytes.clone()).await;
        }
        let version = self.commits.len() as u64;
        let previous = self.head_sha256();
        let bytes = commit_bytes(
            self.table,
            version,
            previous.as_deref(),
            adds,
            removes,
            shape,
        );
        put(store, &commit_path(self.table, version), bytes.clone()).await;
        self.commits.push(bytes);
    }
}

/// A checkpoint of `files` (relative to `table`): a protocol row, then one `add` row each, in
/// the columns the check reads (`add.path`; a real one has many more).
fn checkpoint_bytes(table: &str, files: &[&DataFile]) -> Vec<u8> {
    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, StructArray};
    use arrow::buffer::NullBuffer;
    use arrow::datatypes::{DataType, Field, Fields};
    let paths = std::iter::once(None).chain(files.iter().map(|f| Some(f.add_path.as_str())));
    let sizes = std::iter::once(None).chain(files.iter().map(|f| Some(f.bytes.len() as i64)));
    let fields = Fields::from(vec![
        Field::new("path", DataType::Utf8, true),
        Field::new("size", DataType::Int64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter(paths)),
        Arc::new(Int64Array::from_iter(sizes)),
    ];
    let valid = NullBuffer::from_iter(std::iter::once(false).chain(files.iter().map(|_| true)));
    let add = StructArray::new(fields, columns, Some(valid));
    let protocol = Arc::new(StringArray::from_iter(
        std::iter::once(Some(format!("{table} protocol"))).chain(files.iter().map(|_| None)),
    ));
    let batch = RecordBatch::try_from_iter([
        ("protocol", protocol as ArrayRef),
        ("add", Arc::new(add) as ArrayRef),
    ])
    .unwrap();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

/// The honest lake: `transfers` is created (version 0), gets f1, f2, then f3 while f1 is
/// removed (as compaction would) and deleted from the store; it has a checkpoint, which is not
/// part of the chain. `accounts` and `swept_accounts` each get one file.
struct Fixture {
    transfers: TableLog,
    f: [DataFile; 4],
    heads: Vec<(String, Option<String>)>,
}

async fn honest(store: &dyn ObjectStore) -> Fixture {
    let f = [
        transfers_file(0),
        transfers_file(1),
        transfers_file(2),
        transfers_file(3),
    ];
    let mut transfers = TableLog::new("transfers");
    transfers.commit(store, &[], &[], Shape::Ledgerlake).await;
    transfers
        .commit(store, &[f[1].clone()], &[], Shape::Ledgerlake)
        .await;
    transfers
        .commit(store, &[f[2].clone()], &[], Shape::Ledgerlake)
        .await;
    transfers
        .commit(store, &[f[3].clone()], &[f[1].clone()], Shape::Ledgerlake)
        .await;
    store.delete(&object("transfers", &f[1])).await.unwrap();
    let log = |name: &str| Path::from(format!("transfers/{LOG_DIR}/{name}"));
    put(
        store,
        &log("00000000000000000002.checkpoint.parquet"),
        checkpoint_bytes("transfers", &[&f[1], &f[2]]),
    )
    .await;
    put(
        store,
        &log("_last_checkpoint"),
        br#"{"version":2,"size":4}"#.to_vec(),
    )
    .await;
    let mut accounts = TableLog::new("accounts");
    accounts.commit(store, &[], &[], Shape::Ledgerlake).await;
    accounts
        .commit(store, &[accounts_file()], &[], Shape::Ledgerlake)
        .await;
    let mut swept = TableLog::new("swept_accounts");
    swept.commit(store, &[], &[], Shape::Ledgerlake).await;
    swept
        .commit(store, &[swept_file()], &[], Shape::Ledgerlake)
        .await;
    let heads = [&transfers, &accounts, &swept]
        .iter()
        .map(|t| (t.table.to_string(), t.head_sha256()))
        .collect();
    Fixture {
        transfers,
        f,
        heads,
    }
}

/// Each way of tampering with the honest lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    Nothing,
    DataByteRewritten,
    ActiveFileRemoved,
    UnreferencedFileAdded,
    CommitStatsRewritten,
    CommitDigestRewritten,
    HeadDigestRewritten,
    CommitRemoved,
    HeadCommitRemoved,
    ForeignCommitAppended,
    CommitWithWrongPreviousAppended,
    CommitWithUnlistedAddAppended,
    GarbageCommitAppended,
    LogObjectAdded,
}

const TAMPERINGS: [Tamper; 14] = [
    Tamper::Nothing,
    Tamper::DataByteRewritten,
    Tamper::ActiveFileRemoved,
    Tamper::UnreferencedFileAdded,
    Tamper::CommitStatsRewritten,
    Tamper::CommitDigestRewritten,
    Tamper::HeadDigestRewritten,
    Tamper::CommitRemoved,
    Tamper::HeadCommitRemoved,
    Tamper::ForeignCommitAppended,
    Tamper::CommitWithWrongPreviousAppended,
    Tamper::CommitWithUnlistedAddAppended,
    Tamper::GarbageCommitAppended,
    Tamper::LogObjectAdded,
];

/// `(version, check, file)` of the transfers table's problems.
type Found = Vec<(Option<u64>, ChainCheck, String)>;

/// Applies `tamper` to the honest lake; returns the problems the check must report, in order.
async fn tamper_with(store: &dyn ObjectStore, fx: &mut Fixture, tamper: Tamper) -> Found {
    let t = "transfers";
    let f = fx.f.clone();
    let replace = |bytes: &[u8], from: &str, to: &str| -> Vec<u8> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.contains(from), "{from} in {text}");
        text.replacen(from, to, 1).into_bytes()
    };
    match tamper {
        Tamper::Nothing => vec![],
        Tamper::DataByteRewritten => {
            let mut bytes = f[2].bytes.clone();
            bytes[10] ^= 1;
            put(store, &object(t, &f[2]), bytes).await;
            vec![(Some(2), ChainCheck::FileAltered, file_name(t, &f[2]))]
        }
        Tamper::ActiveFileRemoved => {
            store.delete(&object(t, &f[3])).await.unwrap();
            vec![(Some(3), ChainCheck::FileMissing, file_name(t, &f[3]))]
        }
        Tamper::UnreferencedFileAdded => {
            // Bytes other than its name's digest says: not a write interrupted before its
            // commit (that would be a note, see lake::tests), but an added file.
            let mut bytes = f[0].bytes.clone();
            bytes.push(0);
            put(store, &object(t, &f[0]), bytes).await;
            vec![(None, ChainCheck::FileUnreferenced, file_name(t, &f[0]))]
        }
        Tamper::CommitStatsRewritten => {
            let bytes = replace(
                &fx.transfers.commits[1],
                r#"\"amount\":500"#,
                r#"\"amount\":501"#,
            );
            put(store, &commit_path(t, 1), bytes).await;
            vec![(Some(2), ChainCheck::BrokenLink, commit_name(t, 2))]
        }
        Tamper::CommitDigestRewritten => {
            let digest = sha256_hex(&f[2].bytes);
            let forged = sha256_hex(b"other bytes");
            let bytes = replace(&fx.transfers.commits[2], &digest, &forged);
            put(store, &commit_path(t, 2), bytes).await;
            vec![
                (Some(3), ChainCheck::BrokenLink, commit_name(t, 3)),
                (Some(2), ChainCheck::FileAltered, file_name(t, &f[2])),
            ]
        }
        Tamper::HeadDigestRewritten => {
            let digest = sha256_hex(&f[3].bytes);
            let forged = sha256_hex(b"other bytes");
            let bytes = replace(&fx.transfers.commits[3], &digest, &forged);
            put(store, &commit_path(t, 3), bytes).await;
            vec![(Some(3), ChainCheck::FileAltered, file_name(t, &f[3]))]
        }
        Tamper::CommitRemoved => {
            store.delete(&commit_path(t, 2)).await.unwrap();
            vec![
                (Some(2), ChainCheck::MissingCommit, commit_name(t, 2)),
                (None, ChainCheck::FileUnreferenced, file_name(t, &f[2])),
            ]
        }
        Tamper::HeadCommitRemoved => {
            // The file it removed is back in the table but gone from the store. Nothing names
            // the head's own file any more: past the end of the log, it looks like a write
            // interrupted before its commit (a note; only a recorded head proves truncation).
            store.delete(&commit_path(t, 3)).await.unwrap();
            vec![(Some(1), ChainCheck::FileMissing, file_name(t, &f[1]))]
        }
        Tamper::ForeignCommitAppended => {
            fx.transfers
                .commit(store, &[f[0].clone()], &[], Shape::Foreign)
                .await;
            vec![(Some(4), ChainCheck::NotChained, commit_name(t, 4))]
        }
        Tamper::CommitWithWrongPreviousAppended => {
            let previous = sha256_hex(&fx.transfers.commits[2]);
            let bytes = commit_bytes(t, 4, Some(&previous), &[], &[], Shape::Ledgerlake);
            put(store, &commit_path(t, 4), bytes).await;
            vec![(Some(4), ChainCheck::BrokenLink, commit_name(t, 4))]
        }
        Tamper::CommitWithUnlistedAddAppended => {
            fx.transfers
                .commit(store, &[f[0].clone()], &[], Shape::Unlisted)
                .await;
            vec![(Some(4), ChainCheck::AddedFilesMismatch, file_name(t, &f[0]))]
        }
        Tamper::GarbageCommitAppended => {
            put(
                store,
                &commit_path(t, 4),
                b"{\"commitInfo\":{}}\nnot json\n".to_vec(),
            )
            .await;
            vec![(Some(4), ChainCheck::UnreadableCommit, commit_name(t, 4))]
        }
        Tamper::LogObjectAdded => {
            let path = Path::from(format!("{t}/{LOG_DIR}/00000000000000000004.json.tmp"));
            put(store, &path, b"{}".to_vec()).await;
            vec![(None, ChainCheck::UnexpectedLogObject, path.to_string())]
        }
    }
}

fn transfers_found(report: &ChainReport) -> Found {
    let transfers = &report.tables[0];
    assert_eq!(transfers.table, "transfers");
    transfers
        .problems
        .iter()
        .map(|p| (p.version, p.check, p.file.clone()))
        .collect()
}

/// Every table but transfers is untouched by the tamperings: clean, with its honest head.
fn assert_other_tables_clean(report: &ChainReport, fx: &Fixture) {
    assert_eq!(report.tables.len(), 3);
    for (table, (name, head)) in report.tables.iter().zip(&fx.heads).skip(1) {
        assert_eq!(&table.table, name);
        assert!(table.problems.is_empty(), "{table:#?}");
        assert_eq!(&table.head_sha256, head);
        assert_eq!(table.versions, 2);
        assert_eq!(table.active_files, 1);
    }
}

#[tokio::test]
async fn an_honest_chain_passes_with_its_heads() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let fx = honest(store.as_ref()).await;
    let lake = Lake::from_store(store, "memory");
    let report = lake.check_chain().await.unwrap();
    assert!(report.ok(), "{report:#?}");
    assert!(report.has_log());
    let transfers = &report.tables[0];
    assert_eq!(transfers.versions, 4);
    assert_eq!(transfers.head_version, Some(3));
    assert_eq!(transfers.head_sha256, fx.heads[0].1);
    assert_eq!(transfers.active_files, 2, "f2 and f3; f1 was removed");
    assert_eq!(transfers.log_objects, 6, "4 commits and 2 checkpoint files");
    assert_eq!(transfers.checkpoints_checked, 1);
    assert_other_tables_clean(&report, &fx);
}

/// Readers start from the newest checkpoint, which the chain does not link: each way it can
/// show another table than the chain is named as a `checkpoint_mismatch` of its file.
#[tokio::test]
async fn a_checkpoint_that_disagrees_with_the_chain_is_named() {
    let log = |name: &str| Path::from(format!("transfers/{LOG_DIR}/{name}"));
    let at_2 = log("00000000000000000002.checkpoint.parquet");
    type Bytes = Box<dyn Fn(&Fixture) -> Vec<u8>>;
    let cases: Vec<(&str, Path, Bytes, &str)> = vec![
        (
            "a file left out",
            at_2.clone(),
            Box::new(|fx| checkpoint_bytes("transfers", &[&fx.f[2]])),
            "leaves out 1 file(s) the chain has active (transfers/date=",
        ),
        (
            "a file added",
            at_2.clone(),
            Box::new(|fx| checkpoint_bytes("transfers", &[&fx.f[0], &fx.f[1], &fx.f[2]])),
            "lists 1 file(s) the chain does not have active",
        ),
        (
            "not Parquet",
            at_2.clone(),
            Box::new(|_| b"PAR1 checkpoint PAR1".to_vec()),
            "not a readable checkpoint: not a Parquet file",
        ),
        (
            "beyond the newest commit",
            log("00000000000000000009.checkpoint.parquet"),
            Box::new(|fx| checkpoint_bytes("transfers", &[&fx.f[0]])),
            "beyond the newest commit",
        ),
        (
            "multi-part",
            log("00000000000000000003.checkpoint.0000000001.0000000001.parquet"),
            Box::new(|fx| checkpoint_bytes("transfers", &[&fx.f[0]])),
            "multi-part or V2 checkpoint",
        ),
    ];
    for (case, path, bytes, detail) in cases {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let fx = honest(store.as_ref()).await;
        put(store.as_ref(), &path, bytes(&fx)).await;
        let report = Lake::from_store(store, "memory")
            .check_chain()
            .await
            .unwrap();
        let found: Vec<_> = report.problems().collect();
        assert_eq!(found.len(), 1, "{case}: {found:#?}");
        assert_eq!(found[0].check, ChainCheck::CheckpointMismatch, "{case}");
        assert_eq!(found[0].file, path.to_string(), "{case}");
        assert!(
            found[0].detail.contains(detail),
            "{case}: {}",
            found[0].detail
        );
        assert_other_tables_clean(&report, &fx);
    }
}

/// From a recorded head, a checkpoint before it is not read (a full check reads it); one at
/// or after it is.
#[tokio::test]
async fn a_walk_from_a_recorded_head_reads_the_checkpoints_from_it() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut fx = honest(store.as_ref()).await;
    let lake = Lake::from_store(store.clone(), "memory");
    let starts = starts_of(&lake.check_chain().await.unwrap());
    let log = |name: &str| Path::from(format!("transfers/{LOG_DIR}/{name}"));
    // Rewritten before the head (version 3): not seen from it.
    let wrong = checkpoint_bytes("transfers", &[&fx.f[2]]);
    put(
        store.as_ref(),
        &log("00000000000000000002.checkpoint.parquet"),
        wrong,
    )
    .await;
    let report = lake.check_chain_from(&starts).await.unwrap();
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.tables[0].checkpoints_checked, 0);
    assert_eq!(report.tables[0].checkpoints_not_checked, 1);
    assert!(
        !lake.check_chain().await.unwrap().ok(),
        "a full check reads it"
    );
    // At the head, and after it: compared with the recorded files and those of the walk.
    let honest_2 = checkpoint_bytes("transfers", &[&fx.f[1], &fx.f[2]]);
    put(
        store.as_ref(),
        &log("00000000000000000002.checkpoint.parquet"),
        honest_2,
    )
    .await;
    let at_head = checkpoint_bytes("transfers", &[&fx.f[2], &fx.f[3]]);
    put(
        store.as_ref(),
        &log("00000000000000000003.checkpoint.parquet"),
        at_head,
    )
    .await;
    fx.transfers
        .commit(store.as_ref(), &[fx.f[0].clone()], &[], Shape::Ledgerlake)
        .await;
    let after = checkpoint_bytes("transfers", &[&fx.f[0], &fx.f[2]]);
    put(
        store.as_ref(),
        &log("00000000000000000004.checkpoint.parquet"),
        after,
    )
    .await;
    let report = lake.check_chain_from(&starts).await.unwrap();
    let found: Vec<_> = report.problems().map(|p| (p.version, p.check)).collect();
    assert_eq!(
        found,
        vec![(Some(4), ChainCheck::CheckpointMismatch)],
        "f3 left out at 4"
    );
    assert_eq!(report.tables[0].checkpoints_checked, 2);
}

#[tokio::test]
async fn a_lake_without_a_log_has_no_chain() {
    let lake = Lake::from_store(Arc::new(InMemory::new()), "memory");
    let report = lake.check_chain().await.unwrap();
    assert!(report.ok());
    assert!(!report.has_log());
    assert!(report
        .tables
        .iter()
        .all(|t| t.versions == 0 && t.head_sha256.is_none()));
}

#[tokio::test]
async fn each_tampering_is_detected_and_named() {
    for tamper in TAMPERINGS {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut fx = honest(store.as_ref()).await;
        let want = tamper_with(store.as_ref(), &mut fx, tamper).await;
        let lake = Lake::from_store(store, "memory");
        let report = lake.check_chain().await.unwrap();
        assert_eq!(transfers_found(&report), want, "{tamper:?}: {report:#?}");
        assert_eq!(report.ok(), tamper == Tamper::Nothing, "{tamper:?}");
        assert_other_tables_clean(&report, &fx);
        // Every problem names its table and says what is wrong.
        for p in report.problems() {
            let text = p.to_string();
            assert!(text.starts_with("transfers"), "{text}");
            assert!(text.contains(&p.file), "{text}");
        }
        // A rewritten head, a removed head or an appended commit changes the head: an auditor
        // who recorded it sees that too.
        let head = report.tables[0].head_sha256.clone();
        let head_changed = matches!(
            tamper,
            Tamper::HeadDigestRewritten
                | Tamper::HeadCommitRemoved
                | Tamper::ForeignCommitAppended
                | Tamper::CommitWithWrongPreviousAppended
                | Tamper::CommitWithUnlistedAddAppended
                | Tamper::GarbageCommitAppended
        );
        assert_eq!(head != fx.heads[0].1, head_changed, "{tamper:?}");
    }
}

/// The heads of an honest check, as `verify --since` takes them from its report.
fn starts_of(report: &ChainReport) -> HashMap<String, ChainStart> {
    report
        .tables
        .iter()
        .filter_map(|t| {
            Some((
                t.table.clone(),
                ChainStart {
                    head_version: t.head_version?,
                    head_sha256: t.head_sha256.clone()?,
                    files: t.files.clone(),
                },
            ))
        })
        .collect()
}

/// Started from the honest heads, each tampering at or after a head is found and named as a
/// full walk names it (a rewritten or removed head as `head_changed`); those before the head
/// are not (what `check_chain_from` says it does not prove), and a full walk finds them.
#[tokio::test]
async fn a_walk_from_a_recorded_head_finds_what_changed_at_or_after_it() {
    for tamper in TAMPERINGS {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut fx = honest(store.as_ref()).await;
        let lake = Lake::from_store(store.clone(), "memory");
        let honest_report = lake.check_chain().await.unwrap();
        let starts = starts_of(&honest_report);
        assert_eq!(starts.len(), 3);
        assert_eq!(
            starts["transfers"]
                .files
                .iter()
                .map(|f| f.path.clone())
                .collect::<Vec<_>>(),
            vec![fx.f[2].add_path.clone(), fx.f[3].add_path.clone()]
        );
        assert_eq!(
            starts["transfers"].files[0].sha256,
            sha256_hex(&fx.f[2].bytes)
        );
        let full = tamper_with(store.as_ref(), &mut fx, tamper).await;
        let t = "transfers";
        let want: Found = match tamper {
            Tamper::CommitStatsRewritten
            | Tamper::CommitDigestRewritten
            | Tamper::CommitRemoved => {
                vec![]
            }
            // Named like f0 (older than the head's newest file): not checked, counted.
            Tamper::UnreferencedFileAdded => vec![],
            Tamper::HeadDigestRewritten | Tamper::HeadCommitRemoved => {
                vec![(Some(3), ChainCheck::HeadChanged, commit_name(t, 3))]
            }
            _ => full.clone(),
        };
        let report = lake.check_chain_from(&starts).await.unwrap();
        assert_eq!(transfers_found(&report), want, "{tamper:?}: {report:#?}");
        assert_eq!(report.tables[0].since_version, Some(3));
        assert_eq!(
            report.tables[0].objects_not_checked,
            u64::from(tamper == Tamper::UnreferencedFileAdded),
            "{tamper:?}"
        );
        assert_other_tables_clean(&report, &fx);
        // What the walk from the head does not prove, the full walk does.
        if want.is_empty() && tamper != Tamper::Nothing {
            assert!(!lake.check_chain().await.unwrap().ok(), "{tamper:?}");
        }
    }
}

/// Commits after the head are walked as in a full check: linked to the recorded head, their
/// files hashed, an old file the head recorded still hashed; the head's newest file onwards,
/// an object no commit names is a problem.
#[tokio::test]
async fn a_walk_from_a_recorded_head_checks_the_commits_after_it() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut fx = honest(store.as_ref()).await;
    let lake = Lake::from_store(store.clone(), "memory");
    let starts = starts_of(&lake.check_chain().await.unwrap());
    let f4 = transfers_file(4);
    fx.transfers
        .commit(
            store.as_ref(),
            std::slice::from_ref(&f4),
            &[],
            Shape::Ledgerlake,
        )
        .await;
    fx.transfers
        .commit(store.as_ref(), &[], &[fx.f[2].clone()], Shape::Ledgerlake)
        .await;
    // A commit before the head is garbage now: not read.
    put(
        store.as_ref(),
        &commit_path("transfers", 1),
        b"not json".to_vec(),
    )
    .await;
    let report = lake.check_chain_from(&starts).await.unwrap();
    assert!(report.ok(), "{report:#?}");
    let transfers = &report.tables[0];
    assert_eq!(transfers.head_version, Some(5));
    assert_eq!(transfers.head_sha256, fx.transfers.head_sha256());
    assert_eq!(
        transfers.active_files, 2,
        "f3 (recorded at the head) and f4"
    );
    let paths: Vec<&str> = transfers.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec![fx.f[3].add_path.as_str(), f4.add_path.as_str()]);
    assert_eq!(transfers.files[1].version, 4);
    assert!(
        !lake.check_chain().await.unwrap().ok(),
        "the full walk reads commit 1"
    );

    // After the head: a rewritten new file, an altered recorded file, an unnamed object.
    let mut bytes = f4.bytes.clone();
    bytes[3] ^= 1;
    put(store.as_ref(), &object("transfers", &f4), bytes).await;
    let mut bytes = fx.f[3].bytes.clone();
    bytes[3] ^= 1;
    put(store.as_ref(), &object("transfers", &fx.f[3]), bytes).await;
    let stray = Path::from("transfers/date=2026-11-21/stray.parquet");
    put(store.as_ref(), &stray, b"PAR1".to_vec()).await;
    let report = lake.check_chain_from(&starts).await.unwrap();
    assert_eq!(
        transfers_found(&report),
        vec![
            (
                Some(3),
                ChainCheck::FileAltered,
                file_name("transfers", &fx.f[3])
            ),
            (
                Some(4),
                ChainCheck::FileAltered,
                file_name("transfers", &f4)
            ),
            (None, ChainCheck::FileUnreferenced, stray.to_string()),
        ]
    );
    // A commit after the head that does not link to the recorded head.
    let forged = commit_bytes(
        "transfers",
        4,
        Some(&"0".repeat(64)),
        &[],
        &[],
        Shape::Ledgerlake,
    );
    put(store.as_ref(), &commit_path("transfers", 4), forged).await;
    let found = transfers_found(&lake.check_chain_from(&starts).await.unwrap());
    assert!(
        found.contains(&(Some(4), ChainCheck::BrokenLink, commit_name("transfers", 4))),
        "{found:?}"
    );
}

#[tokio::test]
async fn the_details_say_what_was_rewritten() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut fx = honest(store.as_ref()).await;
    tamper_with(store.as_ref(), &mut fx, Tamper::CommitStatsRewritten).await;
    tamper_with(store.as_ref(), &mut fx, Tamper::DataByteRewritten).await;
    let lake = Lake::from_store(store, "memory");
    let report = lake.check_chain().await.unwrap();
    let texts: Vec<String> = report.problems().map(|p| p.to_string()).collect();
    assert!(
        texts[0].starts_with("transfers version 2: transfers/_delta_log/00000000000000000002.json")
            && texts[0].contains("commit 1 (or this commit) was rewritten"),
        "{texts:#?}"
    );
    let size = fx.f[2].bytes.len();
    assert!(
        texts[1].contains(&format!(
            "the log records {size} bytes with SHA-256 {}",
            sha256_hex(&fx.f[2].bytes)
        )),
        "{texts:#?}"
    );
}

#[tokio::test]
async fn version_zero_has_no_previous_and_later_versions_have_one() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let s = store.as_ref();
    let t = "accounts";
    put(
        s,
        &commit_path(t, 0),
        commit_bytes(t, 0, Some(&sha256_hex(b"x")), &[], &[], Shape::Ledgerlake),
    )
    .await;
    put(
        s,
        &commit_path(t, 1),
        commit_bytes(t, 1, None, &[], &[], Shape::Ledgerlake),
    )
    .await;
    let report = Lake::from_store(store, "memory")
        .check_chain()
        .await
        .unwrap();
    let found: Vec<_> = report.tables[1]
        .problems
        .iter()
        .map(|p| (p.version, p.check))
        .collect();
    assert_eq!(
        found,
        vec![
            (Some(0), ChainCheck::BrokenLink),
            (Some(1), ChainCheck::BrokenLink)
        ]
    );
}

#[tokio::test]
async fn a_missing_first_commit_and_a_long_gap_are_one_problem_each() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let s = store.as_ref();
    let t = "swept_accounts";
    put(
        s,
        &commit_path(t, 1),
        commit_bytes(t, 1, Some("00"), &[], &[], Shape::Ledgerlake),
    )
    .await;
    put(
        s,
        &commit_path(t, 99_999_999_999),
        commit_bytes(t, 9, Some("00"), &[], &[], Shape::Ledgerlake),
    )
    .await;
    let report = Lake::from_store(store, "memory")
        .check_chain()
        .await
        .unwrap();
    let swept = &report.tables[2];
    let found: Vec<_> = swept
        .problems
        .iter()
        .map(|p| (p.version, p.check, p.detail.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Some(0),
                ChainCheck::MissingCommit,
                "commit 0 is missing".to_string()
            ),
            (
                Some(2),
                ChainCheck::MissingCommit,
                "commits 2..=99999999998 are missing".to_string()
            ),
        ]
    );
    assert_eq!(swept.head_version, Some(99_999_999_999));
}

#[tokio::test]
async fn bad_paths_and_size_disagreements_are_named() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let s = store.as_ref();
    let t = "transfers";
    let f = transfers_file(1);
    put(s, &object(t, &f), f.bytes.clone()).await;
    let escape = DataFile {
        add_path: "../accounts/x.parquet".to_string(),
        bytes: vec![1],
    };
    let bytes = commit_bytes(t, 0, None, &[f.clone(), escape], &[], Shape::Ledgerlake);
    let text = String::from_utf8(bytes).unwrap();
    let size = f.bytes.len();
    let text = text.replacen(
        &format!("\"size\":{size},\"stats\""),
        "\"size\":7,\"stats\"",
        1,
    );
    put(s, &commit_path(t, 0), text.into_bytes()).await;
    let report = Lake::from_store(store, "memory")
        .check_chain()
        .await
        .unwrap();
    let found: Vec<_> = report.tables[0]
        .problems
        .iter()
        .map(|p| (p.check, p.file.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (ChainCheck::AddedFilesMismatch, file_name(t, &f)),
            (ChainCheck::BadPath, commit_name(t, 0)),
        ],
        "{report:#?}"
    );
}

#[test]
fn log_objects_are_told_apart() {
    assert!(matches!(
        log_object("00000000000000000007.json"),
        LogObject::Commit(7)
    ));
    for derived in [
        "_last_checkpoint",
        "00000000000000000100.checkpoint.parquet",
        "00000000000000000100.checkpoint.0000000001.0000000002.parquet",
        "00000000000000000100.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json",
        "00000000000000000100.crc",
        "00000000000000000001.00000000000000000009.compacted.json",
        "_sidecars/x.parquet",
    ] {
        assert!(
            matches!(log_object(derived), LogObject::Derived),
            "{derived}"
        );
    }
    for unexpected in [
        "7.json",
        "00000000000000000007.json.tmp",
        "notes.txt",
        "0000000000000000000x.json",
    ] {
        assert!(
            matches!(log_object(unexpected), LogObject::Unexpected),
            "{unexpected}"
        );
    }
}

#[test]
fn add_paths_name_objects_under_the_table() {
    assert_eq!(
        data_object("transfers", "date=2026-11-21/a-b-c.parquet"),
        Some(Path::from("transfers/date=2026-11-21/a-b-c.parquet"))
    );
    assert_eq!(
        data_object("transfers", "date%3D2026-11-21/a.parquet"),
        Some(Path::from("transfers/date=2026-11-21/a.parquet"))
    );
    for bad in [
        "/etc/passwd",
        "s3://b/x.parquet",
        "../accounts/x.parquet",
        "a//b",
        "a/./b",
        "%zz",
        "",
    ] {
        assert_eq!(data_object("transfers", bad), None, "{bad}");
    }
}

#[test]
fn digests_are_lower_case_hex() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

// ---------------------------------------------------------------------------------------------
// scripts/check-chain.py: the auditor's check without ledgerlake must find the same.

fn check_chain_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-chain.py")
}

/// `(table, version, check, file)` of every problem, sorted, and each table's head.
type Comparable = (
    Vec<(String, Option<u64>, String, String)>,
    Vec<Option<String>>,
);

fn comparable_rust(report: &ChainReport) -> Comparable {
    let mut problems: Vec<_> = report
        .problems()
        .map(|p| {
            (
                p.table.clone(),
                p.version,
                p.check.name().to_string(),
                p.file.clone(),
            )
        })
        .collect();
    problems.sort();
    let heads = report
        .tables
        .iter()
        .map(|t| t.head_sha256.clone())
        .collect();
    (problems, heads)
}

fn comparable_python(json: &serde_json::Value) -> Comparable {
    let tables = json["tables"].as_array().unwrap();
    let mut problems = Vec::new();
    for t in tables {
        for p in t["problems"].as_array().unwrap() {
            problems.push((
                p["table"].as_str().unwrap().to_string(),
                p["version"].as_str().map(|v| v.parse().unwrap()),
                p["check"].as_str().unwrap().to_string(),
                p["file"].as_str().unwrap().to_string(),
            ));
        }
    }
    problems.sort();
    let heads = tables
        .iter()
        .map(|t| t["head_sha256"].as_str().map(str::to_string))
        .collect();
    (problems, heads)
}

fn run_script(dir: &std::path::Path, extra: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new("python3")
        .arg(check_chain_script())
        .arg(dir)
        .arg("--json")
        .args(extra)
        .output()
        .expect("python3 runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-chain.py printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

#[tokio::test]
async fn the_python_script_agrees_on_every_tampering() {
    for tamper in TAMPERINGS {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let mut fx = honest(store.as_ref()).await;
        let want = tamper_with(store.as_ref(), &mut fx, tamper).await;
        let report = Lake::from_store(store, "local")
            .check_chain()
            .await
            .unwrap();
        assert_eq!(transfers_found(&report), want, "{tamper:?} on disk");
        let (ok, json) = run_script(dir.path(), &[]);
        assert_eq!(ok, report.ok(), "{tamper:?}: {json:#}");
        assert_eq!(
            comparable_python(&json),
            comparable_rust(&report),
            "{tamper:?}: {json:#}"
        );
        // A recorded head is checked too: the honest head is still a commit unless the head
        // itself was rewritten or removed (or the chain before it).
        let head = format!("transfers={}", fx.heads[0].1.as_deref().unwrap());
        let (ok, json) = run_script(dir.path(), &["--head", &head]);
        let head_kept = !matches!(
            tamper,
            Tamper::HeadDigestRewritten | Tamper::HeadCommitRemoved
        );
        let head_problem = json["tables"][0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["check"] == "head_not_found");
        assert_eq!(head_problem, !head_kept, "{tamper:?}: {json:#}");
        assert_eq!(ok, report.ok() && head_kept, "{tamper:?}");
    }
}

/// The code block of docs/AUDIT.md after the marker `<!-- {name}: … -->`, with the example lake
/// directory replaced by `lake`.
fn audit_doc_block(name: &str, lake: &std::path::Path) -> String {
    let doc_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/AUDIT.md");
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let marker = format!("<!-- {name}:");
    let after = &doc[doc
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} in AUDIT.md"))..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body.find("\n```").unwrap();
    body[..end].replace("/srv/ledger-lake", lake.to_str().unwrap())
}

fn run_doc_block(program: &str, name: &str, lake: &std::path::Path) -> (bool, String) {
    let script = audit_doc_block(name, lake);
    let out = Command::new(program)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_hand_checks_of_the_audit_guide_work() {
    for tamper in [
        Tamper::Nothing,
        Tamper::CommitStatsRewritten,
        Tamper::DataByteRewritten,
        Tamper::CommitRemoved,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let mut fx = honest(store.as_ref()).await;
        tamper_with(store.as_ref(), &mut fx, tamper).await;
        let head = fx.heads[0].1.clone().unwrap();

        let (_, links) = run_doc_block("bash", "chain-links.sh", dir.path());
        let links_ok = !matches!(tamper, Tamper::CommitStatsRewritten | Tamper::CommitRemoved);
        assert_eq!(links.contains("links OK"), links_ok, "{tamper:?}: {links}");
        match tamper {
            Tamper::CommitStatsRewritten => assert!(
                links.contains("version 2 records ") && links.contains(", commit 1 hashes to "),
                "{links}"
            ),
            Tamper::CommitRemoved => assert!(links.contains("commit 2 is missing"), "{links}"),
            _ => assert!(
                links.contains(&format!("head: version 3 sha256 {head}")),
                "{links}"
            ),
        }

        if tamper == Tamper::Nothing {
            // accounts' version 0 has no previousCommitSha256 field at all.
            let script = audit_doc_block("chain-links.sh", dir.path())
                .replace("/transfers/_delta_log", "/accounts/_delta_log");
            let out = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("links OK"), "{text}");
            assert!(
                text.contains(&format!(
                    "head: version 1 sha256 {}",
                    fx.heads[1].1.as_deref().unwrap()
                )),
                "{text}"
            );
        }

        let (files_ok, files) = run_doc_block("bash", "chain-files.sh", dir.path());
        let want_ok = tamper != Tamper::DataByteRewritten;
        assert_eq!(files_ok, want_ok, "{tamper:?}: {files}");
        assert_eq!(files.contains("files OK"), want_ok, "{tamper:?}: {files}");
        if !want_ok {
            assert!(
                files.contains(&format!("{}: FAILED", fx.f[2].add_path)),
                "{files}"
            );
        }

        let (core_ok, core) = run_doc_block("python3", "chain-core.py", dir.path());
        assert_eq!(core_ok, tamper == Tamper::Nothing, "{tamper:?}: {core}");
        if tamper == Tamper::Nothing {
            assert_eq!(core.trim(), format!("head {head}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded reading: commits one at a time, data files at most HASHES_IN_FLIGHT_MAX at once.

#[tokio::test]
async fn commits_are_read_sixteen_at_a_time_and_files_eight_at_a_time() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let files: Vec<DataFile> = (0..3 * COMMIT_READS_IN_FLIGHT_MAX as u64)
        .map(transfers_file)
        .collect();
    let mut transfers = TableLog::new("transfers");
    transfers
        .commit(inner.as_ref(), &[], &[], Shape::Ledgerlake)
        .await;
    for pair in files.chunks(2) {
        transfers
            .commit(inner.as_ref(), pair, &[], Shape::Ledgerlake)
            .await;
    }
    let store = Arc::new(
        crate::testbed::CountedStore::new(inner)
            .with_read_delay(std::time::Duration::from_millis(20)),
    );
    let report = Lake::from_store(store.clone(), "watched")
        .check_chain()
        .await
        .unwrap();
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.tables[0].active_files, files.len() as u64);
    let seen = store.counts();
    assert_eq!(seen.log_reading_max, COMMIT_READS_IN_FLIGHT_MAX, "{seen:?}");
    assert_eq!(seen.data_reading_max, HASHES_IN_FLIGHT_MAX, "{seen:?}");
}

#[tokio::test]
async fn any_object_under_a_table_makes_a_lake() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    put(
        store.as_ref(),
        &Path::from("quarantine/1-1.json"),
        b"{}".to_vec(),
    )
    .await;
    let lake = Lake::from_store(store.clone(), "memory");
    assert!(!lake.holds_table_objects().await.unwrap());
    put(
        store.as_ref(),
        &Path::from("swept_accounts/stray.txt"),
        b"x".to_vec(),
    )
    .await;
    assert!(lake.holds_table_objects().await.unwrap());
}

#[tokio::test]
async fn removed_newest_accounts_commits_are_named_through_the_transfers_pins() {
    use crate::lake::tests::{one_day_segment, CLUSTER};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::open(root.to_str().unwrap()).await.unwrap();
    lake.bind_cluster(CLUSTER).await.unwrap();
    for (start, first_account) in [("2026-11-21T12:00:00Z", 1), ("2026-11-21T13:00:00Z", 3)] {
        lake.commit(&one_day_segment(start, 2, first_account), CLUSTER)
            .await
            .unwrap();
    }
    let honest = lake.check_chain().await.unwrap();
    assert!(honest.ok(), "{honest:?}");
    let head = honest
        .tables
        .iter()
        .find(|t| t.table == "accounts")
        .and_then(|t| t.head_version)
        .unwrap();

    // The newest accounts commit removed: its own chain still links, and its data file looks
    // like one of an interrupted commit; only the transfers head's pins show the loss.
    std::fs::remove_file(root.join(commit_name("accounts", head).as_str())).unwrap();
    let report = lake.check_chain().await.unwrap();
    let found: Vec<_> = report
        .problems()
        .map(|p| (p.table.as_str(), p.version, p.check, p.file.clone()))
        .collect();
    assert_eq!(
        found,
        [(
            "accounts",
            Some(head),
            ChainCheck::MissingCommit,
            commit_name("accounts", head)
        )],
        "{report:#?}"
    );
    let (ok, json) = run_script(&root, &[]);
    assert!(!ok, "{json:#}");
    assert_eq!(
        comparable_python(&json),
        comparable_rust(&report),
        "{json:#}"
    );
}
