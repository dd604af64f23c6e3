//! A deterministic simulation of the exporter: the state machine driven by a simulated source,
//! an at-least-once broker and a create-only lake, with random deliveries, replays, commit
//! failures, lost sessions, crashes, shutdowns and idle exits, checked against an oracle: every
//! published event ends up in the lake exactly once and in timestamp order, every undecodable
//! message in quarantine, every account an event uses recorded by its segment (records of one
//! account agreeing), and no message is acknowledged before the commit that holds it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::machine::{
    Action, Delivery, End, ExportReport, Failure, Input, Machine, MachineOptions, Payload,
    SessionStart, Undecodable, Work,
};
use super::segment::SealPolicy;
use super::sweep::SweptPage;
use crate::cdc::{AccountFields, Event, EventType, TransferFields};
use crate::lake::{AccountBook, AccountRecord, CommitOutcome};

const DAY_NS: u64 = 86_400 * 1_000_000_000;
const SEEDS: u64 = 200;
const STEPS: usize = 3_000;
const DRAIN_STEPS_MAX: usize = 200_000;

#[allow(clippy::large_enum_variant)] // a test: simple beats small
#[derive(Debug, Clone, PartialEq, Eq)]
enum Message {
    Event(Event),
    /// An undecodable message, named by its body.
    Garbage(Vec<u8>),
}

/// One queue, one consumer, manual acknowledgements; unacknowledged messages go back to the
/// head of the queue, in order, when the session ends.
struct Broker {
    queue: VecDeque<Message>,
    unacked: BTreeMap<u64, Message>,
    next_tag: u64,
    prefetch: usize,
}

impl Broker {
    fn can_deliver(&self) -> bool {
        !self.queue.is_empty() && self.unacked.len() < self.prefetch
    }

    fn deliver(&mut self) -> (u64, Message) {
        let message = self.queue.pop_front().expect("a message to deliver");
        let tag = self.next_tag;
        self.next_tag += 1;
        self.unacked.insert(tag, message.clone());
        (tag, message)
    }

    fn end_session(&mut self) {
        let unacked = std::mem::take(&mut self.unacked);
        for message in unacked.into_values().rev() {
            self.queue.push_front(message);
        }
        self.next_tag = 1;
    }
}

/// Create-only objects: a segment named by its first and last timestamp, quarantine records.
#[derive(Default)]
struct Lake {
    events: BTreeMap<u64, Event>,
    segments: HashSet<(u64, u64)>,
    /// The sweep's position (the `swept_accounts` txn).
    swept_through: Option<u64>,
    /// One record per account, merged as readers merge them.
    accounts: AccountBook,
    quarantine: Vec<Vec<u8>>,
}

impl Lake {
    fn write(&mut self, work: &Work) -> CommitOutcome {
        match work {
            Work::Segment(segment) => {
                let first = segment.events[0].timestamp;
                let last = segment.events[segment.events.len() - 1].timestamp;
                if !self.segments.insert((first, last)) {
                    return CommitOutcome::AlreadyCommitted;
                }
                if let Some((&lake_last, _)) = self.events.last_key_value() {
                    assert!(
                        first > lake_last,
                        "segment {first}..={last} after {lake_last}: out of order or written twice"
                    );
                }
                // A segment records every account it touches, once, at its first event there.
                let mut in_segment = HashSet::new();
                for account in &segment.new_accounts {
                    assert!(
                        in_segment.insert(account.id),
                        "account {} recorded twice in one segment",
                        account.id
                    );
                    self.accounts
                        .insert(*account)
                        .expect("records of an account agree");
                }
                for event in &segment.events {
                    for account in [event.debit_account.id, event.credit_account.id] {
                        assert!(
                            in_segment.contains(&account),
                            "account {account} missing from its event's segment"
                        );
                        let record = self.accounts.get(account).expect("recorded");
                        assert!(record.first_seen_timestamp <= event.timestamp);
                    }
                    self.events.insert(event.timestamp, *event);
                }
                CommitOutcome::Committed {
                    bytes: 10 * segment.events.len() as u64,
                }
            }
            Work::Swept(page) => {
                // The position is the commit's idempotence key, as in the lake's log.
                if self.swept_through.is_some_and(|t| t >= page.through) {
                    return CommitOutcome::AlreadyCommitted;
                }
                self.swept_through = Some(page.through);
                for account in &page.accounts {
                    assert!(account.timestamp <= page.through);
                    self.accounts
                        .insert(*account)
                        .expect("records of an account agree");
                }
                CommitOutcome::Committed {
                    bytes: page.accounts.len() as u64,
                }
            }
            Work::Quarantine(records) => {
                self.quarantine
                    .extend(records.iter().map(|r| r.body.clone()));
                CommitOutcome::Committed { bytes: 0 }
            }
        }
    }

    fn holds(&self, message: &Message) -> bool {
        match message {
            Message::Event(event) => self.events.get(&event.timestamp) == Some(event),
            Message::Garbage(body) => self.quarantine.contains(body),
        }
    }

    fn session_start(&self) -> SessionStart {
        SessionStart {
            committed_last: self.events.last_key_value().map(|(&t, _)| t),
        }
    }
}

/// What the report of the running process must say, from the commit results fed to it.
#[derive(Default)]
struct Expected {
    events: u64,
    segments: u64,
    bytes: u64,
    quarantined: u64,
    swept: u64,
}

struct World {
    rng: StdRng,
    options: MachineOptions,
    now: Instant,
    broker: Broker,
    lake: Lake,
    machine: Machine,
    /// The commit the machine started, not yet answered.
    inflight: Option<Work>,
    expected: Expected,
    /// Every event and garbage message the source published (events in timestamp order).
    published_events: Vec<Event>,
    published_garbage: Vec<Vec<u8>>,
    last_timestamp: u64,
    last_delivery_at: Instant,
    /// No acknowledgement may reach a session the machine was told is lost.
    session_lost: bool,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let events_max = rng.random_range(1..=12);
        let options = MachineOptions {
            seal: SealPolicy {
                events_max,
                bytes_max: usize::MAX,
                age_max: Duration::from_millis(rng.random_range(50..=1_000)),
                idle_max: Duration::from_millis(rng.random_range(10..=200)),
            },
            until_idle: rng
                .random_bool(0.3)
                .then(|| Duration::from_millis(rng.random_range(100..=2_000))),
            sweep: rng.random_bool(0.5),
        };
        let prefetch = rng.random_range(1..=40);
        let now = Instant::now();
        let lake = Lake::default();
        let machine = Machine::new(options, lake.session_start(), ExportReport::default(), now);
        World {
            rng,
            options,
            now,
            broker: Broker {
                queue: VecDeque::new(),
                unacked: BTreeMap::new(),
                next_tag: 1,
                prefetch,
            },
            lake,
            machine,
            inflight: None,
            expected: Expected::default(),
            published_events: Vec::new(),
            published_garbage: Vec::new(),
            last_timestamp: 20_000 * DAY_NS,
            last_delivery_at: now,
            session_lost: false,
        }
    }

    fn publish(&mut self) {
        match self.rng.random_range(0..100) {
            // The CDC job restarted from an older position: it republishes its last events.
            0..=2 => {
                let k = self
                    .rng
                    .random_range(1..=10)
                    .min(self.published_events.len());
                let replay = self.published_events[self.published_events.len() - k..].to_vec();
                self.broker
                    .queue
                    .extend(replay.into_iter().map(Message::Event));
            }
            3..=5 => {
                let body = format!("garbage {}", self.published_garbage.len()).into_bytes();
                self.published_garbage.push(body.clone());
                self.broker.queue.push_back(Message::Garbage(body));
            }
            _ => {
                let gap = if self.rng.random_bool(0.02) {
                    self.rng.random_range(DAY_NS / 4..DAY_NS)
                } else {
                    self.rng.random_range(1..1_000)
                };
                self.last_timestamp += gap;
                let debit = self.rng.random_range(1..=30u128);
                let credit = debit % 30 + 1;
                let event = event(self.last_timestamp, debit, credit);
                self.published_events.push(event);
                self.broker.queue.push_back(Message::Event(event));
            }
        }
    }

    fn step(&mut self, input: Input) {
        let actions = self.machine.step(input, self.now);
        for action in actions {
            match action {
                Action::StartCommit(work) => {
                    assert!(self.inflight.is_none(), "two commits in flight");
                    self.inflight = Some(work);
                }
                Action::AckThrough(tag) => {
                    assert!(
                        !self.session_lost,
                        "an acknowledgement after the session was lost"
                    );
                    assert!(
                        self.broker.unacked.contains_key(&tag),
                        "unknown delivery tag {tag}"
                    );
                    let rest = self.broker.unacked.split_off(&(tag + 1));
                    let acked = std::mem::replace(&mut self.broker.unacked, rest);
                    for message in acked.values() {
                        assert!(
                            self.lake.holds(message),
                            "acknowledged before durable: {message:?}"
                        );
                    }
                }
                Action::AckOne(tag) => {
                    assert!(
                        !self.session_lost,
                        "an acknowledgement after the session was lost"
                    );
                    let message = self
                        .broker
                        .unacked
                        .remove(&tag)
                        .unwrap_or_else(|| panic!("unknown delivery tag {tag}"));
                    assert!(
                        self.lake.holds(&message),
                        "acknowledged before durable: {message:?}"
                    );
                }
                Action::Finish(end) => self.finished(end),
            }
        }
    }

    fn deliver(&mut self) {
        let (tag, message) = self.broker.deliver();
        self.last_delivery_at = self.now;
        let payload = match message {
            Message::Event(event) => Payload::Event(event),
            Message::Garbage(body) => Payload::Undecodable(Undecodable {
                reason: "not JSON".into(),
                exchange: String::new(),
                routing_key: String::new(),
                headers: Vec::new(),
                body,
            }),
        };
        self.step(Input::Delivery(Delivery {
            tag,
            received_ns: 1,
            payload,
        }));
    }

    /// Answers the commit in flight: written (possibly by an attempt whose answer was lost, so
    /// the retry finds it), or failed for good.
    fn complete_commit(&mut self, faults: bool) {
        let work = self.inflight.take().expect("a commit in flight");
        let roll = self.rng.random_range(0..100);
        if faults && roll < 3 {
            return self.step(Input::CommitFailed(Failure::Permanent));
        }
        let mut outcome = self.lake.write(&work);
        if faults && roll < 12 {
            // The first attempt was written but its answer lost; the retry finds it.
            outcome = self.lake.write(&work);
        }
        match (&work, outcome) {
            (Work::Segment(segment), CommitOutcome::Committed { bytes }) => {
                self.expected.events += segment.events.len() as u64;
                self.expected.segments += 1;
                self.expected.bytes += bytes;
            }
            (Work::Quarantine(records), _) => self.expected.quarantined += records.len() as u64,
            (Work::Swept(page), outcome) => {
                self.expected.swept += page.accounts.len() as u64;
                if let CommitOutcome::Committed { bytes } = outcome {
                    self.expected.bytes += bytes;
                }
            }
            _ => {}
        }
        self.step(Input::CommitDone(outcome));
    }

    fn check_report(&self) {
        let report = self.machine.report();
        assert_eq!(
            (
                report.events_committed,
                report.segments_committed,
                report.bytes_committed,
                report.quarantined,
                report.accounts_swept
            ),
            (
                self.expected.events,
                self.expected.segments,
                self.expected.bytes,
                self.expected.quarantined,
                self.expected.swept
            ),
            "the report counts what was committed"
        );
    }

    fn finished(&mut self, end: End) {
        assert!(self.inflight.is_none(), "finished with a commit in flight");
        self.check_report();
        assert_eq!(
            self.machine.report().last_committed_timestamp,
            self.lake.events.last_key_value().map(|(&t, _)| t)
        );
        match end {
            End::Shutdown => {
                assert!(
                    self.broker.unacked.len() <= 1,
                    "shutdown leaves at most the held event unacknowledged"
                );
                self.restart();
            }
            End::Idle => {
                let idle = self
                    .options
                    .until_idle
                    .expect("idle exit without --until-idle");
                assert!(
                    self.broker.unacked.is_empty(),
                    "idle exit with unacknowledged messages"
                );
                assert!(self.now.duration_since(self.last_delivery_at) >= idle);
                self.restart();
            }
            End::LakeFailed(_) => self.restart(),
            End::BrokerLost => self.reconnect(),
        }
    }

    /// The broker session is gone (the machine has finished): a new session, same process.
    fn reconnect(&mut self) {
        self.broker.end_session();
        self.session_lost = false;
        let report = self.machine.report().clone();
        self.machine = Machine::new(self.options, self.lake.session_start(), report, self.now);
    }

    /// A new process: nothing survives but the lake and the broker's queue.
    fn restart(&mut self) {
        self.broker.end_session();
        self.session_lost = false;
        self.inflight = None;
        self.expected = Expected::default();
        self.machine = Machine::new(
            self.options,
            self.lake.session_start(),
            ExportReport::default(),
            self.now,
        );
    }

    /// SIGKILL: a commit in flight may or may not have reached the lake.
    fn crash(&mut self) {
        if let Some(work) = self.inflight.take() {
            if self.rng.random_bool(0.5) {
                self.lake.write(&work);
            }
        }
        self.restart();
    }

    fn random_step(&mut self, publishing: bool) {
        self.now += Duration::from_millis(self.rng.random_range(0..40));
        let roll = self.rng.random_range(0..1_000);
        if roll < 3 {
            self.crash();
        } else if roll < 8 {
            self.session_lost = true;
            self.step(Input::BrokerLost);
        } else if roll < 10 {
            self.step(Input::Shutdown);
        } else if roll < 200 && self.inflight.is_some() {
            self.complete_commit(true);
        } else if roll < 700 && self.machine.can_take() && self.broker.can_deliver() {
            self.deliver();
        } else if roll < 730 && self.options.sweep && self.machine.wants_sweep() {
            self.sweep();
        } else if roll < 800 && publishing {
            for _ in 0..self.rng.random_range(1..=8) {
                self.publish();
            }
        } else {
            self.step(Input::Tick);
        }
    }

    /// The sweep hands over a page of accounts in creation order (ids 1..=40, created at their
    /// id; 31..=40 never take a transfer), or reports a pass done.
    fn sweep(&mut self) {
        if self.rng.random_bool(0.2) {
            let back = Duration::from_millis(self.rng.random_range(0..500));
            let started = self.now.checked_sub(back).unwrap_or(self.now);
            return self.step(Input::SweepPassDone { started });
        }
        let first = self.rng.random_range(1..=40u128);
        let last = self.rng.random_range(first..=40);
        let accounts = (first..=last)
            .map(|id| AccountRecord {
                id,
                ledger: 1,
                code: 0, // as the events' accounts: records of one account agree
                flags: 0,
                user_data_128: 0,
                user_data_64: 0,
                user_data_32: 0,
                timestamp: id as u64,
                first_seen_timestamp: id as u64,
            })
            .collect();
        let page = SweptPage {
            accounts,
            through: last as u64,
        };
        self.step(Input::SweepPage(page));
    }

    /// No more faults or publications: run until everything published is acknowledged.
    fn drain(&mut self) {
        for _ in 0..DRAIN_STEPS_MAX {
            if self.broker.queue.is_empty()
                && self.broker.unacked.is_empty()
                && self.inflight.is_none()
            {
                return;
            }
            self.now += Duration::from_millis(10);
            if self.inflight.is_some() {
                self.complete_commit(false);
            } else if self.machine.can_take() && self.broker.can_deliver() {
                self.deliver();
            } else {
                self.step(Input::Tick);
            }
        }
        panic!("did not drain");
    }
}

fn event(timestamp: u64, debit: u128, credit: u128) -> Event {
    Event {
        timestamp,
        event_type: EventType::SinglePhase,
        ledger: 1,
        transfer: TransferFields {
            id: u128::from(timestamp),
            timestamp,
            ..TransferFields::default()
        },
        debit_account: AccountFields {
            id: debit,
            timestamp: debit as u64,
            ..AccountFields::default()
        },
        credit_account: AccountFields {
            id: credit,
            timestamp: credit as u64,
            ..AccountFields::default()
        },
    }
}

fn simulate(seed: u64) {
    let mut world = World::new(seed);
    for _ in 0..STEPS {
        world.random_step(true);
    }
    world.drain();
    let lake: Vec<Event> = world.lake.events.values().copied().collect();
    assert_eq!(
        lake, world.published_events,
        "every published event in the lake exactly once, in timestamp order"
    );
    for body in &world.published_garbage {
        assert!(
            world.lake.quarantine.contains(body),
            "lost an undecodable message"
        );
    }
}

#[test]
fn the_lake_holds_every_event_exactly_once_whatever_fails() {
    for seed in 0..SEEDS {
        let result = std::panic::catch_unwind(|| simulate(seed));
        assert!(
            result.is_ok(),
            "seed {seed} failed (rerun it alone to see why)"
        );
    }
}
