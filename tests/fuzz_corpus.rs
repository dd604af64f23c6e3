//! The lake fuzz corpora replayed on every `cargo test`, without the nightly toolchain: each
//! file of `fuzz/corpus/<target>/` goes through the target's own function (`fuzz/harness.rs`).
//! And the seeds of those corpora, taken from a small lake written by the real commit path: they
//! must decode and check clean here; `LEDGERLAKE_WRITE_FUZZ_SEEDS=1 cargo test --test
//! fuzz_corpus` (re)writes them into the corpora (scripts/fuzz.sh seed).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ledgerlake::cdc::{self, Event};
use ledgerlake::lake::chain::sha256_hex;
use ledgerlake::lake::{untrusted, AccountRecord, Lake, Quarantined, Segment, Table};

const CLUSTER: u128 = u128::MAX - 1;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8]), files_min: usize) {
    let files = corpus(target);
    assert!(
        files.len() >= files_min,
        "{target}: {} corpus files, expected at least {files_min}",
        files.len()
    );
    for (name, bytes) in &files {
        let outcome = std::panic::catch_unwind(|| run(bytes));
        assert!(outcome.is_ok(), "{target}: corpus file {name} panics");
    }
    eprintln!("{target}: {} corpus files replayed", files.len());
}

#[test]
fn the_data_file_corpus_replays_without_a_panic() {
    replay("data_file", harness::data_file, 5);
}

#[test]
fn the_log_commit_corpus_replays_without_a_panic() {
    replay("log_commit", harness::log_commit, 6);
}

#[test]
fn the_metadata_corpus_replays_without_a_panic() {
    replay("metadata", harness::metadata, 2);
}

/// Events like a real CDC message (the documented example), `count` of them from `first_ts` one
/// nanosecond apart, over a few accounts.
fn events(first_ts: u64, count: u64, id_base: u128) -> Vec<Event> {
    let body =
        std::fs::read(corpus_dir("decode_delivery").join("valid_doc_example_canonical.json"))
            .expect("the documented example");
    let example = cdc::decode(&body).expect("the documented example decodes");
    (0..count)
        .map(|i| {
            let mut e = example;
            e.timestamp = first_ts + i;
            e.transfer.timestamp = e.timestamp;
            e.transfer.id = id_base + u128::from(i);
            e.debit_account.id = 10 + u128::from(i % 3);
            e.credit_account.id = 20 + u128::from(i % 2);
            e
        })
        .collect()
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn table_of(rel: &str) -> (u8, Table) {
    match rel.split('/').next() {
        Some("transfers") => (0, Table::Transfers),
        Some("accounts") => (1, Table::Accounts),
        Some("swept_accounts") => (2, Table::SweptAccounts),
        other => panic!("not a table: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_from_a_real_lake_decode_and_check_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let lake = Lake::open(&root.to_string_lossy()).await.expect("lake");
    lake.bind_cluster(CLUSTER).await.expect("bind");
    let day = 1_795_294_950_000_000_000;
    let swept: Vec<AccountRecord> = events(day - 1_000, 2, 1)
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut a = AccountRecord::from_event_account(&e.debit_account, e.ledger, 0);
            a.id = 1_000 + i as u128;
            a.timestamp = day - 1_000 + i as u64;
            a.first_seen_timestamp = a.timestamp;
            a
        })
        .collect();
    let through = swept.last().expect("a page").timestamp;
    lake.commit_swept(&swept, through, CLUSTER)
        .await
        .expect("swept page");
    let mut known = HashSet::new();
    for (i, count) in [(0u64, 5u64), (1, 3), (2, 1)] {
        let seg = Segment::recording_first_seen(
            events(day + i * 100, count, 100 * u128::from(i + 1)),
            &mut known,
        );
        lake.commit(&seg, CLUSTER).await.expect("commit");
    }
    lake.quarantine(&Quarantined {
        received_ns: day,
        reason: "not JSON: expected value at line 1 column 1".into(),
        exchange: "tigerbeetle".into(),
        routing_key: "single_phase.2".into(),
        headers: vec![("event_type".into(), "single_phase".into())],
        body: b"not json".to_vec(),
    })
    .await
    .expect("quarantine");
    let report = lake.check_chain().await.expect("chain");
    assert!(report.ok(), "{report:?}");

    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let files = files_under(&root);
    let mut previous: Option<String> = None;
    let mut previous_table = "";
    for (rel, bytes) in &files {
        let name = rel.replace(['/', '='], "_");
        if rel.ends_with(".parquet") {
            let (index, table) = table_of(rel);
            let decoded = untrusted::decode_data_file(table, bytes).expect("a real file decodes");
            assert!(decoded.rows > 0, "{rel}");
            assert_eq!(decoded.cluster_id, CLUSTER, "{rel}");
            assert_eq!(
                untrusted::footer_rows(bytes, bytes.len() as u64).expect("footer"),
                decoded.rows,
                "{rel}"
            );
            seeds.push(("data_file", name, [&[index][..], bytes].concat()));
        } else if rel.contains("/_delta_log/") && rel.ends_with(".json") {
            let (index, table) = table_of(rel);
            let version: u64 = rel
                .rsplit('/')
                .next()
                .and_then(|f| f.trim_end_matches(".json").parse().ok())
                .expect("a version");
            if previous_table != table.dir() {
                previous = None;
                previous_table = table.dir();
            }
            let problems = untrusted::check_commit(table, version, bytes, previous.as_deref());
            assert!(problems.is_empty(), "{rel}: {problems:?}");
            let info = untrusted::commit_info_fields(bytes);
            assert!(info.timestamp_ms > 0, "{rel}: {info:?}");
            assert!(info.writer.is_some(), "{rel}: {info:?}");
            previous = Some(sha256_hex(bytes));
            // Versions 0..=3 are reachable through the selector; later ones are seeded as 3.
            let selector = index | (((version.min(3)) as u8) << 2) | 0x10;
            seeds.push(("log_commit", name, [&[selector][..], bytes].concat()));
        } else if rel == "_ledgerlake.json" {
            let meta = untrusted::decode_lake_meta(bytes).expect("metadata");
            assert_eq!(meta.cluster_id, CLUSTER);
            seeds.push(("metadata", name, bytes.clone()));
        } else if rel.starts_with("quarantine/") {
            let q = untrusted::decode_quarantined(bytes).expect("quarantine record");
            assert_eq!(q.body, b"not json");
            seeds.push(("metadata", name, bytes.clone()));
        }
    }
    for target in ["data_file", "log_commit", "metadata"] {
        assert!(
            seeds.iter().filter(|(t, _, _)| *t == target).count() >= 2,
            "{target} seeds: {:?}",
            seeds.iter().map(|(t, n, _)| (t, n)).collect::<Vec<_>>()
        );
    }
    for (target, _, bytes) in &seeds {
        match *target {
            "data_file" => harness::data_file(bytes),
            "log_commit" => harness::log_commit(bytes),
            _ => harness::metadata(bytes),
        }
    }
    if std::env::var_os("LEDGERLAKE_WRITE_FUZZ_SEEDS").is_some() {
        // The previous seeds go (their names carry digests); reviewed finds stay.
        for target in ["data_file", "log_commit", "metadata"] {
            for (name, _) in corpus(target) {
                if name.starts_with("seed_") {
                    let path = corpus_dir(target).join(&name);
                    std::fs::remove_file(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
            }
        }
        for (target, name, bytes) in &seeds {
            let path = corpus_dir(target).join(format!("seed_{name}"));
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        eprintln!("{} seeds written under fuzz/corpus", seeds.len());
    }
}
