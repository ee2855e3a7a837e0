"""SQL of the household projection (tables in migrations/*/0002_households.sql).

The projection reads rows in bulk (`{ids}`: an IN-list, see `batch.rows_in`) and
writes back whole rows once per page (see `household_store`).
"""

from __future__ import annotations

from projections.batch import Bulk

PERSON_COLUMN_NAMES = (
    "customer_id",
    "address",
    "address_key",
    "national_id_hash",
    "branch_code",
    "region_code",
    "deceased",
    "merged_into",
    "registered_position",
    "head_designated_position",
    "balance_cents",
    "household_id",
)
PERSON_COLUMNS = ", ".join(PERSON_COLUMN_NAMES)

PEOPLE_IN = (
    f"SELECT {PERSON_COLUMNS} FROM household_people WHERE customer_id IN {{ids}}"
)

# The people and everyone in their households, in one read (UNION ALL, not OR,
# so that both halves can use an index). The people come back twice; the store
# keeps the first. Leaving them out in SQL (`AND NOT customer_id IN ...`) made
# PostgreSQL compare every housemate with every id of the page (`<> ALL` over
# an array it cannot hash): 55 of 66 ms for 1,500 people at 1,000,000 events.
PEOPLE_AND_HOUSEMATES = (
    f"SELECT {PERSON_COLUMNS} FROM household_people WHERE customer_id IN {{ids}} "
    f"UNION ALL SELECT {PERSON_COLUMNS} FROM household_people WHERE household_id IN "
    "(SELECT household_id FROM household_people "
    "WHERE customer_id IN {ids} AND household_id IS NOT NULL)"
)

# Everyone (live or merged away) by one of the columns people are looked up by.
PEOPLE_WHERE = {
    column: f"SELECT {PERSON_COLUMNS} FROM household_people WHERE {column} IN {{ids}}"
    for column in ("address_key", "national_id_hash", "household_id", "merged_into")
}

UPSERT_PERSON = Bulk.insert(
    "household_people",
    (
        ("customer_id", "text"),
        ("address", "text"),
        ("address_key", "text"),
        ("national_id_hash", "text"),
        ("branch_code", "text"),
        ("region_code", "text"),
        ("deceased", "integer"),
        ("merged_into", "text"),
        ("registered_position", "bigint"),
        ("head_designated_position", "bigint"),
        ("balance_cents", "bigint"),
        ("household_id", "text"),
    ),
    "ON CONFLICT (customer_id) DO UPDATE SET address = excluded.address, "
    "address_key = excluded.address_key, national_id_hash = excluded.national_id_hash, "
    "branch_code = excluded.branch_code, region_code = excluded.region_code, "
    "deceased = excluded.deceased, merged_into = excluded.merged_into, "
    "registered_position = excluded.registered_position, "
    "head_designated_position = excluded.head_designated_position, "
    "balance_cents = excluded.balance_cents, household_id = excluded.household_id",
    key=(0,),
)

RELATIONS_OF = """
SELECT customer_id, related_customer_id, same_household, relation, position
FROM household_relations WHERE customer_id IN {ids} OR related_customer_id IN {ids}
"""

UPSERT_RELATION = Bulk.insert(
    "household_relations",
    (
        ("customer_id", "text"),
        ("related_customer_id", "text"),
        ("same_household", "integer"),
        ("relation", "text"),
        ("position", "bigint"),
    ),
    "ON CONFLICT (customer_id, related_customer_id) DO UPDATE SET "
    "same_household = excluded.same_household, relation = excluded.relation, "
    "position = excluded.position",
    key=(0, 1),
)

DELETE_RELATION = """
DELETE FROM household_relations WHERE customer_id = %s AND related_customer_id = %s
"""

ACCOUNT_COLUMNS = (
    ("account_id", "text"),
    ("holder_ids", "text"),
    ("is_open", "integer"),
    ("balance_cents", "bigint"),
    ("balance_as_of", "text"),
    ("balance_position", "bigint"),
)

ACCOUNTS_IN = (
    f"SELECT {', '.join(name for name, _ in ACCOUNT_COLUMNS)} FROM household_accounts "
    "WHERE account_id IN {ids}"
)

UPSERT_ACCOUNT = Bulk.insert(
    "household_accounts",
    ACCOUNT_COLUMNS,
    "ON CONFLICT (account_id) DO UPDATE SET holder_ids = excluded.holder_ids, "
    "is_open = excluded.is_open, balance_cents = excluded.balance_cents, "
    "balance_as_of = excluded.balance_as_of, "
    "balance_position = excluded.balance_position",
    key=(0,),
)

HOLDERS_WHERE = {
    column: "SELECT account_id, customer_id FROM household_account_holders "
    f"WHERE {column} IN {{ids}}"
    for column in ("account_id", "customer_id")
}

INSERT_HOLDER = Bulk.insert(
    "household_account_holders",
    (("account_id", "text"), ("customer_id", "text")),
    "ON CONFLICT (customer_id, account_id) DO NOTHING",
)

HOUSEHOLD_SUMMARY_COLUMNS = (
    ("address", "text"),
    ("address_key", "text"),
    ("head_customer_id", "text"),
    ("primary_recipient_id", "text"),
    ("member_count", "integer"),
    ("branch_code", "text"),
    ("region_code", "text"),
    ("mailable", "integer"),
    ("not_mailable_reason", "text"),
    ("position", "bigint"),
)
HOUSEHOLD_COLUMNS = (
    ("household_id", "text"),
    ("created_position", "bigint"),
    *HOUSEHOLD_SUMMARY_COLUMNS,
)

HOUSEHOLDS_IN = "SELECT * FROM households WHERE household_id IN {ids}"

INSERT_HOUSEHOLD = Bulk.insert("households", HOUSEHOLD_COLUMNS)

UPDATE_HOUSEHOLD = Bulk(
    one="UPDATE households SET "
    + ", ".join(f"{name} = %s" for name, _ in HOUSEHOLD_SUMMARY_COLUMNS)
    + " WHERE household_id = %s",
    many="UPDATE households AS h SET "
    + ", ".join(f"{name} = v.{name}" for name, _ in HOUSEHOLD_SUMMARY_COLUMNS)
    + " FROM {rows} WHERE h.household_id = v.household_id",
    columns=(*HOUSEHOLD_SUMMARY_COLUMNS, ("household_id", "text")),
    key=(len(HOUSEHOLD_SUMMARY_COLUMNS),),
)

DELETE_HOUSEHOLD = "DELETE FROM households WHERE household_id = %s"

CLOSE_MEMBERSHIP = """
UPDATE household_memberships SET to_position = %s, until = %s, occurred_until = %s,
    left_by_event_id = %s, left_by_type = %s, left_reason = %s
WHERE household_id = %s AND customer_id = %s AND to_position IS NULL
"""

MEMBERSHIP_COLUMNS = (
    ("household_id", "text"),
    ("customer_id", "text"),
    ("from_position", "bigint"),
    ("to_position", "bigint"),
    ("since", "text"),
    ("until", "text"),
    ("occurred_since", "text"),
    ("occurred_until", "text"),
    ("joined_by_event_id", "text"),
    ("joined_by_type", "text"),
    ("left_by_event_id", "text"),
    ("left_by_type", "text"),
    ("reason", "text"),
    ("left_reason", "text"),
)

INSERT_MEMBERSHIP = Bulk.insert("household_memberships", MEMBERSHIP_COLUMNS)
