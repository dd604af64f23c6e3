-- Is every account's history complete: do its balances after each event follow from those after
-- its previous event (zero before its first) and the event's effect? Expect no rows.
WITH m AS (
    SELECT *,
           lag(debits_pending, 1, 0)  OVER w AS prev_debits_pending,
           lag(debits_posted, 1, 0)   OVER w AS prev_debits_posted,
           lag(credits_pending, 1, 0) OVER w AS prev_credits_pending,
           lag(credits_posted, 1, 0)  OVER w AS prev_credits_posted
    FROM movements
    WINDOW w AS (PARTITION BY account_id ORDER BY timestamp)
)
SELECT account_id, timestamp, time, event, transfer_id, side
FROM m
WHERE CASE side
        WHEN 'debit' THEN
             CAST(prev_debits_pending AS BIGNUM) + CAST(pending_increase AS BIGNUM)
               IS DISTINCT FROM CAST(debits_pending AS BIGNUM) + CAST(pending_decrease AS BIGNUM)
          OR CAST(prev_debits_posted AS BIGNUM) + CAST(posted_increase AS BIGNUM)
               IS DISTINCT FROM CAST(debits_posted AS BIGNUM)
          OR prev_credits_pending <> credits_pending OR prev_credits_posted <> credits_posted
        ELSE
             CAST(prev_credits_pending AS BIGNUM) + CAST(pending_increase AS BIGNUM)
               IS DISTINCT FROM CAST(credits_pending AS BIGNUM) + CAST(pending_decrease AS BIGNUM)
          OR CAST(prev_credits_posted AS BIGNUM) + CAST(posted_increase AS BIGNUM)
               IS DISTINCT FROM CAST(credits_posted AS BIGNUM)
          OR prev_debits_pending <> debits_pending OR prev_debits_posted <> debits_posted
      END
ORDER BY account_id, timestamp;
