-- ledgerlake: the views of lake.sql, reading the Delta tables with DuckDB's delta extension
-- (delta_scan) instead of replaying their logs in SQL. Same views, macros and columns.
--
-- Load (DuckDB CLI, from the repository root; the extension must be loaded first):
--
--   duckdb -cmd "LOAD delta" -cmd "SET VARIABLE lake = '/srv/ledger-lake'" -cmd ".read schemas/duckdb/lake_delta.sql"
--
-- Offline, load the extension from its file instead: `LOAD '<path>/delta.duckdb_extension'` (PyPI's
-- duckdb-extension-delta 1.5.5 loads into duckdb-cli 1.5.5; scripts/setup.sh fetches the pair).
-- `lake_version` works as with lake.sql (delta_scan reads each table at the version lake.sql
-- computes from the logs). Any other client: SET VARIABLE lake_reader = 'delta', then run lake.sql.

SET VARIABLE lake_reader = 'delta';
.read schemas/duckdb/lake.sql
