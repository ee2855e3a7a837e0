"""SQL of the household projection (tables in migrations/*/0002_households.sql)."""

from __future__ import annotations

PERSON_COLUMNS = (
    "customer_id, address, address_key, national_id_hash, branch_code, region_code, "
    "deceased, merged_into, registered_position, head_designated_position, "
    "balance_cents, household_id"
)

INSERT_PERSON = """
INSERT INTO household_people (customer_id, address, address_key, national_id_hash,
    branch_code, region_code, registered_position)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (customer_id) DO NOTHING
"""

SELECT_PERSON = f"SELECT {PERSON_COLUMNS} FROM household_people WHERE customer_id = %s"

SELECT_PEOPLE_IN = (
    f"SELECT {PERSON_COLUMNS} FROM household_people WHERE customer_id IN "
)

LIVE_AT_ADDRESS = """
SELECT customer_id FROM household_people
WHERE address_key = %s AND merged_into IS NULL
"""

LIVE_WITH_NATIONAL_ID = """
SELECT customer_id FROM household_people
WHERE national_id_hash = %s AND merged_into IS NULL
"""

MERGED_INTO = "SELECT customer_id FROM household_people WHERE merged_into = %s"

MERGED_INTO_ANY = (
    "SELECT customer_id, merged_into FROM household_people WHERE merged_into IN {ids}"
)
LIVE_AT_ADDRESSES = (
    "SELECT customer_id FROM household_people "
    "WHERE address_key IN {ids} AND merged_into IS NULL"
)
LIVE_WITH_NATIONAL_IDS = (
    "SELECT customer_id FROM household_people "
    "WHERE national_id_hash IN {ids} AND merged_into IS NULL"
)
LIVE_IN_HOUSEHOLDS = (
    "SELECT customer_id FROM household_people "
    "WHERE household_id IN {ids} AND merged_into IS NULL"
)

LIVE_IN_HOUSEHOLD = """
SELECT customer_id FROM household_people
WHERE household_id = %s AND merged_into IS NULL
"""

UPDATE_ADDRESS = """
UPDATE household_people SET address = %s, address_key = %s WHERE customer_id = %s
"""

UPDATE_NATIONAL_ID = (
    "UPDATE household_people SET national_id_hash = %s WHERE customer_id = %s"
)

UPDATE_DECEASED = "UPDATE household_people SET deceased = 1 WHERE customer_id = %s"

UPDATE_HEAD = (
    "UPDATE household_people SET head_designated_position = %s WHERE customer_id = %s"
)

UPDATE_MERGED_INTO = (
    "UPDATE household_people SET merged_into = %s WHERE customer_id = %s"
)

UPDATE_PERSON_HOUSEHOLD = (
    "UPDATE household_people SET household_id = %s WHERE customer_id = %s"
)

UPSERT_RELATION = """
INSERT INTO household_relations (customer_id, related_customer_id, same_household,
    relation, position)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (customer_id, related_customer_id) DO UPDATE SET
    same_household = excluded.same_household, relation = excluded.relation,
    position = excluded.position
"""

DELETE_RELATION = """
DELETE FROM household_relations WHERE customer_id = %s AND related_customer_id = %s
"""

RELATIONS_OF = """
SELECT customer_id, related_customer_id, same_household, position
FROM household_relations WHERE customer_id IN {ids} OR related_customer_id IN {ids}
"""

INSERT_ACCOUNT = """
INSERT INTO household_accounts (account_id, holder_ids, is_open)
VALUES (%s, %s, 1) ON CONFLICT (account_id) DO NOTHING
"""

INSERT_HOLDER = """
INSERT INTO household_account_holders (account_id, customer_id) VALUES (%s, %s)
ON CONFLICT (customer_id, account_id) DO NOTHING
"""

# Late back-office files with an older as_of must not roll a balance back.
UPDATE_BALANCE = """
UPDATE household_accounts SET balance_cents = %s, balance_as_of = %s,
    balance_position = %s
WHERE account_id = %s AND (balance_as_of IS NULL OR balance_as_of <= %s)
"""

CLOSE_ACCOUNT = "UPDATE household_accounts SET is_open = 0 WHERE account_id = %s"

HOLDERS_OF = "SELECT customer_id FROM household_account_holders WHERE account_id = %s"

REFRESH_BALANCE = """
UPDATE household_people SET balance_cents = (
    SELECT COALESCE(SUM(a.balance_cents), 0)
    FROM household_account_holders h
    JOIN household_accounts a ON a.account_id = h.account_id
    WHERE h.customer_id = household_people.customer_id AND a.is_open = 1
)
WHERE customer_id = %s
"""

SELECT_HOUSEHOLD = "SELECT * FROM households WHERE household_id = %s"

INSERT_HOUSEHOLD = """
INSERT INTO households (household_id, created_position, address, address_key,
    head_customer_id, primary_recipient_id, member_count, branch_code, region_code,
    mailable, not_mailable_reason, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

TOUCH_HOUSEHOLD = "UPDATE households SET position = %s WHERE household_id = %s"

HOLDERS_OF_ACCOUNTS = "SELECT account_id, customer_id FROM household_account_holders WHERE account_id IN {ids}"

HOUSEHOLDS_OF_PEOPLE = (
    "SELECT customer_id, household_id FROM household_people "
    "WHERE customer_id IN {ids} AND household_id IS NOT NULL"
)

UPDATE_HOUSEHOLD = """
UPDATE households SET address = %s, address_key = %s, head_customer_id = %s,
    primary_recipient_id = %s, member_count = %s, branch_code = %s, region_code = %s,
    mailable = %s, not_mailable_reason = %s, position = %s
WHERE household_id = %s
"""

DELETE_HOUSEHOLD = "DELETE FROM households WHERE household_id = %s"

CLOSE_MEMBERSHIP = """
UPDATE household_memberships SET to_position = %s, until = %s, occurred_until = %s,
    left_by_event_id = %s, left_by_type = %s, left_reason = %s
WHERE household_id = %s AND customer_id = %s AND to_position IS NULL
"""

OPEN_MEMBERSHIP = """
INSERT INTO household_memberships (household_id, customer_id, from_position, since,
    occurred_since, joined_by_event_id, joined_by_type, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
