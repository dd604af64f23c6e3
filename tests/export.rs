//! `ledgerlake export` against the real stack: a TigerBeetle replica, RabbitMQ, the real
//! `tigerbeetle amqp` CDC job and a workload with every kind of transfer event. Each test compares
//! the lake with the source cluster field by field.

mod common;

use common::stack::{lake_event_count, lake_path, wait_for_event_count, InProcessExporter, Stack};
use std::process::Stdio;
use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use ledgerlake::export::{self};
use ledgerlake::lake::Lake;
use ledgerlake::testbed::{self, CdcJob, CdcOptions};
use ledgerlake::workload::{self, WorkloadConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_equals_source_for_every_event_kind() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let exporter = InProcessExporter::start(stack.export_options(&lake_location));

    let summary = stack.run_workload(0x5eed_0001, 20_500).await;
    let expected = summary.events.total() as u64;
    assert!(
        expected >= 20_000,
        "the workload produced {expected} events"
    );
    let lake = Lake::open(&lake_location).await.expect("lake");
    wait_for_event_count(&lake, expected, Duration::from_secs(120)).await;
    let report = exporter.stop().await;

    assert_eq!(report.events_committed, expected);
    assert_eq!(report.quarantined, 0);
    let comparison =
        common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    for kind in [
        "single_phase",
        "two_phase_pending",
        "two_phase_posted",
        "two_phase_voided",
        "two_phase_expired",
    ] {
        assert!(
            comparison.event_types.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} event in {:?}",
            comparison.event_types
        );
    }
    assert_eq!(comparison.expired, summary.expired_transfer_ids.len());
    assert!(
        comparison.history_points > 0,
        "the workload has history accounts"
    );
    eprintln!("{comparison:?}");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_replay_from_timestamp_zero_adds_nothing_to_the_lake() {
    let mut stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let summary = stack.run_workload(0x5eed_0002, 3_000).await;
    let expected = summary.events.total() as u64;

    let mut options = stack.export_options(&lake_location);
    options.until_idle = Some(Duration::from_secs(3));
    let lake = Lake::open(&lake_location).await.expect("lake");
    let first = export::run(options.clone(), Box::pin(std::future::pending()))
        .await
        .expect("first export");
    assert_eq!(first.events_committed, expected);
    let segments_before = lake.list_segments().await.expect("listing");

    // The CDC job replays everything from the start.
    stack.cdc.take().expect("cdc").stop().await;
    let replay = CdcOptions {
        timestamp_last: Some(0),
        ..CdcOptions::default()
    };
    stack.cdc = Some(
        CdcJob::start_with(&stack.replica, &stack.exchange, &replay)
            .await
            .expect("CDC replay"),
    );
    let broker = &stack.broker;
    testbed::wait_until(
        "the replay to be queued",
        Duration::from_secs(60),
        || async {
            broker
                .queue_depth(&stack.queue)
                .await
                .is_ok_and(|depth| u64::from(depth) >= expected)
        },
    )
    .await
    .expect("replayed events queued");

    let second = export::run(options, Box::pin(std::future::pending()))
        .await
        .expect("second export");
    assert_eq!(second.events_committed, 0, "{second:?}");
    assert_eq!(second.duplicates_dropped, expected, "{second:?}");
    assert_eq!(
        lake.list_segments().await.expect("listing"),
        segments_before,
        "the lake is unchanged"
    );
    common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_resumes_after_sigkill_without_loss_or_duplicates() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let lake = Lake::open(&lake_location).await.expect("lake");

    let client = stack.replica.client().expect("client");
    let workload = tokio::spawn(async move {
        let config = WorkloadConfig::new(0x5eed_0003, 12_000);
        workload::run(&client, &config, |_| {})
            .await
            .expect("workload runs")
    });

    // Kill the exporter at several moments while the stream flows. The moments are random; the
    // seed is printed so a failure can be replayed.
    let seed: u64 = std::env::var("LEDGERLAKE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill schedule seed: {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    // Each kill comes a random moment after that process committed something, so kills land
    // mid-stream however fast or slow the machine is.
    let mut counts_at_kill = Vec::new();
    for _ in 0..KILLS {
        let before = lake_event_count(&lake).await;
        let mut child = spawn_exporter_process(&stack, &lake_location, None);
        let progressed = testbed::wait_until(
            "the exporter to commit a segment",
            Duration::from_secs(60),
            || async { lake_event_count(&lake).await > before },
        )
        .await;
        if progressed.is_err() {
            // Nothing left to commit: the stream is over.
            assert!(
                workload.is_finished(),
                "the exporter made no progress while events flowed"
            );
            break;
        }
        let delay_ms = rand::Rng::random_range(&mut rng, 0..200);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("wait");
        assert!(
            !status.success(),
            "the exporter was killed, not finished: {status}"
        );
        counts_at_kill.push(lake_event_count(&lake).await);
    }
    let summary = workload.await.expect("workload task");
    let expected = summary.events.total() as u64;

    // A last run drains the queue and exits by itself.
    let mut child = spawn_exporter_process(&stack, &lake_location, Some("3s"));
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("exporter finishes")
        .expect("wait");
    assert!(status.success(), "final export run: {status}");

    eprintln!("events in the lake at each kill: {counts_at_kill:?} (of {expected})");
    assert!(
        counts_at_kill.iter().any(|&c| c > 0 && c < expected),
        "at least one kill landed mid-stream: {counts_at_kill:?}"
    );
    assert_eq!(lake_event_count(&lake).await, expected);
    common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    stack.cleanup().await;
}

/// How many times the exporter is killed while the stream flows.
const KILLS: usize = 4;

fn spawn_exporter_process(
    stack: &Stack,
    lake: &str,
    until_idle: Option<&str>,
) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"));
    command
        .args(["export", "--queue", &stack.queue, "--lake", lake])
        .args(["--cluster-id", &stack.replica.cluster_id().to_string()])
        // Small segments (and prefetch) so a drain takes many commits: kills land between them.
        .args([
            "--segment-events-max",
            "100",
            "--prefetch",
            "100",
            "--segment-age-max",
            "200ms",
        ])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(idle) = until_idle {
        command.args(["--until-idle", idle]);
    }
    command.spawn().expect("the ledgerlake binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_quarantined_and_every_real_event_arrives() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let exporter = InProcessExporter::start(stack.export_options(&lake_location));

    let bad: Vec<(&[u8], FieldTable, &str)> = vec![
        (b"not json at all", FieldTable::default(), "JSON"),
        (
            br#"{"timestamp":"1","type":"single_phase","ledger":1}"#,
            FieldTable::default(),
            "transfer",
        ),
        (
            br#"{"timestamp":"-5","type":"single_phase"}"#,
            FieldTable::default(),
            "timestamp",
        ),
        (&[0xff, 0xfe, 0x00, 0x01], FieldTable::default(), "JSON"),
    ];
    for (body, headers, _) in &bad[..2] {
        stack
            .broker
            .publish_raw(&stack.exchange, body, headers.clone())
            .await
            .expect("publish");
    }
    let summary = stack.run_workload(0x5eed_0004, 2_000).await;
    for (body, headers, _) in &bad[2..] {
        stack
            .broker
            .publish_raw(&stack.exchange, body, headers.clone())
            .await
            .expect("publish");
    }
    // A well-formed body whose headers contradict it.
    let client = stack.replica.client().expect("client");
    let real = common::source_transfers(&client).await;
    let sample = real.first().expect("a transfer");
    let mut lying = FieldTable::default();
    lying.insert(
        ShortString::from("event_type"),
        AMQPValue::LongString(LongString::from("two_phase_voided")),
    );
    let body = format!(
        r#"{{"timestamp":"{ts}","type":"single_phase","ledger":{ledger},"transfer":{{"id":"1","amount":1,"pending_id":0,"user_data_128":0,"user_data_64":0,"user_data_32":0,"timeout":0,"code":1,"flags":0,"timestamp":"{ts}"}},"debit_account":{{"id":1,"debits_pending":0,"debits_posted":0,"credits_pending":0,"credits_posted":0,"user_data_128":0,"user_data_64":0,"user_data_32":0,"code":1,"flags":0,"timestamp":1}},"credit_account":{{"id":2,"debits_pending":0,"debits_posted":0,"credits_pending":0,"credits_posted":0,"user_data_128":0,"user_data_64":0,"user_data_32":0,"code":1,"flags":0,"timestamp":1}}}}"#,
        ts = sample.as_raw().timestamp + 1,
        ledger = sample.as_raw().ledger
    );
    stack
        .broker
        .publish_raw(&stack.exchange, body.as_bytes(), lying)
        .await
        .expect("publish");

    let lake = Lake::open(&lake_location).await.expect("lake");
    let expected = summary.events.total() as u64;
    wait_for_event_count(&lake, expected, Duration::from_secs(60)).await;
    testbed::wait_until(
        "every bad message to be quarantined",
        Duration::from_secs(30),
        || async {
            lake.list_quarantine()
                .await
                .is_ok_and(|q| q.len() > bad.len())
        },
    )
    .await
    .expect("quarantined");
    let report = exporter.stop().await;

    let quarantined = lake.list_quarantine().await.expect("quarantine listing");
    assert_eq!(quarantined.len(), bad.len() + 1, "{quarantined:?}");
    assert_eq!(report.quarantined, bad.len() as u64 + 1);
    assert!(
        quarantined.iter().any(|q| q.reason.contains("event_type")),
        "the header mismatch names the header: {quarantined:?}"
    );
    for (body, _, _) in &bad {
        let found =
            futures::future::join_all(quarantined.iter().map(|q| lake.read_quarantined(&q.path)))
                .await;
        assert!(
            found
                .iter()
                .any(|r| r.as_ref().is_ok_and(|q| q.body == *body)),
            "raw body {:?} kept in quarantine",
            String::from_utf8_lossy(body)
        );
    }
    for q in &quarantined {
        assert!(
            !q.reason.is_empty(),
            "every quarantined message has a reason"
        );
    }
    assert_eq!(report.events_committed, expected);
    common::assert_lake_matches_source(&lake, &client).await;
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_the_open_segment_acknowledges_and_exits_zero() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let summary = stack.run_workload(0x5eed_0006, 1_500).await;
    let expected = summary.events.total() as u64;

    // Segments that would only seal after a minute: everything waits in the open segment.
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["export", "--queue", &stack.queue, "--lake", &lake_location])
        .args([
            "--cluster-id",
            &stack.replica.cluster_id().to_string(),
            "--segment-age-max",
            "60s",
            "--segment-idle-max",
            "60s",
        ])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("exporter starts");
    let broker = &stack.broker;
    testbed::wait_until(
        "every event to be delivered to the exporter",
        Duration::from_secs(60),
        || async {
            broker
                .queue_depth(&stack.queue)
                .await
                .is_ok_and(|depth| depth == 0)
        },
    )
    .await
    .expect("delivered");
    let lake = Lake::open(&lake_location).await.expect("lake");
    assert_eq!(
        lake_event_count(&lake).await,
        0,
        "nothing sealed before the signal"
    );

    let pid = child.id().expect("pid") as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc_kill(pid, 15) }, 0, "SIGTERM sent");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("exits")
        .expect("wait");
    assert!(
        output.status.success(),
        "exit 0 on SIGTERM: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The open segment was committed (nothing else could have sealed it) and acknowledged;
    // what the loop had not yet taken when the signal came went back to the queue, unacknowledged.
    let committed = lake_event_count(&lake).await;
    assert!(committed > 0, "the open segment was committed on SIGTERM");
    let requeued = testbed::wait_until(
        "the untaken deliveries to return to the queue",
        Duration::from_secs(15),
        || async {
            broker
                .queue_depth(&stack.queue)
                .await
                .is_ok_and(|depth| committed + u64::from(depth) == expected)
        },
    )
    .await;
    let depth = u64::from(stack.broker.queue_depth(&stack.queue).await.expect("depth"));
    assert!(
        requeued.is_ok(),
        "{committed} committed + {depth} back in the queue = {expected}"
    );

    // A second run takes the rest; the lake then equals the source.
    let mut options = stack.export_options(&lake_location);
    options.until_idle = Some(Duration::from_secs(2));
    export::run(options, Box::pin(std::future::pending()))
        .await
        .expect("second run");
    assert_eq!(lake_event_count(&lake).await, expected);
    common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;

    // The lake belongs to this cluster: another cluster id is refused before any consuming.
    let other = (stack.replica.cluster_id() + 1).to_string();
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args([
            "export",
            "--queue",
            &stack.queue,
            "--lake",
            &lake_location,
            "--cluster-id",
            &other,
        ])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "another cluster's lake is refused"
    );
    assert!(
        stderr.contains(&other) && stderr.contains(&stack.replica.cluster_id().to_string()),
        "the refusal names both clusters: {stderr}"
    );
    stack.cleanup().await;
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_broker_connection_is_reestablished_without_loss() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let lake = Lake::open(&lake_location).await.expect("lake");
    // A backlog, drained in small segments, so the connection drops while events flow.
    let summary = stack.run_workload(0x5eed_0007, 3_000).await;
    let expected = summary.events.total() as u64;
    let mut options = stack.export_options(&lake_location);
    options.broker.prefetch = 50;
    options.seal.events_max = 50;
    let exporter = InProcessExporter::start(options);
    testbed::wait_until("the first segment", Duration::from_secs(60), || async {
        lake.last_committed_timestamp()
            .await
            .is_ok_and(|t| t.is_some())
    })
    .await
    .expect("export started");
    close_broker_connection(&format!("ledgerlake export {}", stack.queue));
    eprintln!(
        "connection closed with {} of {expected} events in the lake",
        lake_event_count(&lake).await
    );
    wait_for_event_count(&lake, expected, Duration::from_secs(120)).await;
    let report = exporter.stop().await;

    assert!(
        report.reconnects >= 1,
        "the exporter reconnected: {report:?}"
    );
    common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    stack.cleanup().await;
}

/// Closes, from the broker's side, the connection whose client named itself `connection_name`.
fn close_broker_connection(connection_name: &str) {
    let listing = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = listing
        .lines()
        .find(|line| line.contains(connection_name))
        .unwrap_or_else(|| panic!("no broker connection named {connection_name:?} in:\n{listing}"));
    let pid = line.split_whitespace().next().expect("pid column");
    let status = std::process::Command::new("rabbitmqctl")
        .args([
            "-q",
            "close_connection",
            pid,
            "closed by the reconnection test",
        ])
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "close_connection {pid}");
}
