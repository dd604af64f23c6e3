#!/usr/bin/env python3
"""JVM Spark (PyPI `pyspark` 4.3 on OpenJDK 17) on a ledgerlake lake. Delta's Spark connector
comes from Maven, so this reader takes the `transfers` table's snapshot from its Delta log with
delta-rs (`DeltaTable.file_uris()`: the active files, never a directory listing) and reads those
files as plain Parquet; one account's statement and the trial balance as of a moment are then
computed in Spark SQL (statement.py: the common decimal(38,0) sum and the exact recipe beyond
10^38). Usage and output: see statement.py."""

import os
import sys

from deltalake import DeltaTable
import pyspark
from pyspark.sql import SparkSession

from statement import parse_args, print_report, statement_line, statement_sql, trial_balance_lines
from statement import trial_balance_sql

ENGINE = f"spark {pyspark.__version__}"


def main():
    args = parse_args(sys.argv)
    files = DeltaTable(f"{args.lake}/transfers").file_uris()
    if not files:
        for query in args.queries:
            print_report(ENGINE, query, [], [])
        return
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("ledgerlake-reader")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark.read.parquet(*files).createOrReplaceTempView("transfers")
        spark.catalog.cacheTable("transfers")
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


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    main()
