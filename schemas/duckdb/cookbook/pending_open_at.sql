-- Which pending transfers still held a pending balance at a time (not yet posted, voided or expired)?
-- Variables: as_of (TigerBeetle ns). past_expiry: due to expire, but the cluster had not yet done so.
SELECT transfer_id, ledger, code, debit_account_id, credit_account_id, amount,
       created, created_time, timeout, expires_at, past_expiry
FROM pending_open_at(getvariable('as_of'))
ORDER BY created;
