"""How DuckDB's cost of reading an identifier column depends on its Parquet type.

The same 10^6 rows (35 files, 10^4 account ids, random amounts) are written with pyarrow in three
layouts and read by the DuckDB CLI, single-threaded, interleaved, median of 9 (user + sys CPU
seconds, which the rest of the machine's load disturbs less than wall time):

  f1       format 1: `<id>_hi`, `<id>_lo` UINT64 (the ratio's anchor)
  f2_d38   `<id>` decimal(38,0) (16-byte FIXED_LEN_BYTE_ARRAY) + `<id>_e38` byte
  f2_i64   `<id>` INT64 (value mod 10^18) + `<id>_e18` decimal(21,0) (format 2's identifiers)

Amounts are decimal(38,0) + byte in both format-2 layouts. Queries: the rows whose debit or
credit account is 42 (an identifier filter, as `balance_of` and `statement` do), and a sum of
amounts (a quantity).

    python3 benches/scripts/id_encoding.py [WORK_DIR]   # needs pyarrow, numpy and duckdb on PATH
"""

import os
import statistics
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWS, FILES, ACCOUNTS, REPEATS = 1_000_000, 35, 10_000, 9


def write(work):
    rng = np.random.default_rng(1)
    deb = rng.integers(1, ACCOUNTS, ROWS, dtype=np.uint64)
    cred = rng.integers(1, ACCOUNTS, ROWS, dtype=np.uint64)
    amt = rng.integers(1, 10**6, ROWS, dtype=np.uint64)
    ts = np.arange(ROWS, dtype=np.int64) * 1000 + 1767225600 * 10**9
    per = ROWS // FILES

    def dec(a, p):
        return pa.array(a.astype(np.int64)).cast(pa.decimal128(p, 0))

    def zeros(t):
        return pa.array(np.zeros(per, dtype=np.int64)).cast(t)

    for layout in ["f1", "f2_d38", "f2_i64"]:
        os.makedirs(os.path.join(work, layout), exist_ok=True)
        for i in range(FILES):
            s = slice(i * per, (i + 1) * per)
            cols = {"timestamp": pa.array(ts[s])}
            for side, ids in [("debit", deb), ("credit", cred)]:
                name = f"{side}_account_id"
                if layout == "f1":
                    cols[name + "_hi"] = zeros(pa.uint64())
                    cols[name + "_lo"] = pa.array(ids[s])
                elif layout == "f2_d38":
                    cols[name] = dec(ids[s], 38)
                    cols[name + "_e38"] = zeros(pa.int8())
                else:
                    cols[name] = pa.array(ids[s].astype(np.int64))
                    cols[name + "_e18"] = zeros(pa.decimal128(21, 0))
            if layout == "f1":
                cols["amount_hi"] = zeros(pa.uint64())
                cols["amount_lo"] = pa.array(amt[s])
            else:
                cols["amount"] = dec(amt[s], 38)
                cols["amount_e38"] = zeros(pa.int8())
            pq.write_table(pa.table(cols), os.path.join(work, layout, f"{i:03}.parquet"),
                           compression="zstd", dictionary_pagesize_limit=64 * 1024)


def queries(work, layout):
    src = f"read_parquet('{os.path.join(work, layout)}/*.parquet')"
    if layout == "f1":
        side = "({s}_account_id_hi = 0 AND {s}_account_id_lo = 42)"
        total = "sum(amount_lo::HUGEINT)"
    else:
        high = "_e38" if layout == "f2_d38" else "_e18"
        side = "({s}_account_id" + high + " = 0 AND {s}_account_id = 42)"
        total = "sum(amount)"
    where = side.format(s="debit") + " OR " + side.format(s="credit")
    return {
        "identifier filter": f"SELECT count(*) FROM {src} WHERE {where};",
        "sum of amounts": f"SELECT count(*), {total} FROM {src};",
    }


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ledgerlake-id-encoding"
    write(work)
    layouts = ["f1", "f2_d38", "f2_i64"]
    script, order = ["SET threads = 1;", ".timer on"], []
    for _ in range(REPEATS):
        for layout in layouts:
            for name, sql in queries(work, layout).items():
                script.append(sql)
                order.append((layout, name))
    out = subprocess.run(["duckdb"], input="\n".join(script), capture_output=True, text=True,
                         check=True).stdout
    cpu = [float(l.split()[6]) + float(l.split()[8]) for l in out.splitlines() if l.startswith("Run Time")]
    assert len(cpu) == len(order), out[-2000:]
    seconds = {}
    for key, t in zip(order, cpu):
        seconds.setdefault(key, []).append(t)
    for name in queries(work, "f1"):
        anchor = statistics.median(seconds[("f1", name)])
        cells = [f"{l} {statistics.median(seconds[(l, name)]):.4f} s ({statistics.median(seconds[(l, name)]) / anchor:.2f})"
                 for l in layouts]
        print(f"{name}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
