"""SQL of the contact-history projection (tables in migrations/*/0003_contact_history.sql)."""

from __future__ import annotations

from projections.batch import Bulk

TABLES = (
    "contact_history",
    "contact_history_customers",
    "contact_history_orders",
    "contact_history_complaints",
    "contact_history_accounts",
    "contact_history_account_holders",
    "contact_history_campaigns",
    "contact_history_mailings",
    "contact_history_merges",
)

INSERT_ROW = Bulk.insert(
    "contact_history",
    (
        ("customer_id", "text"),
        ("position", "bigint"),
        ("event_id", "text"),
        ("type", "text"),
        ("occurred_at", "text"),
        ("occurred_at_utc", "text"),
        ("recorded_at", "text"),
        ("source", "text"),
        ("actor", "text"),
        ("channel", "text"),
        ("summary", "text"),
    ),
    "ON CONFLICT (customer_id, position) DO NOTHING",
)

UPSERT_CUSTOMER = Bulk.insert(
    "contact_history_customers",
    (("customer_id", "text"), ("name", "text")),
    "ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name",
    key=(0,),
)

UPSERT_ORDER = Bulk.insert(
    "contact_history_orders",
    (("order_id", "text"), ("customer_id", "text"), ("product", "text")),
    "ON CONFLICT (order_id) DO UPDATE "
    "SET customer_id = excluded.customer_id, product = excluded.product",
    key=(0,),
)

UPSERT_COMPLAINT = Bulk.insert(
    "contact_history_complaints",
    (("complaint_id", "text"), ("customer_id", "text"), ("category", "text")),
    "ON CONFLICT (complaint_id) DO UPDATE "
    "SET customer_id = excluded.customer_id, category = excluded.category",
    key=(0,),
)

UPSERT_ACCOUNT = Bulk.insert(
    "contact_history_accounts",
    (("account_id", "text"), ("product", "text"), ("currency", "text")),
    "ON CONFLICT (account_id) DO UPDATE "
    "SET product = excluded.product, currency = excluded.currency",
    key=(0,),
)
ADD_HOLDER = Bulk.insert(
    "contact_history_account_holders",
    (("account_id", "text"), ("customer_id", "text")),
    "ON CONFLICT (account_id, customer_id) DO NOTHING",
)

UPSERT_CAMPAIGN = Bulk.insert(
    "contact_history_campaigns",
    (("campaign_id", "text"), ("name", "text"), ("channel", "text")),
    "ON CONFLICT (campaign_id) DO UPDATE "
    "SET name = excluded.name, channel = excluded.channel",
    key=(0,),
)

UPSERT_MAILING = Bulk.insert(
    "contact_history_mailings",
    (("mailing_id", "text"), ("customer_id", "text"), ("campaign_id", "text")),
    "ON CONFLICT (mailing_id) DO UPDATE "
    "SET customer_id = excluded.customer_id, campaign_id = excluded.campaign_id",
    key=(0,),
)

UPSERT_MERGE = Bulk.insert(
    "contact_history_merges",
    (("duplicate_id", "text"), ("survivor_id", "text"), ("position", "bigint")),
    "ON CONFLICT (duplicate_id) DO UPDATE "
    "SET survivor_id = excluded.survivor_id, position = excluded.position",
    key=(0,),
)

COLUMNS = """position, event_id, type, occurred_at, occurred_at_utc, recorded_at,
    source, actor, customer_id, channel, summary"""

# Several rows can share a position (joint holders, a merge naming both records,
# two members of one household): each query keeps one row per position, so the
# position alone is a valid keyset cursor. A customer's history is read by
# `contact_history_read_sql`.

HOUSEHOLD_HISTORY = """
WITH candidates AS (
    SELECT h.*, ROW_NUMBER() OVER (
        PARTITION BY h.position ORDER BY h.customer_id
    ) AS pick
    FROM contact_history h
    JOIN household_memberships m ON m.customer_id = h.customer_id
    WHERE m.household_id = %s
      AND h.position >= m.from_position
      AND (m.to_position IS NULL OR h.position < m.to_position)
      AND {filters}
)
SELECT {columns} FROM candidates WHERE pick = 1 ORDER BY position DESC LIMIT %s
"""

# Bulk lookups of the projection (one query per page and kind, see batch.rows_in).
NAMES_IN = (
    "SELECT customer_id, name FROM contact_history_customers WHERE customer_id IN {ids}"
)
ORDERS_IN = (
    "SELECT order_id, customer_id, product FROM contact_history_orders "
    "WHERE order_id IN {ids}"
)
COMPLAINTS_IN = (
    "SELECT complaint_id, customer_id, category FROM contact_history_complaints "
    "WHERE complaint_id IN {ids}"
)
ACCOUNTS_IN = (
    "SELECT account_id, product, currency FROM contact_history_accounts "
    "WHERE account_id IN {ids}"
)
HOLDERS_IN = (
    "SELECT account_id, customer_id FROM contact_history_account_holders "
    "WHERE account_id IN {ids}"
)
CAMPAIGNS_IN = (
    "SELECT campaign_id, name, channel FROM contact_history_campaigns "
    "WHERE campaign_id IN {ids}"
)
MAILINGS_IN = (
    "SELECT mailing_id, customer_id, campaign_id FROM contact_history_mailings "
    "WHERE mailing_id IN {ids}"
)
