//! What a rebuild tells its operator: the plan (all `--dry-run` prints), then what the run did,
//! as a table for people or JSON for scripts; and a progress bar while it runs on a terminal.
//!
//! Integers that can exceed 2^53 (ids, amounts) are decimal strings in JSON, as in the lake.
//! Lists are capped at [`LIST_MAX`] entries; their totals are always given.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::execute::{Progress, Replayed};
use super::plan::{ChainCutReason, EXPIRY_VOID_ID_XOR};
use super::RebuildPlan;
use crate::cdc::EventType;
use crate::timefmt::rfc3339;

/// The most entries of one list a report prints.
pub const LIST_MAX: usize = 1000;
/// The fastest the progress bar redraws.
const REDRAW_INTERVAL: Duration = Duration::from_millis(200);

/// Open pending transfers the table report lists; JSON lists up to `LIST_MAX`.
const TABLE_OPEN_PENDING_MAX: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: PlanReport,
    /// Absent for a dry run.
    pub run: Option<RunReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub lake: String,
    pub lake_cluster_id: String,
    pub target_cluster_id: String,
    pub lake_first_timestamp: u64,
    pub lake_last_timestamp: u64,
    pub until: u64,
    pub until_time: String,
    pub ledgers: Option<Vec<u32>>,
    pub segments_in_lake: usize,
    pub segments_to_read: usize,
    pub accounts: u64,
    /// Events replayed, by type (an expiry is replayed as a void).
    pub events: EventCounts,
    /// Transfers created: one per event.
    pub transfers: u64,
    pub first_timestamp: Option<u64>,
    pub last_timestamp: Option<u64>,
    pub account_batches: u64,
    pub transfer_batches: u64,
    pub deviations: Deviations,
    /// Pending transfers neither posted, voided nor expired at `--until`.
    pub open_pending_total: usize,
    pub open_pending: Vec<OpenPendingLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventCounts {
    pub single_phase: u64,
    pub two_phase_pending: u64,
    pub two_phase_posted: u64,
    pub two_phase_voided: u64,
    pub two_phase_expired: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deviations {
    /// Every account and transfer carries `flags.imported` (TigerBeetle requires it to keep the
    /// original timestamps).
    pub imported_flag: bool,
    /// Accounts recorded as `closed`, created open (the replayed closing transfer closes them).
    pub accounts_closed_flag_dropped: u64,
    /// Accounts created in a linked chain, created alone.
    pub accounts_linked_flag_dropped: u64,
    /// Pending transfers replayed with `timeout = 0`.
    pub timeouts_zeroed_total: usize,
    pub timeouts_zeroed: Vec<ZeroedTimeoutLine>,
    /// Voids added, each standing for a `two_phase_expired` event.
    pub expiry_voids_total: usize,
    pub expiry_void_id: String,
    pub expiry_voids: Vec<ExpiryVoidLine>,
    /// Transfers replayed without `linked` because their chain's end is not replayed.
    pub chain_cuts: Vec<ChainCutLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZeroedTimeoutLine {
    pub transfer_id: String,
    pub timestamp: u64,
    pub timeout_s: u32,
    pub expires_at: u64,
    pub expires_time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpiryVoidLine {
    pub void_id: String,
    pub pending_id: String,
    pub timestamp: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainCutLine {
    pub transfer_id: String,
    pub timestamp: u64,
    /// `until` or `ledger_filter`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenPendingLine {
    pub transfer_id: String,
    pub timestamp: u64,
    pub amount: String,
    pub ledger: u32,
    /// The source's timeout, dropped in the target (0: it had none).
    pub timeout_s: u32,
    pub expires_at: Option<u64>,
    pub expires_time: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `fresh`, or `resumed` after what an earlier run left.
    pub target: &'static str,
    pub accounts_already_present: u64,
    pub transfers_already_present: u64,
    pub accounts_created: u64,
    pub transfers_created: u64,
    pub account_requests: u64,
    pub transfer_requests: u64,
    /// Reading the lake and computing the plan.
    pub plan_s: f64,
    /// Inspecting the target (and, to resume, counting what it holds).
    pub inspect_s: f64,
    /// The replay proper: reading the lake again, building and sending the requests.
    pub replay_s: f64,
    /// Objects created per second of replay.
    pub events_per_second: f64,
}

/// How long each phase of a run took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub plan: Duration,
    pub inspect: Duration,
    pub replay: Duration,
}

impl PlanReport {
    pub fn new(plan: &RebuildPlan) -> PlanReport {
        let s = &plan.summary;
        let t = &s.transfers;
        let events = |e| t.events.get(e);
        let open: Vec<_> = t.open_pending.values().collect();
        PlanReport {
            lake: plan.lake.clone(),
            lake_cluster_id: plan.lake_cluster_id.to_string(),
            target_cluster_id: plan.target_cluster_id.to_string(),
            lake_first_timestamp: plan.range.first,
            lake_last_timestamp: plan.range.last,
            until: plan.until,
            until_time: rfc3339(plan.until),
            ledgers: plan.ledgers.as_ref().map(|l| l.iter().copied().collect()),
            segments_in_lake: plan.segments_in_lake,
            segments_to_read: plan.segments.len(),
            accounts: s.accounts,
            events: EventCounts {
                single_phase: events(EventType::SinglePhase),
                two_phase_pending: events(EventType::TwoPhasePending),
                two_phase_posted: events(EventType::TwoPhasePosted),
                two_phase_voided: events(EventType::TwoPhaseVoided),
                two_phase_expired: events(EventType::TwoPhaseExpired),
                total: t.events.total(),
            },
            transfers: s.transfers_created,
            first_timestamp: s.first_timestamp,
            last_timestamp: s.last_timestamp,
            account_batches: s.account_batches,
            transfer_batches: s.transfer_batches,
            deviations: Deviations {
                imported_flag: true,
                accounts_closed_flag_dropped: s.account_deviations.closed_dropped,
                accounts_linked_flag_dropped: s.account_deviations.linked_dropped,
                timeouts_zeroed_total: t.timeouts_zeroed.len(),
                timeouts_zeroed: t
                    .timeouts_zeroed
                    .iter()
                    .take(LIST_MAX)
                    .map(|z| ZeroedTimeoutLine {
                        transfer_id: z.transfer_id.to_string(),
                        timestamp: z.timestamp,
                        timeout_s: z.timeout_s,
                        expires_at: z.expires_at,
                        expires_time: rfc3339(z.expires_at),
                    })
                    .collect(),
                expiry_voids_total: t.expiry_voids.len(),
                expiry_void_id: format!(
                    "pending_id XOR {EXPIRY_VOID_ID_XOR:#034x} (\"ledgerlake:void!\")"
                ),
                expiry_voids: t
                    .expiry_voids
                    .iter()
                    .take(LIST_MAX)
                    .map(|v| ExpiryVoidLine {
                        void_id: v.void_id.to_string(),
                        pending_id: v.pending_id.to_string(),
                        timestamp: v.timestamp,
                    })
                    .collect(),
                chain_cuts: t
                    .chain_cuts
                    .iter()
                    .take(LIST_MAX)
                    .map(|c| ChainCutLine {
                        transfer_id: c.transfer_id.to_string(),
                        timestamp: c.timestamp,
                        reason: match c.reason {
                            ChainCutReason::Until => "until",
                            ChainCutReason::LedgerFilter => "ledger_filter",
                        },
                    })
                    .collect(),
            },
            open_pending_total: open.len(),
            open_pending: open
                .into_iter()
                .take(LIST_MAX)
                .map(|p| OpenPendingLine {
                    transfer_id: p.transfer_id.to_string(),
                    timestamp: p.timestamp,
                    amount: p.amount.to_string(),
                    ledger: p.ledger,
                    timeout_s: p.timeout_s,
                    expires_at: p.expires_at,
                    expires_time: p.expires_at.map(rfc3339),
                })
                .collect(),
        }
    }
}

impl RunReport {
    pub fn new(fresh: bool, r: &Replayed, t: Timings) -> RunReport {
        let created = r.accounts_created + r.transfers_created;
        RunReport {
            target: if fresh { "fresh" } else { "resumed" },
            accounts_already_present: r.skipped.accounts,
            transfers_already_present: r.skipped.transfers,
            accounts_created: r.accounts_created,
            transfers_created: r.transfers_created,
            account_requests: r.account_requests,
            transfer_requests: r.transfer_requests,
            plan_s: t.plan.as_secs_f64(),
            inspect_s: t.inspect.as_secs_f64(),
            replay_s: t.replay.as_secs_f64(),
            events_per_second: created as f64 / t.replay.as_secs_f64().max(1e-9),
        }
    }
}

fn time_or_dash(ts: Option<u64>) -> String {
    ts.map_or("-".to_string(), |t| format!("{t} ({})", rfc3339(t)))
}

impl Report {
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let p = &self.plan;
        let d = &p.deviations;
        let _ = writeln!(
            out,
            "rebuild of lake {} (cluster {}) into cluster {}",
            p.lake, p.lake_cluster_id, p.target_cluster_id
        );
        let _ = writeln!(
            out,
            "lake range:  {} .. {}",
            time_or_dash(Some(p.lake_first_timestamp)),
            time_or_dash(Some(p.lake_last_timestamp))
        );
        let _ = writeln!(out, "until:       {} ({})", p.until, p.until_time);
        if let Some(ledgers) = &p.ledgers {
            let _ = writeln!(out, "ledgers:     {ledgers:?}");
        }
        let _ = writeln!(
            out,
            "segments:    {} of {} to read",
            p.segments_to_read, p.segments_in_lake
        );
        let _ = writeln!(
            out,
            "replays:     {} accounts, {} transfers ({} account requests, {} transfer requests)",
            p.accounts, p.transfers, p.account_batches, p.transfer_batches
        );
        let e = &p.events;
        let _ = writeln!(
            out,
            "events:      {} single_phase, {} two_phase_pending, {} two_phase_posted, {} two_phase_voided, {} two_phase_expired",
            e.single_phase, e.two_phase_pending, e.two_phase_posted, e.two_phase_voided, e.two_phase_expired
        );
        let _ = writeln!(out, "first:       {}", time_or_dash(p.first_timestamp));
        let _ = writeln!(out, "last:        {}", time_or_dash(p.last_timestamp));
        let _ = writeln!(out, "deviations from the source:");
        let _ = writeln!(out, "  every account and transfer has flags.imported");
        let _ = writeln!(
            out,
            "  {} accounts created without `closed` (the replay closes them), {} without `linked`",
            d.accounts_closed_flag_dropped, d.accounts_linked_flag_dropped
        );
        let _ = writeln!(
            out,
            "  {} pending transfers with their timeout set to 0",
            d.timeouts_zeroed_total
        );
        let _ = writeln!(
            out,
            "  {} voids added for expiries, id = {}",
            d.expiry_voids_total, d.expiry_void_id
        );
        for c in &d.chain_cuts {
            let _ = writeln!(
                out,
                "  transfer {} at {} replayed without `linked` ({})",
                c.transfer_id, c.timestamp, c.reason
            );
        }
        let _ = writeln!(out, "pending at --until: {}", p.open_pending_total);
        for o in p.open_pending.iter().take(TABLE_OPEN_PENDING_MAX) {
            let expiry = o.expires_time.as_deref().map_or(String::new(), |t| {
                format!(
                    ", timeout {} s dropped, the source expires it at {t}",
                    o.timeout_s
                )
            });
            let _ = writeln!(
                out,
                "  {} (ledger {}, amount {}, at {}{expiry})",
                o.transfer_id, o.ledger, o.amount, o.timestamp
            );
        }
        let listed = p.open_pending.len().min(TABLE_OPEN_PENDING_MAX);
        if p.open_pending_total > listed {
            let _ = writeln!(
                out,
                "  ... ({} more; --format json lists up to {LIST_MAX})",
                p.open_pending_total - listed
            );
        }
        match &self.run {
            None => {
                let _ = writeln!(out, "dry run: nothing written");
            }
            Some(r) => {
                let _ = writeln!(
                    out,
                    "target:      {} ({} accounts and {} transfers already present)",
                    r.target, r.accounts_already_present, r.transfers_already_present
                );
                let _ = writeln!(
                    out,
                    "created:     {} accounts, {} transfers in {:.2} s ({:.0} events/s; plan {:.2} s, target inspection {:.2} s)",
                    r.accounts_created,
                    r.transfers_created,
                    r.replay_s,
                    r.events_per_second,
                    r.plan_s,
                    r.inspect_s
                );
            }
        }
        out
    }
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
pub struct TerminalProgress {
    enabled: bool,
    drawn: Option<Instant>,
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalProgress {
    pub fn new() -> TerminalProgress {
        TerminalProgress {
            enabled: std::io::stderr().is_terminal(),
            drawn: None,
        }
    }

    pub fn update(&mut self, p: Progress) {
        let due = self.drawn.is_none_or(|t| t.elapsed() >= REDRAW_INTERVAL) || p.done == p.total;
        if !self.enabled || !due {
            return;
        }
        self.drawn = Some(Instant::now());
        eprint!("\r{}", render_bar(p));
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self) {
        if self.enabled && self.drawn.is_some() {
            eprintln!();
        }
    }
}

/// `[#####.....]  5000/10000 events  2500/s  ETA 2s`
pub fn render_bar(p: Progress) -> String {
    const WIDTH: u64 = 30;
    let filled = (p.done * WIDTH)
        .checked_div(p.total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let secs = p.elapsed.as_secs_f64().max(1e-3);
    let rate = p.done as f64 / secs;
    let eta = if rate > 0.0 {
        format!("{:.0}s", p.total.saturating_sub(p.done) as f64 / rate)
    } else {
        "?".to_string()
    };
    format!(
        "[{}{}] {}/{} events  {:.0}/s  ETA {eta}  ",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        p.done,
        p.total,
        rate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_progress_rate_and_eta() {
        let bar = render_bar(Progress {
            done: 50,
            total: 100,
            elapsed: Duration::from_secs(5),
        });
        assert!(
            bar.starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))),
            "{bar}"
        );
        assert!(bar.contains("50/100 events"), "{bar}");
        assert!(bar.contains("10/s"), "{bar}");
        assert!(bar.contains("ETA 5s"), "{bar}");
        let empty = render_bar(Progress {
            done: 0,
            total: 0,
            elapsed: Duration::ZERO,
        });
        assert!(empty.contains("0/0"), "{empty}");
    }
}
