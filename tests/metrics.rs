//! `export --metrics-addr`: a real exporter (the binary) consumes a real CDC stream under load
//! while this test scrapes `/metrics` with a Prometheus text parser, checks `/ready` and
//! `/live`, then stops it with SIGTERM and compares the last scrape with the exporter's final
//! report and with the lake itself.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lapin::types::FieldTable;
use ledgerlake::lake::Lake;
use ledgerlake::testbed;
use prometheus_parse::{Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::stack::{lake_event_count, Stack};

/// `GET path` on the metrics server: (status, body).
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// One scrape: every sample by `name{label="value",...}` (labels sorted), histograms by count.
async fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, body) = get(port, "/metrics").await.expect("a scrape");
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = Scrape::parse(lines).expect("Prometheus text parses");
    let mut samples = HashMap::new();
    for sample in parsed.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        labels.sort();
        let key = if labels.is_empty() {
            sample.metric.clone()
        } else {
            format!("{}{{{}}}", sample.metric, labels.join(","))
        };
        let value = match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => continue,
        };
        samples.insert(key, value);
    }
    samples
}

fn value(samples: &HashMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {samples:?}"))
}

fn report_u64(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_under_load_match_the_report_and_the_lake() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let lake_location = common::stack::lake_path(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut exporter = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["export", "--queue", &stack.queue, "--lake", &lake_location])
        .args(["--cluster-id", &stack.replica.cluster_id().to_string()])
        .args(["--segment-events-max", "500", "--segment-age-max", "300ms"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the exporter starts");

    testbed::wait_until("/live", Duration::from_secs(30), || async move {
        matches!(get(port, "/live").await, Some((200, _)))
    })
    .await
    .expect("/live answers 200");
    testbed::wait_until("/ready", Duration::from_secs(30), || async move {
        matches!(get(port, "/ready").await, Some((200, _)))
    })
    .await
    .expect("/ready answers 200 once consuming");
    assert_eq!(get(port, "/nothing").await.map(|r| r.0), Some(404));

    // Two undecodable messages, then the load; scrapes run all the while.
    for body in [&b"not json at all"[..], &[0xff, 0xfe, 0x00]] {
        stack
            .broker
            .publish_raw(&stack.exchange, body, FieldTable::default())
            .await
            .expect("publish");
    }
    let workload = stack.run_workload(0x5eed_0121, 3_000);
    let scraper = async {
        let mut previous: HashMap<String, f64> = HashMap::new();
        let mut scrapes = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(300) {
            let samples = scrape(port).await;
            for (key, now) in &samples {
                let is_counter = key.split('{').next().is_some_and(|n| n.ends_with("_total"))
                    || key.contains("_count");
                if let (true, Some(before)) = (is_counter, previous.get(key)) {
                    assert!(now >= before, "{key} went down: {before} -> {now}");
                }
            }
            previous = samples;
            scrapes += 1;
            if scrapes >= 10 {
                return scrapes;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        scrapes
    };
    let (summary, scrapes) = tokio::join!(workload, scraper);
    assert!(scrapes >= 10, "scraped under load");
    let expected = summary.events.total();

    // Caught up: the committed counter reaches every event of the stream.
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = loop {
        let samples = scrape(port).await;
        if value(&samples, "ledgerlake_events_committed_total") as u64 >= expected
            && value(&samples, "ledgerlake_open_segment_events") == 0.0
        {
            break samples;
        }
        assert!(Instant::now() < deadline, "not caught up: {samples:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Metrics are refreshed every 50 ms: wait for a still state, then scrape once more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = {
        let again = scrape(port).await;
        assert_eq!(
            value(&again, "ledgerlake_events_committed_total"),
            value(&last, "ledgerlake_events_committed_total")
        );
        again
    };

    // SIGTERM: seal, commit, acknowledge, report.
    let pid = exporter.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    exporter
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let exit = exporter.wait().await.unwrap();
    assert!(exit.success(), "{stderr}");
    let report: serde_json::Value = stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("a JSON report on stderr: {stderr}"));

    // The last scrape says what the report says.
    let committed = report_u64(&report, "events_committed");
    assert_eq!(committed, expected);
    assert_eq!(
        value(&last, "ledgerlake_events_committed_total") as u64,
        committed
    );
    assert_eq!(
        value(
            &last,
            "ledgerlake_segments_committed_total{table=\"transfers\"}"
        ) as u64,
        report_u64(&report, "segments_committed")
    );
    assert_eq!(
        value(&last, "ledgerlake_bytes_committed_total") as u64,
        report_u64(&report, "bytes_committed")
    );
    assert_eq!(
        value(&last, "ledgerlake_duplicates_dropped_total") as u64,
        report_u64(&report, "duplicates_dropped")
    );
    assert_eq!(
        value(&last, "ledgerlake_broker_reconnects_total") as u64,
        report_u64(&report, "reconnects")
    );
    let quarantined = report_u64(&report, "quarantined");
    assert_eq!(quarantined, 2);
    assert_eq!(
        value(
            &last,
            "ledgerlake_quarantined_total{reason=\"undecodable\"}"
        ) as u64,
        quarantined
    );
    assert_eq!(
        value(&last, "ledgerlake_quarantined_total{reason=\"late\"}"),
        0.0
    );
    let received = value(&last, "ledgerlake_events_received_total") as u64;
    assert!(
        received >= committed + quarantined,
        "received {received} < committed {committed} + quarantined {quarantined}"
    );
    let last_ts = report_u64(&report, "last_committed_timestamp");
    let gauge = value(&last, "ledgerlake_last_committed_event_timestamp_seconds");
    assert!(
        (gauge - last_ts as f64 / 1e9).abs() < 1e-3,
        "{gauge} vs {last_ts}"
    );
    let lag = value(&last, "ledgerlake_lag_seconds");
    assert!((0.0..600.0).contains(&lag), "lag {lag}");
    assert!(
        value(&last, "ledgerlake_commit_duration_seconds") as u64
            >= report_u64(&report, "segments_committed"),
        "one duration per commit at least"
    );
    assert_eq!(value(&last, "ledgerlake_lake_write_errors_total"), 0.0);
    assert_eq!(value(&last, "ledgerlake_broker_up"), 1.0);
    assert_eq!(value(&last, "ledgerlake_ready"), 1.0);
    assert_eq!(
        value(&last, "ledgerlake_broker_connections_lost_total"),
        0.0
    );

    // And the lake holds what the metrics say.
    let lake = Lake::open(&lake_location).await.unwrap();
    assert_eq!(lake_event_count(&lake).await, committed);
    assert_eq!(
        lake.list_segments().await.unwrap().len() as u64,
        report_u64(&report, "segments_committed")
    );
    assert_eq!(
        lake.list_quarantine().await.unwrap().len() as u64,
        quarantined
    );
    stack.cleanup().await;
}
