//! Decode + encode, CPU only (issue 5, measurement 1): CDC JSON bytes → Parquet bytes on one
//! core, for the standard workload's messages.
//!
//! The messages are the exact bytes `tigerbeetle amqp` published for a real run of the standard
//! workload: the pipeline bench exports that run into a lake, and `cdc::encode` (which reproduces
//! TigerBeetle's encoding byte for byte, as the cdc tests check) turns the lake's events back into
//! bodies. Then, on one thread, per segment of 32,768 messages (the exporter's default): decode
//! every body (`cdc::decode`), collect the accounts seen for the first time, and encode the
//! transfers and accounts files (`encode_transfers`, `encode_accounts`). No I/O.
//!
//! The anchor is the cost of only parsing the same bytes as untyped JSON (`serde_json::Value`):
//! what any consumer that looks inside a message pays at the least.
//!
//! Also: bytes per event at other segment sizes, to show how the row-group size was chosen.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Args, Better, Report, Row};
use ledgerlake::cdc::{self, Event};
use ledgerlake::lake::{encode_accounts, encode_transfers, AccountRecord, Lake};
use serde_json::json;

const SEGMENT_EVENTS: usize = 32_768;
/// Each measurement is repeated this many times; the best round is reported (the machine is
/// shared; the best round is the one least disturbed by others).
const ROUNDS: usize = 5;
const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

fn main() {
    let args = Args::parse();
    let lake_dir = args
        .get("lake")
        .expect("--lake DIR: a lake of the standard workload (the pipeline bench writes one)")
        .to_string();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let (events, cluster) = runtime.block_on(async {
        let lake = Lake::open(&lake_dir).await.expect("lake");
        let meta = lake.read_meta().await.expect("meta").expect("a lake");
        let (events, _) = lake.read_all().await.expect("read the lake");
        (events, meta.cluster_id)
    });
    assert!(!events.is_empty(), "the lake holds no events");
    let bodies: Vec<String> = events.iter().map(cdc::encode).collect();
    let json_bytes: usize = bodies.iter().map(String::len).sum();
    let n = bodies.len();
    eprintln!("bench codec: {n} messages, {} bytes of JSON", json_bytes);

    let mut report = Report::new("codec", args.scale);
    let full = best(|| {
        std::hint::black_box(decode_encode(&bodies, cluster, SEGMENT_EVENTS));
    });
    let decode_only = best(|| {
        let mut out = Vec::with_capacity(SEGMENT_EVENTS);
        for chunk in bodies.chunks(SEGMENT_EVENTS) {
            out.clear();
            out.extend(
                chunk
                    .iter()
                    .map(|b| cdc::decode(b.as_bytes()).expect("decodes")),
            );
            std::hint::black_box(&out);
        }
    });
    let encode_only = best(|| {
        for chunk in events.chunks(SEGMENT_EVENTS) {
            std::hint::black_box(encode_transfers(chunk, cluster).expect("encodes"));
        }
    });
    let untyped = best(|| {
        for b in &bodies {
            std::hint::black_box(serde_json::from_str::<serde_json::Value>(b).expect("JSON"));
        }
    });
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    report.row(Row {
        id: "1 decode+encode events/s/core".into(),
        what: "CDC JSON → Event → Parquet (transfers + accounts), one thread".into(),
        unit: "events/s".into(),
        ours: rate(full),
        anchor: Some(rate(untyped)),
        anchor_what: "serde_json::Value parse of the same bytes only".into(),
        target: Some((1_000_000.0, false)),
        better: Better::Higher,
    });
    report.detail("messages", json!(n));
    report.detail("json_bytes_per_event", json!(json_bytes as f64 / n as f64));
    report.detail("decode_only_events_per_s", json!(rate(decode_only)));
    report.detail(
        "encode_transfers_only_events_per_s",
        json!(rate(encode_only)),
    );
    report.detail("untyped_json_parse_events_per_s", json!(rate(untyped)));
    report.detail("decode_encode_events_per_s", json!(rate(full)));
    report.detail("rounds", json!(ROUNDS));

    let mut sizes = serde_json::Map::new();
    for seg in [1024, 4096, 8192, 32_768, 131_072] {
        let (_, bytes) = decode_encode(&bodies, cluster, seg);
        sizes.insert(seg.to_string(), json!(bytes as f64 / n as f64));
    }
    report.detail("bytes_per_event_by_segment_events", json!(sizes));
    report.detail(
        "transfers_bytes_per_event_by_column",
        column_sizes(&events, cluster),
    );
    report.finish(&args);
}

/// The exporter's CPU work per segment; returns the time and the bytes written.
fn decode_encode(bodies: &[String], cluster: u128, segment: usize) -> (Duration, u64) {
    let started = Instant::now();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut bytes = 0u64;
    let mut events: Vec<Event> = Vec::with_capacity(segment);
    let mut chunk_start = 0;
    while chunk_start < bodies.len() {
        events.clear();
        let mut new_accounts = Vec::new();
        // A segment never straddles UTC midnight.
        for body in &bodies[chunk_start..(chunk_start + segment).min(bodies.len())] {
            let e = cdc::decode(body.as_bytes()).expect("the body decodes");
            if let Some(first) = events.first() {
                if first.timestamp / NS_PER_DAY != e.timestamp / NS_PER_DAY {
                    break;
                }
            }
            for a in [&e.debit_account, &e.credit_account] {
                if seen.insert(a.id) {
                    new_accounts.push(AccountRecord::from_event_account(a, e.ledger, e.timestamp));
                }
            }
            events.push(e);
        }
        chunk_start += events.len();
        let first = events[0].timestamp;
        let last = events[events.len() - 1].timestamp;
        bytes += encode_transfers(&events, cluster).expect("encodes").len() as u64;
        if !new_accounts.is_empty() {
            bytes += encode_accounts(&new_accounts, cluster, first, last)
                .expect("encodes")
                .len() as u64;
        }
    }
    (started.elapsed(), bytes)
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .min()
        .expect("at least one round")
}

/// Compressed bytes per event of each transfers column, for the first full segment: where the
/// bytes of the lake go.
fn column_sizes(events: &[Event], cluster: u128) -> serde_json::Value {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut segment: Vec<Event> = Vec::with_capacity(SEGMENT_EVENTS);
    for e in events.iter().take(SEGMENT_EVENTS) {
        if segment
            .first()
            .is_some_and(|f| f.timestamp / NS_PER_DAY != e.timestamp / NS_PER_DAY)
        {
            break;
        }
        segment.push(*e);
    }
    let bytes = encode_transfers(&segment, cluster).expect("encodes");
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("reads back");
    let meta = reader.metadata();
    let mut sizes: Vec<(String, i64)> = Vec::new();
    for rg in meta.row_groups() {
        for (i, c) in rg.columns().iter().enumerate() {
            if sizes.len() <= i {
                sizes.push((c.column_path().string(), 0));
            }
            sizes[i].1 += c.compressed_size();
        }
    }
    sizes.sort_by_key(|(_, b)| -b);
    let n = segment.len() as f64;
    let mut map = serde_json::Map::new();
    map.insert("(segment events)".into(), json!(segment.len()));
    for (name, b) in sizes {
        map.insert(name, json!((b as f64 / n * 100.0).round() / 100.0));
    }
    serde_json::Value::Object(map)
}
