"""SQL of the customer directory projection (tables in migrations/*/0002_households.sql)."""

from __future__ import annotations

from projections.batch import Bulk

INSERT_CUSTOMER = Bulk.insert(
    "customers",
    (
        ("customer_id", "text"),
        ("name", "text"),
        ("address", "text"),
        ("address_key", "text"),
        ("national_id_hash", "text"),
        ("national_id_last4", "text"),
        ("birth_date", "text"),
        ("gender", "text"),
        ("phone", "text"),
        ("phone_digits", "text"),
        ("email", "text"),
        ("branch_code", "text"),
        ("region_code", "text"),
        ("handling_officer", "text"),
        ("consents", "text"),
        ("deceased", "integer"),
        ("registered_at", "text"),
        ("registered_position", "bigint"),
        ("total_balance_cents", "bigint"),
        ("position", "bigint"),
    ),
    "ON CONFLICT (customer_id) DO NOTHING",
)

SELECT_CUSTOMER = "SELECT * FROM customers WHERE customer_id = %s"

CONSENTS_IN = "SELECT customer_id, consents FROM customers WHERE customer_id IN {ids}"

# A page's writes go out grouped by statement, not in log order (one statement
# per kind, not one per run of events), so every update moves a row's
# `position` forward only: it stays the position of the row's latest event.
# `one` runs on SQLite (scalar MAX), `many` on PostgreSQL (GREATEST).


def _customer_update(assignments: tuple[tuple[str, str], ...]) -> Bulk:
    """`UPDATE customers` of the given columns and `position`, for one customer;
    a later row for the same customer in a page replaces an earlier one."""
    one = ", ".join(f"{name} = %s" for name, _ in assignments)
    many = ", ".join(f"{name} = v.{name}" for name, _ in assignments)
    return Bulk(
        one=f"UPDATE customers SET {one}, position = MAX(position, %s) "
        "WHERE customer_id = %s",
        many=f"UPDATE customers AS c SET {many}, "
        "position = GREATEST(c.position, v.position) "
        "FROM {rows} WHERE c.customer_id = v.customer_id",
        columns=(*assignments, ("position", "bigint"), ("customer_id", "text")),
        key=(len(assignments) + 1,),
    )


UPDATE_CONSENTS = _customer_update((("consents", "text"),))

UPDATE_ADDRESS = _customer_update((("address", "text"), ("address_key", "text")))

UPDATE_DECEASED = _customer_update((("deceased", "integer"), ("date_of_death", "text")))

UPDATE_MERGED_INTO = _customer_update((("merged_into", "text"),))

# Corrections name their own columns; several of one customer in a page apply in
# log order (`executemany`), and position moves forward only (portable SQL).
CORRECT_CUSTOMER = (
    "UPDATE customers SET {assignments}, "
    "position = CASE WHEN position > %s THEN position ELSE %s END "
    "WHERE customer_id = %s"
)

INSERT_ACCOUNT = Bulk.insert(
    "accounts",
    (
        ("account_id", "text"),
        ("customer_id", "text"),
        ("joint_holder_ids", "text"),
        ("product", "text"),
        ("currency", "text"),
        ("branch_code", "text"),
        ("status", "text"),
        ("position", "bigint"),
    ),
    "ON CONFLICT (account_id) DO NOTHING",
)

INSERT_HOLDER = Bulk.insert(
    "account_holders",
    (("account_id", "text"), ("customer_id", "text")),
    "ON CONFLICT (customer_id, account_id) DO NOTHING",
)

# A report older (by as_of) than the one kept does not replace it: late
# back-office files must not roll a balance back.
UPDATE_BALANCE = Bulk(
    one="UPDATE accounts SET balance_cents = %s, balance_as_of = %s, "
    "balance_position = %s, position = MAX(position, %s) "
    "WHERE account_id = %s AND (balance_as_of IS NULL OR balance_as_of <= %s)",
    many="UPDATE accounts AS a SET balance_cents = v.balance_cents, "
    "balance_as_of = v.as_of, balance_position = v.position, "
    "position = GREATEST(a.position, v.position) "
    "FROM {rows} WHERE a.account_id = v.account_id "
    "AND (a.balance_as_of IS NULL OR a.balance_as_of <= v.as_of)",
    columns=(
        ("balance_cents", "bigint"),
        ("as_of", "text"),
        ("position", "bigint"),
        ("position_again", "bigint"),
        ("account_id", "text"),
        ("as_of_again", "text"),
    ),
    key=(4,),
)

CLOSE_ACCOUNT = (
    "UPDATE accounts SET status = 'closed', "
    "position = CASE WHEN position > %s THEN position ELSE %s END "
    "WHERE account_id = %s"
)


# Sum of the latest balance of each open account the customer holds (alone or jointly).
TOTAL_BALANCE = """(
    SELECT COALESCE(SUM(a.balance_cents), 0)
    FROM account_holders h JOIN accounts a ON a.account_id = h.account_id
    WHERE h.customer_id = customers.customer_id AND a.status = 'open'
)"""
# A reported balance always moves the holder's position (whether or not the total
# changed), so the result does not depend on how reports are grouped into batches.
# Sent once per page, after every write to the page's accounts and holders.
REFRESH_TOTAL_BALANCE = Bulk(
    one=f"UPDATE customers SET total_balance_cents = {TOTAL_BALANCE}, "
    "position = MAX(position, %s) WHERE customer_id = %s",
    many=f"UPDATE customers SET total_balance_cents = {TOTAL_BALANCE}, "
    "position = GREATEST(customers.position, v.position) "
    "FROM {rows} WHERE customers.customer_id = v.customer_id",
    columns=(("position", "bigint"), ("customer_id", "text")),
    key=(1,),
)

HOLDERS_IN = (
    "SELECT account_id, customer_id FROM account_holders WHERE account_id IN {ids}"
)

SEARCH_CUSTOMERS = """
SELECT * FROM customers
WHERE {conditions}
ORDER BY {order} name, customer_id
LIMIT %s
"""
