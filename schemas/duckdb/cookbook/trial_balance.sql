-- Per ledger as of a time: do the accounts' debits equal their credits (posted and pending)?
-- Variables: as_of (TigerBeetle ns). Sums are exact BIGNUMs; they may exceed u128::MAX.
SELECT ledger, accounts, debits_posted, credits_posted, debits_pending, credits_pending, balanced
FROM trial_balance(getvariable('as_of'))
ORDER BY ledger;
