#!/usr/bin/env python3
"""Checks the chained log of a ledgerlake lake (format 2) on a local directory, with nothing but
Python's standard library: the same checks as `ledgerlake verify`'s chain check (see
docs/AUDIT.md, "Checking the chain by hand", and schemas/lake.md, "Tamper evidence").

Usage: check-chain.py LAKE_DIR [--json] [--head TABLE=SHA256 ...]

For each table (transfers, accounts, swept_accounts) it reads the commits
<table>/_delta_log/<20-digit version>.json in order and checks that versions run 0, 1, 2, ...
without a gap; that each commit's commitInfo.ledgerlake.previousCommitSha256 is the SHA-256 of
the previous commit file's bytes (null for version 0); that its addedFiles list exactly its add
actions; that every active data file (added, not removed since) has the recorded SHA-256 and
size; and that every object under the table is named by an add action. It prints each table's
head (the SHA-256 of its newest commit) and every problem, and exits 1 if there is a problem,
or if a head given with --head is not the table's current head nor one of its commits.
"""

import hashlib
import json
import os
import re
import sys
import urllib.parse

TABLES = ["transfers", "accounts", "swept_accounts"]
LOG_DIR = "_delta_log"
COMMIT_BYTES_MAX = 256 * 1024 * 1024
FORMAT_MIN, FORMAT_MAX = 2, 2
COMMIT = re.compile(r"^(\d{20})\.json$")
DERIVED = re.compile(
    r"^(_last_checkpoint|_sidecars/.*|\d{20}\.crc|\d{20}\.checkpoint\..*\.(parquet|json)"
    r"|\d{20}\.checkpoint\.parquet|\d{20}\.\d{20}\.compacted\.json)$"
)


def sha256_file(path):
    """The hex SHA-256 and size of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                return h.hexdigest(), size
            h.update(piece)
            size += len(piece)


def data_object(table, add_path):
    """The object (relative to the lake root) an add/remove path names, or None."""
    if "://" in add_path or add_path.startswith("/"):
        return None
    try:
        decoded = urllib.parse.unquote(add_path, errors="strict")
    except UnicodeDecodeError:
        return None
    parts = decoded.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return "/".join([table] + parts)


def list_table(lake, table):
    """Every object under the table, as paths relative to the lake root."""
    root = os.path.join(lake, table)
    out = []
    for d, _, files in os.walk(root):
        for name in files:
            if "#" in name:  # an unfinished local write (object_store's staging file)
                continue
            rel = os.path.relpath(os.path.join(d, name), lake)
            out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def check_table(lake, table):
    problems = []

    def problem(version, file, check, detail):
        problems.append(
            {"table": table, "version": None if version is None else str(version),
             "file": file, "check": check, "detail": detail})

    commits, data, log_objects = {}, [], 0
    log_prefix = f"{table}/{LOG_DIR}/"
    for obj in list_table(lake, table):
        if not obj.startswith(log_prefix):
            data.append(obj)
            continue
        log_objects += 1
        name = obj[len(log_prefix):]
        m = COMMIT.match(name)
        if m:
            commits[int(m.group(1))] = obj
        elif not DERIVED.match(name):
            problem(None, obj, "unexpected_log_object",
                    "neither a commit nor a checkpoint: not part of the log")

    active = {}  # add.path -> (version, object, (sha256, size) or None)
    named = set()
    expected, previous, head = 0, None, None
    all_digests = []
    for version in sorted(commits):
        file = commits[version]
        if version > expected:
            problem(expected, f"{table}/{LOG_DIR}/{expected:020}.json", "missing_commit",
                    f"commits {expected}..={version - 1} are missing")
            previous = None
        expected = version + 1
        path = os.path.join(lake, file)
        if os.path.getsize(path) > COMMIT_BYTES_MAX:
            problem(version, file, "unreadable_commit", "over the size limit for a commit")
            previous = head = None
            continue
        with open(path, "rb") as f:
            raw = f.read()
        digest = hashlib.sha256(raw).hexdigest()
        all_digests.append(digest)
        check_commit(table, version, file, raw, previous, active, named, problem)
        previous = head = digest

    for add_path, (version, obj, recorded) in sorted(active.items()):
        path = os.path.join(lake, obj)
        if not os.path.isfile(path):
            problem(version, obj, "file_missing",
                    "an active data file (added, never removed) is not in the store")
        elif recorded is not None:
            found = sha256_file(path)
            if found != recorded:
                problem(version, obj, "file_altered",
                        f"the log records {recorded[1]} bytes with SHA-256 {recorded[0]}; "
                        f"the file has {found[1]} bytes with SHA-256 {found[0]}")
    def data_name(obj):
        """(first, last, digest16) of a data file name <first>-<last>-<digest16>.parquet."""
        name = obj.rsplit("/", 1)[-1]
        parts = name[: -len(".parquet")].split("-") if name.endswith(".parquet") else []
        if len(parts) == 3 and all(len(p) == 20 and p.isdigit() for p in parts[:2]) \
                and len(parts[2]) == 16:
            return int(parts[0]), int(parts[1]), parts[2]
        return None

    ends = [data_name(o)[1] for o in named if data_name(o)]
    log_end = max(ends) if ends else None
    notes = []
    for obj in data:
        if obj not in named:
            # Named like a data file, past the end of everything the log named, and holding
            # the bytes its digest says: written before a commit that never happened. A note.
            parsed = data_name(obj)
            if (parsed and (log_end is None or parsed[0] > log_end)
                    and sha256_file(os.path.join(lake, obj))[0].startswith(parsed[2])):
                notes.append({"table": table, "version": None, "file": obj,
                              "check": "file_uncommitted",
                              "detail": "written before a commit that never happened (an interrupted export): "
                                        "not part of the table; safe to delete"})
                continue
            problem(None, obj, "file_unreferenced",
                    "no add action of the log names this object: it is not part of the table")
    return {
        "table": table,
        "versions": str(len(commits)),
        "head_version": str(max(commits)) if commits else None,
        "head_sha256": head,
        "active_files": str(len(active)),
        "log_objects": str(log_objects),
        "problems": problems,
        "notes": notes,
    }, all_digests


def check_commit(table, version, file, raw, previous, active, named, problem):
    adds, removes, infos = [], [], []
    for i, line in enumerate(raw.split(b"\n")):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
            if not isinstance(action, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            problem(version, file, "unreadable_commit", f"line {i + 1} is not a Delta action: {e}")
            return
        for key, into in (("add", adds), ("remove", removes), ("commitInfo", infos)):
            if action.get(key) is not None:
                into.append(action[key])

    info = None
    if len(infos) > 1:
        problem(version, file, "not_chained", "more than one commitInfo action")
    elif not infos or infos[0].get("ledgerlake") is None:
        problem(version, file, "not_chained", "no commitInfo.ledgerlake: not written by ledgerlake")
    else:
        info = infos[0]["ledgerlake"]
        try:
            ok = (isinstance(info.get("formatVersion"), int)
                  and isinstance(info["addedFiles"], list)
                  and all(isinstance(f["path"], str) and isinstance(f["sha256"], str)
                          and isinstance(f["size"], int) and f["size"] >= 0
                          for f in info["addedFiles"])
                  and isinstance(info.get("previousCommitSha256") or "", str))
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            problem(version, file, "not_chained", "commitInfo.ledgerlake is malformed")
            info = None
        elif not FORMAT_MIN <= info["formatVersion"] <= FORMAT_MAX:
            problem(version, file, "not_chained",
                    f"commitInfo.ledgerlake.formatVersion is {info['formatVersion']}")
            info = None

    if info is not None:
        recorded = info.get("previousCommitSha256")
        recorded = recorded.lower() if recorded is not None else None
        if version == 0:
            if recorded is not None:
                problem(version, file, "broken_link", f"version 0 names a previous commit ({recorded})")
        elif recorded is None:
            problem(version, file, "broken_link", "previousCommitSha256 is null after version 0")
        elif previous is not None and recorded != previous:
            problem(version, file, "broken_link",
                    f"previousCommitSha256 is {recorded}, but commit {version - 1} hashes to "
                    f"{previous}: commit {version - 1} (or this commit) was rewritten")
        listed = {f["path"]: f for f in info["addedFiles"]}
        added = {a["path"] for a in adds}
        mismatched = []
        for a in adds:
            f = listed.get(a["path"])
            if f is None:
                mismatched.append((a["path"], "an add action not in addedFiles"))
            elif a.get("size") is not None and a["size"] != f["size"]:
                mismatched.append((a["path"], f"add.size is {a['size']}, addedFiles says {f['size']}"))
        for f in info["addedFiles"]:
            if f["path"] not in added:
                mismatched.append((f["path"], "listed in addedFiles without an add action"))
        for path, detail in mismatched:
            problem(version, data_object(table, path) or f"{table}/{path}",
                    "added_files_mismatch", detail)

    for r in removes:
        if data_object(table, r["path"]) is None:
            problem(version, file, "bad_path", f"remove path {r['path']!r} names no file of the table")
        active.pop(r["path"], None)
    for a in adds:
        obj = data_object(table, a["path"])
        if obj is None:
            problem(version, file, "bad_path", f"add path {a['path']!r} names no file of the table")
            continue
        recorded = None
        if info is not None:
            f = next((f for f in info["addedFiles"] if f["path"] == a["path"]), None)
            if f is not None:
                recorded = (f["sha256"].lower(), f["size"])
        named.add(obj)
        active[a["path"]] = (version, obj, recorded)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    heads = {}
    i = 1
    while i < len(argv):
        if argv[i] == "--head" and i + 1 < len(argv):
            table, _, digest = argv[i + 1].partition("=")
            heads[table] = digest.lower()
            args.remove(argv[i + 1])
            i += 2
        else:
            i += 1
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    lake = args[0]
    report = {"tables": []}
    failed = False
    for table in TABLES:
        result, digests = check_table(lake, table)
        report["tables"].append(result)
        failed |= bool(result["problems"])
        want = heads.get(table)
        if want is not None and want not in digests:
            failed = True
            result["problems"].append({
                "table": table, "version": None,
                "file": f"{table}/{LOG_DIR}/", "check": "head_not_found",
                "detail": f"the recorded head {want} is no longer a commit of the table"})
    # The newest transfers commit pins the versions of the other tables it was committed after;
    # a table whose log ends below its pinned version lost its newest commits.
    by_table = {t["table"]: t for t in report["tables"]}
    head = by_table.get("transfers", {}).get("head_version")
    pins = None
    if head is not None:
        try:
            with open(os.path.join(lake, f"transfers/{LOG_DIR}/{int(head):020}.json"), "rb") as f:
                for line in f.read().split(b"\n"):
                    try:
                        action = json.loads(line)
                    except ValueError:
                        continue
                    info = action.get("commitInfo") if isinstance(action, dict) else None
                    if isinstance(info, dict) and isinstance(info.get("ledgerlake"), dict):
                        pins = info["ledgerlake"].get("tableVersions")
                        break
        except OSError:
            pins = None
    for name in ("accounts", "swept_accounts"):
        pinned = pins.get(name) if isinstance(pins, dict) else None
        t = by_table.get(name)
        if not isinstance(pinned, int) or isinstance(pinned, bool) or t is None:
            continue
        h = None if t["head_version"] is None else int(t["head_version"])
        if h is not None and h >= pinned:
            continue
        missing = 0 if h is None else h + 1
        ends = "has no commit" if h is None else f"ends at version {h}"
        failed = True
        t["problems"].append({
            "table": name, "version": str(missing),
            "file": f"{name}/{LOG_DIR}/{missing:020}.json", "check": "missing_commit",
            "detail": f"transfers version {head} was committed after {name} version {pinned}, "
                      f"but the {name} log {ends}: its newest commits were removed"})
    if "--json" in argv:
        print(json.dumps(report, indent=1))
    else:
        for t in report["tables"]:
            print(f"{t['table']}: {t['versions']} commits, head version {t['head_version']}, "
                  f"head sha256 {t['head_sha256']}, {t['active_files']} active files")
            for p in t["problems"]:
                where = f" version {p['version']}" if p["version"] is not None else ""
                print(f"  PROBLEM {p['check']}{where}: {p['file']}: {p['detail']}")
        print("FAILED" if failed else "OK: every commit is chained and every active data file has its recorded digest")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
