//! The S3 path against a real S3-protocol server (`s3s-fs`, installed by scripts/setup-test.sh): the
//! exporter writes an `s3://` lake, `ls` reads it over S3, and create-only writes are refused a
//! second time. Credentials reach the binary through the environment, as an operator's would.

mod common;

use common::stack::{lake_event_count, Stack};

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ledgerlake::lake::Lake;
use ledgerlake::testbed;
use ledgerlake::workload::{self, WorkloadConfig};

const ACCESS_KEY: &str = "ledgerlake-test";
const SECRET_KEY: &str = "ledgerlake-test-secret";
const BUCKET: &str = "ledgers";

/// An `s3s-fs` server over a temp directory; killed on drop.
struct S3Server {
    root: tempfile::TempDir,
    port: u16,
    endpoint: String,
    process: tokio::process::Child,
}

impl S3Server {
    async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let process = Self::spawn(root.path(), port).await;
        S3Server {
            root,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            process,
        }
    }

    /// Starts the server again over the same directory and port.
    async fn restart(&mut self) {
        self.process = Self::spawn(self.root.path(), self.port).await;
    }

    async fn spawn(root: &std::path::Path, port: u16) -> tokio::process::Child {
        let binary = s3s_binary();
        let process = tokio::process::Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run scripts/setup-test.sh)",
                    binary.display()
                )
            });
        testbed::wait_until("s3s-fs to listen", Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await
        .expect("s3s-fs listens");
        process
    }

    fn env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    }

    /// Where s3s-fs keeps `s3://BUCKET/key` on disk.
    fn local_path(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

fn s3s_binary() -> PathBuf {
    if let Ok(path) = std::env::var("LEDGERLAKE_S3S_FS") {
        return PathBuf::from(path);
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
    home.join("bin").join("s3s-fs")
}

fn ledgerlake(server: &S3Server) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"));
    command
        .envs(server.env())
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_an_s3_lake_equals_the_source() {
    let server = S3Server::start().await;
    let stack = Stack::start().await;
    let (replica, queue) = (&stack.replica, stack.queue.clone());
    let client = replica.client().expect("client");
    let summary = workload::run(&client, &WorkloadConfig::new(0x5eed_0005, 3_000), |_| {})
        .await
        .expect("workload");

    let lake_url = format!("s3://{BUCKET}/finance/ledger");
    let output = ledgerlake(&server)
        .args([
            "export",
            "--queue",
            &queue,
            "--lake",
            &lake_url,
            "--until-idle",
            "3s",
        ])
        .args([
            "--cluster-id",
            &replica.cluster_id().to_string(),
            "--segment-events-max",
            "1000",
        ])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .output()
        .await
        .expect("export runs");
    assert!(
        output.status.success(),
        "export to S3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Read back over S3 with `ls --format json`.
    let output = ledgerlake(&server)
        .args(["ls", "--lake", &lake_url, "--format", "json"])
        .output()
        .await
        .expect("ls runs");
    assert!(
        output.status.success(),
        "ls over S3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("ls prints JSON");
    assert_eq!(
        listing["totals"]["events"],
        serde_json::json!(summary.events.total().to_string())
    );
    assert!(
        listing["totals"]["segments"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .expect("segments")
            >= 3,
        "{listing}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECRET_KEY));

    // What s3s-fs stored is the same lake: compare it with the source field by field.
    let stored = Lake::open(&server.local_path("finance/ledger").to_string_lossy())
        .await
        .expect("stored lake");
    common::assert_lake_matches_source(&stored, &client).await;

    // An auditor's DuckDB reads the s3:// lake exactly as it reads the same files on disk.
    let queries = "SELECT count(*) AS events, exact_sum(amount) AS volume FROM events; \
                   SELECT count(*) AS accounts FROM accounts; \
                   SELECT * FROM trial_balance(tb_ns('2100-01-01T00:00:00Z'::TIMESTAMP)) ORDER BY ledger;";
    let stored = server
        .local_path("finance/ledger")
        .to_string_lossy()
        .into_owned();
    let over_s3 = duckdb_over(&lake_url, Some(&server), None, queries);
    let on_disk = duckdb_over(&stored, None, None, queries);
    assert_eq!(
        over_s3, on_disk,
        "DuckDB over s3:// and over the stored files"
    );
    assert!(
        over_s3.contains(&summary.events.total().to_string()),
        "{over_s3}"
    );
    // And as the lake stood at an earlier transfers version (time travel replays a shorter log).
    let versions = duckdb_over(
        &stored,
        None,
        None,
        "SELECT transfers_version FROM lake_info;",
    );
    let latest: u64 = serde_json::from_str::<serde_json::Value>(&versions).expect("JSON")[0]
        ["transfers_version"]
        .as_u64()
        .expect("a transfers version");
    let earlier = latest / 2;
    let then_s3 = duckdb_over(&lake_url, Some(&server), Some(earlier), queries);
    let then_disk = duckdb_over(&stored, None, Some(earlier), queries);
    assert_eq!(
        then_s3, then_disk,
        "DuckDB at transfers version {earlier} over s3:// and over the stored files"
    );
    assert_ne!(
        then_s3, over_s3,
        "version {earlier} of {latest} has fewer events"
    );

    stack.cleanup().await;
    drop(server);
}

/// Runs `queries` with the DuckDB CLI that has an httpfs extension at hand (scripts/setup.sh
/// fetches the pair from PyPI) over the lake's views (schemas/duckdb/lake.sql), through an S3
/// secret when `server` is given, at `lake_version` when given; returns the JSON it printed.
fn duckdb_over(
    lake: &str,
    server: Option<&S3Server>,
    lake_version: Option<u64>,
    queries: &str,
) -> String {
    let cli = std::env::var("LEDGERLAKE_DUCKDB_S3_CLI")
        .expect("LEDGERLAKE_DUCKDB_S3_CLI (run scripts/setup.sh)");
    let mut command = std::process::Command::new(cli);
    command.current_dir(env!("CARGO_MANIFEST_DIR")).arg("-json");
    if let Some(server) = server {
        let httpfs = std::env::var("LEDGERLAKE_DUCKDB_HTTPFS")
            .expect("LEDGERLAKE_DUCKDB_HTTPFS (run scripts/setup.sh)");
        let endpoint = server.endpoint.trim_start_matches("http://");
        command.args(["-cmd", &format!("LOAD '{httpfs}'")]).args([
            "-cmd",
            &format!(
                "CREATE SECRET (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', ENDPOINT '{endpoint}', \
                 URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
            ),
        ]);
    }
    if let Some(version) = lake_version {
        command.args(["-cmd", &format!("SET VARIABLE lake_version = {version}")]);
    }
    let output = command
        .args([
            "-cmd",
            &format!("SET VARIABLE lake = '{lake}'"),
            "-cmd",
            ".read schemas/duckdb/lake.sql",
            "-c",
            queries,
        ])
        .output()
        .expect("the duckdb CLI runs (run scripts/setup.sh)");
    assert!(
        output.status.success(),
        "duckdb over {lake}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // `CREATE SECRET` prints its own status row; the answers follow it.
    String::from_utf8_lossy(&output.stdout).replace("[{\"Success\":true}]\n", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writes_are_create_only() {
    use object_store::aws::AmazonS3Builder;
    use object_store::{ObjectStore, PutMode, PutOptions};

    let server = S3Server::start().await;
    let mut builder = AmazonS3Builder::new().with_bucket_name(BUCKET);
    for (key, value) in server.env() {
        builder = match key {
            "AWS_ACCESS_KEY_ID" => builder.with_access_key_id(value),
            "AWS_SECRET_ACCESS_KEY" => builder.with_secret_access_key(value),
            "AWS_ENDPOINT_URL" => builder.with_endpoint(value),
            "AWS_ALLOW_HTTP" => builder.with_allow_http(true),
            _ => builder.with_region(value),
        };
    }
    let store = builder.build().expect("s3 store");
    let path = object_store::path::Path::from("probe/segment.parquet");
    let create = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    store
        .put_opts(&path, b"first".to_vec().into(), create.clone())
        .await
        .expect("first create succeeds");
    let second = store
        .put_opts(&path, b"second".to_vec().into(), create)
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "a second create-only put must be refused, got {second:?}"
    );
    assert_eq!(
        std::fs::read(server.local_path("probe/segment.parquet")).expect("stored"),
        b"first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_outage_stops_the_exporter_without_acknowledging_then_nothing_is_lost() {
    let mut server = S3Server::start().await;
    let stack = Stack::start().await;
    let (replica, broker, queue) = (&stack.replica, &stack.broker, stack.queue.clone());
    let client = replica.client().expect("client");
    let lake_url = format!("s3://{BUCKET}/outage");
    let cluster = replica.cluster_id().to_string();

    let exporter = ledgerlake(&server)
        .args([
            "export",
            "--queue",
            &queue,
            "--lake",
            &lake_url,
            "--cluster-id",
            &cluster,
        ])
        .args(["--segment-age-max", "200ms", "--lake-retry-max", "3s"])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exporter starts");
    let stored = Lake::open(&server.local_path("outage").to_string_lossy())
        .await
        .expect("stored lake");
    let queue_name = queue.clone();
    testbed::wait_until("the exporter to consume", Duration::from_secs(60), || {
        let queue = queue_name.clone();
        async move { queue_consumers(&queue) == 1 }
    })
    .await
    .expect("exporter consuming");

    // The object store goes away; then events arrive.
    server.process.start_kill().expect("stop s3s-fs");
    server.process.wait().await.expect("s3s-fs stopped");
    let summary = workload::run(&client, &WorkloadConfig::new(0x5eed_0009, 1_000), |_| {})
        .await
        .expect("workload");
    let output = tokio::time::timeout(Duration::from_secs(60), exporter.wait_with_output())
        .await
        .expect("exporter gives up")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the exporter exits non-zero when the lake stays down"
    );
    assert!(
        stderr.contains("the lake rejected writes"),
        "a clear message: {stderr}"
    );
    assert!(
        !stderr.contains(SECRET_KEY) && !stderr.contains("guest:guest"),
        "no secret in the output: {stderr}"
    );
    let expected = summary.events.total() as u64;
    let requeued = testbed::wait_until(
        "the unacknowledged events to return to the queue",
        Duration::from_secs(15),
        || async {
            broker
                .queue_depth(&queue)
                .await
                .is_ok_and(|depth| u64::from(depth) >= expected)
        },
    )
    .await;
    let waiting = u64::from(broker.queue_depth(&queue).await.expect("depth"));
    assert!(
        requeued.is_ok(),
        "{waiting} of {expected} events back in the queue"
    );
    assert_eq!(waiting, expected, "nothing unwritten was acknowledged");
    assert!(
        stored.list_segments().await.expect("listing").is_empty(),
        "nothing was written while the store was down"
    );

    // The store comes back (same data); a new run picks up exactly where the lake stands.
    server.restart().await;
    let output = ledgerlake(&server)
        .args([
            "export",
            "--queue",
            &queue,
            "--lake",
            &lake_url,
            "--cluster-id",
            &cluster,
            "--until-idle",
            "3s",
        ])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .output()
        .await
        .expect("export runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    common::assert_lake_matches_source(&stored, &client).await;

    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopped_in_the_middle_of_commits_resumes_when_it_returns_with_nothing_lost() {
    let mut server = S3Server::start().await;
    let stack = Stack::start().await;
    let client = stack.replica.client().expect("client");
    // A backlog drained in small segments: the exporter is committing when the store stops.
    let summary = workload::run(&client, &WorkloadConfig::new(0x5eed_000a, 3_000), |_| {})
        .await
        .expect("workload");
    let expected = summary.events.total() as u64;
    let lake_url = format!("s3://{BUCKET}/mid-commit");
    let mut exporter = ledgerlake(&server)
        .args(["export", "--queue", &stack.queue, "--lake", &lake_url])
        .args(["--cluster-id", &stack.replica.cluster_id().to_string()])
        .args(["--segment-events-max", "100", "--prefetch", "100"])
        .args(["--segment-age-max", "200ms", "--lake-retry-max", "60s"])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .spawn()
        .expect("exporter starts");
    let stored = Lake::open(&server.local_path("mid-commit").to_string_lossy())
        .await
        .expect("stored lake");
    testbed::wait_until("the first commits", Duration::from_secs(60), || async {
        lake_event_count(&stored).await > 0
    })
    .await
    .expect("exporter committing");

    server.process.start_kill().expect("stop s3s-fs");
    server.process.wait().await.expect("s3s-fs stopped");
    let at_stop = lake_event_count(&stored).await;
    let down = Duration::from_secs(5);
    tokio::time::sleep(down).await;
    let while_down = lake_event_count(&stored).await;
    assert!(
        exporter.try_wait().expect("try_wait").is_none(),
        "the exporter keeps retrying within --lake-retry-max"
    );
    server.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while lake_event_count(&stored).await < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {expected} events after the store came back",
            lake_event_count(&stored).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pid = exporter.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGTERM sent");
    let status = tokio::time::timeout(Duration::from_secs(60), exporter.wait())
        .await
        .expect("the exporter stops on SIGTERM")
        .expect("wait");
    eprintln!(
        "s3s-fs stopped for {down:?} mid-stream at {at_stop} of {expected} events ({while_down} \
         while down); the same exporter process resumed and committed the rest; exit {status}"
    );
    assert!(at_stop < expected, "the store stopped mid-stream");
    assert_eq!(
        while_down, at_stop,
        "nothing is committed while the store is down"
    );
    assert!(
        status.success(),
        "exit 0 on SIGTERM after the outage: {status}"
    );
    assert_eq!(lake_event_count(&stored).await, expected);
    common::assert_lake_matches_source(&stored, &client).await;
    stack.cleanup().await;
}

/// How many consumers the broker counts on `queue`.
fn queue_consumers(queue: &str) -> u32 {
    let output = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "consumers"])
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(char::is_whitespace))
        .find(|(name, _)| *name == queue)
        .and_then(|(_, consumers)| consumers.trim().parse().ok())
        .unwrap_or(0)
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc_kill(pid as i32, sig) };
    assert_eq!(rc, 0, "signal {sig} to {pid}");
}

/// Where a compaction is when the store stops under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompactionPoint {
    /// The merged files are being written to the store; neither table's swap is committed.
    MergedFilesWritten,
    /// The accounts swap is committed, the transfers swap is not.
    BetweenTheSwaps,
}

/// What the store's directory of a lake shows: newest log version of each table and the data
/// files of `transfers` (s3s-fs keeps `s3://bucket/key` as a plain file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredState {
    transfers_head: Option<u64>,
    accounts_head: Option<u64>,
    transfers_files: usize,
}

impl StoredState {
    fn of(root: &std::path::Path) -> StoredState {
        let head = |table: &str| {
            std::fs::read_dir(root.join(table).join("_delta_log"))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter_map(|e| {
                            let name = e.file_name().to_string_lossy().into_owned();
                            let v = name.strip_suffix(".json")?.to_string();
                            (v.len() == 20).then(|| v.parse::<u64>().ok()).flatten()
                        })
                        .max()
                })
                .unwrap_or(None)
        };
        let mut transfers_files = 0;
        let mut dirs = vec![root.join("transfers")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("_delta_log") {
                        dirs.push(path);
                    }
                } else if path.extension().is_some_and(|x| x == "parquet") {
                    transfers_files += 1;
                }
            }
        }
        StoredState {
            transfers_head: head("transfers"),
            accounts_head: head("accounts"),
            transfers_files,
        }
    }

    /// Whether a compaction that started from `before` has reached `point` and no further.
    fn at(&self, before: &StoredState, point: CompactionPoint) -> bool {
        let no_swap = self.transfers_head == before.transfers_head;
        match point {
            CompactionPoint::MergedFilesWritten => {
                no_swap
                    && self.accounts_head == before.accounts_head
                    && self.transfers_files > before.transfers_files
            }
            CompactionPoint::BetweenTheSwaps => {
                no_swap && self.accounts_head > before.accounts_head
            }
        }
    }
}

/// Attempts at stopping a compaction at one point before the test gives up (a miss is a
/// compaction that got past the point before the SIGSTOP landed).
const STOP_ATTEMPTS_MAX: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopped_in_the_middle_of_a_compaction_fails_it_cleanly_and_a_rerun_completes_it() {
    let mut server = S3Server::start().await;
    let stack = Stack::start().await;
    let client = stack.replica.client().expect("client");
    let summary = workload::run(&client, &WorkloadConfig::new(0x5eed_000c, 3_000), |_| {})
        .await
        .expect("workload");
    let expected = summary.events.total() as u64;
    // Exported in small segments, as an active stream writes them: many files to merge.
    let base = "compact-base";
    let output = ledgerlake(&server)
        .args(["export", "--queue", &stack.queue])
        .args(["--lake", &format!("s3://{BUCKET}/{base}")])
        .args(["--cluster-id", &stack.replica.cluster_id().to_string()])
        .args(["--segment-events-max", "100", "--until-idle", "3s"])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .output()
        .await
        .expect("export runs");
    assert!(
        output.status.success(),
        "export: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let base_lake = Lake::open(&server.local_path(base).to_string_lossy())
        .await
        .expect("stored lake");
    let whole = base_lake.read_all().await.expect("read the exported lake");
    assert_eq!(whole.0.len() as u64, expected);
    let segments = base_lake.list_segments().await.expect("listing").len();
    assert!(segments >= 20, "{segments} segments to merge");
    common::assert_lake_matches_source(&base_lake, &client).await;

    for (index, point) in [
        CompactionPoint::MergedFilesWritten,
        CompactionPoint::BetweenTheSwaps,
    ]
    .into_iter()
    .enumerate()
    {
        // Each point on its own copy of the exported lake (s3s-fs serves what is on disk).
        let mut landed = None;
        for attempt in 1..=STOP_ATTEMPTS_MAX {
            let name = format!("compact-{index}-{attempt}");
            let root = server.local_path(&name);
            let copied = std::process::Command::new("cp")
                .arg("-a")
                .arg(server.local_path(base))
                .arg(&root)
                .status()
                .expect("cp runs");
            assert!(copied.success(), "cp -a");
            let url = format!("s3://{BUCKET}/{name}");
            let before = StoredState::of(&root);
            let mut compact = ledgerlake(&server)
                .args(["compact", "--lake", &url, "--all-windows"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("compact starts");
            let pid = compact.id().expect("pid");
            let started = std::time::Instant::now();
            // Watch the store's directory; stop the process when it shows the point, look
            // again (stopped, nothing changes), and take the store away if it is still there.
            let mut stopped_at = None;
            while compact.try_wait().expect("try_wait").is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "compact of {url} takes more than 120 s"
                );
                if !StoredState::of(&root).at(&before, point) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                signal(pid, SIGSTOP);
                tokio::time::sleep(Duration::from_millis(50)).await;
                let seen = StoredState::of(&root);
                if seen.at(&before, point) {
                    stopped_at = Some(seen);
                    break;
                }
                signal(pid, SIGCONT);
            }
            let Some(seen) = stopped_at else {
                let output = compact.wait_with_output().await.expect("wait");
                assert!(output.status.success(), "{output:?}");
                eprintln!("{point:?}, attempt {attempt}: the compaction got past it first");
                continue;
            };
            server.process.start_kill().expect("stop s3s-fs");
            server.process.wait().await.expect("s3s-fs stopped");
            let failing = std::time::Instant::now();
            signal(pid, SIGCONT);
            let output = tokio::time::timeout(Duration::from_secs(90), compact.wait_with_output())
                .await
                .expect("compact gives up within its retry limits")
                .expect("wait");
            let gave_up_after = failing.elapsed();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            landed = Some((
                attempt,
                name,
                url,
                before,
                seen,
                output.status,
                stderr,
                gave_up_after,
            ));
            break;
        }
        let Some((attempts, name, url, before, seen, status, stderr, gave_up_after)) = landed
        else {
            panic!("{point:?}: no stop landed in {STOP_ATTEMPTS_MAX} compactions");
        };
        assert_eq!(
            status.code(),
            Some(2),
            "compact exits 2 when the store goes away: {stderr}"
        );
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("an error line: {stderr}"));
        assert!(
            stderr.contains("object store operation on")
                || stderr.contains("could not be read or written"),
            "the error names the store operation: {stderr}"
        );
        assert!(
            !stderr.contains(SECRET_KEY),
            "no secret in the output: {stderr}"
        );
        // While the store is down: its files are a whole lake, nothing lost or doubled, and
        // the transfers swap did not happen.
        let root = server.local_path(&name);
        let after = StoredState::of(&root);
        assert_eq!(after.transfers_head, before.transfers_head, "{point:?}");
        let stored = Lake::open(&root.to_string_lossy())
            .await
            .expect("stored lake");
        let down = stored
            .read_all()
            .await
            .expect("read while the store is down");
        assert_eq!(down.0.len() as u64, expected, "{point:?}: events");
        assert!(down.0 == whole.0, "{point:?}: the events differ");
        assert!(down.1 == whole.1, "{point:?}: the account records differ");

        // The store returns: a rerun completes the compaction.
        server.restart().await;
        let rerun = ledgerlake(&server)
            .args([
                "compact",
                "--lake",
                &url,
                "--all-windows",
                "--format",
                "json",
            ])
            .output()
            .await
            .expect("compact runs");
        assert!(
            rerun.status.success(),
            "rerun: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&rerun.stdout).expect("json");
        let merges = report["merges"].as_array().expect("merges");
        assert!(!merges.is_empty(), "{report}");
        let recovered = merges.iter().filter(|m| m["recovered"] == true).count();
        assert_eq!(
            recovered,
            usize::from(point == CompactionPoint::BetweenTheSwaps),
            "the interrupted merge is completed first when its accounts swap was made: {report}"
        );
        let compacted = Lake::open(&root.to_string_lossy())
            .await
            .expect("stored lake");
        let files_after = compacted.list_segments().await.expect("listing").len();
        assert!(files_after < segments, "{files_after} of {segments} files");
        let again = compacted.read_all().await.expect("read the compacted lake");
        assert!(
            again.0 == whole.0,
            "{point:?}: the events differ after the rerun"
        );
        assert!(
            again.1 == whole.1,
            "{point:?}: the accounts differ after the rerun"
        );
        common::assert_lake_matches_source(&compacted, &client).await;
        let verify = ledgerlake(&server)
            .args(["verify", "--lake", &url])
            .output()
            .await
            .expect("verify runs");
        assert!(
            verify.status.success(),
            "verify after the rerun: {}\n{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        eprintln!(
            "s3s-fs stopped during a compaction at {point:?} (attempt {attempts}; log heads \
             transfers {:?} accounts {:?} -> {:?}, {} -> {} transfers files on disk): compact \
             {status}, {gave_up_after:.1?} after the store went, `{error}`; the store's \
             files read whole while down ({expected} events, {} accounts); the rerun made {} \
             merges ({recovered} completing the interrupted one), {segments} -> {files_after} \
             segment files; equals the source, verify ok",
            before.transfers_head,
            before.accounts_head,
            seen.accounts_head,
            before.transfers_files,
            seen.transfers_files,
            whole.1.len(),
            merges.len(),
        );
    }
    stack.cleanup().await;
    drop(server);
}
