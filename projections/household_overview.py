"""What a household view shows beside its members: holdings, value, complaints, last contact.

Assembled at read time from the views that own each fact, so each view can be
rebuilt alone. The value tier is relative to every other household, so callers
pass tiers computed once for many reads (see `TierCache`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from api.store.database import Cursor, Database
from projections.complaints import open_complaints_of_household
from projections.contact_history import household_history
from projections.household_value import household_values
from projections.service_values import money_text

HOLDINGS = """
SELECT COUNT(*) AS account_count, COALESCE(SUM(a.balance_cents), 0) AS total_cents
FROM (
    SELECT DISTINCT h.account_id
    FROM service_account_holders h
    JOIN household_people p ON p.customer_id = h.customer_id
    WHERE p.household_id = %s
) held
JOIN service_accounts a ON a.account_id = held.account_id
WHERE a.status = 'open'
"""

PRODUCTS = """
SELECT DISTINCT a.product
FROM service_account_holders h
JOIN household_people p ON p.customer_id = h.customer_id
JOIN service_accounts a ON a.account_id = h.account_id
WHERE p.household_id = %s AND a.status = 'open'
ORDER BY a.product
"""

VALUE_POSITIONS = (
    "SELECT name, position FROM projection_positions "
    "WHERE name IN ('households', 'accounts') ORDER BY name"
)


def household_overview(
    cur: Cursor, household_id: str, tiers: Mapping[str, str]
) -> dict[str, Any]:
    holdings = cur.execute(HOLDINGS, (household_id,)).fetchone() or {}
    products = [
        row["product"] for row in cur.execute(PRODUCTS, (household_id,)).fetchall()
    ]
    latest, _ = household_history(cur, household_id, limit=1)
    return {
        "accounts": {
            "count": int(holdings.get("account_count") or 0),
            "total_balance": money_text(int(holdings.get("total_cents") or 0)),
            "products": products,
        },
        "value_tier": tiers.get(household_id),
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


class TierCache:
    """Every household's tier, recomputed when the views have moved and the last
    computation is older than `max_age` seconds (ranking all households per read
    would cost more than the read). Whether the views moved is looked up at most
    once per `max_age`, so tiers are never more than `max_age` seconds behind."""

    def __init__(
        self, max_age: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._tiers: dict[str, str] = {}
        self._positions: list[tuple[str, int]] | None = None
        self._computed_at = float("-inf")
        self._checked_at = float("-inf")

    def tiers(self, db: Database) -> dict[str, str]:
        if self._positions is not None and not self._old(self._checked_at):
            return self._tiers
        with self._lock, db.transaction() as cur:
            positions = [
                (r["name"], r["position"])
                for r in cur.execute(VALUE_POSITIONS).fetchall()
            ]
            stale = positions != self._positions
            if self._positions is None or (stale and self._old(self._computed_at)):
                self._tiers = {
                    row["household_id"]: row["value_tier"]
                    for row in household_values(cur)
                }
                self._positions, self._computed_at = positions, self.clock()
            self._checked_at = self.clock()
            return self._tiers

    def _old(self, moment: float) -> bool:
        return self.clock() - moment >= self.max_age
