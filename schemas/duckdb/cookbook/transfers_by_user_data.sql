-- Which events carry a given user_data_128 (e.g. an invoice or order id)?
-- Variables: user_data_128 (decimal). ud64 := and ud32 := narrow by the other user_data fields.
SELECT timestamp, time, event, event_type, transfer_id, amount, ledger, code,
       debit_account_id, credit_account_id, user_data_128, user_data_64, user_data_32
FROM transfers_by_user_data(ud128 := getvariable('user_data_128'))
ORDER BY timestamp;
