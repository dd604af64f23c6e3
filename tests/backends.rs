//! One conformance suite of the object-store operations the lake relies on, run against every
//! cloud backend on a real server installed by scripts/setup-test.sh: S3 (`s3s-fs`), Google
//! Cloud Storage (`fake-gcs-server`) and Azure Blob Storage (`Azurite`). Each backend is opened
//! the way an operator's lake is, `lake::store::open_store(URL)` with credentials in that cloud's
//! standard environment variables, and must pass:
//! - create-only writes: a second `PutMode::Create` of a path fails with `AlreadyExists` and
//!   leaves the first content (the lake's data files, and every Delta commit: the kernel's
//!   default engine writes `_delta_log/N.json` with `PutMode::Create`);
//! - conditional commit: of two writers racing to create the same commit file, exactly one wins;
//! - listing order: a listing comes back in lexicographic order (the Delta kernel lists the log
//!   with an offset and takes the order as the version order) and `list_with_offset` starts
//!   after the offset;
//! - reads: whole objects, ranges, heads, and `NotFound` for a missing path;
//! - an export of a real CDC stream into the backend, read back equal to the source, and
//!   `ledgerlake verify` of it over the backend.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use ledgerlake::lake::store::open_store;
use ledgerlake::lake::Lake;
use ledgerlake::testbed;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use common::stack::{export_options, InProcessExporter, Stack};

const BUCKET: &str = "ledgers";
const S3_ACCESS_KEY: &str = "ledgerlake-test";
const S3_SECRET_KEY: &str = "ledgerlake-test-secret";
/// Azurite's well-known development account (public, documented by Microsoft).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A server of one backend; killed on drop.
struct Backend {
    name: &'static str,
    /// The lake URL's scheme and bucket (`s3://ledgers`); a test appends a prefix.
    base_url: String,
    env: Vec<(String, String)>,
    /// Whether the server makes a create-only write atomic. Real S3, GCS and Azure do (that is
    /// their documented contract); s3s-fs checks for the object and then writes it, so two
    /// racing creates can both succeed there: the race is checked on the servers that keep the
    /// contract, the sequential refusal on every server.
    atomic_create: bool,
    /// Whether object_store can write to the server. fake-gcs-server (the build PyPI bundles)
    /// answers GCS's XML-API object upload, which object_store uses for every write, with
    /// `400 invalid uploadType`: there the suite reads objects the server was seeded with, and
    /// the lake is read (verified) over gs://, not written.
    writes: bool,
    process: Child,
    dir: tempfile::TempDir,
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

fn binary(var: &str) -> PathBuf {
    PathBuf::from(std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/setup-test.sh and export its lines")
    }))
}

fn spawn(binary: &std::path::Path, args: &[&str]) -> Child {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (run scripts/setup-test.sh)",
                binary.display()
            )
        })
}

async fn wait_listening(what: &str, port: u16) {
    testbed::wait_until(what, Duration::from_secs(60), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
}

async fn start_s3() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
    let port = free_port();
    let process = spawn(
        &binary("LEDGERLAKE_S3S_FS"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            S3_ACCESS_KEY,
            "--secret-key",
            S3_SECRET_KEY,
            &dir.path().to_string_lossy(),
        ],
    );
    wait_listening("s3s-fs to listen", port).await;
    Backend {
        name: "s3 (s3s-fs)",
        atomic_create: false,
        writes: true,
        base_url: format!("s3://{BUCKET}"),
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET_KEY.into()),
            (
                "AWS_ENDPOINT_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ],
        process,
        dir,
    }
}

/// What the read half of the suite reads under `prefix`: the listing keys and the blob.
fn seed_objects(bucket_dir: &std::path::Path, prefix: &str) {
    let root = bucket_dir.join(prefix);
    std::fs::create_dir_all(root.join("_delta_log")).unwrap();
    std::fs::create_dir_all(root.join("reads")).unwrap();
    for i in 0..12 {
        std::fs::write(
            root.join(format!("_delta_log/{i:020}.json")),
            format!("{{\"v\":{i}}}"),
        )
        .unwrap();
    }
    std::fs::write(root.join("reads/blob"), blob()).unwrap();
}

fn blob() -> Vec<u8> {
    (0..=255u8).cycle().take(10_000).collect()
}

/// A fake-gcs-server whose bucket holds, at start, a copy of `seed` (a directory).
async fn start_gcs(seed: Option<&std::path::Path>) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    // A directory under -data is a bucket at start, its files the objects.
    let bucket_dir = dir.path().join("data").join(BUCKET);
    std::fs::create_dir_all(&bucket_dir).unwrap();
    seed_objects(&bucket_dir, "conformance/lake");
    if let Some(seed) = seed {
        copy_dir(seed, &bucket_dir.join("finance/ledger"));
    }
    let port = free_port();
    let process = spawn(
        &binary("LEDGERLAKE_FAKE_GCS"),
        &[
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-data",
            &dir.path().join("data").to_string_lossy(),
            "-public-host",
            &format!("127.0.0.1:{port}"),
            "-external-url",
            &format!("http://127.0.0.1:{port}"),
            "-log-level",
            "error",
        ],
    );
    wait_listening("fake-gcs-server to listen", port).await;
    // GOOGLE_SERVICE_ACCOUNT names a service-account file; an emulator's says where it is and
    // that no OAuth token is needed.
    let account = dir.path().join("service-account.json");
    std::fs::write(
        &account,
        serde_json::json!({
            "gcs_base_url": format!("http://127.0.0.1:{port}"),
            "disable_oauth": true,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        })
        .to_string(),
    )
    .unwrap();
    Backend {
        name: "gs (fake-gcs-server)",
        atomic_create: true,
        writes: false,
        base_url: format!("gs://{BUCKET}"),
        env: vec![(
            "GOOGLE_SERVICE_ACCOUNT".into(),
            account.to_string_lossy().into_owned(),
        )],
        process,
        dir,
    }
}

async fn start_azurite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let process = spawn(
        &binary("LEDGERLAKE_AZURITE_BLOB"),
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            &dir.path().to_string_lossy(),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
    );
    wait_listening("Azurite to listen", port).await;
    create_azure_container(port, BUCKET).await;
    Backend {
        name: "az (Azurite)",
        atomic_create: true,
        writes: true,
        base_url: format!("az://{BUCKET}"),
        env: vec![
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            (
                "AZURITE_BLOB_STORAGE_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("AZURE_STORAGE_ACCOUNT_NAME".into(), AZURITE_ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), AZURITE_KEY.into()),
        ],
        process,
        dir,
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Creates a container (object_store has no call for it): one Shared Key signed request.
async fn create_azure_container(port: u16, container: &str) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    // VERB, 11 standard headers (all empty here), canonical x-ms headers, canonical resource.
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let request = format!(
        "PUT /{AZURITE_ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         x-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // Azurite accepts connections a little before it serves requests: retry for a while.
    let mut last = String::new();
    for _ in 0..60 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response).await;
            if response.starts_with("HTTP/1.1 201") || response.starts_with("HTTP/1.1 409") {
                return;
            }
            last = response;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("Azurite did not create container {container}: {last}");
}

/// Opens `url` with `backend`'s credentials in the environment (as the binary would).
fn open(backend: &Backend, url: &str) -> Arc<dyn ObjectStore> {
    set_env(backend);
    open_store(url)
        .unwrap_or_else(|e| panic!("{}: open_store({url}): {e}", backend.name))
        .store
}

/// Puts `backend`'s variables in this process's environment. Every backend reads only its own
/// prefix (AWS_, GOOGLE_, AZURE_/AZURITE_), so all three can be set at once.
fn set_env(backend: &Backend) {
    for (key, value) in &backend.env {
        // The one test of this binary sets them before any thread reads them concurrently.
        unsafe { std::env::set_var(key, value) };
    }
}

fn create() -> PutOptions {
    PutOptions::from(PutMode::Create)
}

/// The conformance suite on one backend, under `prefix`.
async fn conformance(backend: &Backend, prefix: &str) {
    let store = open(backend, &format!("{}/{prefix}", backend.base_url));
    if backend.writes {
        writes(backend, store.as_ref()).await;
    }
    reads(backend, store.as_ref()).await;
}

/// The write half: create-only writes, a racing commit, and the objects the read half reads.
async fn writes(backend: &Backend, store: &dyn ObjectStore) {
    let name = backend.name;
    // Create-only writes.
    let path = Path::from("segments/once.parquet");
    store
        .put_opts(&path, PutPayload::from_static(b"first"), create())
        .await
        .unwrap_or_else(|e| panic!("{name}: a create-only write: {e}"));
    match store
        .put_opts(&path, PutPayload::from_static(b"second"), create())
        .await
    {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        other => {
            panic!("{name}: a second create-only write must fail with AlreadyExists: {other:?}")
        }
    }
    let content = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        content,
        Bytes::from_static(b"first"),
        "{name}: the first write stays"
    );

    // Conditional commit: two writers race for the same Delta commit file; exactly one wins.
    let commit = Path::from("_delta_log/00000000000000000001.json");
    let (a, b) = if !backend.atomic_create {
        // Sequential on a server without atomic creates: the second must still lose.
        let a = store
            .put_opts(
                &commit,
                PutPayload::from_static(b"{\"writer\":\"a\"}"),
                create(),
            )
            .await;
        let b = store
            .put_opts(
                &commit,
                PutPayload::from_static(b"{\"writer\":\"b\"}"),
                create(),
            )
            .await;
        (a, b)
    } else {
        tokio::join!(
            store.put_opts(
                &commit,
                PutPayload::from_static(b"{\"writer\":\"a\"}"),
                create()
            ),
            store.put_opts(
                &commit,
                PutPayload::from_static(b"{\"writer\":\"b\"}"),
                create()
            ),
        )
    };
    let wins = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(
        wins, 1,
        "{name}: exactly one writer commits a version ({a:?}, {b:?})"
    );
    for result in [&a, &b] {
        if let Err(e) = result {
            assert!(
                matches!(e, object_store::Error::AlreadyExists { .. }),
                "{name}: the loser sees AlreadyExists: {e}"
            );
        }
    }
    let winner: &[u8] = if a.is_ok() {
        b"{\"writer\":\"a\"}"
    } else {
        b"{\"writer\":\"b\"}"
    };
    let stored = store.get(&commit).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        stored.as_ref(),
        winner,
        "{name}: the commit file is the winner's"
    );

    // Listing order: written out of order (the reads check the order).
    let order = [7, 2, 11, 0, 5, 9, 10, 3, 8, 4, 6]; // 1 is the commit above
    for i in order {
        let path = Path::from(format!("_delta_log/{i:020}.json"));
        store
            .put_opts(&path, PutPayload::from(format!("{{\"v\":{i}}}")), create())
            .await
            .unwrap_or_else(|e| panic!("{name}: put {path}: {e}"));
    }
    store
        .put_opts(
            &Path::from("reads/blob"),
            PutPayload::from(blob()),
            create(),
        )
        .await
        .unwrap();
}

/// The read half: listing order and offsets, whole and ranged reads, heads, a missing object,
/// and (where the server takes writes) a delete.
async fn reads(backend: &Backend, store: &dyn ObjectStore) {
    let name = backend.name;
    let log = Path::from("_delta_log");
    let listed: Vec<String> = store
        .list(Some(&log))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{name}: list: {e}"));
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        listed, sorted,
        "{name}: a listing is in lexicographic order"
    );
    let expected: BTreeSet<String> = (0..12)
        .map(|i| format!("_delta_log/{i:020}.json"))
        .chain(["_delta_log/00000000000000000001.json".to_string()])
        .collect();
    assert_eq!(
        listed.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{name}: the listing holds every object once"
    );
    let offset = Path::from(format!("_delta_log/{:020}.json", 4));
    let after: Vec<String> = store
        .list_with_offset(Some(&log), &offset)
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let mut after_sorted = after.clone();
    after_sorted.sort();
    assert_eq!(after, after_sorted, "{name}: list_with_offset is in order");
    assert_eq!(
        after,
        (5..12)
            .map(|i| format!("_delta_log/{i:020}.json"))
            .collect::<Vec<_>>(),
        "{name}: list_with_offset starts after the offset"
    );

    // Reads: whole, a range, a head, a missing object.
    let path = Path::from("reads/blob");
    let body = blob();
    assert_eq!(
        store.get(&path).await.unwrap().bytes().await.unwrap(),
        body,
        "{name}: get"
    );
    let range = store.get_range(&path, 1000..1010).await.unwrap();
    assert_eq!(range.as_ref(), &body[1000..1010], "{name}: get_range");
    assert_eq!(
        store.head(&path).await.unwrap().size,
        10_000,
        "{name}: head"
    );
    match store.get(&Path::from("reads/missing")).await {
        Err(object_store::Error::NotFound { .. }) => {}
        other => panic!(
            "{name}: a missing object is NotFound: {:?}",
            other.map(|_| ())
        ),
    }
    if !backend.writes {
        return;
    }
    // Delete (vacuum, upgrade and the exporter's clean-up use it).
    store.delete(&path).await.unwrap();
    assert!(
        matches!(
            store.head(&path).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "{name}: deleted"
    );
}

/// The tests of this binary set the process's environment (each its own servers' endpoints):
/// they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start_all() -> Vec<Backend> {
    let backends = vec![
        start_s3().await,
        start_gcs(None).await,
        start_azurite().await,
    ];
    for backend in &backends {
        set_env(backend);
    }
    backends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_passes_the_lake_conformance_suite() {
    let _serial = SERIAL.lock().await;
    let backends = start_all().await;
    for backend in &backends {
        conformance(backend, "conformance/lake").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_into_every_backend_reads_back_equal_and_verifies() {
    let _serial = SERIAL.lock().await;
    // Written over S3 and Azure; read over GCS from a copy of what the S3 server stored (see
    // `Backend::writes`).
    let backends = vec![start_s3().await, start_azurite().await];
    for backend in &backends {
        set_env(backend);
    }

    // One CDC stream exported into every backend at once, each through its own queue.
    let stack = Stack::start().await;
    let mut queues = vec![stack.queue.clone()];
    for _ in 1..backends.len() {
        let queue = testbed::unique_name("ledgerlake-test-backend");
        stack
            .broker
            .declare_queue_bound(&queue, &stack.exchange)
            .await
            .expect("queue");
        queues.push(queue);
    }
    let urls: Vec<String> = backends
        .iter()
        .map(|b| format!("{}/finance/ledger", b.base_url))
        .collect();
    let exporters: Vec<InProcessExporter> = queues
        .iter()
        .zip(&urls)
        .map(|(queue, url)| {
            let mut options = export_options(queue, stack.replica.cluster_id(), url);
            options.seal.events_max = 500;
            InProcessExporter::start(options)
        })
        .collect();
    let summary = stack.run_workload(0x5eed_0012, 2_000).await;
    let expected = summary.events.total();
    let client = stack.replica.client().expect("client");
    for (backend, url) in backends.iter().zip(&urls) {
        let lake = Lake::open(url)
            .await
            .unwrap_or_else(|e| panic!("{}: Lake::open: {e}", backend.name));
        common::stack::wait_for_event_count(&lake, expected, Duration::from_secs(120)).await;
    }
    for (exporter, backend) in exporters.into_iter().zip(&backends) {
        let report = exporter.stop().await;
        assert_eq!(report.events_committed, expected, "{}", backend.name);
    }
    let stored = backends[0].dir.path().join(BUCKET).join("finance/ledger");
    let gcs = start_gcs(Some(&stored)).await;
    set_env(&gcs);
    let gcs_url = format!("{}/finance/ledger", gcs.base_url);
    let mut readable: Vec<(&Backend, &String)> = backends.iter().zip(&urls).collect();
    readable.push((&gcs, &gcs_url));
    for (backend, url) in readable {
        let lake = Lake::open(url).await.unwrap();
        let comparison = common::assert_lake_matches_source(&lake, &client).await;
        assert_eq!(comparison.events as u64, expected, "{}", backend.name);
        // And the binary proves it whole over the backend, credentials from the environment.
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
            .args(["verify", "--lake", url, "--format", "json"])
            .env("LEDGERLAKE_LOG", "warn")
            .output()
            .await
            .expect("verify runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: verify: {stdout}\n{}",
            backend.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
        assert_eq!(report["ok"], true, "{}: {report}", backend.name);
        for (_, secret) in &backend.env {
            if secret.len() > 8 && !secret.starts_with("http") && !secret.starts_with('/') {
                assert!(
                    !stdout.contains(secret.as_str()),
                    "{}: a credential in the output",
                    backend.name
                );
            }
        }
    }
    for queue in &queues[1..] {
        let _ = stack.broker.delete_queue(queue).await;
    }
    stack.cleanup().await;
}
