-- ledgerlake: what the DuckDB macros' cast road saves (BENCHMARKS.md, "Building the exact values").
--
-- Run: duckdb < benches/duckdb_casts.sql
--
-- 10^7 amounts and ids in memory, each query in two forms that must print the same answer: the
-- plain recipe (DECIMAL -> UHUGEINT casts) and the road schemas/duckdb/lake.sql's u128 / id128
-- take (through DECIMAL(18,0) and BIGINT below 10^18). The macros below are copies of the
-- file's, so that this runs without a lake; tests/duckdb/check_cookbook.py checks the file's own.
CREATE OR REPLACE MACRO e38() AS CAST('100000000000000000000000000000000000000' AS UHUGEINT);
CREATE OR REPLACE MACRO dec38_u128(v) AS CASE WHEN v < 1000000000000000000 THEN CAST(CAST(CAST(v AS DECIMAL(18, 0)) AS BIGINT) AS UHUGEINT) ELSE CAST(v AS UHUGEINT) END;
CREATE OR REPLACE MACRO u128(value, value_e38) AS CASE WHEN value_e38 = 0 THEN dec38_u128(value) ELSE CAST(value_e38 AS UHUGEINT) * e38() + dec38_u128(value) END;
CREATE TABLE t AS SELECT CAST(i * 7919 % 1000000007 AS DECIMAL(38,0)) AS amount, CAST(0 AS TINYINT) AS amount_e38, CAST(i % 1000 AS BIGINT) AS id, CAST(0 AS DECIMAL(21,0)) AS id_e18 FROM range(10000000) r(i);
.timer on
SELECT max(CAST(amount_e38 AS UHUGEINT) * e38() + CAST(amount AS UHUGEINT))::VARCHAR FROM t;
SELECT max(u128(amount, amount_e38))::VARCHAR FROM t;
SELECT CAST(sum(CAST(CAST(amount_e38 AS UHUGEINT) * e38() + CAST(amount AS UHUGEINT) AS BIGNUM)) AS VARCHAR) FROM t;
SELECT CAST(sum(CAST(u128(amount, amount_e38) AS BIGNUM)) AS VARCHAR) FROM t;
SELECT max(CAST(id_e18 AS UHUGEINT) * CAST(1000000000000000000 AS UHUGEINT) + CAST(id AS UHUGEINT))::VARCHAR FROM t;
SELECT max(CASE WHEN id_e18 = 0 THEN CAST(id AS UHUGEINT) ELSE CAST(id_e18 AS UHUGEINT) * CAST(1000000000000000000 AS UHUGEINT) + CAST(id AS UHUGEINT) END)::VARCHAR FROM t;
