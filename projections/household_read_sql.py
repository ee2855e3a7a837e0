"""SQL of the one-statement household read (`household_overview.read_household`).

One statement returns the household row (`h.*`), its current members with their
names, the households view's position and the overview (holdings, products,
open complaints, last contact), the lists and objects as JSON text. The two
backends differ only in the names of the JSON functions, and SQLite cannot order
inside an aggregate: its lists are sorted by the caller.

The subqueries are shaped so that each reads a few rows through a key whatever
the planner knows (a fresh database has no statistics): open complaints are
counted per member (`complaints_customer`), and the last contact is the newest
row of each membership (`contact_history` primary key, read backwards) rather
than a sort of every member's history.
"""

from __future__ import annotations

_BY_HOUSEHOLD = "SELECT CAST(%s AS TEXT) AS household_id"
_BY_CUSTOMER = "SELECT household_id FROM household_people WHERE customer_id = %s"

_TEMPLATE = """
WITH target AS ({target})
SELECT
    t.household_id AS read_household_id,
    COALESCE(
        (SELECT position FROM projection_positions WHERE name = 'households'), 0
    ) AS read_position,
    (SELECT CAST({array}({object}(
                'customer_id', p.customer_id,
                'deceased', p.deceased,
                'registered_position', p.registered_position,
                'balance_cents', p.balance_cents,
                'head_designated_position', p.head_designated_position,
                'since', m.since,
                'from_position', m.from_position,
                'reason', m.reason,
                'name', c.name
            ){member_order}) AS TEXT)
        FROM household_people p
        JOIN household_memberships m
            ON m.customer_id = p.customer_id AND m.household_id = p.household_id
            AND m.to_position IS NULL
        LEFT JOIN customers c ON c.customer_id = p.customer_id
        WHERE p.household_id = t.household_id
    ) AS read_members,
    (SELECT CAST({object}(
                'count', COUNT(*),
                'total_cents', COALESCE(SUM(a.balance_cents), 0),
                'products', {array}(DISTINCT a.product{product_order})
            ) AS TEXT)
        FROM service_accounts a
        WHERE a.status = 'open' AND a.account_id IN (
            SELECT held.account_id
            FROM service_account_holders held
            JOIN household_people p ON p.customer_id = held.customer_id
            WHERE p.household_id = t.household_id
        )
    ) AS read_accounts,
    (SELECT COALESCE(SUM((
                SELECT COUNT(*) FROM complaints c
                WHERE c.customer_id = p.customer_id AND c.status = 'open'
            )), 0)
        FROM household_people p
        WHERE p.household_id = t.household_id
    ) AS read_open_complaints,
    (SELECT CAST({object}(
                'occurred_at', ch.occurred_at,
                'recorded_at', ch.recorded_at,
                'type', ch.type,
                'channel', ch.channel,
                'summary', ch.summary,
                'customer_id', ch.customer_id,
                'position', ch.position
            ) AS TEXT)
        FROM (
            SELECT m.customer_id, (
                SELECT MAX(x.position) FROM contact_history x
                WHERE x.customer_id = m.customer_id
                    AND x.position >= m.from_position
                    AND x.position < COALESCE(m.to_position, {after_all})
            ) AS newest
            FROM household_memberships m
            WHERE m.household_id = t.household_id
        ) latest
        JOIN contact_history ch
            ON ch.customer_id = latest.customer_id AND ch.position = latest.newest
        ORDER BY ch.position DESC, ch.customer_id
        LIMIT 1
    ) AS read_last_contact,
    h.*
FROM target t
LEFT JOIN households h ON h.household_id = t.household_id
"""

_POSTGRESQL = {
    "array": "json_agg",
    "object": "json_build_object",
    "member_order": " ORDER BY p.registered_position, p.customer_id",
    "product_order": " ORDER BY a.product",
}
_SQLITE = {
    "array": "json_group_array",
    "object": "json_object",
    "member_order": "",
    "product_order": "",
}


def _statement(target: str, sqlite: bool) -> str:
    dialect = _SQLITE if sqlite else _POSTGRESQL
    return _TEMPLATE.format(target=target, after_all=2**63 - 1, **dialect)


# By whether the backend is SQLite.
HOUSEHOLD_BY_ID = {
    sqlite: _statement(_BY_HOUSEHOLD, sqlite) for sqlite in (False, True)
}
HOUSEHOLD_OF_CUSTOMER = {
    sqlite: _statement(_BY_CUSTOMER, sqlite) for sqlite in (False, True)
}
