"""SQL of the account-services view (projections/accounts.py)."""

INSERT_ACCOUNT = (
    "INSERT INTO service_accounts (account_id, customer_id, holder_ids, product, "
    "currency, branch_code, status, opened_at, opened_position) "
    "VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s)"
)

INSERT_HOLDER = (
    "INSERT INTO service_account_holders (account_id, customer_id) VALUES (%s, %s) "
    "ON CONFLICT (customer_id, account_id) DO NOTHING"
)

HOLDINGS_OF = "SELECT account_id FROM service_account_holders WHERE customer_id = %s"

DELETE_HOLDINGS_OF = "DELETE FROM service_account_holders WHERE customer_id = %s"

# A report for an earlier date arriving late is history, not the latest balance.
UPDATE_LATEST_BALANCE = (
    "UPDATE service_accounts SET balance_cents = %s, balance_as_of = %s, "
    "balance_position = %s WHERE account_id = %s "
    "AND (balance_as_of IS NULL OR balance_as_of <= %s)"
)

INSERT_BALANCE_REPORT = (
    "INSERT INTO account_balance_reports (account_id, position, event_id, as_of, "
    "balance_cents, occurred_at, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)

INSERT_FEE = (
    "INSERT INTO account_fees (account_id, position, event_id, kind, amount_cents, "
    "occurred_at, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)

# A statement issued again for the same period replaces the earlier one.
UPSERT_STATEMENT = (
    "INSERT INTO account_statements (account_id, period, closing_balance_cents, "
    "fees_total_cents, position, event_id, occurred_at, recorded_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (account_id, period) DO UPDATE SET "
    "closing_balance_cents = excluded.closing_balance_cents, "
    "fees_total_cents = excluded.fees_total_cents, position = excluded.position, "
    "event_id = excluded.event_id, occurred_at = excluded.occurred_at, "
    "recorded_at = excluded.recorded_at"
)

CLOSE_ACCOUNT = (
    "UPDATE service_accounts SET status = 'closed', closed_at = %s "
    "WHERE account_id = %s"
)

SELECT_CLOCK = "SELECT latest_occurred_at FROM account_clock WHERE name = 'log'"

UPSERT_CLOCK = (
    "INSERT INTO account_clock (name, latest_occurred_at) VALUES ('log', %s) "
    "ON CONFLICT (name) DO UPDATE SET latest_occurred_at = excluded.latest_occurred_at"
)

SELECT_ACCOUNT = "SELECT * FROM service_accounts WHERE account_id = %s"

SELECT_HOLDERS = (
    "SELECT customer_id FROM service_account_holders WHERE account_id = %s "
    "ORDER BY customer_id"
)

BALANCE_HISTORY = (
    "SELECT as_of, balance_cents, position, occurred_at, recorded_at "
    "FROM account_balance_reports WHERE account_id = %s ORDER BY as_of, position"
)

STATEMENTS = (
    "SELECT period, closing_balance_cents, fees_total_cents, position, occurred_at "
    "FROM account_statements WHERE account_id = %s ORDER BY period"
)

STATEMENT = "SELECT * FROM account_statements WHERE account_id = %s AND period = %s"

PREVIOUS_STATEMENT = (
    "SELECT period, closing_balance_cents FROM account_statements "
    "WHERE account_id = %s AND period < %s ORDER BY period DESC LIMIT 1"
)

LAST_REPORT_BETWEEN = (
    "SELECT as_of, balance_cents, position FROM account_balance_reports "
    "WHERE account_id = %s AND as_of >= %s AND as_of < %s "
    "ORDER BY as_of DESC, position DESC LIMIT 1"
)

FEES_BETWEEN = (
    "SELECT kind, amount_cents, occurred_at, position, event_id FROM account_fees "
    "WHERE account_id = %s AND occurred_at >= %s AND occurred_at < %s "
    "ORDER BY occurred_at, position"
)
