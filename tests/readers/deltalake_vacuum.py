#!/usr/bin/env python3
"""What delta-rs (PyPI `deltalake`) would vacuum from a ledgerlake table, as a Delta user would
run it, in dry runs only (a real VACUUM commits to the log, which ledgerlake's one-writer rule
refuses): the table's tombstone retention, the files its default VACUUM lists, whether a
shorter retention is refused, and the files a zero retention lists. Usage: deltalake_vacuum.py
TABLE_DIR; prints one JSON object."""

import json
import os
import sys

from deltalake import DeltaTable


def names(paths):
    return sorted(os.path.basename(p) for p in paths)


def main():
    table = DeltaTable(sys.argv[1])
    report = {
        "retention": table.metadata().configuration.get("delta.deletedFileRetentionDuration"),
        "default": names(table.vacuum(dry_run=True)),
        "active": names(table.file_uris()),
    }
    try:
        table.vacuum(retention_hours=0, dry_run=True)
        report["zero_refused"] = None
    except Exception as e:  # delta-rs raises its own error type for a too-short retention
        report["zero_refused"] = str(e)
    report["zero"] = names(
        table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
