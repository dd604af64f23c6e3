-- What were an account's balances as of a point in time (after its last event at or before it)?
-- Variables: account (decimal id), as_of (TigerBeetle ns).
SELECT account_id, ledger, debits_pending, debits_posted, credits_pending, credits_posted,
       CAST(debits_posted AS BIGNUM) - CAST(credits_posted AS BIGNUM) AS net_debit_posted,  -- exact, signed
       last_event_timestamp, last_event_time
FROM balance_of(getvariable('account'), getvariable('as_of'));
