"""What every reader in this folder computes and prints, shared so that they differ only in the
engine: one account's statement and the trial balance of a ledgerlake lake as of a moment.

A reader is run as `<reader>.py LAKE ACCOUNT_ID AT_NS [ACCOUNT_ID AT_NS ...]`: LAKE is the lake
root (a directory), each account id a decimal u128, each AT_NS a TigerBeetle timestamp
(inclusive: an event at exactly AT_NS counts). For each pair, in order, it prints one line, a JSON
object (several pairs share one engine session):

    {"engine": "...", "account": "<u128>", "at": "<ns>",
     "statement": [{"timestamp": "<ns>", "event_type": "single_phase", "transfer_id": "<u128>",
                    "ledger": 1, "side": "debit"|"credit", "amount": "<u128>",
                    "debits_pending": "<u128>", "debits_posted": "<u128>",
                    "credits_pending": "<u128>", "credits_posted": "<u128>"}, ...],
     "trial_balance": [{"ledger": 1, "accounts": 3, "debits_pending": "<n>", "debits_posted": "<n>",
                        "credits_pending": "<n>", "credits_posted": "<n>"}, ...]}

The statement is every event of `transfers` at or before AT_NS in which the account is the debit
or the credit side, in timestamp order, with the account's balances after the event (events carry
them). The trial balance sums, per ledger, each account's balances as its latest event at or
before AT_NS carries them (as `ledgerlake balances --at AT_NS` reports them); the sums can exceed
2^128 and are exact decimal strings. Every u128 amount or balance is stored as `<name>`
decimal(38,0) (value mod 10^38) and `<name>_e38` byte (value div 10^38), every u128 identifier as
`<name>` INT64 (value mod 10^18) and `<name>_e18` decimal(21,0) (value div 10^18)
(schemas/lake.md), and joined here in Python ints.
"""

import json
import sys

E38 = 10**38
E18 = 10**18
U128_MAX = 2**128 - 1
EVENT_TYPES = [
    "single_phase",
    "two_phase_pending",
    "two_phase_posted",
    "two_phase_voided",
    "two_phase_expired",
]
BALANCES = ["debits_pending", "debits_posted", "credits_pending", "credits_posted"]
SIDES = ["debit", "credit"]
# The decimal(38,0) part is cut into two decimal(19,0) halves for the exact sums (see
# `trial_balance_sql`).
HALF_DIGITS = 19


class Query:
    """One statement and trial balance to compute: an account as of a moment."""

    def __init__(self, account, at):
        self.account = account
        self.at = at


class Args:
    def __init__(self, lake, queries):
        self.lake = lake
        self.queries = queries


USAGE = "LAKE ACCOUNT_ID AT_NS [ACCOUNT_ID AT_NS ...]"


def parse_args(argv):
    """LAKE and one or more (ACCOUNT_ID, AT_NS) pairs, checked; exits with a usage line on bad
    input. Several pairs share one engine session and print one JSON line each, in order."""
    if len(argv) < 4 or len(argv) % 2 != 0:
        sys.exit(f"usage: {argv[0]} {USAGE}")
    queries = []
    for account_arg, at_arg in zip(argv[2::2], argv[3::2]):
        try:
            account = int(account_arg)
            at = int(at_arg)
        except ValueError:
            sys.exit(f"usage: {argv[0]} {USAGE} (decimal integers)")
        if not 0 <= account <= U128_MAX:
            sys.exit(f"account id {account_arg} is not a u128")
        if not 0 <= at < 2**63:
            sys.exit(f"timestamp {at_arg} is not a TigerBeetle timestamp (0..2^63)")
        queries.append(Query(account, at))
    return Args(argv[1].rstrip("/"), queries)


def split(value):
    """A u128 as stored: (value mod 10^38, value div 10^38)."""
    assert 0 <= value <= U128_MAX, value
    return value % E38, value // E38


def join(low, e38):
    """A u128 from its stored parts (`low` an int or a decimal.Decimal with scale 0)."""
    low = int(low)
    e38 = int(e38)
    assert 0 <= low < E38 and 0 <= e38 <= 3, (low, e38)
    value = e38 * E38 + low
    assert value <= U128_MAX, value
    return value


def split_id(value):
    """A u128 identifier as stored: (value mod 10^18, value div 10^18)."""
    assert 0 <= value <= U128_MAX, value
    return value % E18, value // E18


def join_id(low, e18):
    """A u128 identifier from its stored parts (ints, or decimal.Decimal with scale 0)."""
    low = int(low)
    e18 = int(e18)
    assert 0 <= low < E18 and 0 <= e18, (low, e18)
    value = e18 * E18 + low
    assert value <= U128_MAX, value
    return value


def statement_line(row):
    """One statement line from a row holding `timestamp`, `event_type`, `ledger`, `side`
    (0 debit, 1 credit) and the u128 parts of `transfer_id`, `amount` and the four balances."""
    line = {
        "timestamp": str(int(row["timestamp"])),
        "event_type": EVENT_TYPES[int(row["event_type"])],
        "transfer_id": str(join_id(row["transfer_id"], row["transfer_id_e18"])),
        "ledger": int(row["ledger"]),
        "side": SIDES[int(row["side"])],
        "amount": str(join(row["amount"], row["amount_e38"])),
    }
    for b in BALANCES:
        line[b] = str(join(row[b], row[b + "_e38"]))
    return line


def print_report(engine, query, statement, trial_balance):
    """Prints one query's answer as one JSON line."""
    statement = sorted(statement, key=lambda line: int(line["timestamp"]))
    trial_balance = sorted(trial_balance, key=lambda line: line["ledger"])
    report = {
        "engine": engine,
        "account": str(query.account),
        "at": str(query.at),
        "statement": statement,
        "trial_balance": trial_balance,
    }
    json.dump(report, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    sys.stdout.flush()


# --- Spark SQL, shared by the JVM Spark and the Sail reader --------------------------------------


def _side_columns(side):
    """The columns of one side of an event, renamed to the side-neutral names."""
    cols = [f"{side}_account_id AS id", f"{side}_account_id_e18 AS id_e18"]
    for b in BALANCES:
        cols.append(f"{side}_account_{b} AS {b}")
        cols.append(f"{side}_account_{b}_e38 AS {b}_e38")
    return cols


def statement_sql(table, query):
    """The account's events at or before `at`, one row per event, with its side's balances."""
    low, e18 = split_id(query.account)
    parts = []
    for number, side in enumerate(SIDES):
        cols = [
            "timestamp",
            "CAST(event_type AS INT) AS event_type",
            "ledger",
            f"{number} AS side",
            "transfer_id",
            "transfer_id_e18",
            "amount",
            "CAST(amount_e38 AS INT) AS amount_e38",
        ]
        for b in BALANCES:
            cols.append(f"{side}_account_{b} AS {b}")
            cols.append(f"CAST({side}_account_{b}_e38 AS INT) AS {b}_e38")
        parts.append(
            f"SELECT {', '.join(cols)} FROM {table} WHERE timestamp <= {query.at} "
            f"AND {side}_account_id = {low} "
            f"AND {side}_account_id_e18 = CAST('{e18}' AS DECIMAL(21,0))"
        )
    return " UNION ALL ".join(parts) + " ORDER BY timestamp"


def trial_balance_sql(table, at):
    """Per ledger, the sums of each account's latest balances at or before `at`, computed in
    Spark SQL two ways:

    - `<b>_plain`: `try_sum(<b>)` over the decimal(38,0) column, the common case: exact when no
      value in the sum is at or above 10^38 (`<b>_e38_max` = 0) and the sum stays below 10^38
      (otherwise `try_sum` gives NULL instead of failing);
    - the exact recipe for any u128: `sum(<b>_e38)` counts whole 10^38s, and the decimal(38,0)
      part, written as 38 zero-padded digits, is cut into two decimal(19,0) halves whose sums
      (`<b>_hi`, `<b>_lo`) cannot overflow decimal(38,0) below 10^19 accounts; the total is
      `e38·10^38 + hi·10^19 + lo`, joined in Python ints (`trial_balance_lines`).
    """
    sides = " UNION ALL ".join(
        f"SELECT timestamp, ledger, {', '.join(_side_columns(side))} FROM {table} "
        f"WHERE timestamp <= {at}"
        for side in SIDES
    )
    sums = []
    for b in BALANCES:
        digits = f"lpad(CAST({b} AS STRING), 38, '0')"
        sums += [
            f"try_sum({b}) AS {b}_plain",
            f"max(CAST({b}_e38 AS INT)) AS {b}_e38_max",
            f"sum(CAST({b}_e38 AS BIGINT)) AS {b}_e38",
            f"sum(CAST(substring({digits}, 1, {HALF_DIGITS}) AS DECIMAL(19,0))) AS {b}_hi",
            f"sum(CAST(substring({digits}, {HALF_DIGITS + 1}, {HALF_DIGITS}) AS DECIMAL(19,0))) "
            f"AS {b}_lo",
        ]
    return (
        f"WITH sides AS ({sides}), "
        "latest AS (SELECT *, row_number() OVER "
        "(PARTITION BY id, id_e18 ORDER BY timestamp DESC) AS newest FROM sides) "
        f"SELECT ledger, count(*) AS accounts, {', '.join(sums)} "
        "FROM latest WHERE newest = 1 GROUP BY ledger ORDER BY ledger"
    )


def trial_balance_lines(rows):
    """The trial balance from the rows of `trial_balance_sql` (as dicts). Where the common-case
    decimal(38,0) sum applies it must equal the exact recipe's total; a disagreement is an error
    in the engine or in this recipe, and stops the reader."""
    lines = []
    for row in rows:
        line = {"ledger": int(row["ledger"]), "accounts": int(row["accounts"])}
        for b in BALANCES:
            total = (
                int(row[f"{b}_e38"]) * E38
                + int(row[f"{b}_hi"]) * 10**HALF_DIGITS
                + int(row[f"{b}_lo"])
            )
            plain = row[f"{b}_plain"]
            if int(row[f"{b}_e38_max"]) == 0 and total < E38:
                if plain is None or int(plain) != total:
                    sys.exit(
                        f"ledger {line['ledger']} {b}: decimal(38,0) sum {plain} differs from "
                        f"the exact recipe's {total}"
                    )
            line[b] = str(total)
        lines.append(line)
    return lines
