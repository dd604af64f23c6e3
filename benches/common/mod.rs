//! What the benchmark binaries share: the command line (`--scale`, `--out`), the result rows
//! (ours, the anchor measured in the same run, their ratio, the target) written as JSON and
//! printed as a table, and small process helpers (peak RSS, the `ledgerlake` binary).

#![allow(dead_code)] // each bench binary uses a different part of this module

pub mod day;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How big a run is: `small` checks the harness in minutes, `full` is the sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Small,
    Full,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::Full => "full",
        }
    }
}

/// The options every bench binary takes (cargo adds `--bench`, which is ignored).
#[derive(Debug, Clone)]
pub struct Args {
    pub scale: Scale,
    /// Where the JSON result goes.
    pub out: Option<PathBuf>,
    /// A scratch directory the caller removes (`scripts/bench.sh` makes one).
    pub work: PathBuf,
    /// Other `--key value` pairs, for a binary's own options.
    pub extra: Vec<(String, String)>,
}

impl Args {
    pub fn parse() -> Args {
        let mut scale = Scale::Small;
        let mut out = None;
        let mut work = std::env::temp_dir();
        let mut extra = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--bench" => {}
                "--scale" => {
                    scale = match it.next().as_deref() {
                        Some("small") => Scale::Small,
                        Some("full") => Scale::Full,
                        other => panic!("--scale small|full, got {other:?}"),
                    }
                }
                "--out" => out = it.next().map(PathBuf::from),
                "--work" => work = PathBuf::from(it.next().expect("--work DIR")),
                key if key.starts_with("--") => {
                    let value = it.next().unwrap_or_else(|| panic!("{key} needs a value"));
                    extra.push((key.trim_start_matches("--").to_string(), value));
                }
                other => panic!("unexpected argument {other:?}"),
            }
        }
        Args {
            scale,
            out,
            work,
            extra,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Which way a figure is better, to say whether the target is met.
#[derive(Debug, Clone, Copy)]
pub enum Better {
    Higher,
    Lower,
}

/// One figure: ours next to its anchor, and the target on the ratio or on the value.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub what: String,
    pub unit: String,
    pub ours: f64,
    /// The anchor measured in the same run (or, where there is none, `None`).
    pub anchor: Option<f64>,
    pub anchor_what: String,
    /// `(target, on_ratio)`: a bound on ours/anchor when `on_ratio`, else on ours.
    pub target: Option<(f64, bool)>,
    pub better: Better,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        self.anchor.filter(|a| *a != 0.0).map(|a| self.ours / a)
    }

    pub fn met(&self) -> Option<bool> {
        let (bound, on_ratio) = self.target?;
        let v = if on_ratio { self.ratio()? } else { self.ours };
        Some(match self.better {
            Better::Higher => v >= bound,
            Better::Lower => v <= bound,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "what": self.what,
            "unit": self.unit,
            "ours": self.ours,
            "anchor": self.anchor,
            "anchor_what": self.anchor_what,
            "ratio": self.ratio(),
            "target": self.target.map(|(t, on_ratio)| json!({
                "value": t,
                "on": if on_ratio { "ratio" } else { "ours" },
                "better": match self.better { Better::Higher => "higher", Better::Lower => "lower" },
            })),
            "met": self.met(),
        })
    }
}

/// The rows of one bench binary plus free-form details (raw timings, counts).
pub struct Report {
    pub bench: String,
    pub scale: Scale,
    pub rows: Vec<Row>,
    pub details: serde_json::Map<String, Value>,
}

impl Report {
    pub fn new(bench: &str, scale: Scale) -> Report {
        Report {
            bench: bench.to_string(),
            scale,
            rows: Vec::new(),
            details: serde_json::Map::new(),
        }
    }

    pub fn row(&mut self, row: Row) {
        eprintln!(
            "bench {}: {} = {} {} (anchor {})",
            self.bench,
            row.id,
            fmt_num(row.ours),
            row.unit,
            row.anchor.map_or("-".into(), fmt_num)
        );
        self.rows.push(row);
    }

    pub fn detail(&mut self, key: &str, value: Value) {
        self.details.insert(key.to_string(), value);
    }

    /// Prints the table on stdout and writes the JSON to `--out`.
    pub fn finish(&self, args: &Args) {
        println!("\n{} ({} scale)", self.bench, self.scale.name());
        println!(
            "| {:<34} | {:>14} | {:>14} | {:>8} | {:<6} | {:<} |",
            "figure", "ours", "anchor", "ratio", "met", "unit; anchor"
        );
        for r in &self.rows {
            println!(
                "| {:<34} | {:>14} | {:>14} | {:>8} | {:<6} | {}; {} |",
                r.id,
                fmt_num(r.ours),
                r.anchor.map_or("-".into(), fmt_num),
                r.ratio().map_or("-".into(), |x| format!("{x:.3}")),
                match r.met() {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                },
                r.unit,
                r.anchor_what
            );
        }
        let doc = json!({
            "bench": self.bench,
            "scale": self.scale.name(),
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "details": self.details,
        });
        if let Some(path) = &args.out {
            let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
            std::fs::write(path, text)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
    }
}

pub fn fmt_num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        // Thousands separators, for the table only.
        let (sign, digits) = s.split_at(if s.starts_with('-') { 1 } else { 0 });
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// The release `ledgerlake` binary: `LEDGERLAKE_BIN`, else next to the bench binary's `deps/`.
pub fn ledgerlake_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LEDGERLAKE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the bench binary has a path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("bench binaries live in <target>/<profile>/deps");
    let bin = dir.join("ledgerlake");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --release` (scripts/bench.sh does)",
        bin.display()
    );
    bin
}

/// `VmHWM` (peak resident set) of a live process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Total size of the regular files under `dir` whose path contains `part` (all if empty).
pub fn dir_bytes(dir: &Path, part: &str) -> (u64, usize) {
    let mut total = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            let (b, n) = dir_bytes(&p, part);
            total.0 += b;
            total.1 += n;
        } else if p.to_string_lossy().contains(part) {
            total.0 += e.metadata().map(|m| m.len()).unwrap_or(0);
            total.1 += 1;
        }
    }
    total
}

/// Percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `f` until it returns `Some`, polling every `every`, for at most `limit`.
pub fn poll<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}
