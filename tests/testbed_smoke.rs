//! The test bed against the real stack: a replica, RabbitMQ and the `tigerbeetle amqp` CDC job,
//! driven by the workload. Needs `scripts/setup.sh` (fails, does not skip, without it).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use ledgerlake::testbed::{
    random_cluster_id, tigerbeetle_binary, unique_name, wait_until, Broker, CdcJob, CdcOptions,
    Replica,
};
use ledgerlake::workload::{self, WorkloadConfig};
use serde_json::Value;

/// A JSON integer that may be a number or a string.
fn int(v: &Value) -> u128 {
    match v {
        Value::Number(n) => n.as_u64().map(u128::from).expect("integer number"),
        Value::String(s) => s.parse().expect("integer string"),
        other => panic!("not an integer: {other}"),
    }
}

/// Consumes `queue` with a plain lapin consumer until it stays idle for 1.5 s (at most 60 s).
async fn consume_until_idle(broker: &Broker, queue: &str) -> Result<Vec<Vec<u8>>, String> {
    let channel = broker.channel().await.map_err(|e| e.to_string())?;
    channel
        .basic_qos(2000, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "smoke".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut bodies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(1500), consumer.next()).await {
            Ok(Some(Ok(delivery))) => bodies.push(delivery.data),
            Ok(Some(Err(e))) => return Err(format!("consumer: {e}")),
            Ok(None) | Err(_) => break,
        }
    }
    let _ = channel.close(200, "done".into()).await;
    Ok(bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_through_cdc_reaches_the_queue() {
    if let Err(e) = tigerbeetle_binary() {
        panic!("{e}");
    }
    let started = Instant::now();
    let replica = Replica::start(random_cluster_id())
        .await
        .expect("start replica");
    let broker = Broker::connect().await.expect("connect to the broker");
    let exchange = unique_name("ledgerlake-smoke");
    let queue = unique_name("ledgerlake-smoke-q");
    broker.declare_exchange(&exchange).await.expect("exchange");
    broker
        .declare_queue_bound(&queue, &exchange)
        .await
        .expect("queue");
    let options = CdcOptions {
        timestamp_last: None,
        idle_interval_ms: Some(100),
        event_count_max: None,
    };
    let mut cdc = CdcJob::start_with(&replica, &exchange, &options)
        .await
        .map_err(|e| format!("start CDC job: {e}"));
    let setup = started.elapsed();

    // Everything that can fail runs in here, so that the clean-up below always happens.
    let outcome = async {
        let job = cdc.as_mut().map_err(|e| e.clone())?;
        let client = replica.client().map_err(|e| e.to_string())?;
        let cfg = WorkloadConfig::new(0x1ed6e71a4e, 2000);
        let summary = workload::run(&client, &cfg, |_| {})
            .await
            .map_err(|e| format!("workload: {e}"))?;
        eprintln!(
            "set-up {setup:?}; workload {:?} in {} requests:\n{:?}\n{:?}\n{:?}\n{:?}",
            summary.elapsed,
            summary.requests,
            summary.accounts,
            summary.transfers,
            summary.rejected,
            summary.events
        );
        // Wait until the queue holds at least what the run produced, then consume it.
        let want = summary.events.total();
        wait_until(
            "the CDC events in the queue",
            Duration::from_secs(60),
            || async { u64::from(broker.queue_depth(&queue).await.unwrap_or(0)) >= want },
        )
        .await
        .map_err(|e| format!("{e}; CDC job output:\n{}", job.output_tail()))?;
        job.check_alive()
            .map_err(|e| format!("CDC job died: {e}"))?;
        let bodies = consume_until_idle(&broker, &queue).await?;
        Ok::<_, String>((summary, bodies))
    }
    .await;
    let consumed_in = started.elapsed();

    if let Ok(job) = cdc {
        job.stop().await;
    }
    broker.delete_queue(&queue).await.expect("delete queue");
    broker
        .delete_exchange(&exchange)
        .await
        .expect("delete exchange");
    broker
        .delete_cdc_queues(replica.cluster_id())
        .await
        .expect("delete CDC progress queue");
    replica.stop().await;

    let (summary, bodies) = outcome.unwrap_or_else(|e| panic!("{e}"));
    let expected = summary.events;
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen_ids: HashSet<u128> = HashSet::new();
    let mut expired_ids: HashSet<u128> = HashSet::new();
    let mut account_ids: HashSet<u128> = HashSet::new();
    let mut last_ts = 0u128;
    for body in &bodies {
        let v: Value = serde_json::from_slice(body).expect("JSON body");
        let ty = v["type"].as_str().expect("type").to_string();
        let ts = int(&v["timestamp"]);
        assert!(
            ts > last_ts,
            "event timestamps must strictly increase: {ts} after {last_ts}"
        );
        last_ts = ts;
        let id = int(&v["transfer"]["id"]);
        if ty == "two_phase_expired" {
            expired_ids.insert(id);
        } else {
            seen_ids.insert(id);
        }
        account_ids.insert(int(&v["debit_account"]["id"]));
        account_ids.insert(int(&v["credit_account"]["id"]));
        *by_type.entry(ty).or_default() += 1;
    }
    eprintln!(
        "{} messages by type {by_type:?}; total time {consumed_in:?}",
        bodies.len()
    );

    assert!(
        bodies.len() as u64 >= expected.total(),
        "{} messages, expected at least {}",
        bodies.len(),
        expected.total()
    );
    for (ty, want) in [
        ("single_phase", expected.single_phase),
        ("two_phase_pending", expected.two_phase_pending),
        ("two_phase_posted", expected.two_phase_posted),
        ("two_phase_voided", expected.two_phase_voided),
        ("two_phase_expired", expected.two_phase_expired),
    ] {
        let got = by_type.get(ty).copied().unwrap_or(0);
        assert!(want > 0, "the workload produced no {ty}");
        // Timestamps are unique and increasing, so there are no duplicates: exact counts.
        assert_eq!(got, want, "{ty} events");
    }
    assert_eq!(by_type.len(), 5, "unexpected event types: {by_type:?}");
    for id in &summary.transfer_ids {
        assert!(seen_ids.contains(id), "transfer {id} has no event");
    }
    for id in &summary.expired_transfer_ids {
        assert!(expired_ids.contains(id), "pending {id} has no expiry event");
    }
    for id in &summary.rejected_transfer_ids {
        assert!(
            !seen_ids.contains(id),
            "rejected transfer {id} has an event"
        );
    }
    for id in &summary.untouched_account_ids {
        assert!(
            !account_ids.contains(id),
            "untouched account {id} in an event"
        );
    }
}

/// Many requests, expiries in the middle of the run, pending transfers resolved requests later:
/// the workload's model must still predict every result and every final balance exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_model_holds_across_many_requests() {
    if let Err(e) = tigerbeetle_binary() {
        panic!("{e}");
    }
    let replica = Replica::start(random_cluster_id())
        .await
        .expect("start replica");
    let client = replica.client().expect("client");
    let mut cfg = WorkloadConfig::new(42, 30_000);
    cfg.batch_size = 1000;
    let mut reports = 0;
    let summary = workload::run(&client, &cfg, |_| reports += 1).await;
    drop(client);
    replica.stop().await;
    let summary = summary.unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{} requests in {:?}: {:?} {:?}",
        summary.requests, summary.elapsed, summary.transfers, summary.events
    );
    assert!(summary.requests >= 30);
    assert!(reports > summary.requests);
    assert_eq!(
        (summary.events.total() - summary.events.two_phase_expired) as usize
            + summary.rejected.total(),
        summary.transfer_ids.len() + summary.rejected_transfer_ids.len()
    );
    assert!(summary.transfer_ids.len() + summary.rejected_transfer_ids.len() >= 30_000);
}
