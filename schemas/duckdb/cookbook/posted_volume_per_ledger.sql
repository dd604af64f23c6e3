-- What is each ledger's total posted volume, exactly, even where it exceeds u128::MAX?
-- (sum(amount) would be a DOUBLE here, rounded to 17 digits: exact_sum is a BIGNUM.)
SELECT ledger,
       count(*)                        AS posted_transfers,
       exact_sum(amount)               AS posted_volume,
       max(amount)                     AS largest_amount,
       exact_sum(amount) <= u128_max() AS fits_u128
FROM events
WHERE event_type IN (0, 2)            -- single_phase, two_phase_posted
GROUP BY ledger
ORDER BY ledger;
