//! Opening a long-lived lake (issue "Lake format 2", bar 3): a lake of 10^4 commits (full scale;
//! 2,000 small), committed through `Lake::commit`, then one exporter session start
//! (`Lake::resume_state`), counting the objects of the Delta logs it reads and the listings it
//! makes. The anchor is the number of commits: what opening would read without checkpoints. The
//! target is the bound checkpoints give: per table, `_last_checkpoint`, one checkpoint and fewer
//! than `CHECKPOINT_INTERVAL_COMMITS` commits, for the snapshot and for the position.

mod common;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use common::{Args, Better, Report, Row, Scale};
use futures::stream::BoxStream;
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::{AccountRecord, Lake, Segment, CHECKPOINT_INTERVAL_COMMITS};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use serde_json::json;

const CLUSTER: u128 = 9;
/// 2026-01-01T00:00:00Z.
const START_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// Counts the reads of `_delta_log/` objects and the listings.
#[derive(Debug)]
struct Counting {
    inner: InMemory,
    log_reads: AtomicU64,
    lists: AtomicU64,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counting {
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
        if p.as_ref().contains("_delta_log") {
            self.log_reads.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.get_opts(p, o).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

fn account(id: u128, posted: u128, timestamp: u64) -> AccountFields {
    AccountFields {
        id,
        debits_posted: posted,
        credits_posted: posted,
        timestamp,
        ..Default::default()
    }
}

/// Commit `i`: one event a second, two accounts of its own.
fn segment(i: u64) -> Segment {
    let ts = START_NS + i * 1_000_000_000;
    let (debit, credit) = (u128::from(i) * 2 + 1, u128::from(i) * 2 + 2);
    let event = Event {
        timestamp: ts,
        event_type: EventType::SinglePhase,
        ledger: 1,
        transfer: TransferFields {
            id: u128::from(i) + 1,
            amount: 10,
            timestamp: ts,
            ..Default::default()
        },
        debit_account: account(debit, 10, ts - 2),
        credit_account: account(credit, 10, ts - 1),
    };
    let new_accounts = vec![
        AccountRecord::from_event_account(&event.debit_account, 1, ts),
        AccountRecord::from_event_account(&event.credit_account, 1, ts),
    ];
    Segment {
        events: vec![event],
        new_accounts,
    }
}

fn main() {
    let args = Args::parse();
    let commits: u64 = match args.scale {
        Scale::Small => 2_000,
        Scale::Full => 10_000,
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let store = Arc::new(Counting {
        inner: InMemory::new(),
        log_reads: AtomicU64::new(0),
        lists: AtomicU64::new(0),
    });
    let (log_reads, lists, open_ms, commit_s) = runtime.block_on(async {
        let lake = Lake::from_store(store.clone(), "memory (counted)");
        let started = Instant::now();
        for i in 0..commits {
            lake.commit(&segment(i), CLUSTER).await.expect("commit");
        }
        let commit_s = started.elapsed().as_secs_f64();
        let fresh = Lake::from_store(store.clone(), "memory (counted)");
        store.log_reads.store(0, Ordering::Relaxed);
        store.lists.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let state = fresh.resume_state(CLUSTER).await.expect("resume");
        let open_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(state.transfers_version, commits);
        (
            store.log_reads.load(Ordering::Relaxed),
            store.lists.load(Ordering::Relaxed),
            open_ms,
            commit_s,
        )
    });
    // Two tables carry a commit per segment (transfers, accounts), swept_accounts one.
    let bound = 2 * 2 * (2 + CHECKPOINT_INTERVAL_COMMITS) + 4;
    eprintln!(
        "bench open: {commits} commits in {commit_s:.1} s; a session start read {log_reads} log \
         objects and made {lists} listings in {open_ms:.0} ms"
    );
    let mut report = Report::new("open", args.scale);
    report.rows.push(Row {
        id: "open log objects read".into(),
        what: format!("log objects read to open a lake of {commits} commits"),
        unit: "objects".into(),
        ours: log_reads as f64,
        anchor: Some(commits as f64),
        anchor_what: "commits in the lake".into(),
        target: Some((bound as f64, false)),
        better: Better::Lower,
    });
    report.rows.push(Row {
        id: "open listings".into(),
        what: "listings made by one session start".into(),
        unit: "lists".into(),
        ours: lists as f64,
        anchor: None,
        anchor_what: String::new(),
        target: Some((8.0, false)),
        better: Better::Lower,
    });
    report.details.insert(
        "open".into(),
        json!({"commits": commits, "log_reads": log_reads, "lists": lists, "open_ms": open_ms,
               "commit_seconds": commit_s, "bound": bound,
               "checkpoint_interval_commits": CHECKPOINT_INTERVAL_COMMITS}),
    );
    report.finish(&args);
}
