#!/usr/bin/env python3
"""Build a synthetic ledgerlake lake (format version 2) and the answers the cookbook must give.

    python3 tests/duckdb/make_lake.py OUT_LAKE_DIR EXPECTED_JSON [--seed N] [--at-version-out FILE]

A small in-Python ledger applies TigerBeetle's balance rules (single-phase, pending, post of the
full or a partial amount, void, expiry by timeout, balancing_debit clamping, the overflow and
debits/credits-must-not-exceed checks) and emits one CDC event per applied transfer event, in
strictly increasing timestamp order. Ledger 700 holds amounts near u128::MAX so that ledger-wide
sums exceed 2^128. The events are cut into segments that never straddle a UTC day; each segment is
written with pyarrow in the lake's exact layout and column types (schemas/lake.md, format 2) and
committed with delta-rs (PyPI `deltalake`) as the exporter does: its accounts file to `accounts`,
then its transfers file to `transfers`, one Delta commit each, with a checkpoint every few commits.
A `swept_accounts` table holds accounts that no event shows. The expected answers are computed from
the simulation's own state (never by SQL) and written in the format that
tests/duckdb/check_cookbook.py documents.

With --at-version-out FILE, FILE gets the answers for the lake as it stood at an earlier `transfers`
version (its "version" key), computed from the events committed up to that version only.
"""

import argparse
import copy
import datetime as dt
import json
import os
import random
import shutil
import sys

import decimal
import hashlib
import io
import time

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.transaction import AddAction

U128_MAX = 2**128 - 1
U64 = 2**64
NS = 1_000_000_000

# Transfer flags.
LINKED, PENDING, POST, VOID, BAL_DEBIT, BAL_CREDIT = 1, 2, 4, 8, 16, 32
# Account flags.
DEBITS_MNEC, CREDITS_MNED, HISTORY = 2, 4, 8

SINGLE, EV_PENDING, EV_POSTED, EV_VOIDED, EV_EXPIRED = 0, 1, 2, 3, 4

E38 = 10**38
E18 = 10**18
DEC38, DEC21, DEC20 = pa.decimal128(38, 0), pa.decimal128(21, 0), pa.decimal128(20, 0)


def u128_columns(name):
    """An amount or balance: value mod 10^38 as decimal(38,0), value div 10^38 as a byte."""
    return [(name, DEC38), (f"{name}_e38", pa.int8())]


def id_columns(name):
    """An identifier: value mod 10^18 as INT64, value div 10^18 as decimal(21,0)."""
    return [(name, pa.int64()), (f"{name}_e18", DEC21)]


TRANSFER_COLUMNS = [("timestamp", pa.int64()), ("event_type", pa.int8()), ("ledger", pa.int64())]
TRANSFER_COLUMNS += id_columns("transfer_id") + u128_columns("amount")
TRANSFER_COLUMNS += id_columns("pending_id") + id_columns("user_data_128")
TRANSFER_COLUMNS += [("user_data_64", DEC20), ("user_data_32", pa.int64()), ("timeout", pa.int64()),
                     ("code", pa.int32()), ("flags", pa.int32()), ("transfer_timestamp", pa.int64())]
for _side in ("debit_account_", "credit_account_"):
    TRANSFER_COLUMNS += id_columns(f"{_side}id")
    for _f in ("debits_pending", "debits_posted", "credits_pending", "credits_posted"):
        TRANSFER_COLUMNS += u128_columns(f"{_side}{_f}")
    TRANSFER_COLUMNS.append((f"{_side}flags", pa.int32()))

ACCOUNT_COLUMNS = (id_columns("id") + [("ledger", pa.int64()), ("code", pa.int32()), ("flags", pa.int32())]
                   + id_columns("user_data_128")
                   + [("user_data_64", DEC20), ("user_data_32", pa.int64()), ("timestamp", pa.int64()),
                      ("first_seen_timestamp", pa.int64())])

# The stored (data file) schemas, and the tables' schemas with the `date` partition column.
TRANSFER_SCHEMA = pa.schema([pa.field(n, t, nullable=False) for n, t in TRANSFER_COLUMNS])
ACCOUNT_SCHEMA = pa.schema([pa.field(n, t, nullable=False) for n, t in ACCOUNT_COLUMNS])
DATE_FIELD = pa.field("date", pa.date32(), nullable=False)
CHECKPOINT_EVERY = 7  # commits per table between checkpoints (the exporter uses 100)


def split(v):
    """A u128 as its two stored columns: (value mod 10^38 as a Decimal, value div 10^38)."""
    assert 0 <= v <= U128_MAX
    return decimal.Decimal(v % E38), v // E38


def split_id(v):
    """A u128 identifier as its two stored columns: (value mod 10^18, value div 10^18 as a Decimal)."""
    assert 0 <= v <= U128_MAX
    return v % E18, decimal.Decimal(v // E18)


class Account:
    def __init__(self, id, ledger, code, flags, created, ud128=0, ud64=0, ud32=0):
        self.id, self.ledger, self.code, self.flags, self.created = id, ledger, code, flags, created
        self.ud128, self.ud64, self.ud32 = ud128, ud64, ud32
        self.dp = self.dpo = self.cp = self.cpo = 0  # debits_pending/posted, credits_pending/posted

    def balances(self):
        return (self.dp, self.dpo, self.cp, self.cpo)


class Ledger:
    """TigerBeetle's balance rules, for the events that reach the CDC stream."""

    def __init__(self, rng, start_ns):
        self.rng = rng
        self.now = start_ns
        self.accounts = {}
        self.pending = {}  # id -> pending transfer dict, while it holds a pending balance
        self.transfer_ids = set()
        self.events = []
        self.next_id = 1000

    def new_id(self):
        self.next_id += self.rng.randrange(1, 1000)
        # Spread ids over the whole u128 range: some small, some with a high half.
        return self.next_id if self.rng.random() < 0.5 else (self.next_id << 64) | self.rng.getrandbits(64)

    def account(self, ledger, code, flags=0, id=None, **ud):
        a = Account(id or self.new_id(), ledger, code, flags, created=self.now - 10**12 + len(self.accounts), **ud)
        self.accounts[a.id] = a
        return a

    # Time: every new transfer is committed after the previous event; pending transfers whose
    # timeout elapsed in between are expired first, by a "pulse" shortly after their expiry.
    def advance(self, ns):
        target = self.now + ns
        while True:
            due = sorted((p["timestamp"] + p["timeout"] * NS, p["timestamp"], p["id"])
                         for p in self.pending.values() if p["timeout"])
            if not due or due[0][0] > target:
                break
            expires_at, _, pid = due[0]
            # The pulse runs at or after the expiry time (TigerBeetle gives no exact guarantee).
            ts = max(expires_at + self.rng.choice([0, 0, 1, 250_000_000]), self.now + 1)
            self._expire(pid, ts)
        self.now = max(self.now, target)

    def _emit(self, t, event_type, ts, amount, pending_id=0):
        dr, cr = self.accounts[t["debit"]], self.accounts[t["credit"]]
        self.events.append(dict(
            timestamp=ts, event_type=event_type, ledger=t["ledger"], transfer_id=t["id"], amount=amount,
            pending_id=pending_id, ud128=t["ud128"], ud64=t["ud64"], ud32=t["ud32"], timeout=t["timeout"],
            code=t["code"], flags=t["flags"], transfer_timestamp=t["timestamp"],
            debit=dr.id, debit_balances=dr.balances(), debit_flags=dr.flags,
            credit=cr.id, credit_balances=cr.balances(), credit_flags=cr.flags))
        assert self.events[-1]["timestamp"] > (self.events[-2]["timestamp"] if len(self.events) > 1 else 0)

    def _check(self, dr, cr):
        for a in (dr, cr):
            assert a.dp + a.dpo <= U128_MAX and a.cp + a.cpo <= U128_MAX
        if dr.flags & DEBITS_MNEC:
            assert dr.dp + dr.dpo <= dr.cpo
        if cr.flags & CREDITS_MNED:
            assert cr.cp + cr.cpo <= cr.dpo

    def _ok(self, dr, cr, dp=0, dpo=0, cp=0, cpo=0):
        """Would these increments be accepted (no overflow, no limit exceeded)?"""
        if dr.dp + dr.dpo + dp + dpo > U128_MAX or cr.cp + cr.cpo + cp + cpo > U128_MAX:
            return False
        if dr.flags & DEBITS_MNEC and dr.dp + dr.dpo + dp + dpo > dr.cpo:
            return False
        if cr.flags & CREDITS_MNED and cr.cp + cr.cpo + cp + cpo > cr.dpo:
            return False
        return True

    def transfer(self, dr, cr, amount, code=1, flags=0, timeout=0, ud128=0, ud64=0, ud32=0, gap=None):
        """A new single-phase or pending transfer; returns its id, or None if TigerBeetle would refuse it."""
        assert dr.ledger == cr.ledger and dr.id != cr.id
        self.advance(gap if gap is not None else self.rng.randrange(1, 1800 * NS))
        if flags & BAL_DEBIT:
            room = dr.cpo - dr.dp - dr.dpo if dr.flags & DEBITS_MNEC else U128_MAX - dr.dp - dr.dpo
            amount = min(amount, room)
        if amount <= 0:
            return None
        pending = bool(flags & PENDING)
        if not (self._ok(dr, cr, dp=amount, cp=amount) if pending else self._ok(dr, cr, dpo=amount, cpo=amount)):
            return None
        self.now += 1
        t = dict(id=self.new_id(), debit=dr.id, credit=cr.id, ledger=dr.ledger, amount=amount, code=code,
                 flags=flags, timeout=timeout if pending else 0, ud128=ud128, ud64=ud64, ud32=ud32,
                 timestamp=self.now)
        if pending:
            dr.dp += amount
            cr.cp += amount
            self.pending[t["id"]] = t
        else:
            dr.dpo += amount
            cr.cpo += amount
        self._check(dr, cr)
        self._emit(t, EV_PENDING if pending else SINGLE, self.now, amount)
        return t["id"]

    def post(self, pid, amount=None, gap=None, ud128=None):
        """Post a pending transfer (amount None: the full pending amount). False if no longer pending."""
        self.advance(gap if gap is not None else self.rng.randrange(1, 1800 * NS))
        p = self.pending.get(pid)
        if p is None:
            return False
        amount = p["amount"] if amount is None else amount
        assert 0 < amount <= p["amount"]
        dr, cr = self.accounts[p["debit"]], self.accounts[p["credit"]]
        self.now += 1
        dr.dp -= p["amount"]
        cr.cp -= p["amount"]
        dr.dpo += amount
        cr.cpo += amount
        self._check(dr, cr)
        del self.pending[pid]
        t = dict(p, id=self.new_id(), amount=amount, flags=POST, timeout=0, timestamp=self.now,
                 ud128=p["ud128"] if ud128 is None else ud128)
        self._emit(t, EV_POSTED, self.now, amount, pending_id=pid)
        return True

    def void(self, pid, gap=None):
        self.advance(gap if gap is not None else self.rng.randrange(1, 1800 * NS))
        p = self.pending.get(pid)
        if p is None:
            return False
        dr, cr = self.accounts[p["debit"]], self.accounts[p["credit"]]
        self.now += 1
        dr.dp -= p["amount"]
        cr.cp -= p["amount"]
        del self.pending[pid]
        t = dict(p, id=self.new_id(), flags=VOID, timeout=0, timestamp=self.now)
        self._emit(t, EV_VOIDED, self.now, p["amount"], pending_id=pid)
        return True

    def _expire(self, pid, ts):
        p = self.pending.pop(pid)
        dr, cr = self.accounts[p["debit"]], self.accounts[p["credit"]]
        dr.dp -= p["amount"]
        cr.cp -= p["amount"]
        self.now = ts
        # An expiry event carries the original pending transfer's fields.
        self._emit(p, EV_EXPIRED, ts, p["amount"])


def simulate(seed):
    rng = random.Random(seed)
    start = int(dt.datetime(2024, 2, 28, 6, 0, tzinfo=dt.timezone.utc).timestamp()) * NS
    L = Ledger(rng, start)
    # Ledger 1: an ordinary book. Ledger 2: a second currency. Ledger 700: near-u128 amounts.
    bank = L.account(1, 10, flags=HISTORY, ud64=1)
    ops = L.account(1, 10, flags=HISTORY, ud64=2)
    customers = [L.account(1, 20, flags=DEBITS_MNEC if i % 2 else 0, ud32=i) for i in range(6)]
    merchant = L.account(1, 30, ud128=0xABCDEF)
    eur = [L.account(2, 10) for _ in range(3)]
    big = [L.account(700, 1, id=U128_MAX - 1 - i) for i in range(4)]
    big.append(L.account(700, 1, id=(0xFFFF << 64)))  # lo half zero
    big.append(L.account(700, 1, id=1))

    invoice = (7 << 100) | 12345  # a user_data_128 shared by several transfers
    # Fund customers (bank -> customer credits).
    for c in customers:
        L.transfer(bank, c, rng.randrange(10_000, 1_000_000), code=1, ud128=invoice if c is customers[0] else 0)
    # Near-u128 ledger: balances and totals beyond 2^128.
    L.transfer(big[0], big[1], U128_MAX - 10, code=7)
    L.transfer(big[2], big[3], U128_MAX, code=7)                       # the largest possible amount
    p_big = L.transfer(big[0], big[2], 5, code=8, flags=PENDING, timeout=0)
    L.post(p_big, 3)                                                  # partial post near the limit
    L.transfer(big[1], big[0], U128_MAX - 1, code=7)
    p_big2 = L.transfer(big[4], big[5], U128_MAX - 2**100, code=8, flags=PENDING, timeout=3600)  # will expire
    L.transfer(big[5], big[4], 2**127 + 3, code=7)

    open_pendings = []
    for step in range(300):
        r = rng.random()
        if r < 0.35:
            a, b = rng.sample(customers + [merchant, ops], 2)
            L.transfer(a, b, rng.randrange(1, 50_000), code=rng.choice([1, 2, 3]),
                       flags=LINKED if rng.random() < 0.1 else 0,
                       ud128=invoice if rng.random() < 0.1 else rng.randrange(0, 2**128),
                       ud64=rng.randrange(0, 2**64), ud32=rng.randrange(0, 2**32))
        elif r < 0.55:
            a, b = rng.sample(customers + [merchant], 2)
            pid = L.transfer(a, b, rng.randrange(1, 30_000), code=4, flags=PENDING,
                             timeout=rng.choice([0, 0, 60, 1800, 7200]), ud128=invoice if rng.random() < 0.2 else 0)
            if pid:
                open_pendings.append(pid)
        elif r < 0.75 and open_pendings:
            pid = open_pendings.pop(rng.randrange(len(open_pendings)))
            if pid in L.pending:
                full = L.pending[pid]["amount"]
                choice = rng.random()
                if choice < 0.4:
                    L.post(pid)
                elif choice < 0.7 and full > 1:
                    L.post(pid, rng.randrange(1, full))
                else:
                    L.void(pid)
        elif r < 0.85:
            a, b = rng.sample(eur, 2)
            L.transfer(a, b, rng.randrange(1, 10**9), code=5)
        elif r < 0.9:
            c = rng.choice([x for x in customers if x.flags & DEBITS_MNEC])
            L.transfer(c, merchant, 10**12, code=6, flags=BAL_DEBIT)  # clamped to what c can pay
        else:
            L.transfer(ops, bank, rng.randrange(1, 10**6), code=9)
    L.advance(4 * 3600 * NS)  # let due expiries happen
    # Accounts that no transfer touches: only the exporter's account sweep records them.
    L.account(1, 40, ud64=3)
    L.account(2, 40, flags=HISTORY)
    return L


# ----------------------------------------------------------------------------------------------
# Writing the lake.

def event_row(e):
    row = [e["timestamp"], e["event_type"], e["ledger"], *split_id(e["transfer_id"]), *split(e["amount"]),
           *split_id(e["pending_id"]), *split_id(e["ud128"]), decimal.Decimal(e["ud64"]), e["ud32"], e["timeout"],
           e["code"], e["flags"], e["transfer_timestamp"]]
    for side in ("debit", "credit"):
        row += [*split_id(e[side])]
        for v in e[f"{side}_balances"]:
            row += [*split(v)]
        row.append(e[f"{side}_flags"])
    assert len(row) == len(TRANSFER_COLUMNS)
    return row


def account_row(a, flags, first_seen):
    return [*split_id(a.id), a.ledger, a.code, flags, *split_id(a.ud128), decimal.Decimal(a.ud64), a.ud32, a.created,
            first_seen]


def day_of(ns):
    return dt.datetime.fromtimestamp(ns // NS, dt.timezone.utc).date()


def segments(events, rng):
    """Cut the event stream into segments that never straddle a UTC day."""
    out, cur = [], []
    for e in events:
        if cur and (day_of(e["timestamp"]) != day_of(cur[0]["timestamp"]) or len(cur) >= cur_max):
            out.append(cur)
            cur = []
        if not cur:
            cur_max = rng.randrange(1, 16)
        cur.append(e)
    if cur:
        out.append(cur)
    return out


class DeltaTableWriter:
    """One lake table: data files named `<first_ts>-<last_ts>-<digest16>.parquet`, one commit each."""

    def __init__(self, lake, name, schema, partitioned):
        self.root = os.path.join(lake, name)
        self.name, self.schema, self.partitioned = name, schema, partitioned
        table_schema = pa.schema(list(schema) + [DATE_FIELD]) if partitioned else schema
        self.table = DeltaTable.create(
            self.root, table_schema, partition_by=["date"] if partitioned else None,
            configuration={"ledgerlake.formatVersion": "2", "ledgerlake.table": name},
            raise_if_key_not_exists=False)
        self.commits = 0

    def commit(self, rows, first, last, sort_key):
        columns = list(zip(*sorted(rows, key=sort_key)))
        batch = pa.table([pa.array(c, type=f.type) for c, f in zip(columns, self.schema)], schema=self.schema)
        buf = io.BytesIO()
        pq.write_table(batch, buf)
        data = buf.getvalue()
        name = f"{first:020d}-{last:020d}-{hashlib.sha256(data).hexdigest()[:16]}.parquet"
        day = day_of(first).isoformat()
        rel = f"date={day}/{name}" if self.partitioned else name
        os.makedirs(os.path.dirname(os.path.join(self.root, rel)), exist_ok=True)
        with open(os.path.join(self.root, rel), "wb") as f:
            f.write(data)
        stats = json.dumps({"numRecords": len(rows)})
        add = AddAction(rel, len(data), {"date": day} if self.partitioned else {}, int(time.time() * 1000),
                        True, stats)
        self.table.create_write_transaction(
            [add], "append", pa.schema(list(self.schema) + [DATE_FIELD]) if self.partitioned else self.schema,
            partition_by=["date"] if self.partitioned else None)
        self.table.update_incremental()
        self.commits += 1
        if self.commits % CHECKPOINT_EVERY == 0:
            self.table.create_checkpoint()
        # Distinct commit times (ms), as a real exporter's commits have.
        time.sleep(0.003)
        return self.table.version()


def write_lake(L, lake, rng):
    """Writes the lake; returns its transfers files as (day, name, events, transfers version, events so far)."""
    if os.path.exists(lake):
        shutil.rmtree(lake)
    os.makedirs(os.path.join(lake, "quarantine"))
    with open(os.path.join(lake, "_ledgerlake.json"), "w") as f:
        json.dump({"format_version": 2, "cluster_id": str((1 << 100) + 42)}, f)
    with open(os.path.join(lake, "quarantine", "00000000000000000001.json"), "w") as f:
        json.dump({"reason": "synthetic undecodable message", "body": "not json"}, f)
    accounts = DeltaTableWriter(lake, "accounts", ACCOUNT_SCHEMA, partitioned=True)
    transfers = DeltaTableWriter(lake, "transfers", TRANSFER_SCHEMA, partitioned=True)
    swept = DeltaTableWriter(lake, "swept_accounts", ACCOUNT_SCHEMA, partitioned=False)
    # The sweep: accounts that no event shows (two of them), recorded before the stream starts.
    idle = [a for a in L.accounts.values() if a.id not in {e[s] for e in L.events for s in ("debit", "credit")}]
    assert len(idle) >= 2, "the simulation has idle accounts for the sweep"
    idle.sort(key=lambda a: a.created)
    swept.commit([account_row(a, a.flags, a.created) for a in idle], idle[0].created, idle[-1].created,
                 sort_key=lambda r: r[-2])
    seen = set()
    files = []
    done = 0
    for seg in segments(L.events, rng):
        first, last = seg[0]["timestamp"], seg[-1]["timestamp"]
        new_accounts = []
        for e in seg:
            for side in ("debit", "credit"):
                if e[side] not in seen:
                    seen.add(e[side])
                    new_accounts.append(account_row(L.accounts[e[side]], e[f"{side}_flags"], e["timestamp"]))
        if new_accounts:  # a segment that sees no new account has no accounts file
            accounts.commit(new_accounts, first, last, sort_key=lambda r: (r[-1], r[0], r[1]))
        version = transfers.commit([event_row(e) for e in seg], first, last, sort_key=lambda r: r[0])
        done += len(seg)
        files.append((day_of(first).isoformat(), f"{first:020d}-{last:020d}", len(seg), version, done))
    return files


# ----------------------------------------------------------------------------------------------
# Expected answers, from the simulation alone.

def balances_at(L, ts):
    """account id -> balances after its last event at or before ts (accounts with an event only)."""
    out = {}
    for e in L.events:
        if e["timestamp"] > ts:
            break
        out[e["debit"]] = e["debit_balances"]
        out[e["credit"]] = e["credit_balances"]
    return out


def bal_row(b):
    return {"debits_pending": b[0], "debits_posted": b[1], "credits_pending": b[2], "credits_posted": b[3]}


def expected(L, files, partial=False):
    """The answers for the lake made of `files` and L.events. partial: the events are those of an
    earlier version of the lake, for which the checks of the simulation's coverage do not apply."""
    ev = L.events
    t0, tn = ev[0]["timestamp"], ev[-1]["timestamp"]
    mid = ev[len(ev) // 2]["timestamp"]
    days = sorted({f[0] for f in files})
    cases = []
    accounts_of_interest = sorted({ev[3]["debit"], ev[len(ev) // 2]["credit"], ev[-1]["debit"]}
                                  | {a.id for a in L.accounts.values() if a.ledger == 700})
    customers = [a for a in L.accounts.values() if a.code == 20]
    accounts_of_interest += [customers[0].id]

    # 1. Balance of an account as of a time: at every 3rd event, at the event's exact ts and 1 ns before.
    for acct in accounts_of_interest:
        for ts in (t0 - 1, mid, mid - 1, tn, ev[len(ev) // 3]["timestamp"]):
            b = balances_at(L, ts).get(acct)
            cases.append({"name": f"balance {acct} @{ts}", "query": "account_balance_as_of",
                          "params": {"account": str(acct), "as_of": ts},
                          "rows": [] if b is None else [dict(account_id=acct, **bal_row(b))]})

    # 2. Statement between two times, inclusive.
    for acct in accounts_of_interest[:4] + [customers[0].id]:
        for lo, hi in ((t0, tn), (mid, tn), (ev[10]["timestamp"], mid)):
            rows = []
            for e in ev:
                if lo <= e["timestamp"] <= hi:
                    for side, other in (("debit", "credit"), ("credit", "debit")):
                        if e[side] == acct:
                            rows.append(dict(timestamp=e["timestamp"], event_type=e["event_type"],
                                             transfer_id=e["transfer_id"], side=side, counterparty_id=e[other],
                                             amount=e["amount"], **bal_row(e[f"{side}_balances"])))
            cases.append({"name": f"statement {acct} {lo}..{hi}", "query": "account_statement",
                          "params": {"account": str(acct), "from_ns": lo, "to_ns": hi},
                          "ordered": True, "rows": rows})

    # 3. Trial balance per ledger.
    for ts in (mid, tn, ev[len(ev) // 4]["timestamp"]):
        bals = balances_at(L, ts)
        per = {}
        for acct, b in bals.items():
            s = per.setdefault(L.accounts[acct].ledger, [0, 0, 0, 0, 0])
            s[0] += 1
            for i in range(4):
                s[i + 1] += b[i]
        rows = [dict(ledger=led, accounts=s[0], debits_pending=s[1], debits_posted=s[2],
                     credits_pending=s[3], credits_posted=s[4], balanced=(s[1] == s[3] and s[2] == s[4]))
                for led, s in sorted(per.items())]
        assert all(r["balanced"] for r in rows)
        cases.append({"name": f"trial balance @{ts}", "query": "trial_balance",
                      "params": {"as_of": ts}, "ordered": True, "rows": rows})

    # 4. Daily volume by ledger and code.
    vol = {}
    for e in ev:
        k = (day_of(e["timestamp"]).isoformat(), e["ledger"], e["code"])
        v = vol.setdefault(k, dict(events=0, posted_count=0, posted_amount=0, pending_amount=0,
                                   voided_amount=0, expired_amount=0))
        v["events"] += 1
        if e["event_type"] in (SINGLE, EV_POSTED):
            v["posted_count"] += 1
            v["posted_amount"] += e["amount"]
        field = {EV_PENDING: "pending_amount", EV_VOIDED: "voided_amount", EV_EXPIRED: "expired_amount"}
        if e["event_type"] in field:
            v[field[e["event_type"]]] += e["amount"]
    for lo, hi in ((days[0], days[-1]), (days[1], days[1])):
        rows = [dict(date=d, ledger=led, code=c, **v) for (d, led, c), v in sorted(vol.items()) if lo <= d <= hi]
        cases.append({"name": f"daily volume {lo}..{hi}", "query": "daily_volume",
                      "params": {"day_from": lo, "day_to": hi}, "ordered": True, "rows": rows})

    # 5. Pending transfers open (holding a pending balance) at a time.
    # Also at the expiry time of transfers that the cluster expired later: open, but past expiry.
    late = [e["transfer_timestamp"] + e["timeout"] * NS for e in ev
            if e["event_type"] == EV_EXPIRED and e["timestamp"] > e["transfer_timestamp"] + e["timeout"] * NS]
    assert late or partial, "the simulation should expire some transfers after their expiry time"
    for ts in [ev[i]["timestamp"] for i in range(0, len(ev), max(1, len(ev) // 12))] + [tn] + late[:3]:
        open_ = {}
        for e in ev:
            if e["timestamp"] > ts:
                break
            if e["event_type"] == EV_PENDING:
                open_[e["transfer_id"]] = e
            elif e["event_type"] in (EV_POSTED, EV_VOIDED):
                del open_[e["pending_id"]]
            elif e["event_type"] == EV_EXPIRED:
                del open_[e["transfer_id"]]
        rows = []
        for tid, e in sorted(open_.items(), key=lambda kv: kv[1]["timestamp"]):
            exp = e["timestamp"] + e["timeout"] * NS if e["timeout"] else None
            rows.append(dict(transfer_id=tid, debit_account_id=e["debit"], credit_account_id=e["credit"],
                             amount=e["amount"], created=e["timestamp"], expires_at=exp,
                             past_expiry=None if exp is None else exp <= ts))
        # Consistency of the simulation: open pendings add up to the pending balances.
        bals = balances_at(L, ts)
        for acct, b in bals.items():
            assert b[0] == sum(r["amount"] for r in rows if r["debit_account_id"] == acct)
            assert b[2] == sum(r["amount"] for r in rows if r["credit_account_id"] == acct)
        cases.append({"name": f"pending open @{ts}", "query": "pending_open_at", "params": {"as_of": ts},
                      "ordered": True, "rows": rows})

    # 6. Expired pending transfers.
    rows = [dict(transfer_id=e["transfer_id"], ledger=e["ledger"], debit_account_id=e["debit"],
                 credit_account_id=e["credit"], amount=e["amount"], created=e["transfer_timestamp"],
                 timeout=e["timeout"], expires_at=e["transfer_timestamp"] + e["timeout"] * NS,
                 expired_at=e["timestamp"])
            for e in ev if e["event_type"] == EV_EXPIRED]
    assert len(rows) >= 3 or partial, "the simulation should expire a few pending transfers"
    cases.append({"name": "expired pending", "query": "expired_pending", "params": {}, "ordered": True, "rows": rows})

    # 7. Largest counterparties of an account (posted money, both directions).
    for acct in accounts_of_interest:
        cp = {}
        for e in ev:
            if e["event_type"] not in (SINGLE, EV_POSTED):
                continue
            for side, other in (("debit", "credit"), ("credit", "debit")):
                if e[side] == acct:
                    c = cp.setdefault(e[other], dict(transfers=0, paid=0, received=0))
                    c["transfers"] += 1
                    c["paid" if side == "debit" else "received"] += e["amount"]
        ranked = sorted(cp.items(), key=lambda kv: (-(kv[1]["paid"] + kv[1]["received"]), kv[0]))[:3]
        rows = [dict(counterparty_id=k, transfers=v["transfers"], paid=v["paid"], received=v["received"],
                     total=v["paid"] + v["received"], net=v["received"] - v["paid"]) for k, v in ranked]
        cases.append({"name": f"top counterparties {acct}", "query": "top_counterparties",
                      "params": {"account": str(acct), "n": 3}, "ordered": True, "rows": rows})

    # 8. Transfers by user_data_128.
    inv = (7 << 100) | 12345
    for ud in (inv, 0xABCDEF, ev[-1]["ud128"]):
        rows = [dict(timestamp=e["timestamp"], event_type=e["event_type"], transfer_id=e["transfer_id"],
                     amount=e["amount"], user_data_128=e["ud128"]) for e in ev if e["ud128"] == ud]
        cases.append({"name": f"user_data_128 {ud}", "query": "transfers_by_user_data",
                      "params": {"user_data_128": str(ud)}, "ordered": True, "rows": rows})

    # 9. Exact sums near the u128 limit: posted volume per ledger.
    per = {}
    for e in ev:
        if e["event_type"] in (SINGLE, EV_POSTED):
            s = per.setdefault(e["ledger"], [0, 0, 0])
            s[0] += 1
            s[1] += e["amount"]
            s[2] = max(s[2], e["amount"])
    rows = [dict(ledger=led, posted_transfers=s[0], posted_volume=s[1], largest_amount=s[2],
                 fits_u128=s[1] <= U128_MAX) for led, s in sorted(per.items())]
    assert not rows[-1]["fits_u128"], "ledger 700's volume must exceed u128"
    cases.append({"name": "posted volume per ledger", "query": "posted_volume_per_ledger", "params": {},
                  "ordered": True, "rows": rows})

    # 10. Every account's balance chain adds up (no event missing).
    cases.append({"name": "balance chains", "query": "balance_chain_breaks", "params": {}, "rows": []})

    # Partition pruning: a one-day query reads only that day's transfers files.
    day = days[1]
    pruning = {"day": day, "files": sum(1 for f in files if f[0] == day),
               "events": sum(f[2] for f in files if f[0] == day), "all_files": len(files)}
    return {"format": 1, "cases": cases, "pruning": pruning}


def jsonable(x):
    """u128 and larger integers travel as decimal strings; small ones too, for uniformity."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int):
        return str(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [jsonable(v) for v in x]
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lake")
    ap.add_argument("expected")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--at-version-out", help="also write the answers at an earlier transfers version here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    L = simulate(args.seed)
    files = write_lake(L, args.lake, rng)
    outputs = [(args.expected, expected(L, files))]
    if args.at_version_out:
        # About two thirds into the stream, a version that is not a checkpoint's (so that the
        # views replay a checkpoint and the commits after it).
        cut = next(f for f in files[len(files) * 2 // 3:] if f[3] % CHECKPOINT_EVERY not in (0, 6))
        at = files[:files.index(cut) + 1]
        early = copy.copy(L)
        early.events = L.events[:cut[4]]
        exp = expected(early, at, partial=True)
        exp["version"] = cut[3]
        outputs.append((args.at_version_out, exp))
    for path, exp in outputs:
        for c in exp["cases"]:
            c["rows"] = jsonable(c["rows"])
        with open(path, "w") as f:
            json.dump(exp, f, indent=1)
        print(f"{len(exp['cases'])} expected answers -> {path}", file=sys.stderr)
    print(f"{len(L.events)} events in {len(files)} segments over {len({f[0] for f in files})} days, "
          f"{len(L.accounts)} accounts", file=sys.stderr)


if __name__ == "__main__":
    main()
