-- Which pending transfers expired, when were they due, and when did the cluster expire them?
SELECT transfer_id, ledger, code, debit_account_id, credit_account_id, amount,
       created, timeout, expires_at, expired_at, expiry_lag_ns, expired_time
FROM expired_pending
ORDER BY expired_at;
