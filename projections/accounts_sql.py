"""SQL of the account-services view (projections/accounts.py)."""

from projections.batch import Bulk

INSERT_ACCOUNT = Bulk.insert(
    "service_accounts",
    (
        ("account_id", "text"),
        ("customer_id", "text"),
        ("holder_ids", "text"),
        ("product", "text"),
        ("currency", "text"),
        ("branch_code", "text"),
        ("status", "text"),
        ("opened_at", "text"),
        ("opened_position", "bigint"),
    ),
)

INSERT_HOLDER = Bulk.insert(
    "service_account_holders",
    (("account_id", "text"), ("customer_id", "text")),
    "ON CONFLICT (customer_id, account_id) DO NOTHING",
)

HOLDINGS_OF = "SELECT account_id FROM service_account_holders WHERE customer_id = %s"

DELETE_HOLDINGS_OF = "DELETE FROM service_account_holders WHERE customer_id = %s"

# A report for an earlier date arriving late is history, not the latest balance.
UPDATE_LATEST_BALANCE = Bulk(
    one="UPDATE service_accounts SET balance_cents = %s, balance_as_of = %s, "
    "balance_position = %s WHERE account_id = %s "
    "AND (balance_as_of IS NULL OR balance_as_of <= %s)",
    many="UPDATE service_accounts AS a SET balance_cents = v.balance_cents, "
    "balance_as_of = v.as_of, balance_position = v.position FROM {rows} "
    "WHERE a.account_id = v.account_id "
    "AND (a.balance_as_of IS NULL OR a.balance_as_of <= v.as_of)",
    columns=(
        ("balance_cents", "bigint"),
        ("as_of", "text"),
        ("position", "bigint"),
        ("account_id", "text"),
        ("as_of_again", "text"),
    ),
    key=(3,),
)

INSERT_BALANCE_REPORT = Bulk.insert(
    "account_balance_reports",
    (
        ("account_id", "text"),
        ("position", "bigint"),
        ("event_id", "text"),
        ("as_of", "text"),
        ("balance_cents", "bigint"),
        ("occurred_at", "text"),
        ("recorded_at", "text"),
    ),
)

INSERT_FEE = Bulk.insert(
    "account_fees",
    (
        ("account_id", "text"),
        ("position", "bigint"),
        ("event_id", "text"),
        ("kind", "text"),
        ("amount_cents", "bigint"),
        ("occurred_at", "text"),
        ("recorded_at", "text"),
    ),
)

# A statement issued again for the same period replaces the earlier one.
UPSERT_STATEMENT = Bulk.insert(
    "account_statements",
    (
        ("account_id", "text"),
        ("period", "text"),
        ("closing_balance_cents", "bigint"),
        ("fees_total_cents", "bigint"),
        ("position", "bigint"),
        ("event_id", "text"),
        ("occurred_at", "text"),
        ("recorded_at", "text"),
    ),
    "ON CONFLICT (account_id, period) DO UPDATE SET "
    "closing_balance_cents = excluded.closing_balance_cents, "
    "fees_total_cents = excluded.fees_total_cents, position = excluded.position, "
    "event_id = excluded.event_id, occurred_at = excluded.occurred_at, "
    "recorded_at = excluded.recorded_at",
    key=(0, 1),
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
