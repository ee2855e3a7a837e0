"""A household as the API shows it: its row, members, holdings, value, complaints, last contact.

Assembled at read time from the views that own each fact, so each view can be
rebuilt alone, in one statement (`household_read_sql`). The value tier is
relative to every other household, so callers pass tiers computed once for many
reads (see `TierCache`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from api.store.database import Cursor, Database
from projections.household_queries import household_row
from projections.household_read_sql import HOUSEHOLD_BY_ID, HOUSEHOLD_OF_CUSTOMER
from projections.household_value import Tiers, TierSettings, household_tiers
from projections.service_values import money_text

VALUE_POSITIONS = (
    "SELECT name, position FROM projection_positions "
    "WHERE name IN ('households', 'accounts') ORDER BY name"
)

CONTACT_KEYS = (
    "occurred_at",
    "recorded_at",
    "type",
    "channel",
    "summary",
    "customer_id",
    "position",
)


@dataclass(frozen=True)
class HouseholdRead:
    household_id: str
    row: dict[str, Any] | None
    """The households row; None when there is no such household."""
    members: list[dict[str, Any]]
    """Current members with their names, earliest registered first."""
    position: int
    """How far the households view has read the log."""
    overview: dict[str, Any]
    """accounts, value_tier, open_complaints, last_contact."""


def household_by_id(cur: Cursor, household_id: str, tiers: Tiers) -> HouseholdRead:
    row = cur.execute(HOUSEHOLD_BY_ID[cur.sqlite], (household_id,)).fetchone()
    found = household_from_row(row, cur.sqlite, tiers)
    assert found is not None  # the statement always answers for a given id
    return found


def household_of_customer(
    cur: Cursor, customer_id: str, tiers: Tiers
) -> HouseholdRead | None:
    """The customer's current household; None when the customer is in none."""
    row = cur.execute(HOUSEHOLD_OF_CUSTOMER[cur.sqlite], (customer_id,)).fetchone()
    return household_from_row(row, cur.sqlite, tiers)


def household_from_row(
    row: dict[str, Any] | None, sqlite: bool, tiers: Tiers
) -> HouseholdRead | None:
    """The answer of `HOUSEHOLD_BY_ID` or `HOUSEHOLD_OF_CUSTOMER`, however it was run
    (a `Cursor` in a thread, or `AsyncReads` on a web worker's event loop)."""
    if row is None or row["read_household_id"] is None:
        return None
    household_id = str(row.pop("read_household_id"))
    position = int(row.pop("read_position"))
    members = _members(row.pop("read_members"), sqlite)
    accounts = orjson.loads(row.pop("read_accounts"))
    open_complaints = int(row.pop("read_open_complaints"))
    contact = row.pop("read_last_contact")
    products = accounts["products"] or []
    overview = {
        "accounts": {
            "count": int(accounts["count"]),
            "total_balance": money_text(int(accounts["total_cents"])),
            "products": sorted(products) if sqlite else products,
        },
        "value_tier": tiers.of(household_id, row.get("member_count")),
        "open_complaints": open_complaints,
        "last_contact": None if contact is None else _contact(orjson.loads(contact)),
    }
    return HouseholdRead(
        household_id=household_id,
        row=None if row["household_id"] is None else household_row(row),
        members=members,
        position=position,
        overview=overview,
    )


def _members(text: str | None, unordered: bool) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = orjson.loads(text) if text else []
    for member in members:
        member["deceased"] = bool(member["deceased"])
    if unordered:
        members.sort(key=lambda m: (m["registered_position"], m["customer_id"]))
    return members


def _contact(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in CONTACT_KEYS}


class TierCache:
    """Every household's tier, recomputed when the views have moved and the last
    computation is older than `max_age` seconds (ranking all households per read
    would cost more than the read). Whether the views moved is looked up at most
    once per `max_age`, so tiers are never more than `max_age` seconds behind."""

    def __init__(
        self,
        max_age: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        settings: TierSettings | None = None,
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self.settings = settings
        self._lock = threading.Lock()
        self._tiers = Tiers()
        self._positions: list[tuple[str, int]] | None = None
        self._computed_at = float("-inf")
        self._checked_at = float("-inf")

    def current(self) -> Tiers | None:
        """The tiers when they need no look at the views now; else None (then call
        `tiers`, which may read and rank: not on an event loop)."""
        if self._positions is not None and not self._old(self._checked_at):
            return self._tiers
        return None

    def tiers(self, db: Database) -> Tiers:
        current = self.current()
        if current is not None:
            return current
        # While one caller looks at the views (and perhaps ranks every household:
        # seconds on a large bank), the others answer with the last tiers rather
        # than wait; only the very first computation is waited for.
        if not self._lock.acquire(blocking=self._positions is None):
            return self._tiers
        try:
            return self.current() or self._refresh(db)
        finally:
            self._lock.release()

    def _refresh(self, db: Database) -> Tiers:
        with db.read() as cur:
            positions = [
                (r["name"], r["position"])
                for r in cur.execute(VALUE_POSITIONS).fetchall()
            ]
            stale = positions != self._positions
            if self._positions is None or (stale and self._old(self._computed_at)):
                self._tiers = household_tiers(cur, self.settings)
                self._positions, self._computed_at = positions, self.clock()
            self._checked_at = self.clock()
            return self._tiers

    def _old(self, moment: float) -> bool:
        return self.clock() - moment >= self.max_age
