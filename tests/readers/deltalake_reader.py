#!/usr/bin/env python3
"""delta-rs (PyPI `deltalake`) as an auditor would use it on a ledgerlake lake: one account's
statement and the trial balance as of a moment, from the `transfers` Delta table's current
snapshot, with exact arithmetic in Python ints. Usage and output: see statement.py."""

import sys

import deltalake
from deltalake import DeltaTable

from statement import BALANCES, SIDES, join, join_id, parse_args, print_report, statement_line


def main():
    args = parse_args(sys.argv)
    table = DeltaTable(f"{args.lake}/transfers")
    at_max = max(q.at for q in args.queries)
    # The snapshot's active files only (the log decides), pruned by the timestamp statistics.
    events = table.to_pyarrow_table(filters=[("timestamp", "<=", at_max)]).to_pylist()
    events.sort(key=lambda e: e["timestamp"])
    engine = f"delta-rs {deltalake.__version__}"
    for query in args.queries:
        statement, trial_balance = answer(events, query)
        print_report(engine, query, statement, trial_balance)


def answer(events, query):
    """The statement and trial balance of `query` from `events` (sorted by timestamp)."""
    statement = []
    latest = {}  # account id -> (ledger, balances) of its newest event so far
    for e in events:
        if e["timestamp"] > query.at:
            break
        for number, side in enumerate(SIDES):
            account = join_id(e[f"{side}_account_id"], e[f"{side}_account_id_e18"])
            balances = {
                b: join(e[f"{side}_account_{b}"], e[f"{side}_account_{b}_e38"]) for b in BALANCES
            }
            latest[account] = (e["ledger"], balances)
            if account == query.account:
                row = dict(e, side=number)
                for b in BALANCES:
                    row[b] = e[f"{side}_account_{b}"]
                    row[b + "_e38"] = e[f"{side}_account_{b}_e38"]
                statement.append(statement_line(row))

    ledgers = {}
    for ledger, balances in latest.values():
        line = ledgers.setdefault(
            ledger, {"ledger": ledger, "accounts": 0, **{b: 0 for b in BALANCES}}
        )
        line["accounts"] += 1
        for b in BALANCES:
            line[b] += balances[b]
    trial_balance = [
        {**line, **{b: str(line[b]) for b in BALANCES}} for line in ledgers.values()
    ]
    return statement, trial_balance


if __name__ == "__main__":
    main()
