-- Which events touched an account between two times (inclusive), and its balances after each?
-- Variables: account (decimal id), from_ns, to_ns (TigerBeetle ns).
SELECT timestamp, time, event, event_type, transfer_id, side, counterparty_id, amount,
       posted_increase, pending_increase, pending_decrease,
       debits_pending, debits_posted, credits_pending, credits_posted
FROM statement(getvariable('account'), getvariable('from_ns'), getvariable('to_ns'))
ORDER BY timestamp;
