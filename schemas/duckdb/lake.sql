-- ledgerlake: DuckDB views and macros over a lake (format version 1).
--
-- Load (DuckDB CLI; the lake is a directory, or s3://bucket/prefix with the httpfs extension):
--
--   duckdb -cmd "SET VARIABLE lake = '/srv/ledger-lake'" -cmd ".read schemas/duckdb/lake.sql"
--
-- The variable must be set before this file runs (`-init` would run it before any `-cmd`). Every
-- view reads the lake named by the variable at query time: `SET VARIABLE lake = '...'` points the
-- same session at another lake. Plain SQL, no dot-commands: any client can execute this file.
--
-- Types. A u128 is stored as two UBIGINT halves `<name>_hi`, `<name>_lo`; the views show it as an
-- exact UHUGEINT and keep the halves of ids (for lookups that Parquet statistics can prune).
-- Timestamps are TigerBeetle nanoseconds (UBIGINT); `time` columns are TIMESTAMP_NS in UTC.
-- Sums of money are BIGNUM (arbitrary precision, exact): DuckDB's sum(UHUGEINT) returns a DOUBLE
-- and sum(HUGEINT) can wrap around silently on overflow (seen with 1.5.6), so neither is used. No result that carries
-- money is DOUBLE.

SET VARIABLE lake = rtrim(getvariable('lake'), '/');
SET VARIABLE ledgerlake_checked = CASE WHEN getvariable('lake') IS NULL OR getvariable('lake') = ''
    THEN error('ledgerlake: set the lake first: duckdb -cmd "SET VARIABLE lake = ''/path/to/lake''" -cmd ".read schemas/duckdb/lake.sql"')
    END;

---------------------------------------------------------------------------------------------------
-- Scalar macros

-- The exact u128 from its stored halves.
CREATE OR REPLACE MACRO u128(hi, lo) AS
    (CAST(hi AS UHUGEINT) << 64) | CAST(lo AS UHUGEINT);
-- The halves of a u128 given as decimal text (or any integer): compare them with the stored
-- columns, e.g. `debit_account_id_hi = u128_hi('1234') AND debit_account_id_lo = u128_lo('1234')`,
-- so that DuckDB prunes row groups by their min/max statistics.
CREATE OR REPLACE MACRO u128_hi(x) AS
    CAST(CAST(x AS UHUGEINT) >> 64 AS UBIGINT);
CREATE OR REPLACE MACRO u128_lo(x) AS
    CAST(CAST(x AS UHUGEINT) & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT);
-- An exact sum of u128 (or any integer) values, as BIGNUM: never DOUBLE, never wraps, never overflows.
CREATE OR REPLACE MACRO exact_sum(x) AS
    sum(CAST(x AS BIGNUM));
-- u128::MAX, to test whether a BIGNUM total still fits a u128.
CREATE OR REPLACE MACRO u128_max() AS
    CAST(CAST('340282366920938463463374607431768211455' AS UHUGEINT) AS BIGNUM);

-- TigerBeetle time (ns since the Unix epoch) as TIMESTAMP_NS (UTC, all 9 digits kept), as
-- RFC 3339 text with 9 fraction digits, and as the UTC date (the lake's `date=` partition).
CREATE OR REPLACE MACRO tb_time(ns) AS
    make_timestamp_ns(CAST(ns AS BIGINT));
CREATE OR REPLACE MACRO tb_time_text(ns) AS
    strftime(make_timestamp_ns(CAST(ns AS BIGINT)), '%Y-%m-%dT%H:%M:%S') || '.'
    || lpad(CAST(CAST(ns AS UBIGINT) % 1000000000 AS VARCHAR), 9, '0') || 'Z';
CREATE OR REPLACE MACRO tb_date(ns) AS
    CAST(make_timestamp_ns(CAST(ns AS BIGINT)) AS DATE);
-- The other way: TigerBeetle ns from a timestamp or RFC 3339 text ('2024-03-01T12:00:00.5Z',
-- '2024-03-01 13:00:00+01:00'; text without an offset is UTC).
CREATE OR REPLACE MACRO tb_ns(t) AS
    CAST(epoch_ns(CAST(t AS TIMESTAMP_NS)) AS UBIGINT);

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
-- The lake as stored

CREATE OR REPLACE VIEW lake_info AS
SELECT format_version, CAST(cluster_id AS UHUGEINT) AS cluster_id, getvariable('lake') AS lake
FROM read_json(getvariable('lake') || '/_ledgerlake.json',
               columns = {'format_version': 'UINTEGER', 'cluster_id': 'VARCHAR'});

SET VARIABLE ledgerlake_checked = (
    SELECT CASE WHEN format_version IS DISTINCT FROM 1
                THEN error('ledgerlake: lake format_version ' || coalesce(CAST(format_version AS VARCHAR), 'missing')
                           || ' is not 1: these views read version 1 only') END
    FROM lake_info);

-- Raw rows, stored columns plus the `date` partition (DATE). A filter on `date` skips whole files.
CREATE OR REPLACE VIEW lake_transfers AS
SELECT * FROM read_parquet(getvariable('lake') || '/transfers/*/*.parquet',
                           hive_partitioning = true, hive_types = {'date': DATE});
CREATE OR REPLACE VIEW lake_accounts AS
SELECT * FROM read_parquet(getvariable('lake') || '/accounts/*/*.parquet',
                           hive_partitioning = true, hive_types = {'date': DATE});

-- Accounts recorded by the exporter's account sweep (`export --addresses`): accounts no CDC event
-- showed. Same columns, no date partition. A lake exported without the sweep has no such file,
-- and read_parquet refuses an empty list, so the list is taken when this file is loaded (reload
-- to see files swept since) and, when empty, an accounts file stands in and `WHERE false` drops it.
SET VARIABLE ledgerlake_swept_files = (
    SELECT list(file ORDER BY file) FROM glob(getvariable('lake') || '/swept_accounts/*.parquet'));
SET VARIABLE ledgerlake_swept_read = coalesce(
    getvariable('ledgerlake_swept_files'),
    (SELECT list(file ORDER BY file)[1:1] FROM glob(getvariable('lake') || '/accounts/*/*.parquet')));
CREATE OR REPLACE VIEW lake_swept_accounts AS
SELECT * FROM read_parquet(getvariable('ledgerlake_swept_read'), hive_partitioning = false)
WHERE getvariable('ledgerlake_swept_files') IS NOT NULL;

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
    u128(transfer_id_hi, transfer_id_lo)             AS transfer_id,
    u128(amount_hi, amount_lo)                       AS amount,
    u128(pending_id_hi, pending_id_lo)               AS pending_id,   -- 0: none
    -- the pending transfer that this event posts, voids or expires
    CASE WHEN event_type IN (2, 3) THEN u128(pending_id_hi, pending_id_lo)
         WHEN event_type = 4 THEN u128(transfer_id_hi, transfer_id_lo) END AS resolves_pending_id,
    u128(user_data_128_hi, user_data_128_lo)         AS user_data_128,
    user_data_64,
    user_data_32,
    timeout,
    code,
    flags,
    transfer_flags(flags)                            AS flag_names,
    transfer_timestamp,
    CASE WHEN flags & 2 <> 0 AND timeout > 0
         THEN transfer_timestamp + CAST(timeout AS UBIGINT) * 1000000000 END AS expires_at,
    u128(debit_account_id_hi, debit_account_id_lo)                       AS debit_account_id,
    u128(debit_account_debits_pending_hi, debit_account_debits_pending_lo)   AS debit_account_debits_pending,
    u128(debit_account_debits_posted_hi, debit_account_debits_posted_lo)     AS debit_account_debits_posted,
    u128(debit_account_credits_pending_hi, debit_account_credits_pending_lo) AS debit_account_credits_pending,
    u128(debit_account_credits_posted_hi, debit_account_credits_posted_lo)   AS debit_account_credits_posted,
    debit_account_flags,
    u128(credit_account_id_hi, credit_account_id_lo)                       AS credit_account_id,
    u128(credit_account_debits_pending_hi, credit_account_debits_pending_lo)   AS credit_account_debits_pending,
    u128(credit_account_debits_posted_hi, credit_account_debits_posted_lo)     AS credit_account_debits_posted,
    u128(credit_account_credits_pending_hi, credit_account_credits_pending_lo) AS credit_account_credits_pending,
    u128(credit_account_credits_posted_hi, credit_account_credits_posted_lo)   AS credit_account_credits_posted,
    credit_account_flags,
    -- stored halves of the ids, for lookups that row-group statistics prune
    transfer_id_hi, transfer_id_lo, pending_id_hi, pending_id_lo, user_data_128_hi, user_data_128_lo,
    debit_account_id_hi, debit_account_id_lo, credit_account_id_hi, credit_account_id_lo
FROM lake_transfers;

---------------------------------------------------------------------------------------------------
-- accounts: one row per account (the exporter records each account once, when first seen).

CREATE OR REPLACE VIEW accounts AS
SELECT
    u128(id_hi, id_lo)                       AS id,
    ledger,
    code,
    flags,                                   -- as first seen; later events carry current flags
    account_flags(flags)                     AS flag_names,
    u128(user_data_128_hi, user_data_128_lo) AS user_data_128,
    user_data_64,
    user_data_32,
    timestamp,                               -- creation
    tb_time(timestamp)                       AS time,
    first_seen_timestamp,
    tb_time(first_seen_timestamp)            AS first_seen_time,
    date                                     AS first_seen_date,
    false                                    AS swept,
    id_hi, id_lo
FROM lake_accounts
UNION ALL
SELECT
    u128(id_hi, id_lo), ledger, code, flags, account_flags(flags),
    u128(user_data_128_hi, user_data_128_lo), user_data_64, user_data_32,
    timestamp, tb_time(timestamp), first_seen_timestamp, tb_time(first_seen_timestamp),
    tb_date(first_seen_timestamp),
    true                                     AS swept,    -- recorded by the account sweep
    id_hi, id_lo
FROM lake_swept_accounts;

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
SELECT transfer_id_hi AS p_hi, transfer_id_lo AS p_lo, amount_hi AS p_amount_hi, amount_lo AS p_amount_lo
FROM lake_transfers WHERE event_type = 1;

CREATE OR REPLACE VIEW movements AS
SELECT
    t.timestamp, tb_time(t.timestamp) AS time, t.date, t.event_type, event_type_name(t.event_type) AS event,
    t.ledger, t.code, u128(t.transfer_id_hi, t.transfer_id_lo) AS transfer_id,
    u128(t.debit_account_id_hi, t.debit_account_id_lo)   AS account_id,
    'debit'                                              AS side,
    u128(t.credit_account_id_hi, t.credit_account_id_lo) AS counterparty_id,
    u128(t.amount_hi, t.amount_lo)                       AS amount,
    CASE WHEN t.event_type IN (0, 2) THEN u128(t.amount_hi, t.amount_lo) ELSE 0 END AS posted_increase,
    CASE WHEN t.event_type = 1 THEN u128(t.amount_hi, t.amount_lo) ELSE 0 END        AS pending_increase,
    CASE WHEN t.event_type IN (3, 4) THEN u128(t.amount_hi, t.amount_lo)
         WHEN t.event_type = 2 THEN u128(p.p_amount_hi, p.p_amount_lo) ELSE 0 END    AS pending_decrease,
    u128(t.debit_account_debits_pending_hi, t.debit_account_debits_pending_lo)   AS debits_pending,
    u128(t.debit_account_debits_posted_hi, t.debit_account_debits_posted_lo)     AS debits_posted,
    u128(t.debit_account_credits_pending_hi, t.debit_account_credits_pending_lo) AS credits_pending,
    u128(t.debit_account_credits_posted_hi, t.debit_account_credits_posted_lo)   AS credits_posted,
    t.debit_account_flags AS account_flags,
    t.debit_account_id_hi AS account_id_hi, t.debit_account_id_lo AS account_id_lo
FROM lake_transfers t
LEFT JOIN lake_pending_amounts p
       ON p.p_hi = t.pending_id_hi AND p.p_lo = t.pending_id_lo
UNION ALL
SELECT
    t.timestamp, tb_time(t.timestamp) AS time, t.date, t.event_type, event_type_name(t.event_type) AS event,
    t.ledger, t.code, u128(t.transfer_id_hi, t.transfer_id_lo) AS transfer_id,
    u128(t.credit_account_id_hi, t.credit_account_id_lo) AS account_id,
    'credit'                                             AS side,
    u128(t.debit_account_id_hi, t.debit_account_id_lo)   AS counterparty_id,
    u128(t.amount_hi, t.amount_lo)                       AS amount,
    CASE WHEN t.event_type IN (0, 2) THEN u128(t.amount_hi, t.amount_lo) ELSE 0 END AS posted_increase,
    CASE WHEN t.event_type = 1 THEN u128(t.amount_hi, t.amount_lo) ELSE 0 END        AS pending_increase,
    CASE WHEN t.event_type IN (3, 4) THEN u128(t.amount_hi, t.amount_lo)
         WHEN t.event_type = 2 THEN u128(p.p_amount_hi, p.p_amount_lo) ELSE 0 END    AS pending_decrease,
    u128(t.credit_account_debits_pending_hi, t.credit_account_debits_pending_lo)   AS debits_pending,
    u128(t.credit_account_debits_posted_hi, t.credit_account_debits_posted_lo)     AS debits_posted,
    u128(t.credit_account_credits_pending_hi, t.credit_account_credits_pending_lo) AS credits_pending,
    u128(t.credit_account_credits_posted_hi, t.credit_account_credits_posted_lo)   AS credits_posted,
    t.credit_account_flags AS account_flags,
    t.credit_account_id_hi AS account_id_hi, t.credit_account_id_lo AS account_id_lo
FROM lake_transfers t
LEFT JOIN lake_pending_amounts p
       ON p.p_hi = t.pending_id_hi AND p.p_lo = t.pending_id_lo;

---------------------------------------------------------------------------------------------------
-- Balances at a point in time. All times are TigerBeetle ns (use tb_ns('2024-03-01T12:00:00Z')).
-- Every bounded macro also bounds `date`, so files of later days are never opened.

-- Each account's balances after its last event at or before as_of_ns (accounts with an event).
CREATE OR REPLACE MACRO balances_as_of(as_of_ns) AS TABLE
SELECT account_id, ledger, debits_pending, debits_posted, credits_pending, credits_posted,
       account_flags, timestamp AS last_event_timestamp
FROM (
    SELECT u128(debit_account_id_hi, debit_account_id_lo) AS account_id, ledger, timestamp,
           u128(debit_account_debits_pending_hi, debit_account_debits_pending_lo)   AS debits_pending,
           u128(debit_account_debits_posted_hi, debit_account_debits_posted_lo)     AS debits_posted,
           u128(debit_account_credits_pending_hi, debit_account_credits_pending_lo) AS credits_pending,
           u128(debit_account_credits_posted_hi, debit_account_credits_posted_lo)   AS credits_posted,
           debit_account_flags AS account_flags
    FROM lake_transfers
    WHERE timestamp <= CAST(as_of_ns AS UBIGINT) AND date <= tb_date(as_of_ns)
    UNION ALL
    SELECT u128(credit_account_id_hi, credit_account_id_lo), ledger, timestamp,
           u128(credit_account_debits_pending_hi, credit_account_debits_pending_lo),
           u128(credit_account_debits_posted_hi, credit_account_debits_posted_lo),
           u128(credit_account_credits_pending_hi, credit_account_credits_pending_lo),
           u128(credit_account_credits_posted_hi, credit_account_credits_posted_lo),
           credit_account_flags
    FROM lake_transfers
    WHERE timestamp <= CAST(as_of_ns AS UBIGINT) AND date <= tb_date(as_of_ns)
)
QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY timestamp DESC) = 1;

-- One account's balances as of a time (no row: the account had no event by then). The id is
-- decimal text; the lookup is on the stored halves, so row groups without the account are skipped.
CREATE OR REPLACE MACRO balance_of(account_text, as_of_ns) AS TABLE
SELECT account_id, ledger, debits_pending, debits_posted, credits_pending, credits_posted,
       account_flags, timestamp AS last_event_timestamp, tb_time(timestamp) AS last_event_time
FROM movements
WHERE account_id_hi = u128_hi(account_text) AND account_id_lo = u128_lo(account_text)
  AND timestamp <= CAST(as_of_ns AS UBIGINT) AND date <= tb_date(as_of_ns)
ORDER BY timestamp DESC
LIMIT 1;

-- An account's statement: its events with from_ns <= timestamp <= to_ns, oldest first.
CREATE OR REPLACE MACRO statement(account_text, from_ns, to_ns) AS TABLE
SELECT timestamp, time, event, event_type, transfer_id, side, counterparty_id, amount,
       posted_increase, pending_increase, pending_decrease,
       debits_pending, debits_posted, credits_pending, credits_posted, code, ledger
FROM movements
WHERE account_id_hi = u128_hi(account_text) AND account_id_lo = u128_lo(account_text)
  AND timestamp BETWEEN CAST(from_ns AS UBIGINT) AND CAST(to_ns AS UBIGINT)
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
       p.expires_at <= CAST(as_of_ns AS UBIGINT) AS past_expiry,
       p.user_data_128, p.user_data_64, p.user_data_32
FROM events p
ANTI JOIN (
    SELECT CASE WHEN event_type = 4 THEN transfer_id_hi ELSE pending_id_hi END AS r_hi,
           CASE WHEN event_type = 4 THEN transfer_id_lo ELSE pending_id_lo END AS r_lo
    FROM lake_transfers
    WHERE event_type IN (2, 3, 4)
      AND timestamp <= CAST(as_of_ns AS UBIGINT) AND date <= tb_date(as_of_ns)
) r ON r.r_hi = p.transfer_id_hi AND r.r_lo = p.transfer_id_lo
WHERE p.event_type = 1 AND p.timestamp <= CAST(as_of_ns AS UBIGINT) AND p.date <= tb_date(as_of_ns)
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
       coalesce(exact_sum(CASE WHEN event_type IN (0, 2) THEN u128(amount_hi, amount_lo) END), CAST(0 AS BIGNUM)) AS posted_amount,
       coalesce(exact_sum(CASE WHEN event_type = 1 THEN u128(amount_hi, amount_lo) END), CAST(0 AS BIGNUM))       AS pending_amount,
       coalesce(exact_sum(CASE WHEN event_type = 3 THEN u128(amount_hi, amount_lo) END), CAST(0 AS BIGNUM))       AS voided_amount,
       coalesce(exact_sum(CASE WHEN event_type = 4 THEN u128(amount_hi, amount_lo) END), CAST(0 AS BIGNUM))       AS expired_amount
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
WHERE account_id_hi = u128_hi(account_text) AND account_id_lo = u128_lo(account_text)
  AND event_type IN (0, 2)
GROUP BY counterparty_id
ORDER BY total DESC, counterparty_id
LIMIT n;

-- Events whose transfer carries the given user data (NULL: any); user_data_128 as decimal text.
CREATE OR REPLACE MACRO transfers_by_user_data(ud128 := NULL, ud64 := NULL, ud32 := NULL) AS TABLE
SELECT *
FROM events
WHERE (ud128 IS NULL OR (user_data_128_hi = u128_hi(ud128) AND user_data_128_lo = u128_lo(ud128)))
  AND (ud64 IS NULL OR user_data_64 = CAST(ud64 AS UBIGINT))
  AND (ud32 IS NULL OR user_data_32 = CAST(ud32 AS UINTEGER))
ORDER BY timestamp;
