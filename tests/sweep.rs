//! The account sweep (`export --addresses`) against the real stack: a replica running the
//! workload (every event kind, untouched accounts, accounts whose every transfer is rejected),
//! plus an account created closed and one created after the last transfer; the real CDC job;
//! two in-process exporters on two queues of the same exchange.
//!
//! - Lake "race": exported with a sweep every 50 ms while the workload runs, so the sweep and the
//!   CDC stream race for the same accounts (here the sweep usually wins: accounts are created
//!   before their first transfer, so events use swept accounts). Every account of the source must
//!   read back exactly once (records merged by id), and a rebuild of it to `latest` must recreate
//!   every account of the source.
//! - Lake "late": exported without a sweep, then swept by a second run (CDC first: the sweep
//!   must skip every account a transfer touched): it must record exactly the accounts no event
//!   shows; a third run records nothing.
//! - A restarted exporter (RabbitMQ only, synthetic events, a store that counts reads) reads no
//!   data file when it starts.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::stack::{self, InProcessExporter};
use ledgerlake::audit::progress::NoProgress;
use ledgerlake::audit::verify;
use ledgerlake::export::sweep::SweepOptions;
use ledgerlake::export::{self, ExportOptions};
use ledgerlake::lake::{AccountRecord, Lake};
use ledgerlake::rebuild::plan::Until;
use ledgerlake::rebuild::{self, RebuildOptions};
use ledgerlake::testbed::{self, Broker, CdcJob, Replica};
use ledgerlake::workload::{self, WorkloadConfig};
use tigerbeetle_unofficial::{account, Account};

const A_LINKED: u16 = 1;
const A_IMPORTED: u16 = 1 << 4;
const A_CLOSED: u16 = 1 << 5;

/// The shared test options, with 300 ms segments and, if `sweep` is given, a sweep that often.
fn options(replica: &Replica, queue: &str, lake: &str, sweep: Option<Duration>) -> ExportOptions {
    let mut options = stack::export_options(queue, replica.cluster_id(), lake);
    options.seal.events_max = 4096;
    options.seal.age_max = Duration::from_millis(300);
    options.sweep = sweep.map(|interval| SweepOptions {
        addresses: replica.address().to_string(),
        interval,
        request_timeout: Duration::from_secs(30),
    });
    options
}

/// Polls until `done` holds for the lake, or fails after `timeout` with `what`.
async fn wait_for<F>(lake: &Lake, what: &str, timeout: Duration, done: F)
where
    F: Fn(&[ledgerlake::cdc::Event], &[AccountRecord]) -> bool,
{
    let deadline = Instant::now() + timeout;
    loop {
        let (events, records) = lake.read_all().await.expect("the lake reads back whole");
        if done(&events, &records) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {timeout:?} ({} events, {} accounts)",
            events.len(),
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The lake reads back every source account exactly once (its records merged by id, which
/// refuses records that disagree), with its immutable fields; swept records keep `closed` only
/// for an account created closed.
async fn assert_records_every_account_once(
    lake: &Lake,
    source: &HashMap<u128, account::Raw>,
    created_closed: u128,
) {
    // read_all merges an account's records (in either table) and refuses records that disagree.
    let (_, records) = lake.read_all().await.expect("the lake reads back whole");
    let ids: HashSet<u128> = records.iter().map(|a| a.id).collect();
    assert_eq!(ids.len(), records.len(), "no account recorded twice");
    assert_eq!(
        ids,
        source.keys().copied().collect(),
        "every account recorded"
    );
    let swept: HashSet<u128> = lake
        .read_all_swept(None)
        .await
        .expect("swept files")
        .iter()
        .map(|a| a.id)
        .collect();
    for r in &records {
        let s = &source[&r.id];
        let id = r.id;
        assert_eq!(
            (
                r.ledger,
                r.code,
                r.user_data_128,
                r.user_data_64,
                r.user_data_32,
                r.timestamp
            ),
            (
                s.ledger,
                s.code,
                s.user_data_128,
                s.user_data_64,
                s.user_data_32,
                s.timestamp
            ),
            "immutable fields of account {id}"
        );
        assert_eq!(
            r.flags & !A_CLOSED,
            s.flags & !A_CLOSED,
            "flags of account {id}"
        );
        if swept.contains(&id) {
            assert_eq!(r.first_seen_timestamp, r.timestamp, "swept account {id}");
            assert_eq!(
                r.flags & A_CLOSED != 0,
                id == created_closed,
                "closed flag of swept account {id}: kept only if created closed"
            );
        }
    }
    assert_eq!(lake.load_account_ids().await.expect("ids"), ids);
    let report = verify::verify(lake, &NoProgress).await;
    assert!(report.ok, "verify: {:?}", report.problems);
    assert_eq!(report.swept_accounts, swept.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_records_every_account_once_and_a_rebuild_recreates_them_all() {
    let started = Instant::now();
    let replica = Replica::start(testbed::random_cluster_id())
        .await
        .expect("source replica");
    let cluster_id = replica.cluster_id();
    let target_start =
        tokio::spawn(async move { Replica::start(cluster_id).await.expect("target replica") });
    let broker = Broker::connect()
        .await
        .expect("broker (run scripts/setup.sh)");
    let exchange = testbed::unique_name("ledgerlake-sweep");
    let race_queue = testbed::unique_name("ledgerlake-sweep-race");
    let late_queue = testbed::unique_name("ledgerlake-sweep-late");
    broker.declare_exchange(&exchange).await.expect("exchange");
    for queue in [&race_queue, &late_queue] {
        broker
            .declare_queue_bound(queue, &exchange)
            .await
            .expect("queue");
    }
    let cdc = CdcJob::start(&replica, &exchange, None)
        .await
        .expect("CDC job");
    let dir = tempfile::tempdir().expect("tempdir");
    let race_lake = dir.path().join("race").to_string_lossy().into_owned();
    let late_lake = dir.path().join("late").to_string_lossy().into_owned();

    let race = InProcessExporter::start(options(
        &replica,
        &race_queue,
        &race_lake,
        Some(Duration::from_millis(50)),
    ));
    let late = InProcessExporter::start(options(&replica, &late_queue, &late_lake, None));
    let client = replica.client().expect("client");
    let summary = workload::run(&client, &WorkloadConfig::new(0x5eed_0005, 20_000), |_| {})
        .await
        .expect("workload");
    // After the last transfer: an account created closed and a plain one, neither ever used.
    let created_closed = (0x5eed_0005 << 96) + 1;
    let created_last = (0x5eed_0005 << 96) + 2;
    assert!(!summary.account_ids.contains(&created_closed));
    assert!(!summary.account_ids.contains(&created_last));
    client
        .create_accounts(vec![
            Account::new(created_closed, 1, 1).with_flags(account::Flags::CLOSED),
            Account::new(created_last, 2, 3).with_user_data_64(7),
        ])
        .await
        .expect("two more accounts");
    let source: HashMap<u128, account::Raw> = common::source_accounts(&client)
        .await
        .iter()
        .map(|a| (a.as_raw().id, *a.as_raw()))
        .collect();
    let workload_done = started.elapsed();

    let events_total = summary.events.total() as usize;
    let race_handle = Lake::open(&race_lake).await.expect("lake");
    let late_handle = Lake::open(&late_lake).await.expect("lake");
    let accounts_total = source.len();
    wait_for(
        &race_handle,
        "race lake complete",
        Duration::from_secs(120),
        |e, r| e.len() >= events_total && r.len() >= accounts_total,
    )
    .await;
    wait_for(
        &late_handle,
        "late lake has every event",
        Duration::from_secs(120),
        |e, _| e.len() >= events_total,
    )
    .await;
    let race_report = race.stop().await;
    let late_report = late.stop().await;
    cdc.stop().await;
    assert_eq!(race_report.events_committed as usize, events_total);
    assert_eq!(late_report.events_committed as usize, events_total);
    assert_eq!(
        late_report.accounts_swept, 0,
        "no sweep without --addresses"
    );

    // The accounts no event shows: the workload's untouched ones, those with only rejected
    // transfers, and the two created at the end.
    let (events, in_events_records) = late_handle.read_all().await.expect("late lake");
    let in_events: HashSet<u128> = events
        .iter()
        .flat_map(|e| [e.debit_account.id, e.credit_account.id])
        .collect();
    assert_eq!(in_events_records.len(), in_events.len());
    let invisible: HashSet<u128> = source
        .keys()
        .filter(|id| !in_events.contains(id))
        .copied()
        .collect();
    assert!(summary
        .untouched_account_ids
        .iter()
        .all(|id| invisible.contains(id)));
    assert!(invisible.contains(&created_closed) && invisible.contains(&created_last));
    assert!(
        invisible.len() > summary.untouched_account_ids.len() + 2,
        "the workload also has accounts whose every transfer was rejected"
    );

    // The race lake: sweep and CDC together recorded every account once.
    assert_records_every_account_once(&race_handle, &source, created_closed).await;
    let race_swept = race_handle.read_all_swept(None).await.expect("swept").len();
    assert_eq!(race_report.accounts_swept as usize, race_swept);
    eprintln!(
        "race lake: {} accounts, {race_swept} swept ({} swept files), {} first seen in events",
        accounts_total,
        race_report.swept_files_committed,
        accounts_total - race_swept
    );

    // The late lake, swept afterwards: exactly the accounts no event showed.
    let mut sweep_late = options(
        &replica,
        &late_queue,
        &late_lake,
        Some(Duration::from_millis(200)),
    );
    sweep_late.until_idle = Some(Duration::from_millis(500));
    let report = export::run(sweep_late.clone(), Box::pin(std::future::pending()))
        .await
        .expect("sweeping run");
    assert_eq!(report.events_committed, 0);
    let swept: HashSet<u128> = late_handle
        .read_all_swept(None)
        .await
        .expect("swept")
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(
        swept, invisible,
        "the sweep records exactly what no event showed"
    );
    assert_eq!(report.accounts_swept as usize, invisible.len());
    assert_records_every_account_once(&late_handle, &source, created_closed).await;
    // Another run resumes from the lake and records nothing again.
    sweep_late.broker.consumer_tag = testbed::unique_name("ledgerlake-sweep-consumer");
    let report = export::run(sweep_late, Box::pin(std::future::pending()))
        .await
        .expect("second sweeping run");
    assert_eq!(
        (report.accounts_swept, report.swept_files_committed),
        (0, 0)
    );
    let _ = broker.delete_queue(&race_queue).await;
    let _ = broker.delete_queue(&late_queue).await;
    let _ = broker.delete_exchange(&exchange).await;
    let _ = broker.delete_cdc_queues(cluster_id).await;
    let exported = started.elapsed();

    // A rebuild of the race lake to `latest` recreates every account of the source.
    let target = target_start.await.expect("target start");
    let report = rebuild::rebuild(
        &RebuildOptions {
            lake: race_lake.clone(),
            addresses: Some(target.address().to_string()),
            cluster_id,
            lake_cluster_id: None,
            until: Until::Latest,
            ledgers: None,
            dry_run: false,
            batch_events_max: 8189,
            reply_timeout: Duration::from_secs(60),
        },
        Vec::new(),
        &mut |_| {},
    )
    .await
    .expect("rebuild to latest");
    let target_client = target.client().expect("target client");
    let got = common::source_accounts(&target_client).await;
    assert_eq!(got.len(), source.len(), "every account of the source");
    assert_eq!(
        report.run.as_ref().expect("ran").accounts_created as usize,
        source.len()
    );
    for g in &got {
        let g = g.as_raw();
        let s = source
            .get(&g.id)
            .unwrap_or_else(|| panic!("account {} is not in the source", g.id));
        // Documented deviations: imported set, linked dropped. `closed` is the source's: created
        // closed, or closed again by the replayed closing transfer.
        let want = account::Raw {
            flags: (s.flags & !A_LINKED) | A_IMPORTED,
            ..*s
        };
        assert_eq!(g.id, want.id);
        assert_eq!(
            g.debits_pending, want.debits_pending,
            "debits_pending of {}",
            g.id
        );
        assert_eq!(
            g.debits_posted, want.debits_posted,
            "debits_posted of {}",
            g.id
        );
        assert_eq!(
            g.credits_pending, want.credits_pending,
            "credits_pending of {}",
            g.id
        );
        assert_eq!(
            g.credits_posted, want.credits_posted,
            "credits_posted of {}",
            g.id
        );
        assert_eq!(
            g.user_data_128, want.user_data_128,
            "user_data_128 of {}",
            g.id
        );
        assert_eq!(
            g.user_data_64, want.user_data_64,
            "user_data_64 of {}",
            g.id
        );
        assert_eq!(
            g.user_data_32, want.user_data_32,
            "user_data_32 of {}",
            g.id
        );
        assert_eq!(g.ledger, want.ledger, "ledger of {}", g.id);
        assert_eq!(g.code, want.code, "code of {}", g.id);
        assert_eq!(g.flags, want.flags, "flags of {}", g.id);
        assert_eq!(g.timestamp, want.timestamp, "timestamp of {}", g.id);
    }
    assert_eq!(
        common::source_transfers(&target_client).await.len(),
        events_total,
        "one transfer per event (an expiry's void included)"
    );
    eprintln!(
        "workload {workload_done:?}, exported and swept at {exported:?}, rebuilt and compared at {:?}",
        started.elapsed()
    );
    target.stop().await;
    replica.stop().await;
}

/// Counts the data objects read (anything outside `_delta_log/` but the metadata file).
#[derive(Debug)]
struct DataReads {
    inner: object_store::memory::InMemory,
    read: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Display for DataReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataReads({})", self.inner)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for DataReads {
    async fn put_opts(
        &self,
        p: &object_store::path::Path,
        payload: object_store::PutPayload,
        o: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(p, payload, o).await
    }
    async fn put_multipart_opts(
        &self,
        p: &object_store::path::Path,
        o: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(p, o).await
    }
    async fn get_opts(
        &self,
        p: &object_store::path::Path,
        o: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        if !p.as_ref().contains("_delta_log") && p.as_ref() != "_ledgerlake.json" {
            self.read.lock().unwrap().push(p.to_string());
        }
        self.inner.get_opts(p, o).await
    }
    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        o: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

/// Single-phase events of amount 1 between accounts 1..=10, each carrying both accounts'
/// balances after it (so that `verify`'s balance chains hold).
struct Events {
    accounts: HashMap<u128, ledgerlake::cdc::AccountFields>,
    next: u64,
}

/// 2026-03-01T00:00:00Z.
const EVENTS_START_NS: u64 = 1_772_323_200 * 1_000_000_000;

impl Events {
    fn new() -> Events {
        let accounts = (1..=12u128)
            .map(|id| {
                let fields = ledgerlake::cdc::AccountFields {
                    id,
                    code: 1,
                    user_data_64: 7,
                    timestamp: EVENTS_START_NS - 1_000 + id as u64,
                    ..Default::default()
                };
                (id, fields)
            })
            .collect();
        Events { accounts, next: 0 }
    }

    /// The sweep's record of an account before any transfer.
    fn swept(&self, id: u128) -> AccountRecord {
        let a = &self.accounts[&id];
        AccountRecord {
            first_seen_timestamp: a.timestamp,
            ..AccountRecord::from_event_account(a, 1, a.timestamp)
        }
    }

    fn next_event(&mut self) -> ledgerlake::cdc::Event {
        let i = self.next;
        self.next += 1;
        let timestamp = EVENTS_START_NS + i * 1_000;
        let (debit, credit) = (1 + u128::from(i % 10), 1 + u128::from((i + 3) % 10));
        self.accounts.get_mut(&debit).unwrap().debits_posted += 1;
        self.accounts.get_mut(&credit).unwrap().credits_posted += 1;
        ledgerlake::cdc::Event {
            timestamp,
            event_type: ledgerlake::cdc::EventType::SinglePhase,
            ledger: 1,
            transfer: ledgerlake::cdc::TransferFields {
                id: u128::from(i) + 1,
                amount: 1,
                timestamp,
                ..Default::default()
            },
            debit_account: self.accounts[&debit],
            credit_account: self.accounts[&credit],
        }
    }
}

/// An exporter restarted on a lake of segments and swept files reads no data file when it
/// starts (the positions come from the logs), and the accounts every segment records again
/// read back once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_exporter_reads_no_accounts_or_swept_file() {
    let cluster_id = testbed::random_cluster_id();
    let broker = Broker::connect()
        .await
        .expect("broker (run scripts/setup.sh)");
    let exchange = testbed::unique_name("ledgerlake-restart");
    let queue = testbed::unique_name("ledgerlake-restart");
    broker.declare_exchange(&exchange).await.expect("exchange");
    broker
        .declare_queue_bound(&queue, &exchange)
        .await
        .expect("queue");
    let store = std::sync::Arc::new(DataReads {
        inner: object_store::memory::InMemory::new(),
        read: Default::default(),
    });
    let mut events = Events::new();
    // Accounts 1, 11 and 12 swept before any transfer (1 is used later, 11 and 12 never).
    let first = Lake::from_store(store.clone(), "memory (watched)");
    let page: Vec<AccountRecord> = [1, 11, 12].iter().map(|&id| events.swept(id)).collect();
    first
        .commit_swept(&page, page[2].timestamp, cluster_id)
        .await
        .expect("swept page");
    let mut options = stack::export_options(&queue, cluster_id, "memory (watched)");
    options.until_idle = Some(Duration::from_millis(500));
    options.seal.events_max = 8;
    let mut published = Vec::new();
    for round in 0..2 {
        for _ in 0..40 {
            let event = events.next_event();
            broker
                .publish_raw(
                    &exchange,
                    ledgerlake::cdc::encode(&event).as_bytes(),
                    Default::default(),
                )
                .await
                .expect("publish");
            published.push(event);
        }
        store.read.lock().unwrap().clear();
        options.broker.consumer_tag = testbed::unique_name("ledgerlake-restart-consumer");
        let lake = std::sync::Arc::new(Lake::from_store(store.clone(), "memory (watched)"));
        let report = export::run_on(lake, options.clone(), Box::pin(std::future::pending()))
            .await
            .expect("export run");
        assert_eq!(report.events_committed, 40, "round {round}");
        assert!(report.segments_committed >= 5, "{report:?}");
        let read = store.read.lock().unwrap().clone();
        assert!(
            read.is_empty(),
            "round {round}: the exporter read data files: {read:?}"
        );
    }
    let lake = Lake::from_store(store.clone(), "memory (watched)");
    let (got, records) = lake.read_all().await.expect("the lake reads back whole");
    assert_eq!(got, published);
    let mut ids: Vec<u128> = records.iter().map(|a| a.id).collect();
    ids.sort();
    assert_eq!(ids, (1..=12).collect::<Vec<_>>(), "one record per account");
    assert_eq!(
        records.iter().find(|a| a.id == 1),
        Some(&page[0]),
        "the swept record of account 1 is first seen"
    );
    // Every segment recorded the accounts it touched: many more rows than accounts.
    let mut rows = 0;
    for seg in lake.list_segments().await.expect("segments") {
        rows += lake.read_accounts(&seg).await.expect("accounts").len();
    }
    assert!(rows > 20, "{rows} account rows");
    let report = verify::verify(&lake, &NoProgress).await;
    assert!(report.ok, "verify: {:?}", report.problems);
    let _ = broker.delete_queue(&queue).await;
    let _ = broker.delete_exchange(&exchange).await;
}
