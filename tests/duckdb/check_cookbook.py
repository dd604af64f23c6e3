#!/usr/bin/env python3
"""Run the auditors' cookbook against a lake with the real DuckDB CLI and compare with expected answers.

    python3 tests/duckdb/check_cookbook.py LAKE EXPECTED_JSON [--duckdb duckdb] [--doc docs/AUDIT.md]
        [--lake-version N] [--delta-extension PATH [--subset]]

LAKE is a directory (or an s3:// prefix, if the CLI has httpfs and credentials). The checker loads
schemas/duckdb/lake.sql exactly as an auditor does:

    duckdb -cmd "SET VARIABLE lake = 'LAKE'" -cmd ".read schemas/duckdb/lake.sql"

With --lake-version N it sets `lake_version` first (the lake as it stood at transfers version N;
the expected answers must be those of that version). With --delta-extension PATH the CLI (give
it one the extension loads into, with --duckdb) loads the delta extension from PATH and reads the
lake through schemas/duckdb/lake_delta.sql (delta_scan) instead; --subset then runs only the
trial balances, the first statement and the posted volume.

then, for each case, sets the case's parameters as DuckDB variables and runs the text of
schemas/duckdb/cookbook/<query>.sql unchanged (the same text docs/AUDIT.md shows: that is checked
too). It exits 0 if every case matches, 1 naming every failing case otherwise, 2 on bad usage.

Expected answers (JSON)
-----------------------
{
  "format": 1,
  "cases": [
    {
      "name":    "free text, printed on failure",
      "query":   "trial_balance",            # stem of a file in schemas/duckdb/cookbook/
      "params":  {"as_of": 1709251200000000000, "account": "340282366920938463463374607431768211454"},
                                             # each becomes `SET VARIABLE <key> = <value>`: a JSON
                                             # number as an integer literal, a string as a VARCHAR
                                             # (ids and user_data_128 are decimal strings; times are
                                             # TigerBeetle ns; days are 'YYYY-MM-DD')
      "ordered": true,                       # optional, default false: compare rows in order
                                             # (otherwise as a multiset)
      "rows":    [ {"ledger": "1", "debits_posted": "340282366920938463463374607431768211455",
                    "balanced": true}, ... ]
    }, ...
  ],
  "pruning": {"day": "2024-02-29", "files": 17}  # optional: a query bounded to that UTC day must
                                                  # read exactly that many transfers files
}

Each expected row names the columns to compare, any subset of the query's columns; the actual rows
must be exactly as many. Values compare after normalising: integers (any width, UHUGEINT and BIGNUM
included) as decimal strings, so "42" and 42 are equal; true/false/null as themselves; anything
else (dates, text) as the text DuckDB prints in its JSON output mode.

Independently of the cases, every column of every cookbook query and of every view is checked not
to be DOUBLE, FLOAT or DECIMAL: money is UHUGEINT or BIGNUM, exact (the stored pair of an id,
`<name>_m18` BIGINT with `<name>_e18` DECIMAL(21,0), holds the one DECIMAL allowed).
"""

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = os.path.join(ROOT, "schemas", "duckdb", "lake.sql")
SCHEMA_DELTA = os.path.join(ROOT, "schemas", "duckdb", "lake_delta.sql")
# How each session loads the views (set by main from the options).
LOAD = {"schema": SCHEMA, "before": []}
COOKBOOK = os.path.join(ROOT, "schemas", "duckdb", "cookbook")
VIEWS = ["events", "accounts", "movements", "expired_pending", "daily_volume", "lake_info",
         "balances_as_of(0)", "balance_of('1', 0)", "statement('1', 0, 0)", "trial_balance(0)",
         "pending_open_at(0)", "top_counterparties('1', 1)", "transfers_by_user_data(ud128 := '1')"]
INEXACT = re.compile(r"\b(DOUBLE|FLOAT|REAL|DECIMAL)\b", re.I)
# The one DECIMAL a view shows: the stored high part of a u128 id (value div 10^18, scale 0), kept
# as `<name>_e18` next to `<name>_m18` for lookups that Parquet statistics prune; never money,
# never summed.
STORED_PAIR = re.compile(r"_e18$")


def inexact(col):
    if STORED_PAIR.search(col["column_name"]) and col["column_type"] == "DECIMAL(21,0)":
        return False
    return bool(INEXACT.search(col["column_type"]))


def sql_literal(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if v is None:
        return "NULL"
    raise ValueError(f"unsupported parameter value {v!r}")


def duckdb(cli, lake, script, mode="-json"):
    """Run `script` (SQL text) in a session that loaded lake.sql; return (stdout, stderr, rc)."""
    cmd = [cli, mode]
    for before in LOAD["before"]:
        cmd += ["-cmd", before]
    cmd += ["-cmd", f"SET VARIABLE lake = {sql_literal(lake)}", "-cmd", f".read {LOAD['schema']}"]
    p = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=600, cwd=ROOT)
    return p.stdout, p.stderr, p.returncode


def norm(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return str(int(v))
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, float):
        return f"FLOAT:{v!r}"  # never equal to an exact expected value
    return v


def project(row, keys):
    return {k: norm(row.get(k, "<missing column>")) for k in keys}


def canon(row):
    return json.dumps(row, sort_keys=True)


def set_vars(params):
    return "".join(f"SET VARIABLE {k} = {sql_literal(v)};\n" for k, v in params.items())


def run_case(cli, lake, case, query_text):
    out, err, rc = duckdb(cli, lake, set_vars(case.get("params", {})) + query_text)
    if rc != 0 or err.strip():
        return f"duckdb failed (exit {rc}): {err.strip()[:2000]}"
    out = out.strip()
    rows = json.loads(out) if out else []  # the JSON mode prints nothing for an empty result
    expected = case["rows"]
    if len(rows) != len(expected):
        return f"{len(rows)} rows, expected {len(expected)}\n  got:      {rows[:5]}\n  expected: {expected[:5]}"
    keys = [list(e.keys()) for e in expected]
    exp_n = [project({k: v for k, v in e.items()}, ks) for e, ks in zip(expected, keys)]
    if case.get("ordered"):
        for i, (e, ks) in enumerate(zip(exp_n, keys)):
            got = project(rows[i], ks)
            if got != e:
                diff = {k: (got[k], e[k]) for k in ks if got[k] != e[k]}
                return f"row {i}: (got, expected) = {diff}"
    else:
        allkeys = keys[0] if keys else []
        got = sorted(canon(project(r, allkeys)) for r in rows)
        want = sorted(canon(e) for e in exp_n)
        if got != want:
            missing = sorted(set(want) - set(got))[:3]
            extra = sorted(set(got) - set(want))[:3]
            return f"rows differ\n  missing: {missing}\n  unexpected: {extra}"
    return None


def check_types(cli, lake, cookbook, params_for):
    """DESCRIBE every cookbook query and every view: no inexact numeric column anywhere."""
    problems = []
    for stem, text in sorted(cookbook.items()):
        body = text.strip().rstrip(";")
        out, err, rc = duckdb(cli, lake, set_vars(params_for.get(stem, {})) + f"DESCRIBE {body};\n")
        if rc != 0 or err.strip():
            problems.append(f"DESCRIBE {stem}: {err.strip()[:500]}")
            continue
        for col in json.loads(out or "[]"):
            if inexact(col):
                problems.append(f"{stem}.{col['column_name']} is {col['column_type']}")
    for v in VIEWS:
        out, err, rc = duckdb(cli, lake, f"DESCRIBE SELECT * FROM {v};\n")
        if rc != 0 or err.strip():
            problems.append(f"DESCRIBE {v}: {err.strip()[:500]}")
            continue
        for col in json.loads(out or "[]"):
            if inexact(col):
                problems.append(f"view {v}.{col['column_name']} is {col['column_type']}")
    return problems


D38 = "CAST('{}' AS DECIMAL(38, 0))"
D21 = "CAST('{}' AS DECIMAL(21, 0))"
MACRO_CHECKS = [
    ("u128(value, value_e38) exact at 0, 10^38-1, 10^38, u128::MAX",
     f"u128({D38.format(0)}, 0::TINYINT) = 0"
     f" AND u128({D38.format('9' * 38)}, 0::TINYINT) = CAST('{'9' * 38}' AS UHUGEINT)"
     f" AND u128({D38.format(0)}, 1::TINYINT) = CAST('1{'0' * 38}' AS UHUGEINT)"
     f" AND u128({D38.format('40282366920938463463374607431768211455')}, 3::TINYINT)"
     " = CAST('340282366920938463463374607431768211455' AS UHUGEINT)"
     " AND typeof(u128(" + D38.format(1) + ", 0::TINYINT)) = 'UHUGEINT'"),
    ("id128(value, value_e18) exact at 0, 10^18-1, 10^18, u128::MAX",
     "id128(0::BIGINT, " + D21.format(0) + ") = 0"
     " AND id128(999999999999999999::BIGINT, " + D21.format(0) + ") = 999999999999999999"
     " AND id128(0::BIGINT, " + D21.format(1) + ") = 1000000000000000000"
     " AND id128(374607431768211455::BIGINT, " + D21.format('340282366920938463463') + ")"
     " = CAST('340282366920938463463374607431768211455' AS UHUGEINT)"
     " AND typeof(id128(1::BIGINT, " + D21.format(0) + ")) = 'UHUGEINT'"),
    # u128 and id128 take a faster road than the plain recipe (schemas/lake.md, the pitfalls): the
    # same value at every boundary of that road, with each high part, and NULL for NULL.
    ("u128 equals the plain recipe at 0, 10^18-1, 10^18, 10^18+1, 10^38-1, for e38 0..3",
     "(SELECT bool_and(u128(v, e) = CAST(e AS UHUGEINT) * e38() + CAST(v AS UHUGEINT)) AND count(*) = 23"
     " FROM (SELECT CAST(v AS DECIMAL(38, 0)) AS v, CAST(e AS TINYINT) AS e FROM"
     " (VALUES ('0'), ('1'), ('" + '9' * 18 + "'), ('1" + '0' * 18 + "'), ('1" + '0' * 17 + "1'),"
     " ('" + '9' * 38 + "')) a(v), (VALUES (0), (1), (2), (3)) b(e)"
     " WHERE b.e < 3 OR CAST(a.v AS DECIMAL(38, 0)) <= " + D38.format('40282366920938463463374607431768211455') + "))"
     " AND u128(CAST(NULL AS DECIMAL(38, 0)), 0::TINYINT) IS NULL"
     " AND u128(" + D38.format(5) + ", CAST(NULL AS TINYINT)) IS NULL"),
    ("id128 equals the plain recipe at 0, 10^18-1 for e18 0, 1, 10^18, u128::MAX div 10^18",
     "(SELECT bool_and(id128(v, e) = CAST(e AS UHUGEINT) * e18() + CAST(v AS UHUGEINT)) AND count(*) = 12"
     " FROM (SELECT CAST(v AS BIGINT) AS v, CAST(e AS DECIMAL(21, 0)) AS e FROM"
     " (VALUES (0), (1), (999999999999999999)) a(v),"
     " (VALUES ('0'), ('1'), ('1" + '0' * 18 + "'), ('340282366920938463462')) b(e)))"
     " AND id128(CAST(NULL AS BIGINT), " + D21.format(0) + ") IS NULL"
     " AND id128(5::BIGINT, CAST(NULL AS DECIMAL(21, 0))) IS NULL"),
    ("id_m18/id_e18 invert id128 at 0, 10^18-1, 10^18, u128::MAX",
     "id_m18('0') = 0 AND id_e18('0') = 0"
     f" AND id_m18('{'9' * 18}') = {'9' * 18} AND id_e18('{'9' * 18}') = 0"
     f" AND id_m18('1{'0' * 18}') = 0 AND id_e18('1{'0' * 18}') = 1"
     " AND id_m18('340282366920938463463374607431768211455') = 374607431768211455"
     " AND id_e18('340282366920938463463374607431768211455') = " + D21.format('340282366920938463463') +
     " AND typeof(id_m18('1')) = 'BIGINT' AND typeof(id_e18('1')) = 'DECIMAL(21,0)'"
     " AND id128(id_m18('340282366920938463463374607431768211454'), id_e18('340282366920938463463374607431768211454'))"
     " = CAST('340282366920938463463374607431768211454' AS UHUGEINT)"),
    ("tb_time keeps nanoseconds",
     "tb_time(1709251200000000001) = CAST('2024-03-01 00:00:00.000000001' AS TIMESTAMP_NS)"
     " AND tb_date(1709251199999999999) = DATE '2024-02-29'"),
    ("tb_time_text has 9 fraction digits",
     "tb_time_text(1709251200000000001) = '2024-03-01T00:00:00.000000001Z'"
     " AND tb_time_text(1709251200120000000) = '2024-03-01T00:00:00.120000000Z'"),
    ("tb_ns inverts tb_time, offsets applied",
     "tb_ns('2024-03-01T01:00:00.000000001+01:00') = 1709251200000000001"
     " AND tb_ns(tb_time(1709251200123456789)) = 1709251200123456789"),
    ("exact_sum beyond u128",
     "(SELECT CAST(exact_sum(x) AS VARCHAR) FROM (VALUES (CAST('340282366920938463463374607431768211455' AS UHUGEINT)),"
     " (u128(" + D38.format('40282366920938463463374607431768211455') + ", 3::TINYINT))) t(x))"
     " = '680564733841876926926749214863536422910'"),
    ("flag names",
     "transfer_flags(2 | 16 | 256) = ['pending', 'balancing_debit', 'imported']"
     " AND account_flags(8 | 32) = ['history', 'closed'] AND transfer_flags(0) = []"
     " AND transfer_flags(1024) = ['bit10'] AND event_type_name(4) = 'two_phase_expired'"),
]


def check_macros(cli, lake):
    script = "SELECT " + ", ".join(f"({expr}) AS c{i}" for i, (_, expr) in enumerate(MACRO_CHECKS)) + ";\n"
    out, err, rc = duckdb(cli, lake, script)
    if rc != 0 or err.strip():
        return [f"macro checks failed to run: {err.strip()[:500]}"]
    row = json.loads(out)[0]
    return [name for i, (name, _) in enumerate(MACRO_CHECKS) if row[f"c{i}"] is not True]


# schemas/lake.md, "Exact arithmetic beyond 10^38": the recipes on the stored columns, without the
# views' u128 columns. The split recipe is written for Spark SQL there; this is the same arithmetic
# in DuckDB's dialect (exact `%` on DECIMAL(38,0), integral division on HUGEINT).
RECIPES = """
SELECT ledger,
       CAST(sum(CAST(CAST(amount_e38 AS UHUGEINT) * CAST('100000000000000000000000000000000000000' AS UHUGEINT)
                     + CAST(amount AS UHUGEINT) AS BIGNUM)) AS VARCHAR) AS bignum_volume,
       CAST(sum(CAST(amount_e38 AS DECIMAL(38,0))) AS VARCHAR) AS s_e38,
       CAST(sum(CAST(CAST(amount - amount % CAST('1000000000000000000000000000000000000' AS DECIMAL(38,0)) AS HUGEINT)
                     // CAST('1000000000000000000000000000000000000' AS HUGEINT) AS DECIMAL(38,0))) AS VARCHAR) AS s2,
       CAST(sum(CAST(CAST(amount % CAST('1000000000000000000000000000000000000' AS DECIMAL(38,0)) - amount % 1000000000000000000
                          AS HUGEINT) // 1000000000000000000 AS DECIMAL(38,0))) AS VARCHAR) AS s1,
       CAST(sum(CAST(amount % 1000000000000000000 AS DECIMAL(38,0))) AS VARCHAR) AS s0
FROM lake_transfers
WHERE event_type IN (0, 2)
GROUP BY ledger
ORDER BY ledger;
"""


def check_recipes(cli, lake, cases):
    """The documented recipes give the posted volumes that the posted_volume_per_ledger case expects."""
    want = {r["ledger"]: r["posted_volume"] for c in cases if c["query"] == "posted_volume_per_ledger"
            for r in c["rows"]}
    if not want:
        return []
    out, err, rc = duckdb(cli, lake, RECIPES)
    if rc != 0 or err.strip():
        return [f"recipes failed to run: {err.strip()[:500]}"]
    problems = []
    for row in json.loads(out or "[]"):
        led = str(row["ledger"])
        split = int(row["s_e38"]) * 10**38 + int(row["s2"]) * 10**36 + int(row["s1"]) * 10**18 + int(row["s0"])
        if row["bignum_volume"] != want.get(led):
            problems.append(f"ledger {led}: the BIGNUM recipe gives {row['bignum_volume']}, expected {want.get(led)}")
        if str(split) != want.get(led):
            problems.append(f"ledger {led}: the split recipe gives {split}, expected {want.get(led)}")
    if {str(r["ledger"]) for r in json.loads(out or "[]")} != set(want):
        problems.append("the recipes and the expected posted volumes have different ledgers")
    return problems


def check_pruning(cli, lake, pruning):
    day = pruning["day"]
    q = f"EXPLAIN ANALYZE SELECT * FROM daily_volume WHERE date = DATE '{day}';\n"
    out, err, rc = duckdb(cli, lake, q, mode="-line")
    if rc != 0:
        return f"EXPLAIN ANALYZE failed: {err.strip()[:500]}"
    m = re.findall(r"Scanning Files: (\d+)/(\d+)", out)
    # DuckDB prints "Scanning Files: N/M" only when it skipped files; when the filter excluded none
    # (a lake whose files are all of that day) there is only "Total Files Read: N".
    total = re.findall(r"Total Files Read: (\d+)", out)
    if not m and not total:
        return "neither 'Scanning Files: N/M' nor 'Total Files Read: N' in EXPLAIN ANALYZE output"
    read = int(m[0][0]) if m else int(total[0])
    if read != pruning["files"]:
        return f"a query bounded to {day} read {read} transfers files, expected {pruning['files']}"
    return None


def main():
    ap = argparse.ArgumentParser(description="Check the DuckDB cookbook against expected answers.")
    ap.add_argument("lake")
    ap.add_argument("expected")
    ap.add_argument("--duckdb", default="duckdb", help="the DuckDB CLI (default: duckdb on PATH)")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "AUDIT.md"),
                    help="the auditor's guide whose queries must be the cookbook's text ('' to skip)")
    ap.add_argument("--lake-version", type=int, help="read the lake at this transfers version")
    ap.add_argument("--delta-extension", help="read through delta_scan, loading the extension from this path")
    ap.add_argument("--subset", action="store_true",
                    help="only the trial balances, the first statement and the posted volume")
    args = ap.parse_args()
    if args.delta_extension:
        LOAD["before"].append(f"LOAD {sql_literal(args.delta_extension)}")
        LOAD["schema"] = SCHEMA_DELTA
    if args.lake_version is not None:
        LOAD["before"].append(f"SET VARIABLE lake_version = {args.lake_version}")
    try:
        with open(args.expected) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {args.expected}: {e}", file=sys.stderr)
        return 2
    if spec.get("format") != 1:
        print("expected-answers format must be 1", file=sys.stderr)
        return 2

    cookbook = {}
    for name in sorted(os.listdir(COOKBOOK)):
        if name.endswith(".sql"):
            with open(os.path.join(COOKBOOK, name)) as f:
                cookbook[name[:-4]] = f.read()

    failures = []
    if args.doc:
        with open(args.doc) as f:
            doc = f.read()
        for stem, text in cookbook.items():
            if text.strip() not in doc:
                failures.append(f"[doc] {stem}.sql is not quoted verbatim in {args.doc}")

    params_for = {}
    passed = 0
    cases = spec["cases"]
    if args.subset:
        statements = [c for c in cases if c["query"] == "account_statement"][:1]
        cases = [c for c in cases if c["query"] in ("trial_balance", "posted_volume_per_ledger") or c in statements]
        cookbook = {k: v for k, v in cookbook.items() if k in {c["query"] for c in cases}}
    known = [c for c in cases if c["query"] in cookbook]
    for case in cases:
        if case["query"] not in cookbook:
            failures.append(f"[{case['name']}] no cookbook query {case['query']}.sql")
    # One DuckDB session per case, two at a time.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        problems = list(pool.map(lambda c: run_case(args.duckdb, args.lake, c, cookbook[c["query"]]), known))
    for case, problem in zip(known, problems):
        q = case["query"]
        params_for.setdefault(q, case.get("params", {}))
        if problem:
            failures.append(f"[{q}] {case['name']}: {problem}")
        else:
            passed += 1
    untested = sorted(set(cookbook) - {c["query"] for c in cases})

    failures += [f"[macros] {p}" for p in check_macros(args.duckdb, args.lake)]
    failures += [f"[recipes] {p}" for p in check_recipes(args.duckdb, args.lake, cases)]
    failures += [f"[types] {p}" for p in check_types(args.duckdb, args.lake, cookbook, params_for)]
    if "pruning" in spec:
        p = check_pruning(args.duckdb, args.lake, spec["pruning"])
        if p:
            failures.append(f"[pruning] {p}")

    for f in failures:
        print("FAIL " + f)
    if untested:
        print("cookbook queries without an expected answer: " + ", ".join(untested))
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
