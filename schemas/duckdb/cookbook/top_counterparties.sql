-- With which accounts did an account exchange the most posted money (paid plus received)?
-- Variables: account (decimal id), n (how many).
SELECT counterparty_id, transfers, paid, received, total, net
FROM top_counterparties(getvariable('account'), getvariable('n'))
ORDER BY total DESC, counterparty_id;
