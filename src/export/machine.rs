//! The export loop's decisions as a pure, synchronous state machine: inputs (a delivery, a commit
//! result, a tick, a sweep page, shutdown, a lost broker session) go in, actions (start a commit,
//! acknowledge, finish) come out. No broker, no lake, no clock of its own: the driver in
//! `export/mod.rs` does the I/O, so every rule here is unit-tested and simulated without either.
//!
//! It owns placement and sealing (through `segment::OpenSegment`), acknowledgement, the single
//! commit slot (segments, swept accounts and quarantine records all go through it), idleness
//! (`--until-idle`), the held next-day event, the pending sweep page, and the run's counters.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::segment::{Append, OpenSegment, SealPolicy};
use super::sweep::SweptPage;
use crate::cdc::{self, Event};
use crate::lake::{CommitOutcome, Quarantined, Segment};
use crate::timefmt;

/// Quarantine records waiting for the commit slot. Deliveries are not taken while this many wait,
/// so memory holds at most this many raw bodies besides the one batch being written.
pub const QUARANTINE_PENDING_MAX: usize = 64;

/// What one run did; printed at the end and returned to tests. Counted only by [`Machine`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    pub events_committed: u64,
    pub segments_committed: u64,
    pub bytes_committed: u64,
    pub duplicates_dropped: u64,
    pub quarantined: u64,
    pub reconnects: u64,
    pub orphans_removed: u64,
    pub last_committed_timestamp: Option<u64>,
    /// Accounts recorded by the sweep (in `swept_accounts/`).
    pub accounts_swept: u64,
    pub swept_files_committed: u64,
}

/// The rules' parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineOptions {
    pub seal: SealPolicy,
    /// Finish once no message has arrived for this long and everything received is committed.
    pub until_idle: Option<Duration>,
    /// Whether a sweep runs: then idleness also waits for a sweep pass that started after the
    /// last delivery.
    pub sweep: bool,
}

/// What the lake held when the session started: the lake is the consumer position. Nothing
/// about its accounts: each segment records every account it touches, and the sweep resumes
/// from its own position, so no set of the lake's accounts is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStart {
    /// Anything at or before it is a duplicate.
    pub committed_last: Option<u64>,
}

/// One message from the broker, decoded (or not) by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Increasing within a session.
    pub tag: u64,
    /// Wall-clock receive time (ns since the Unix epoch), recorded with a quarantined message.
    pub received_ns: u64,
    pub payload: Payload,
}

// Most deliveries are events: boxing one would add an allocation per delivery, and a `Payload`
// is moved once, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Event(Event),
    /// It could not be decoded: everything AMQP delivered about it, for `quarantine/`.
    Undecodable(Undecodable),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub reason: String,
    pub exchange: String,
    pub routing_key: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a commit failed for good (the driver retries transient errors itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A permanent lake error: not retried.
    Permanent,
    /// Transient errors for longer than `--lake-retry-max`.
    RetriesExhausted,
}

// As `Payload`: an input is moved into `step` once and not stored.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Delivery(Delivery),
    /// The commit in flight is durable.
    CommitDone(CommitOutcome),
    /// The commit in flight failed for good; the run ends.
    CommitFailed(Failure),
    /// Time passed (time-based sealing, idleness).
    Tick,
    /// A sweep page: the accounts no transfer had touched, in creation order, and where the
    /// sweep resumes.
    SweepPage(SweptPage),
    /// A sweep pass that started at `started` reached the newest account.
    SweepPassDone {
        started: Instant,
    },
    /// SIGINT/SIGTERM: commit everything received, acknowledge it, finish.
    Shutdown,
    /// The broker session is gone (unacknowledged messages will be redelivered).
    BrokerLost,
}

/// What the commit slot writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Segment(Segment),
    Swept(SweptPage),
    /// Written one after another; each message is acknowledged once all are durable.
    Quarantine(Vec<Quarantined>),
}

impl Work {
    /// What it holds, for the debug log: "segment of N events, M accounts", ….
    pub fn describe(&self) -> String {
        match self {
            Work::Segment(s) => format!(
                "segment of {} events, {} account records",
                s.events.len(),
                s.new_accounts.len()
            ),
            Work::Swept(page) => format!("sweep page of {} accounts", page.accounts.len()),
            Work::Quarantine(records) => format!("{} quarantine records", records.len()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this in the background; answer with `CommitDone` or `CommitFailed`. Never issued
    /// while a commit is in flight.
    StartCommit(Work),
    /// Acknowledge every delivery up to and including this tag.
    AckThrough(u64),
    /// Acknowledge this one delivery (a quarantined message).
    AckOne(u64),
    /// The session is over; always the last action, and no input may follow.
    Finish(End),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Shut down: everything received is committed and acknowledged (but a held next-day event).
    Shutdown,
    /// `--until-idle`: drained and idle long enough.
    Idle,
    /// The broker session was lost; the commit that was in flight has finished and is counted.
    BrokerLost,
    /// A commit failed for good; nothing after the last committed segment was acknowledged.
    LakeFailed(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Shutdown requested: no new deliveries; commit what is there, acknowledge, finish.
    Finishing,
    /// Broker lost: everything not in flight is dropped; waits for the commit in flight.
    Abandoning,
    Done,
}

/// What the commit in flight covers, for counting and acknowledging once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inflight {
    Segment {
        ack_tag: u64,
        event_count: u64,
        last_timestamp: u64,
    },
    Swept {
        account_count: u64,
    },
    Quarantine {
        tags: Vec<u64>,
    },
}

/// One session's state and the run's counters. A new session (or a restarted process) builds a
/// new machine from what the lake holds; the counters are carried over by [`Machine::into_report`].
#[derive(Debug)]
pub struct Machine {
    options: MachineOptions,
    phase: Phase,
    open: OpenSegment,
    /// Highest tag of an event or duplicate received since the last seal: acknowledged with
    /// the next segment (or on its own when only duplicates came).
    open_ack_tag: Option<u64>,
    /// Lowest tag of an event in the open segment (for the acknowledgement invariant).
    open_first_tag: Option<u64>,
    /// An event of the next UTC day, waiting for the open segment to be sealed.
    held: Option<(u64, Event)>,
    /// Last timestamp committed or being committed.
    sealed_last: Option<u64>,
    inflight: Option<Inflight>,
    quarantine_pending: Vec<(u64, Quarantined)>,
    /// Tags of quarantined messages not yet durable (pending or in flight).
    quarantine_unresolved: BTreeSet<u64>,
    /// A sweep page waiting for the commit slot: committed before any segment sealed after it
    /// was taken.
    swept_pending: Option<SweptPage>,
    sweep_pass_started: Option<Instant>,
    last_delivery_at: Instant,
    last_received_at: Option<Instant>,
    last_tag: Option<u64>,
    acked_through: Option<u64>,
    report: ExportReport,
}

impl Machine {
    /// A session's machine, starting from what the lake holds, counting on into `report`.
    pub fn new(
        options: MachineOptions,
        start: SessionStart,
        mut report: ExportReport,
        now: Instant,
    ) -> Machine {
        report.last_committed_timestamp = start.committed_last;
        Machine {
            options,
            phase: Phase::Running,
            open: OpenSegment::default(),
            open_ack_tag: None,
            open_first_tag: None,
            held: None,
            sealed_last: start.committed_last,
            inflight: None,
            quarantine_pending: Vec::new(),
            quarantine_unresolved: BTreeSet::new(),
            swept_pending: None,
            sweep_pass_started: None,
            last_delivery_at: now,
            last_received_at: None,
            last_tag: None,
            acked_through: None,
            report,
        }
    }

    pub fn report(&self) -> &ExportReport {
        &self.report
    }

    /// Events in the segment being filled (for the metrics).
    pub fn open_segment_events(&self) -> usize {
        self.open.len()
    }

    pub fn into_report(self) -> ExportReport {
        self.report
    }

    /// Whether the driver may feed the next delivery.
    pub fn can_take(&self) -> bool {
        self.phase == Phase::Running
            && self.held.is_none()
            && self.quarantine_pending.len() < QUARANTINE_PENDING_MAX
            && self.open.has_room(&self.options.seal)
    }

    /// Whether the driver may feed the next sweep message.
    pub fn wants_sweep(&self) -> bool {
        self.phase == Phase::Running && self.swept_pending.is_none()
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn step(&mut self, input: Input, now: Instant) -> Vec<Action> {
        assert!(
            self.phase != Phase::Done,
            "input after the machine finished"
        );
        let mut actions = Vec::new();
        match input {
            Input::Delivery(delivery) => self.on_delivery(delivery, now),
            Input::CommitDone(outcome) => self.on_commit_done(outcome, &mut actions),
            Input::CommitFailed(failure) => {
                assert!(
                    self.inflight.take().is_some(),
                    "a commit failed with none in flight"
                );
                return self.finish(End::LakeFailed(failure), actions);
            }
            Input::Tick => {}
            Input::SweepPage(page) => {
                assert!(
                    self.wants_sweep(),
                    "a sweep page the machine did not ask for"
                );
                self.swept_pending = Some(page);
            }
            Input::SweepPassDone { started } => self.sweep_pass_started = Some(started),
            Input::Shutdown => {
                if self.phase == Phase::Running {
                    self.phase = Phase::Finishing;
                }
            }
            Input::BrokerLost => self.on_broker_lost(),
        }
        self.advance(now, actions)
    }

    fn on_delivery(&mut self, delivery: Delivery, now: Instant) {
        assert!(self.can_take(), "a delivery the machine did not ask for");
        let tag = delivery.tag;
        assert!(
            self.last_tag.is_none_or(|last| tag > last),
            "delivery tags increase within a session"
        );
        self.last_tag = Some(tag);
        self.last_delivery_at = now;
        self.last_received_at = Some(now);
        match delivery.payload {
            Payload::Event(event) => self.place(tag, event, delivery.received_ns, now),
            Payload::Undecodable(raw) => {
                crate::metrics::quarantined("undecodable");
                tracing::warn!(reason = %raw.reason, delivery_tag = tag, "quarantining an undecodable message");
                let record = Quarantined {
                    received_ns: delivery.received_ns,
                    reason: raw.reason,
                    exchange: raw.exchange,
                    routing_key: raw.routing_key,
                    headers: raw.headers,
                    body: raw.body,
                };
                self.queue_quarantine(tag, record);
            }
        }
    }

    /// Offers an event to the open segment: appended, dropped as a duplicate, held for the next
    /// UTC day, or quarantined as late.
    fn place(&mut self, tag: u64, event: Event, received_ns: u64, now: Instant) {
        match self.open.append(&event, self.sealed_last, now) {
            Append::Appended => {
                self.open_ack_tag = Some(tag);
                self.open_first_tag.get_or_insert(tag);
            }
            Append::AlreadyCommitted | Append::DuplicateInSegment => {
                self.report.duplicates_dropped += 1;
                self.open_ack_tag = Some(tag);
            }
            Append::NeedsSeal => {
                assert!(
                    self.held.is_none(),
                    "one held event at most: no deliveries are taken while one is held"
                );
                self.held = Some((tag, event));
            }
            Append::Late => {
                crate::metrics::quarantined("late");
                let reason = format!(
                    "late event: timestamp {} ({}) arrived after events of a later UTC day; it is kept here, not in the ordered lake",
                    event.timestamp,
                    timefmt::rfc3339(event.timestamp)
                );
                let record = Quarantined {
                    received_ns,
                    reason,
                    exchange: String::new(),
                    routing_key: String::new(),
                    headers: Vec::new(),
                    body: cdc::encode(&event).into_bytes(),
                };
                self.queue_quarantine(tag, record);
            }
        }
    }

    fn queue_quarantine(&mut self, tag: u64, record: Quarantined) {
        assert!(self.quarantine_pending.len() < QUARANTINE_PENDING_MAX);
        self.quarantine_unresolved.insert(tag);
        self.quarantine_pending.push((tag, record));
    }

    /// The commit in flight is durable: count it, and (with a live session) acknowledge what it
    /// covers. Counted the same way whether or not the session is still there.
    fn on_commit_done(&mut self, outcome: CommitOutcome, actions: &mut Vec<Action>) {
        let inflight = self
            .inflight
            .take()
            .expect("a commit finished with none in flight");
        let acknowledge = self.phase != Phase::Abandoning;
        match inflight {
            Inflight::Segment {
                ack_tag,
                event_count,
                last_timestamp,
            } => {
                match outcome {
                    CommitOutcome::Committed { bytes } => {
                        self.report.bytes_committed += bytes;
                        self.report.segments_committed += 1;
                        self.report.events_committed += event_count;
                    }
                    CommitOutcome::AlreadyCommitted => tracing::warn!(
                        last = last_timestamp,
                        "segment was already committed by an earlier attempt"
                    ),
                }
                self.report.last_committed_timestamp = Some(last_timestamp);
                if acknowledge {
                    self.ack_through(ack_tag, actions);
                }
            }
            Inflight::Swept { account_count } => {
                if let CommitOutcome::Committed { bytes } = outcome {
                    self.report.bytes_committed += bytes;
                }
                // AlreadyCommitted: a retried write whose first attempt succeeded; the file holds them.
                // A page with no account to record commits only the sweep's position.
                if account_count > 0 {
                    self.report.accounts_swept += account_count;
                    self.report.swept_files_committed += 1;
                    tracing::info!(accounts = account_count, "recorded swept accounts");
                }
            }
            Inflight::Quarantine { tags } => {
                self.report.quarantined += tags.len() as u64;
                for tag in tags {
                    self.quarantine_unresolved.remove(&tag);
                    if acknowledge {
                        actions.push(Action::AckOne(tag));
                    }
                }
            }
        }
    }

    /// Drops everything not in flight: the broker redelivers it to the next session, which
    /// deduplicates against the lake. A pending swept page goes too: its accounts are not in the
    /// lake, so the next session's sweep (or their events) records them.
    fn on_broker_lost(&mut self) {
        if matches!(self.phase, Phase::Running | Phase::Finishing) {
            self.phase = Phase::Abandoning;
            self.report.reconnects += 1;
            self.open = OpenSegment::default();
            self.open_ack_tag = None;
            self.open_first_tag = None;
            self.held = None;
            for (tag, _) in self.quarantine_pending.drain(..) {
                self.quarantine_unresolved.remove(&tag);
            }
            self.swept_pending = None;
        }
    }

    /// After every input: use a free commit slot, and decide whether the session is over.
    fn advance(&mut self, now: Instant, mut actions: Vec<Action>) -> Vec<Action> {
        match self.phase {
            Phase::Running | Phase::Finishing => {
                if self.inflight.is_none() {
                    self.use_slot(now, &mut actions);
                }
                if self.phase == Phase::Finishing && self.inflight.is_none() {
                    if let Some((_, event)) = &self.held {
                        // Not acknowledged: the broker redelivers it to the next run.
                        tracing::info!(
                            timestamp = event.timestamp,
                            "left one unacknowledged event for the next run"
                        );
                    }
                    return self.finish(End::Shutdown, actions);
                }
                if self.phase == Phase::Running && self.idle(now) {
                    return self.finish(End::Idle, actions);
                }
                actions
            }
            Phase::Abandoning if self.inflight.is_none() => self.finish(End::BrokerLost, actions),
            Phase::Abandoning | Phase::Done => actions,
        }
    }

    /// The slot is free. In order: quarantine records and swept accounts received before
    /// anything sealed from now on (so an acknowledgement through a segment's last tag never
    /// covers a quarantined message that is not yet durable, and a segment may use swept
    /// accounts), then the open segment when due, else the acknowledgement of duplicates.
    fn use_slot(&mut self, now: Instant, actions: &mut Vec<Action>) {
        assert!(self.inflight.is_none());
        if !self.quarantine_pending.is_empty() {
            let (tags, records) = self.quarantine_pending.drain(..).unzip();
            self.inflight = Some(Inflight::Quarantine { tags });
            actions.push(Action::StartCommit(Work::Quarantine(records)));
            return;
        }
        if let Some(page) = self.swept_pending.take() {
            self.inflight = Some(Inflight::Swept {
                account_count: page.accounts.len() as u64,
            });
            actions.push(Action::StartCommit(Work::Swept(page)));
            return;
        }
        let finishing = self.phase == Phase::Finishing;
        let reason = if finishing {
            Some("finishing")
        } else if self.held.is_some() {
            Some("next day")
        } else {
            self.open.seal_reason(&self.options.seal, now)
        };
        if !self.open.is_empty() && reason.is_some() {
            tracing::debug!(reason, events = self.open.len(), "segment sealed");
            self.seal(actions);
            if !finishing {
                if let Some((tag, event)) = self.held.take() {
                    // The open segment is empty now, so this appends it.
                    self.place(tag, event, 0, now);
                }
            }
        } else if self.open.is_empty() {
            if let Some(tag) = self.open_ack_tag.take() {
                // Only duplicates came since the last seal: nothing to write.
                self.ack_through(tag, actions);
            }
        }
    }

    fn seal(&mut self, actions: &mut Vec<Action>) {
        let ack_tag = self
            .open_ack_tag
            .take()
            .expect("a non-empty segment has a delivery tag");
        self.open_first_tag = None;
        let segment = self.open.seal();
        let last_timestamp = segment
            .events
            .last()
            .map(|e| e.timestamp)
            .expect("a sealed segment is not empty");
        assert!(self.sealed_last.is_none_or(|last| last < last_timestamp));
        self.sealed_last = Some(last_timestamp);
        self.inflight = Some(Inflight::Segment {
            ack_tag,
            event_count: segment.events.len() as u64,
            last_timestamp,
        });
        actions.push(Action::StartCommit(Work::Segment(segment)));
    }

    /// Acknowledges through `tag`, which must cover only durable work: no event of the open
    /// segment, no held event, no quarantined message not yet written, no commit in flight.
    fn ack_through(&mut self, tag: u64, actions: &mut Vec<Action>) {
        assert!(
            self.inflight.is_none(),
            "acknowledging with a commit in flight"
        );
        assert!(
            self.acked_through.is_none_or(|acked| acked < tag),
            "acknowledgements move forward"
        );
        assert!(
            self.open_first_tag.is_none_or(|first| first > tag),
            "acknowledging an event of the open segment"
        );
        assert!(
            self.held.as_ref().is_none_or(|(held, _)| *held > tag),
            "acknowledging the held event"
        );
        assert!(
            self.quarantine_unresolved
                .first()
                .is_none_or(|first| *first > tag),
            "acknowledging a quarantined message before it is durable"
        );
        self.acked_through = Some(tag);
        actions.push(Action::AckThrough(tag));
    }

    /// `--until-idle`: drained, no delivery for the idle time, and (with a sweep) a pass that
    /// started after the last delivery has finished.
    fn idle(&self, now: Instant) -> bool {
        let Some(idle) = self.options.until_idle else {
            return false;
        };
        let drained = self.open.is_empty()
            && self.inflight.is_none()
            && self.held.is_none()
            && self.open_ack_tag.is_none()
            && self.quarantine_pending.is_empty()
            && self.swept_pending.is_none();
        let swept = !self.options.sweep
            || self
                .sweep_pass_started
                .is_some_and(|s| self.last_received_at.is_none_or(|r| s >= r));
        drained && swept && now.saturating_duration_since(self.last_delivery_at) >= idle
    }

    fn finish(&mut self, end: End, mut actions: Vec<Action>) -> Vec<Action> {
        self.phase = Phase::Done;
        actions.push(Action::Finish(end));
        actions
    }
}

#[cfg(test)]
mod tests;
