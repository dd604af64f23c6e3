-- How much moved each UTC day, per ledger and transfer code?
-- Variables: day_from, day_to ('YYYY-MM-DD', inclusive; only those days' files are read).
SELECT date, ledger, code, events, posted_count, posted_amount, pending_amount,
       voided_amount, expired_amount
FROM daily_volume
WHERE date BETWEEN CAST(getvariable('day_from') AS DATE) AND CAST(getvariable('day_to') AS DATE)
ORDER BY date, ledger, code;
