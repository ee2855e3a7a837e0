"""What a household view shows beside its members: holdings, value, complaints, last contact.

Assembled at read time from the views that own each fact, so each view can be
rebuilt alone.
"""

from __future__ import annotations

from typing import Any

from api.store.database import Cursor
from projections.complaints import open_complaints_of_household
from projections.contact_history import household_history
from projections.household_value import _values

PRODUCTS = """
SELECT DISTINCT a.product
FROM service_account_holders h
JOIN household_people p ON p.customer_id = h.customer_id
JOIN service_accounts a ON a.account_id = h.account_id
WHERE p.household_id = %s AND a.status = 'open'
ORDER BY a.product
"""


def household_overview(cur: Cursor, household_id: str) -> dict[str, Any]:
    values = _values(cur, ["household_id = %s"], [household_id])
    value = values[0] if values else None
    products = [
        row["product"] for row in cur.execute(PRODUCTS, (household_id,)).fetchall()
    ]
    latest, _ = household_history(cur, household_id, limit=1)
    return {
        "accounts": {
            "count": value["account_count"] if value else 0,
            "total_balance": value["total_balance"] if value else "0.00",
            "products": products,
        },
        "value_tier": value["value_tier"] if value else None,
        "open_complaints": open_complaints_of_household(cur, household_id),
        "last_contact": _contact(latest[0]) if latest else None,
    }


def _contact(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "occurred_at",
        "recorded_at",
        "type",
        "channel",
        "summary",
        "customer_id",
        "position",
    )
    return {key: row.get(key) for key in keys}
