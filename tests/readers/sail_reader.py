#!/usr/bin/env python3
"""Sail (PyPI `pysail`, a Spark-compatible engine) through the Spark Connect API, reading the
`transfers` Delta table with `spark.read.format("delta")` (its snapshot: the log decides which
files are data): one account's statement and the trial balance as of a moment, summed in Spark
SQL (statement.py: the common decimal(38,0) sum and the exact recipe beyond 10^38). Usage and
output: see statement.py."""

import os
import sys
from importlib import metadata

# Sail logs every session at INFO; the reader's output is its JSON.
os.environ.setdefault("RUST_LOG", "warn")

from pysail.spark import SparkConnectServer
from pyspark.sql import SparkSession

from statement import parse_args, print_report, statement_line, statement_sql, trial_balance_lines
from statement import trial_balance_sql

ENGINE = f"sail {metadata.version('pysail')}"


def main():
    args = parse_args(sys.argv)
    server = SparkConnectServer("127.0.0.1", 0)
    server.start()
    try:
        _, port = server.listening_address
        spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").getOrCreate()
        try:
            spark.read.format("delta").load(f"{args.lake}/transfers").createOrReplaceTempView(
                "transfers"
            )
            for query in args.queries:
                statement = [
                    statement_line(r.asDict())
                    for r in spark.sql(statement_sql("transfers", query)).collect()
                ]
                sql = trial_balance_sql("transfers", query.at)
                trial_balance = trial_balance_lines([r.asDict() for r in spark.sql(sql).collect()])
                print_report(ENGINE, query, statement, trial_balance)
        finally:
            spark.stop()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
