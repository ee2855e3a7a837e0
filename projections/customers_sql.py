"""SQL of the customer directory projection (tables in migrations/*/0002_households.sql)."""

from __future__ import annotations

INSERT_CUSTOMER = """
INSERT INTO customers (customer_id, name, address, address_key, national_id_hash,
    national_id_last4, birth_date, gender, phone, phone_digits, email, branch_code,
    region_code, handling_officer, consents, deceased, registered_at,
    registered_position, total_balance_cents, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '{}', 0, %s, %s, 0, %s)
ON CONFLICT (customer_id) DO NOTHING
"""

SELECT_CUSTOMER = "SELECT * FROM customers WHERE customer_id = %s"

CONSENTS_IN = "SELECT customer_id, consents FROM customers WHERE customer_id IN {ids}"

UPDATE_CONSENTS = (
    "UPDATE customers SET consents = %s, position = %s WHERE customer_id = %s"
)

UPDATE_ADDRESS = """
UPDATE customers SET address = %s, address_key = %s, position = %s
WHERE customer_id = %s
"""

UPDATE_DECEASED = """
UPDATE customers SET deceased = 1, date_of_death = %s, position = %s
WHERE customer_id = %s
"""

UPDATE_MERGED_INTO = (
    "UPDATE customers SET merged_into = %s, position = %s WHERE customer_id = %s"
)

INSERT_ACCOUNT = """
INSERT INTO accounts (account_id, customer_id, joint_holder_ids, product, currency,
    branch_code, status, position)
VALUES (%s, %s, %s, %s, %s, %s, 'open', %s)
ON CONFLICT (account_id) DO NOTHING
"""

INSERT_HOLDER = """
INSERT INTO account_holders (account_id, customer_id) VALUES (%s, %s)
ON CONFLICT (customer_id, account_id) DO NOTHING
"""

# A report older (by as_of) than the one kept does not replace it: late
# back-office files must not roll a balance back.
UPDATE_BALANCE = """
UPDATE accounts SET balance_cents = %s, balance_as_of = %s, balance_position = %s,
    position = %s
WHERE account_id = %s AND (balance_as_of IS NULL OR balance_as_of <= %s)
"""

CLOSE_ACCOUNT = (
    "UPDATE accounts SET status = 'closed', position = %s WHERE account_id = %s"
)


# Sum of the latest balance of each open account the customer holds (alone or jointly).
TOTAL_BALANCE = """(
    SELECT COALESCE(SUM(a.balance_cents), 0)
    FROM account_holders h JOIN accounts a ON a.account_id = h.account_id
    WHERE h.customer_id = customers.customer_id AND a.status = 'open'
)"""
# A reported balance always moves the holder's position (whether or not the total
# changed), so the result does not depend on how reports are grouped into batches.
REFRESH_TOTAL_BALANCE = f"""
UPDATE customers SET total_balance_cents = {TOTAL_BALANCE}, position = %s
WHERE customer_id = %s
"""

HOLDERS_IN = (
    "SELECT account_id, customer_id FROM account_holders WHERE account_id IN {ids}"
)

SEARCH_CUSTOMERS = """
SELECT * FROM customers
WHERE {conditions}
ORDER BY {order} name, customer_id
LIMIT %s
"""
