"""SQL of the household projection (tables in migrations/*/0002_households.sql).

The projection reads rows in bulk (`{ids}`: an IN-list, see `batch.rows_in`) and
writes back whole rows once per page (see `household_store`).
"""

from __future__ import annotations

PERSON_COLUMNS = (
    "customer_id, address, address_key, national_id_hash, branch_code, region_code, "
    "deceased, merged_into, registered_position, head_designated_position, "
    "balance_cents, household_id"
)

PEOPLE_IN = (
    f"SELECT {PERSON_COLUMNS} FROM household_people WHERE customer_id IN {{ids}}"
)

# Everyone (live or merged away) by one of the columns people are looked up by.
PEOPLE_WHERE = {
    column: f"SELECT {PERSON_COLUMNS} FROM household_people WHERE {column} IN {{ids}}"
    for column in ("address_key", "national_id_hash", "household_id", "merged_into")
}

UPSERT_PERSON = f"""
INSERT INTO household_people ({PERSON_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (customer_id) DO UPDATE SET address = excluded.address,
    address_key = excluded.address_key, national_id_hash = excluded.national_id_hash,
    branch_code = excluded.branch_code, region_code = excluded.region_code,
    deceased = excluded.deceased, merged_into = excluded.merged_into,
    registered_position = excluded.registered_position,
    head_designated_position = excluded.head_designated_position,
    balance_cents = excluded.balance_cents, household_id = excluded.household_id
"""

RELATIONS_OF = """
SELECT customer_id, related_customer_id, same_household, relation, position
FROM household_relations WHERE customer_id IN {ids} OR related_customer_id IN {ids}
"""

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

ACCOUNT_COLUMNS = (
    "account_id",
    "holder_ids",
    "is_open",
    "balance_cents",
    "balance_as_of",
    "balance_position",
)

ACCOUNTS_IN = (
    f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM household_accounts "
    "WHERE account_id IN {ids}"
)

UPSERT_ACCOUNT = f"""
INSERT INTO household_accounts ({", ".join(ACCOUNT_COLUMNS)})
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (account_id) DO UPDATE SET holder_ids = excluded.holder_ids,
    is_open = excluded.is_open, balance_cents = excluded.balance_cents,
    balance_as_of = excluded.balance_as_of, balance_position = excluded.balance_position
"""

HOLDERS_WHERE = {
    column: "SELECT account_id, customer_id FROM household_account_holders "
    f"WHERE {column} IN {{ids}}"
    for column in ("account_id", "customer_id")
}

INSERT_HOLDER = """
INSERT INTO household_account_holders (account_id, customer_id) VALUES (%s, %s)
ON CONFLICT (customer_id, account_id) DO NOTHING
"""

HOUSEHOLD_SUMMARY_COLUMNS = (
    "address",
    "address_key",
    "head_customer_id",
    "primary_recipient_id",
    "member_count",
    "branch_code",
    "region_code",
    "mailable",
    "not_mailable_reason",
    "position",
)
HOUSEHOLD_COLUMNS = ("household_id", "created_position", *HOUSEHOLD_SUMMARY_COLUMNS)

HOUSEHOLDS_IN = "SELECT * FROM households WHERE household_id IN {ids}"

INSERT_HOUSEHOLD = f"""
INSERT INTO households ({", ".join(HOUSEHOLD_COLUMNS)})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

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

MEMBERSHIP_COLUMNS = (
    "household_id",
    "customer_id",
    "from_position",
    "to_position",
    "since",
    "until",
    "occurred_since",
    "occurred_until",
    "joined_by_event_id",
    "joined_by_type",
    "left_by_event_id",
    "left_by_type",
    "reason",
    "left_reason",
)

INSERT_MEMBERSHIP = f"""
INSERT INTO household_memberships ({", ".join(MEMBERSHIP_COLUMNS)})
VALUES ({", ".join(["%s"] * len(MEMBERSHIP_COLUMNS))})
"""
