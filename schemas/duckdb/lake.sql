-- ledgerlake: DuckDB views and macros over a lake (format version 2: Delta Lake tables).
--
-- Load (DuckDB CLI; the lake is a directory, or s3://bucket/prefix with the httpfs extension):
--
--   duckdb -cmd "SET VARIABLE lake = '/srv/ledger-lake'" -cmd ".read schemas/duckdb/lake.sql"
--
-- The variable must be set before this file runs (`-init` would run it before any `-cmd`). Plain
-- SQL, no dot-commands, no extension: any client can execute this file. schemas/duckdb/README.md
-- says more (time travel, the delta extension, what is read when).
--
-- How the lake is read. Each table (`transfers`, `accounts`, `swept_accounts`) is a Delta table;
-- its data files are those its log says (never a directory listing). This file replays the log in
-- SQL when it is loaded: `_delta_log/_last_checkpoint` names the newest checkpoint, whose `add`
-- rows are the files active at its version; every later JSON commit then adds or removes files; a
-- file is active if its last action is an `add`. The views read that list with read_parquet, so
-- they see the lake as it was when this file was loaded: load it again to see later commits.
--
-- Options, as variables set before loading (like `lake`):
--   lake_version  a `transfers` table version: the lake as it stood when that version was
--                 committed (default: the latest). `transfers` is read at that version; `accounts`
--                 and `swept_accounts` at the versions that commit records (tableVersions).
--   lake_reader   'log' (default: the log replay above) or 'delta': the tables are read with the
--                 delta extension's delta_scan, which must be loaded first (schemas/duckdb/lake_delta.sql).
--
-- Types. A u128 amount or balance is stored as `<name>` DECIMAL(38,0) = value mod 10^38 and
-- `<name>_e38` TINYINT = value div 10^38; a u128 identifier (ids, user_data_128) as `<name>` BIGINT =
-- value mod 10^18 and `<name>_e18` DECIMAL(21,0) = value div 10^18. The views show both as exact
-- UHUGEINTs and keep the stored pair of each identifier as `<name>_m18`, `<name>_e18` (for lookups
-- that compare BIGINTs and that Parquet statistics can prune). Timestamps are
-- TigerBeetle nanoseconds (BIGINT); `time` columns are TIMESTAMP_NS in UTC. Sums of money are
-- BIGNUM (arbitrary precision, exact): DuckDB's sum(UHUGEINT) returns a DOUBLE and sum(HUGEINT)
-- can wrap around silently on overflow (seen with 1.5.6), so neither is used. No result that
-- carries money is DOUBLE.

SET VARIABLE lake = rtrim(getvariable('lake'), '/');
SET VARIABLE ledgerlake_checked = CASE WHEN getvariable('lake') IS NULL OR getvariable('lake') = ''
    THEN error('ledgerlake: set the lake first: duckdb -cmd "SET VARIABLE lake = ''/path/to/lake''" -cmd ".read schemas/duckdb/lake.sql"')
    END;
SET VARIABLE lake_reader = coalesce(getvariable('lake_reader'), 'log');
SET VARIABLE ledgerlake_checked = CASE
    WHEN getvariable('lake_reader') NOT IN ('log', 'delta')
        THEN error('ledgerlake: lake_reader is ''' || getvariable('lake_reader') || ''': it must be ''log'' or ''delta''')
    WHEN getvariable('lake_reader') = 'delta'
         AND NOT coalesce((SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'delta'), false)
        THEN error('ledgerlake: lake_reader ''delta'' needs the delta extension: LOAD delta (or LOAD ''<path>/delta.duckdb_extension'') first')
    WHEN getvariable('lake_version') IS NOT NULL AND TRY_CAST(getvariable('lake_version') AS BIGINT) IS NULL
        THEN error('ledgerlake: lake_version must be a transfers table version (an integer), not ' || CAST(getvariable('lake_version') AS VARCHAR))
    END;
SET VARIABLE lake_version = CAST(getvariable('lake_version') AS BIGINT);

---------------------------------------------------------------------------------------------------
-- Scalar macros

-- 10^38, the unit of a `<name>_e38` column.
CREATE OR REPLACE MACRO e38() AS
    CAST('100000000000000000000000000000000000000' AS UHUGEINT);
-- A stored DECIMAL(38,0) (0..10^38-1) as the exact UHUGEINT. DECIMAL(38,0) -> UHUGEINT is exact
-- over that whole range, but DuckDB 1.5 takes ~170 ns a value for it (and for a cast to HUGEINT or
-- BIGINT), against ~7 ns through DECIMAL(18,0): 1.7 s against 0.12 s per 10^7 values, measured with
-- 1.5.6 (benches/duckdb_casts.sql). Values below 10^18 (every amount and balance in practice) take the fast road, which is
-- exact because DECIMAL(18,0) and BIGINT hold all of them; larger ones take the direct cast.
CREATE OR REPLACE MACRO dec38_u128(v) AS
    CASE WHEN v < 1000000000000000000
        THEN CAST(CAST(CAST(v AS DECIMAL(18, 0)) AS BIGINT) AS UHUGEINT)
        ELSE CAST(v AS UHUGEINT) END;
-- The exact u128 from its stored pair: u128(amount, amount_e38) = amount_e38 * 10^38 + amount,
-- within 0..u128::MAX. Same value as `CAST(value_e38 AS UHUGEINT) * e38() + CAST(value AS
-- UHUGEINT)`, which is the recipe to use outside these macros; the CASE only skips slow casts
-- (see dec38_u128). NULL in, NULL out.
CREATE OR REPLACE MACRO u128(value, value_e38) AS
    CASE WHEN value_e38 = 0 THEN dec38_u128(value)
        ELSE CAST(value_e38 AS UHUGEINT) * e38() + dec38_u128(value) END;
-- 10^18, the unit of an identifier's `<name>_e18` column.
CREATE OR REPLACE MACRO e18() AS
    CAST(1000000000000000000 AS UHUGEINT);
-- The exact u128 identifier from its stored pair: id128(transfer_id, transfer_id_e18). The low
-- part is a BIGINT in 0..10^18-1, the high part a DECIMAL(21,0); e18 * 10^18 + value stays within
-- 0..u128::MAX. Same value as `CAST(value_e18 AS UHUGEINT) * e18() + CAST(value AS UHUGEINT)`;
-- the CASE skips the slow DECIMAL -> UHUGEINT cast (see dec38_u128) for ids below 10^18
-- (0.34 s against 0.06 s per 10^7 ids, DuckDB 1.5.6).
CREATE OR REPLACE MACRO id128(value, value_e18) AS
    CASE WHEN value_e18 = 0 THEN CAST(value AS UHUGEINT)
        ELSE CAST(value_e18 AS UHUGEINT) * e18() + CAST(value AS UHUGEINT) END;
-- The stored pair of an identifier given as decimal text (or any integer): compare them with the
-- stored columns, e.g. `debit_account_id = id_m18('1234') AND debit_account_id_e18 = id_e18('1234')`,
-- so that DuckDB compares BIGINTs and prunes row groups by their min/max statistics.
CREATE OR REPLACE MACRO id_m18(x) AS
    CAST(CAST(x AS UHUGEINT) % e18() AS BIGINT);
CREATE OR REPLACE MACRO id_e18(x) AS
    CAST(CAST(x AS UHUGEINT) // e18() AS DECIMAL(21, 0));
-- An exact sum of u128 (or any integer) values, as BIGNUM: never DOUBLE, never wraps, never overflows.
CREATE OR REPLACE MACRO exact_sum(x) AS
    sum(CAST(x AS BIGNUM));
-- u128::MAX, to test whether a BIGNUM total still fits a u128.
CREATE OR REPLACE MACRO u128_max() AS
    CAST(CAST('340282366920938463463374607431768211455' AS UHUGEINT) AS BIGNUM);

-- TigerBeetle time (ns since the Unix epoch) as TIMESTAMP_NS (UTC, all 9 digits kept), as
-- RFC 3339 text with 9 fraction digits, and as the UTC date (the lake's `date` partition).
CREATE OR REPLACE MACRO tb_time(ns) AS
    make_timestamp_ns(CAST(ns AS BIGINT));
CREATE OR REPLACE MACRO tb_time_text(ns) AS
    strftime(make_timestamp_ns(CAST(ns AS BIGINT)), '%Y-%m-%dT%H:%M:%S') || '.'
    || lpad(CAST(CAST(ns AS UBIGINT) % 1000000000 AS VARCHAR), 9, '0') || 'Z';
CREATE OR REPLACE MACRO tb_date(ns) AS
    CAST(make_timestamp_ns(CAST(least(CAST(ns AS HUGEINT), 9223372036854775807) AS BIGINT)) AS DATE);
-- The other way: TigerBeetle ns from a timestamp or RFC 3339 text ('2024-03-01T12:00:00.5Z',
-- '2024-03-01 13:00:00+01:00'; text without an offset is UTC).
CREATE OR REPLACE MACRO tb_ns(t) AS
    CAST(epoch_ns(CAST(t AS TIMESTAMP_NS)) AS UBIGINT);
-- A bound given in ns (any integer type, up to u64::MAX) as the BIGINT the stored timestamps are
-- (they stay below 2^63 until 2262), so that a filter on `timestamp` reaches the Parquet reader.
CREATE OR REPLACE MACRO tb_bound(ns) AS
    CAST(least(CAST(ns AS HUGEINT), 9223372036854775807) AS BIGINT);

CREATE OR REPLACE MACRO event_type_name(t) AS
    CASE CAST(t AS INTEGER)
        WHEN 0 THEN 'single_phase'
        WHEN 1 THEN 'two_phase_pending'
        WHEN 2 THEN 'two_phase_posted'
        WHEN 3 THEN 'two_phase_voided'
        WHEN 4 THEN 'two_phase_expired'
        ELSE 'unknown(' || CAST(t AS VARCHAR) || ')'
    END;
-- Flag names, lowest bit first; a bit without a name shows as 'bit<N>'.
CREATE OR REPLACE MACRO transfer_flags(f) AS
    list_transform(
        list_filter(range(16), lambda b: (CAST(f AS UINTEGER) >> CAST(b AS UINTEGER)) & 1 = 1),
        lambda b: coalesce(['linked', 'pending', 'post_pending_transfer', 'void_pending_transfer',
                            'balancing_debit', 'balancing_credit', 'closing_debit', 'closing_credit',
                            'imported'][b + 1], 'bit' || CAST(b AS VARCHAR)));
CREATE OR REPLACE MACRO account_flags(f) AS
    list_transform(
        list_filter(range(16), lambda b: (CAST(f AS UINTEGER) >> CAST(b AS UINTEGER)) & 1 = 1),
        lambda b: coalesce(['linked', 'debits_must_not_exceed_credits', 'credits_must_not_exceed_debits',
                            'history', 'imported', 'closed'][b + 1], 'bit' || CAST(b AS VARCHAR)));

---------------------------------------------------------------------------------------------------
-- The lake metadata

CREATE OR REPLACE VIEW lake_info AS
SELECT format_version, CAST(cluster_id AS UHUGEINT) AS cluster_id, getvariable('lake') AS lake,
       getvariable('ledgerlake_transfers_version') AS transfers_version,
       getvariable('ledgerlake_accounts_version') AS accounts_version,
       getvariable('ledgerlake_swept_accounts_version') AS swept_accounts_version,
       getvariable('lake_version') IS NOT NULL AS time_travel,
       -- how the accounts tables' versions were chosen at a lake_version (NULL: the latest)
       CASE WHEN getvariable('lake_version') IS NULL THEN NULL
            WHEN getvariable('ledgerlake_pinned') THEN 'tableVersions'
            ELSE 'commit times' END AS versions_from,
       getvariable('lake_reader') AS reader
FROM read_json(getvariable('lake') || '/_ledgerlake.json',
               columns = {'format_version': 'UINTEGER', 'cluster_id': 'VARCHAR'});

SET VARIABLE ledgerlake_checked = (
    SELECT CASE WHEN format_version IS DISTINCT FROM 2
                THEN error('ledgerlake: lake format_version ' || coalesce(CAST(format_version AS VARCHAR), 'missing')
                           || ' is not 2: these views read version 2 only'
                           || CASE WHEN format_version = 1 THEN ' (ledgerlake upgrade --lake L turns a version-1 lake into version 2)' ELSE '' END) END
    FROM read_json(getvariable('lake') || '/_ledgerlake.json', columns = {'format_version': 'UINTEGER'}));

---------------------------------------------------------------------------------------------------
-- The tables' snapshots: which data files make up each table (at lake_version, or the latest).
--
-- Two DuckDB rules shape this part: a table function cannot take a subquery, so file lists travel
-- in variables (`read_parquet(getvariable('...'))`); and an empty list is an error, so every read
-- goes through `query(<SQL text>)`, whose text is a typed empty SELECT when there is nothing to
-- read (no checkpoint yet, no commit after it, no such table, an empty table).

-- A log file's version: the 20 digits that start its name (NULL for _last_checkpoint).
CREATE OR REPLACE MACRO ledgerlake_log_version(f) AS
    TRY_CAST(regexp_extract(f, '/(\d{20})\.[^/]*$', 1) AS BIGINT);
-- The table's log files (the listing of its _delta_log), [] if it has no log.
CREATE OR REPLACE MACRO ledgerlake_log(t) AS
    coalesce(getvariable('ledgerlake_' || t || '_log'), []::VARCHAR[]);
CREATE OR REPLACE MACRO ledgerlake_table_root(t) AS
    getvariable('lake') || '/' || t;
-- Its JSON commits with lo < version <= hi (NULL: no bound), oldest first.
CREATE OR REPLACE MACRO ledgerlake_commits(t, lo, hi) AS
    list_sort(list_filter(ledgerlake_log(t), lambda f:
        regexp_matches(f, '/\d{20}\.json$')
        AND ledgerlake_log_version(f) > coalesce(lo, -1)
        AND (hi IS NULL OR ledgerlake_log_version(f) <= hi)));
-- The versions that have a checkpoint (single-file or multi-part), at most hi.
CREATE OR REPLACE MACRO ledgerlake_checkpoint_versions(t, hi) AS
    list_sort(list_distinct(list_transform(
        list_filter(ledgerlake_log(t), lambda f:
            regexp_matches(f, '/\d{20}\.checkpoint(\.\d{10}\.\d{10})?\.parquet$')
            AND (hi IS NULL OR ledgerlake_log_version(f) <= hi)),
        lambda f: ledgerlake_log_version(f))));
-- The files of the checkpoint at version v.
CREATE OR REPLACE MACRO ledgerlake_checkpoint_files(t, v) AS
    list_sort(list_filter(ledgerlake_log(t), lambda f:
        v IS NOT NULL
        AND regexp_matches(f, '/\d{20}\.checkpoint(\.\d{10}\.\d{10})?\.parquet$')
        AND ledgerlake_log_version(f) = v));
-- SQL text: (version, ts) of each commit in the list variable `var` (ts: commitInfo.timestamp, ms).
CREATE OR REPLACE MACRO ledgerlake_commit_times_sql(var) AS
    CASE WHEN len(coalesce(getvariable(var), []::VARCHAR[])) = 0
         THEN 'SELECT NULL::BIGINT AS version, NULL::BIGINT AS ts WHERE false'
         ELSE 'SELECT ledgerlake_log_version(filename) AS version, max(commitInfo."timestamp") AS ts '
              || 'FROM read_json(getvariable(''' || var || '''), format = ''newline_delimited'', '
              || 'columns = {''commitInfo'': ''STRUCT("timestamp" BIGINT)''}, filename = true) GROUP BY ALL'
    END;
-- SQL text: the file actions (version, path, is_add) of table t: the `add` rows of its checkpoint
-- (variable ledgerlake_<t>_checkpoint_files, at version ledgerlake_<t>_checkpoint) and the adds
-- and removes of the commits after it (variable ledgerlake_<t>_commits).
CREATE OR REPLACE MACRO ledgerlake_actions_sql(t) AS
    'SELECT NULL::BIGINT AS version, NULL::VARCHAR AS path, NULL::BOOLEAN AS is_add WHERE false'
    || CASE WHEN len(getvariable('ledgerlake_' || t || '_checkpoint_files')) = 0 THEN ''
            ELSE ' UNION ALL SELECT getvariable(''ledgerlake_' || t || '_checkpoint''), add.path, true '
                 || 'FROM read_parquet(getvariable(''ledgerlake_' || t || '_checkpoint_files'')) WHERE add IS NOT NULL'
       END
    || CASE WHEN len(getvariable('ledgerlake_' || t || '_commits')) = 0 THEN ''
            ELSE ' UNION ALL SELECT ledgerlake_log_version(filename), coalesce(add.path, remove.path), add IS NOT NULL '
                 || 'FROM read_json(getvariable(''ledgerlake_' || t || '_commits''), format = ''newline_delimited'', '
                 || 'columns = {''add'': ''STRUCT(path VARCHAR)'', ''remove'': ''STRUCT(path VARCHAR)''}, filename = true) '
                 || 'WHERE add IS NOT NULL OR remove IS NOT NULL'
       END;
-- A log path (relative to the table, URI-encoded; or absolute) as a location read_parquet opens.
CREATE OR REPLACE MACRO ledgerlake_data_path(t, p) AS
    CASE WHEN p LIKE '%://%' THEN p ELSE ledgerlake_table_root(t) || '/' || url_decode(p) END;
-- The active files of table t: those whose last action is an add (NULL: none).
CREATE OR REPLACE MACRO ledgerlake_active_files(t) AS (
    SELECT list(ledgerlake_data_path(t, path) ORDER BY path)
    FROM (SELECT path, arg_max(is_add, version) AS active
          FROM query(ledgerlake_actions_sql(t)) GROUP BY path)
    WHERE active);

-- The listings.
SET VARIABLE ledgerlake_transfers_log = (
    SELECT list(file ORDER BY file) FROM glob(getvariable('lake') || '/transfers/_delta_log/*'));
SET VARIABLE ledgerlake_accounts_log = (
    SELECT list(file ORDER BY file) FROM glob(getvariable('lake') || '/accounts/_delta_log/*'));
SET VARIABLE ledgerlake_swept_accounts_log = (
    SELECT list(file ORDER BY file) FROM glob(getvariable('lake') || '/swept_accounts/_delta_log/*'));

-- The version of `transfers` read: lake_version, or the newest commit.
SET VARIABLE ledgerlake_transfers_latest = list_max(list_transform(
    ledgerlake_commits('transfers', NULL, NULL), lambda f: ledgerlake_log_version(f)));
SET VARIABLE ledgerlake_checked = CASE
    WHEN getvariable('lake_version') IS NOT NULL
         AND NOT list_contains(list_transform(ledgerlake_commits('transfers', NULL, NULL),
                                              lambda f: ledgerlake_log_version(f)), getvariable('lake_version'))
        THEN error('ledgerlake: the transfers table has no version ' || getvariable('lake_version')
                   || ' (its versions go up to ' || coalesce(CAST(getvariable('ledgerlake_transfers_latest') AS VARCHAR), 'none: no table') || ')')
    END;
SET VARIABLE ledgerlake_transfers_version = coalesce(getvariable('lake_version'), getvariable('ledgerlake_transfers_latest'));

-- Time travel: what transfers version N records. ledgerlake writes in each transfers commit the
-- accounts and swept_accounts versions it follows (commitInfo.ledgerlake.tableVersions): those
-- are read, exactly. A commit without them (version 0, or a lake written by another tool) falls
-- back to commit times: each other table at its newest commit whose commitInfo.timestamp (ms) is
-- no later than that of transfers N. An exporter commits a segment's accounts before its
-- transfers, so no segment of the snapshot loses its accounts; a later segment's accounts that
-- share the millisecond are dropped by the first_seen_timestamp bound below.
SET VARIABLE ledgerlake_as_of_commit = CASE WHEN getvariable('lake_version') IS NOT NULL THEN
    ledgerlake_commits('transfers', getvariable('lake_version') - 1, getvariable('lake_version')) END;
SET VARIABLE ledgerlake_as_of = (
    SELECT {'ms': max(commitInfo."timestamp"), 'pins': max(commitInfo.ledgerlake.tableVersions)}
    FROM query(CASE WHEN len(coalesce(getvariable('ledgerlake_as_of_commit'), []::VARCHAR[])) = 0
                    THEN 'SELECT NULL::STRUCT("timestamp" BIGINT, ledgerlake STRUCT(tableVersions STRUCT(accounts BIGINT, swept_accounts BIGINT))) AS commitInfo'
                    ELSE 'SELECT commitInfo FROM read_json(getvariable(''ledgerlake_as_of_commit''), format = ''newline_delimited'', '
                         || 'columns = {''commitInfo'': ''STRUCT("timestamp" BIGINT, ledgerlake STRUCT(tableVersions STRUCT(accounts BIGINT, swept_accounts BIGINT)))''})'
               END));
SET VARIABLE ledgerlake_as_of_ms = getvariable('ledgerlake_as_of').ms;
SET VARIABLE ledgerlake_pinned = getvariable('ledgerlake_as_of').pins IS NOT NULL;
SET VARIABLE ledgerlake_checked = CASE
    WHEN getvariable('lake_version') IS NOT NULL AND NOT getvariable('ledgerlake_pinned')
         AND getvariable('ledgerlake_as_of_ms') IS NULL
        THEN error('ledgerlake: transfers version ' || getvariable('lake_version')
                   || ' records neither commitInfo.ledgerlake.tableVersions nor commitInfo.timestamp')
    END;

-- The version of `accounts` (then `swept_accounts`): the one recorded, or, by commit times, its
-- checkpoints bracket the time (the newest made no later, the first made after), then the
-- commits between them decide.
SET VARIABLE ledgerlake_accounts_cp_commits = CASE WHEN getvariable('lake_version') IS NOT NULL AND NOT getvariable('ledgerlake_pinned') THEN
    list_filter(ledgerlake_commits('accounts', NULL, NULL), lambda f:
        list_contains(ledgerlake_checkpoint_versions('accounts', NULL), ledgerlake_log_version(f))) END;
SET VARIABLE ledgerlake_accounts_bracket = (
    SELECT {'lo': max(version) FILTER (WHERE ts <= getvariable('ledgerlake_as_of_ms')),
            'hi': min(version) FILTER (WHERE ts > getvariable('ledgerlake_as_of_ms'))}
    FROM query(ledgerlake_commit_times_sql('ledgerlake_accounts_cp_commits')));
SET VARIABLE ledgerlake_accounts_tail_commits = CASE WHEN getvariable('lake_version') IS NOT NULL AND NOT getvariable('ledgerlake_pinned') THEN
    ledgerlake_commits('accounts', getvariable('ledgerlake_accounts_bracket').lo, getvariable('ledgerlake_accounts_bracket').hi) END;
SET VARIABLE ledgerlake_accounts_version = CASE
    WHEN getvariable('lake_version') IS NULL
        THEN list_max(list_transform(ledgerlake_commits('accounts', NULL, NULL), lambda f: ledgerlake_log_version(f)))
    WHEN getvariable('ledgerlake_pinned')
        THEN CASE WHEN len(ledgerlake_commits('accounts', NULL, NULL)) > 0 THEN getvariable('ledgerlake_as_of').pins.accounts END
    ELSE coalesce(
        (SELECT max(version) FROM query(ledgerlake_commit_times_sql('ledgerlake_accounts_tail_commits'))
         WHERE ts <= getvariable('ledgerlake_as_of_ms')),
        getvariable('ledgerlake_accounts_bracket').lo)
    END;

SET VARIABLE ledgerlake_swept_accounts_cp_commits = CASE WHEN getvariable('lake_version') IS NOT NULL AND NOT getvariable('ledgerlake_pinned') THEN
    list_filter(ledgerlake_commits('swept_accounts', NULL, NULL), lambda f:
        list_contains(ledgerlake_checkpoint_versions('swept_accounts', NULL), ledgerlake_log_version(f))) END;
SET VARIABLE ledgerlake_swept_accounts_bracket = (
    SELECT {'lo': max(version) FILTER (WHERE ts <= getvariable('ledgerlake_as_of_ms')),
            'hi': min(version) FILTER (WHERE ts > getvariable('ledgerlake_as_of_ms'))}
    FROM query(ledgerlake_commit_times_sql('ledgerlake_swept_accounts_cp_commits')));
SET VARIABLE ledgerlake_swept_accounts_tail_commits = CASE WHEN getvariable('lake_version') IS NOT NULL AND NOT getvariable('ledgerlake_pinned') THEN
    ledgerlake_commits('swept_accounts', getvariable('ledgerlake_swept_accounts_bracket').lo, getvariable('ledgerlake_swept_accounts_bracket').hi) END;
SET VARIABLE ledgerlake_swept_accounts_version = CASE
    WHEN getvariable('lake_version') IS NULL
        THEN list_max(list_transform(ledgerlake_commits('swept_accounts', NULL, NULL), lambda f: ledgerlake_log_version(f)))
    WHEN getvariable('ledgerlake_pinned')
        THEN CASE WHEN len(ledgerlake_commits('swept_accounts', NULL, NULL)) > 0 THEN getvariable('ledgerlake_as_of').pins.swept_accounts END
    ELSE coalesce(
        (SELECT max(version) FROM query(ledgerlake_commit_times_sql('ledgerlake_swept_accounts_tail_commits'))
         WHERE ts <= getvariable('ledgerlake_as_of_ms')),
        getvariable('ledgerlake_swept_accounts_bracket').lo)
    END;

-- Each table's checkpoint (latest: the one _last_checkpoint names; time travel: the newest at or
-- before the version read) and the commits after it, up to that version.
CREATE OR REPLACE MACRO ledgerlake_last_checkpoint_sql(t) AS
    CASE WHEN list_contains(ledgerlake_log(t), ledgerlake_table_root(t) || '/_delta_log/_last_checkpoint')
         THEN 'SELECT version FROM read_json(' || '''' || replace(ledgerlake_table_root(t), '''', '''''')
              || '/_delta_log/_last_checkpoint'', columns = {''version'': ''BIGINT''})'
         ELSE 'SELECT NULL::BIGINT AS version WHERE false'
    END;
SET VARIABLE ledgerlake_transfers_checkpoint = CASE
    WHEN getvariable('lake_version') IS NULL THEN (SELECT max(version) FROM query(ledgerlake_last_checkpoint_sql('transfers')))
    ELSE list_max(ledgerlake_checkpoint_versions('transfers', getvariable('ledgerlake_transfers_version'))) END;
SET VARIABLE ledgerlake_accounts_checkpoint = CASE
    WHEN getvariable('lake_version') IS NULL THEN (SELECT max(version) FROM query(ledgerlake_last_checkpoint_sql('accounts')))
    ELSE list_max(ledgerlake_checkpoint_versions('accounts', getvariable('ledgerlake_accounts_version'))) END;
SET VARIABLE ledgerlake_swept_accounts_checkpoint = CASE
    WHEN getvariable('lake_version') IS NULL THEN (SELECT max(version) FROM query(ledgerlake_last_checkpoint_sql('swept_accounts')))
    ELSE list_max(ledgerlake_checkpoint_versions('swept_accounts', getvariable('ledgerlake_swept_accounts_version'))) END;
SET VARIABLE ledgerlake_transfers_checkpoint_files = ledgerlake_checkpoint_files('transfers', getvariable('ledgerlake_transfers_checkpoint'));
SET VARIABLE ledgerlake_accounts_checkpoint_files = ledgerlake_checkpoint_files('accounts', getvariable('ledgerlake_accounts_checkpoint'));
SET VARIABLE ledgerlake_swept_accounts_checkpoint_files = ledgerlake_checkpoint_files('swept_accounts', getvariable('ledgerlake_swept_accounts_checkpoint'));
SET VARIABLE ledgerlake_transfers_commits = ledgerlake_commits('transfers',
    getvariable('ledgerlake_transfers_checkpoint'), getvariable('ledgerlake_transfers_version'));
SET VARIABLE ledgerlake_accounts_commits = ledgerlake_commits('accounts',
    getvariable('ledgerlake_accounts_checkpoint'), getvariable('ledgerlake_accounts_version'));
SET VARIABLE ledgerlake_swept_accounts_commits = ledgerlake_commits('swept_accounts',
    getvariable('ledgerlake_swept_accounts_checkpoint'), getvariable('ledgerlake_swept_accounts_version'));

-- A snapshot is whole or an error: the checkpoint it starts from exists in a form this file reads
-- (single-file or multi-part, not a V2 checkpoint), and every commit after it is there.
CREATE OR REPLACE MACRO ledgerlake_check_snapshot(t) AS
    CASE
        WHEN getvariable('ledgerlake_' || t || '_checkpoint') IS NOT NULL
             AND len(getvariable('ledgerlake_' || t || '_checkpoint_files')) = 0
            THEN error('ledgerlake: ' || t || ' has no readable checkpoint at version '
                       || getvariable('ledgerlake_' || t || '_checkpoint')
                       || ' (named by _last_checkpoint; only single-file and multi-part checkpoints are read)')
        WHEN getvariable('ledgerlake_' || t || '_version') IS NOT NULL
             AND len(getvariable('ledgerlake_' || t || '_commits'))
                 <> getvariable('ledgerlake_' || t || '_version') - coalesce(getvariable('ledgerlake_' || t || '_checkpoint'), -1)
            THEN error('ledgerlake: ' || t || ' log is missing commits between version '
                       || coalesce(CAST(getvariable('ledgerlake_' || t || '_checkpoint') AS VARCHAR), 'start')
                       || ' and ' || getvariable('ledgerlake_' || t || '_version'))
    END;
SET VARIABLE ledgerlake_checked = ledgerlake_check_snapshot('transfers');
SET VARIABLE ledgerlake_checked = ledgerlake_check_snapshot('accounts');
SET VARIABLE ledgerlake_checked = ledgerlake_check_snapshot('swept_accounts');

-- The active files (the log reader only; NULL: the table has none).
SET VARIABLE ledgerlake_transfers_files = CASE WHEN getvariable('lake_reader') = 'log'
    AND getvariable('ledgerlake_transfers_version') IS NOT NULL THEN ledgerlake_active_files('transfers') END;
SET VARIABLE ledgerlake_accounts_files = CASE WHEN getvariable('lake_reader') = 'log'
    AND getvariable('ledgerlake_accounts_version') IS NOT NULL THEN ledgerlake_active_files('accounts') END;
SET VARIABLE ledgerlake_swept_accounts_files = CASE WHEN getvariable('lake_reader') = 'log'
    AND getvariable('ledgerlake_swept_accounts_version') IS NOT NULL THEN ledgerlake_active_files('swept_accounts') END;

-- The last event timestamp in the transfers snapshot, from its files' names
-- (`<first_ts>-<last_ts>-<digest16>.parquet`; the delta reader asks the data). Accounts rows first
-- seen after it are not part of the lake at that version: an accounts file whose transfers twin
-- is not (yet) committed is an orphan, which readers ignore.
SET VARIABLE ledgerlake_transfers_last_ts = CASE WHEN getvariable('lake_reader') = 'log' THEN
    list_max(list_transform(coalesce(getvariable('ledgerlake_transfers_files'), []::VARCHAR[]),
        lambda f: TRY_CAST(regexp_extract(f, '(\d+)-(\d+)-[0-9a-f]+\.parquet$', 2) AS BIGINT))) END;
SET VARIABLE ledgerlake_checked = CASE
    WHEN getvariable('lake_reader') = 'log' AND len(coalesce(getvariable('ledgerlake_transfers_files'), []::VARCHAR[])) > 0
         AND len(list_filter(getvariable('ledgerlake_transfers_files'),
                             lambda f: NOT regexp_matches(f, '/\d+-\d+-[0-9a-f]+\.parquet$'))) > 0
        THEN error('ledgerlake: a transfers data file is not named <first_ts>-<last_ts>-<digest16>.parquet: '
                   || list_filter(getvariable('ledgerlake_transfers_files'),
                                  lambda f: NOT regexp_matches(f, '/\d+-\d+-[0-9a-f]+\.parquet$'))[1])
    END;

-- SQL text of each raw table. With nothing to read it is a typed empty SELECT (the columns of
-- schemas/lake.md, `date` last).
SET VARIABLE ledgerlake_transfers_empty = 'SELECT
    NULL::BIGINT AS "timestamp", NULL::TINYINT AS "event_type", NULL::BIGINT AS "ledger",
    NULL::BIGINT AS "transfer_id", NULL::DECIMAL(21,0) AS "transfer_id_e18",
    NULL::DECIMAL(38,0) AS "amount", NULL::TINYINT AS "amount_e38",
    NULL::BIGINT AS "pending_id", NULL::DECIMAL(21,0) AS "pending_id_e18",
    NULL::BIGINT AS "user_data_128", NULL::DECIMAL(21,0) AS "user_data_128_e18",
    NULL::DECIMAL(20,0) AS "user_data_64", NULL::BIGINT AS "user_data_32", NULL::BIGINT AS "timeout",
    NULL::INTEGER AS "code", NULL::INTEGER AS "flags", NULL::BIGINT AS "transfer_timestamp",
    NULL::BIGINT AS "debit_account_id", NULL::DECIMAL(21,0) AS "debit_account_id_e18",
    NULL::DECIMAL(38,0) AS "debit_account_debits_pending", NULL::TINYINT AS "debit_account_debits_pending_e38",
    NULL::DECIMAL(38,0) AS "debit_account_debits_posted", NULL::TINYINT AS "debit_account_debits_posted_e38",
    NULL::DECIMAL(38,0) AS "debit_account_credits_pending", NULL::TINYINT AS "debit_account_credits_pending_e38",
    NULL::DECIMAL(38,0) AS "debit_account_credits_posted", NULL::TINYINT AS "debit_account_credits_posted_e38",
    NULL::INTEGER AS "debit_account_flags",
    NULL::BIGINT AS "credit_account_id", NULL::DECIMAL(21,0) AS "credit_account_id_e18",
    NULL::DECIMAL(38,0) AS "credit_account_debits_pending", NULL::TINYINT AS "credit_account_debits_pending_e38",
    NULL::DECIMAL(38,0) AS "credit_account_debits_posted", NULL::TINYINT AS "credit_account_debits_posted_e38",
    NULL::DECIMAL(38,0) AS "credit_account_credits_pending", NULL::TINYINT AS "credit_account_credits_pending_e38",
    NULL::DECIMAL(38,0) AS "credit_account_credits_posted", NULL::TINYINT AS "credit_account_credits_posted_e38",
    NULL::INTEGER AS "credit_account_flags", NULL::DATE AS "date"
WHERE false';
SET VARIABLE ledgerlake_accounts_empty = 'SELECT
    NULL::BIGINT AS "id", NULL::DECIMAL(21,0) AS "id_e18", NULL::BIGINT AS "ledger",
    NULL::INTEGER AS "code", NULL::INTEGER AS "flags", NULL::BIGINT AS "user_data_128",
    NULL::DECIMAL(21,0) AS "user_data_128_e18", NULL::DECIMAL(20,0) AS "user_data_64",
    NULL::BIGINT AS "user_data_32", NULL::BIGINT AS "timestamp", NULL::BIGINT AS "first_seen_timestamp",
    NULL::DATE AS "date"
WHERE false';
SET VARIABLE ledgerlake_swept_accounts_empty = 'SELECT
    NULL::BIGINT AS "id", NULL::DECIMAL(21,0) AS "id_e18", NULL::BIGINT AS "ledger",
    NULL::INTEGER AS "code", NULL::INTEGER AS "flags", NULL::BIGINT AS "user_data_128",
    NULL::DECIMAL(21,0) AS "user_data_128_e18", NULL::DECIMAL(20,0) AS "user_data_64",
    NULL::BIGINT AS "user_data_32", NULL::BIGINT AS "timestamp", NULL::BIGINT AS "first_seen_timestamp"
WHERE false';
CREATE OR REPLACE MACRO ledgerlake_table_sql(t, partitioned) AS
    CASE
        WHEN getvariable('ledgerlake_' || t || '_version') IS NULL
             OR (getvariable('lake_reader') = 'log' AND getvariable('ledgerlake_' || t || '_files') IS NULL)
            THEN getvariable('ledgerlake_' || t || '_empty')
        WHEN getvariable('lake_reader') = 'delta'
            THEN 'SELECT * FROM delta_scan(''' || replace(ledgerlake_table_root(t), '''', '''''') || ''''
                 || CASE WHEN getvariable('lake_version') IS NULL THEN ''
                         ELSE ', version := ' || getvariable('ledgerlake_' || t || '_version') END || ')'
        WHEN partitioned
            THEN 'SELECT * FROM read_parquet(getvariable(''ledgerlake_' || t || '_files''), '
                 || 'hive_partitioning = true, hive_types = {''date'': DATE})'
        ELSE 'SELECT * FROM read_parquet(getvariable(''ledgerlake_' || t || '_files''), hive_partitioning = false)'
    END;
SET VARIABLE ledgerlake_transfers_sql = ledgerlake_table_sql('transfers', true);
SET VARIABLE ledgerlake_accounts_sql = ledgerlake_table_sql('accounts', true);
SET VARIABLE ledgerlake_swept_accounts_sql = ledgerlake_table_sql('swept_accounts', false);

SET VARIABLE ledgerlake_transfers_last_ts = CASE WHEN getvariable('lake_reader') = 'log'
    THEN getvariable('ledgerlake_transfers_last_ts')
    ELSE (SELECT max(timestamp) FROM query(getvariable('ledgerlake_transfers_sql'))) END;

---------------------------------------------------------------------------------------------------
-- The lake as stored: raw rows, stored columns plus the `date` partition (DATE). A filter on
-- `date` skips whole files.

CREATE OR REPLACE VIEW lake_transfers AS
SELECT * FROM query(getvariable('ledgerlake_transfers_sql'));
CREATE OR REPLACE VIEW lake_accounts AS
SELECT * FROM query(getvariable('ledgerlake_accounts_sql'))
WHERE first_seen_timestamp <= getvariable('ledgerlake_transfers_last_ts');
-- Accounts recorded by the exporter's account sweep (`export --addresses`): accounts no CDC event
-- showed. Same columns, no `date` partition. A lake exported without the sweep has no such table.
CREATE OR REPLACE VIEW lake_swept_accounts AS
SELECT * FROM query(getvariable('ledgerlake_swept_accounts_sql'));
---------------------------------------------------------------------------------------------------
-- events: one row per CDC event.

CREATE OR REPLACE VIEW events AS
SELECT
    timestamp,                                       -- event ns (for an expiry: when it was expired)
    tb_time(timestamp)                               AS time,
    date,                                            -- UTC day of `timestamp`: the partition
    event_type,
    event_type_name(event_type)                      AS event,
    ledger,
    id128(transfer_id, transfer_id_e18)             AS transfer_id,
    u128(amount, amount_e38)                       AS amount,
    id128(pending_id, pending_id_e18)               AS pending_id,   -- 0: none
    -- the pending transfer that this event posts, voids or expires
    CASE WHEN event_type IN (2, 3) THEN id128(pending_id, pending_id_e18)
         WHEN event_type = 4 THEN id128(transfer_id, transfer_id_e18) END AS resolves_pending_id,
    id128(user_data_128, user_data_128_e18)         AS user_data_128,
    CAST(user_data_64 AS UBIGINT)                    AS user_data_64,
    user_data_32,
    timeout,
    code,
    flags,
    transfer_flags(flags)                            AS flag_names,
    transfer_timestamp,
    CASE WHEN flags & 2 <> 0 AND timeout > 0
         THEN transfer_timestamp + timeout * 1000000000 END AS expires_at,
    id128(debit_account_id, debit_account_id_e18)                       AS debit_account_id,
    u128(debit_account_debits_pending, debit_account_debits_pending_e38)   AS debit_account_debits_pending,
    u128(debit_account_debits_posted, debit_account_debits_posted_e38)     AS debit_account_debits_posted,
    u128(debit_account_credits_pending, debit_account_credits_pending_e38) AS debit_account_credits_pending,
    u128(debit_account_credits_posted, debit_account_credits_posted_e38)   AS debit_account_credits_posted,
    debit_account_flags,
    id128(credit_account_id, credit_account_id_e18)                       AS credit_account_id,
    u128(credit_account_debits_pending, credit_account_debits_pending_e38)   AS credit_account_debits_pending,
    u128(credit_account_debits_posted, credit_account_debits_posted_e38)     AS credit_account_debits_posted,
    u128(credit_account_credits_pending, credit_account_credits_pending_e38) AS credit_account_credits_pending,
    u128(credit_account_credits_posted, credit_account_credits_posted_e38)   AS credit_account_credits_posted,
    credit_account_flags,
    -- the stored pairs of the ids, for lookups that row-group statistics prune
    t.transfer_id AS transfer_id_m18, t.transfer_id_e18, t.pending_id AS pending_id_m18, t.pending_id_e18,
    t.user_data_128 AS user_data_128_m18, t.user_data_128_e18,
    t.debit_account_id AS debit_account_id_m18, t.debit_account_id_e18,
    t.credit_account_id AS credit_account_id_m18, t.credit_account_id_e18
FROM lake_transfers t;

---------------------------------------------------------------------------------------------------
-- accounts: one row per account. An account can have several records: every segment records
-- each account its events touch, and the account sweep records the accounts no transfer had
-- touched when it read them. The view keeps the record first seen (smallest
-- first_seen_timestamp; on a tie the swept one), as every ledgerlake reader does. Records of one
-- account agree on its immutable fields (ledger, code, user data, creation timestamp); those
-- that do not are listed by `account_record_conflicts` (and named by `ledgerlake verify`).

CREATE OR REPLACE VIEW account_records AS
SELECT
    id128(id, id_e18)                       AS id,
    ledger,
    code,
    flags,                                   -- as first seen; later events carry current flags
    account_flags(flags)                     AS flag_names,
    id128(user_data_128, user_data_128_e18) AS user_data_128,
    CAST(user_data_64 AS UBIGINT)            AS user_data_64,
    user_data_32,
    timestamp,                               -- creation
    tb_time(timestamp)                       AS time,
    first_seen_timestamp,
    tb_time(first_seen_timestamp)            AS first_seen_time,
    date                                     AS first_seen_date,
    false                                    AS swept,
    a.id AS id_m18, a.id_e18
FROM lake_accounts a
UNION ALL
SELECT
    id128(id, id_e18), ledger, code, flags, account_flags(flags),
    id128(user_data_128, user_data_128_e18), CAST(user_data_64 AS UBIGINT), user_data_32,
    timestamp, tb_time(timestamp), first_seen_timestamp, tb_time(first_seen_timestamp),
    tb_date(first_seen_timestamp),
    true                                     AS swept,    -- recorded by the account sweep
    s.id, s.id_e18
FROM lake_swept_accounts s;

CREATE OR REPLACE VIEW accounts AS
SELECT * FROM account_records
QUALIFY row_number() OVER (PARTITION BY id ORDER BY first_seen_timestamp, swept DESC) = 1;

-- Accounts whose records disagree on an immutable field: empty for a sound lake.
CREATE OR REPLACE VIEW account_record_conflicts AS
SELECT id, count(*) AS records,
       count(DISTINCT (ledger, code, user_data_128, user_data_64, user_data_32, timestamp)) AS versions
FROM account_records
GROUP BY id
HAVING count(DISTINCT (ledger, code, user_data_128, user_data_64, user_data_32, timestamp)) > 1;

---------------------------------------------------------------------------------------------------
-- movements: one row per account per event (two per event: its debit and its credit account).
--
-- An event changes only its own side's balances of an account (debits_* for the debit account,
-- credits_* for the credit account), so its effect is three non-negative UHUGEINTs:
--   posted_increase   added to <side>s_posted   (single_phase, two_phase_posted: the posted amount)
--   pending_increase  added to <side>s_pending  (two_phase_pending)
--   pending_decrease  taken from <side>s_pending (posted, voided, expired: the pending amount)
-- A signed delta would not be exact: ±(2^128-1) fits neither HUGEINT nor DECIMAL(38).
-- For a post, the pending amount is the amount of the pending transfer's own event (NULL if that
-- event is not in the lake); a void or an expiry carries it as its own amount. The join is on
-- equality only, so that DuckDB hashes it (with `event_type = 2` in it, it became a nested loop:
-- minutes for a million events); pending_id is 0 except on posts and voids, and no id is 0.

CREATE OR REPLACE VIEW lake_pending_amounts AS
SELECT transfer_id AS p_m18, transfer_id_e18 AS p_e18, amount AS p_amount, amount_e38 AS p_amount_e38
FROM lake_transfers WHERE event_type = 1;

CREATE OR REPLACE VIEW movements AS
SELECT
    t.timestamp, tb_time(t.timestamp) AS time, t.date, t.event_type, event_type_name(t.event_type) AS event,
    t.ledger, t.code, id128(t.transfer_id, t.transfer_id_e18) AS transfer_id,
    id128(t.debit_account_id, t.debit_account_id_e18)   AS account_id,
    'debit'                                              AS side,
    id128(t.credit_account_id, t.credit_account_id_e18) AS counterparty_id,
    u128(t.amount, t.amount_e38)                       AS amount,
    CASE WHEN t.event_type IN (0, 2) THEN u128(t.amount, t.amount_e38) ELSE 0 END AS posted_increase,
    CASE WHEN t.event_type = 1 THEN u128(t.amount, t.amount_e38) ELSE 0 END        AS pending_increase,
    CASE WHEN t.event_type IN (3, 4) THEN u128(t.amount, t.amount_e38)
         WHEN t.event_type = 2 THEN u128(p.p_amount, p.p_amount_e38) ELSE 0 END    AS pending_decrease,
    u128(t.debit_account_debits_pending, t.debit_account_debits_pending_e38)   AS debits_pending,
    u128(t.debit_account_debits_posted, t.debit_account_debits_posted_e38)     AS debits_posted,
    u128(t.debit_account_credits_pending, t.debit_account_credits_pending_e38) AS credits_pending,
    u128(t.debit_account_credits_posted, t.debit_account_credits_posted_e38)   AS credits_posted,
    t.debit_account_flags AS account_flags,
    t.debit_account_id AS account_id_m18, t.debit_account_id_e18 AS account_id_e18
FROM lake_transfers t
LEFT JOIN lake_pending_amounts p
       ON p.p_m18 = t.pending_id AND p.p_e18 = t.pending_id_e18
UNION ALL
SELECT
    t.timestamp, tb_time(t.timestamp) AS time, t.date, t.event_type, event_type_name(t.event_type) AS event,
    t.ledger, t.code, id128(t.transfer_id, t.transfer_id_e18) AS transfer_id,
    id128(t.credit_account_id, t.credit_account_id_e18) AS account_id,
    'credit'                                             AS side,
    id128(t.debit_account_id, t.debit_account_id_e18)   AS counterparty_id,
    u128(t.amount, t.amount_e38)                       AS amount,
    CASE WHEN t.event_type IN (0, 2) THEN u128(t.amount, t.amount_e38) ELSE 0 END AS posted_increase,
    CASE WHEN t.event_type = 1 THEN u128(t.amount, t.amount_e38) ELSE 0 END        AS pending_increase,
    CASE WHEN t.event_type IN (3, 4) THEN u128(t.amount, t.amount_e38)
         WHEN t.event_type = 2 THEN u128(p.p_amount, p.p_amount_e38) ELSE 0 END    AS pending_decrease,
    u128(t.credit_account_debits_pending, t.credit_account_debits_pending_e38)   AS debits_pending,
    u128(t.credit_account_debits_posted, t.credit_account_debits_posted_e38)     AS debits_posted,
    u128(t.credit_account_credits_pending, t.credit_account_credits_pending_e38) AS credits_pending,
    u128(t.credit_account_credits_posted, t.credit_account_credits_posted_e38)   AS credits_posted,
    t.credit_account_flags AS account_flags,
    t.credit_account_id AS account_id_m18, t.credit_account_id_e18 AS account_id_e18
FROM lake_transfers t
LEFT JOIN lake_pending_amounts p
       ON p.p_m18 = t.pending_id AND p.p_e18 = t.pending_id_e18;

---------------------------------------------------------------------------------------------------
-- Balances at a point in time. All times are TigerBeetle ns (use tb_ns('2024-03-01T12:00:00Z')).
-- Every bounded macro also bounds `date`, so files of later days are never opened.

-- Each account's balances after its last event at or before as_of_ns (accounts with an event).
CREATE OR REPLACE MACRO balances_as_of(as_of_ns) AS TABLE
SELECT account_id, ledger, debits_pending, debits_posted, credits_pending, credits_posted,
       account_flags, timestamp AS last_event_timestamp
FROM (
    SELECT id128(debit_account_id, debit_account_id_e18) AS account_id, ledger, timestamp,
           u128(debit_account_debits_pending, debit_account_debits_pending_e38)   AS debits_pending,
           u128(debit_account_debits_posted, debit_account_debits_posted_e38)     AS debits_posted,
           u128(debit_account_credits_pending, debit_account_credits_pending_e38) AS credits_pending,
           u128(debit_account_credits_posted, debit_account_credits_posted_e38)   AS credits_posted,
           debit_account_flags AS account_flags
    FROM lake_transfers
    WHERE timestamp <= tb_bound(as_of_ns) AND date <= tb_date(as_of_ns)
    UNION ALL
    SELECT id128(credit_account_id, credit_account_id_e18), ledger, timestamp,
           u128(credit_account_debits_pending, credit_account_debits_pending_e38),
           u128(credit_account_debits_posted, credit_account_debits_posted_e38),
           u128(credit_account_credits_pending, credit_account_credits_pending_e38),
           u128(credit_account_credits_posted, credit_account_credits_posted_e38),
           credit_account_flags
    FROM lake_transfers
    WHERE timestamp <= tb_bound(as_of_ns) AND date <= tb_date(as_of_ns)
)
QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY timestamp DESC) = 1;

-- One account's balances as of a time (no row: the account had no event by then). The id is
-- decimal text; the lookup is on the stored pair, so row groups without the account are skipped.
CREATE OR REPLACE MACRO balance_of(account_text, as_of_ns) AS TABLE
SELECT account_id, ledger, debits_pending, debits_posted, credits_pending, credits_posted,
       account_flags, timestamp AS last_event_timestamp, tb_time(timestamp) AS last_event_time
FROM movements
WHERE account_id_m18 = id_m18(account_text) AND account_id_e18 = id_e18(account_text)
  AND timestamp <= tb_bound(as_of_ns) AND date <= tb_date(as_of_ns)
ORDER BY timestamp DESC
LIMIT 1;

-- An account's statement: its events with from_ns <= timestamp <= to_ns, oldest first.
CREATE OR REPLACE MACRO statement(account_text, from_ns, to_ns) AS TABLE
SELECT timestamp, time, event, event_type, transfer_id, side, counterparty_id, amount,
       posted_increase, pending_increase, pending_decrease,
       debits_pending, debits_posted, credits_pending, credits_posted, code, ledger
FROM movements
WHERE account_id_m18 = id_m18(account_text) AND account_id_e18 = id_e18(account_text)
  AND timestamp BETWEEN tb_bound(from_ns) AND tb_bound(to_ns)
  AND date BETWEEN tb_date(from_ns) AND tb_date(to_ns)
ORDER BY timestamp;

-- Per ledger, as of a time: the exact sums over accounts of the four balances (BIGNUM: a ledger's
-- total can exceed u128::MAX even though each account's balance cannot) and whether
-- Σ debits = Σ credits for both posted and pending.
CREATE OR REPLACE MACRO trial_balance(as_of_ns) AS TABLE
SELECT ledger,
       count(*)                       AS accounts,
       exact_sum(debits_pending)      AS debits_pending,
       exact_sum(debits_posted)       AS debits_posted,
       exact_sum(credits_pending)     AS credits_pending,
       exact_sum(credits_posted)      AS credits_posted,
       exact_sum(debits_posted) = exact_sum(credits_posted)
         AND exact_sum(debits_pending) = exact_sum(credits_pending) AS balanced
FROM balances_as_of(as_of_ns)
GROUP BY ledger
ORDER BY ledger;

-- Pending transfers that hold a pending balance at as_of_ns: pending at or before it, and not
-- posted, voided or expired at or before it. TigerBeetle removes an expired transfer's pending
-- balance at or after its expiry time, so a transfer can be past_expiry yet still open: the sum of
-- open amounts always equals the pending balances that balances_as_of shows.
CREATE OR REPLACE MACRO pending_open_at(as_of_ns) AS TABLE
SELECT p.transfer_id, p.ledger, p.code, p.debit_account_id, p.credit_account_id, p.amount,
       p.timestamp AS created, p.time AS created_time, p.timeout, p.expires_at,
       p.expires_at <= tb_bound(as_of_ns) AS past_expiry,
       p.user_data_128, p.user_data_64, p.user_data_32
FROM events p
ANTI JOIN (
    SELECT CASE WHEN event_type = 4 THEN transfer_id ELSE pending_id END AS r_m18,
           CASE WHEN event_type = 4 THEN transfer_id_e18 ELSE pending_id_e18 END AS r_e18
    FROM lake_transfers
    WHERE event_type IN (2, 3, 4)
      AND timestamp <= tb_bound(as_of_ns) AND date <= tb_date(as_of_ns)
) r ON r.r_m18 = p.transfer_id_m18 AND r.r_e18 = p.transfer_id_e18
WHERE p.event_type = 1 AND p.timestamp <= tb_bound(as_of_ns) AND p.date <= tb_date(as_of_ns)
ORDER BY p.timestamp;

-- Pending transfers that expired: when they were created, when they were due, when the cluster
-- expired them (its pulse runs at or after the expiry time).
CREATE OR REPLACE VIEW expired_pending AS
SELECT transfer_id, ledger, code, debit_account_id, credit_account_id, amount,
       transfer_timestamp AS created, tb_time(transfer_timestamp) AS created_time, timeout,
       expires_at, tb_time(expires_at) AS expires_time,
       timestamp AS expired_at, time AS expired_time, date AS expired_date,
       timestamp - expires_at AS expiry_lag_ns,
       user_data_128, user_data_64, user_data_32
FROM events
WHERE event_type = 4;

-- Per UTC day, ledger and code: events, and exact amounts by what happened to them.
--   posted_amount   single-phase transfers and posts (money that moved to *_posted)
--   pending_amount  new pending transfers; voided_amount, expired_amount  pending money released
CREATE OR REPLACE VIEW daily_volume AS
SELECT date, ledger, code,
       count(*)                                                     AS events,
       count(*) FILTER (WHERE event_type IN (0, 2))                 AS posted_count,
       coalesce(exact_sum(CASE WHEN event_type IN (0, 2) THEN u128(amount, amount_e38) END), CAST(0 AS BIGNUM)) AS posted_amount,
       coalesce(exact_sum(CASE WHEN event_type = 1 THEN u128(amount, amount_e38) END), CAST(0 AS BIGNUM))       AS pending_amount,
       coalesce(exact_sum(CASE WHEN event_type = 3 THEN u128(amount, amount_e38) END), CAST(0 AS BIGNUM))       AS voided_amount,
       coalesce(exact_sum(CASE WHEN event_type = 4 THEN u128(amount, amount_e38) END), CAST(0 AS BIGNUM))       AS expired_amount
FROM lake_transfers
GROUP BY date, ledger, code;

-- An account's n largest counterparties by posted money, both directions: paid (this account
-- debited), received (credited), total = paid + received, net = received - paid (exact BIGNUMs).
CREATE OR REPLACE MACRO top_counterparties(account_text, n) AS TABLE
SELECT counterparty_id,
       count(*)                                                                          AS transfers,
       coalesce(exact_sum(CASE WHEN side = 'debit' THEN amount END), CAST(0 AS BIGNUM))      AS paid,
       coalesce(exact_sum(CASE WHEN side = 'credit' THEN amount END), CAST(0 AS BIGNUM))     AS received,
       exact_sum(amount)                                                                 AS total,
       coalesce(exact_sum(CASE WHEN side = 'credit' THEN amount END), CAST(0 AS BIGNUM))
         - coalesce(exact_sum(CASE WHEN side = 'debit' THEN amount END), CAST(0 AS BIGNUM))  AS net
FROM movements
WHERE account_id_m18 = id_m18(account_text) AND account_id_e18 = id_e18(account_text)
  AND event_type IN (0, 2)
GROUP BY counterparty_id
ORDER BY total DESC, counterparty_id
LIMIT n;

-- Events whose transfer carries the given user data (NULL: any); user_data_128 as decimal text.
CREATE OR REPLACE MACRO transfers_by_user_data(ud128 := NULL, ud64 := NULL, ud32 := NULL) AS TABLE
SELECT *
FROM events
WHERE (ud128 IS NULL OR (user_data_128_m18 = id_m18(ud128) AND user_data_128_e18 = id_e18(ud128)))
  AND (ud64 IS NULL OR user_data_64 = CAST(ud64 AS UBIGINT))
  AND (ud32 IS NULL OR user_data_32 = CAST(ud32 AS UINTEGER))
ORDER BY timestamp;
