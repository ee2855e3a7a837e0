"""Read functions over the household tables (plain SQL through the Cursor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from api.store.database import Cursor

_MEMBERSHIP_COLUMNS = (
    "household_id, customer_id, from_position, to_position, since, until, "
    "occurred_since, occurred_until, joined_by_event_id, joined_by_type, "
    "left_by_event_id, left_by_type, reason, left_reason"
)


def household_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["address"] = None if row["address"] is None else orjson.loads(row["address"])
    row["mailable"] = bool(row["mailable"])
    return row


def get_household(cur: Cursor, household_id: str) -> dict[str, Any] | None:
    row = cur.execute(
        "SELECT * FROM households WHERE household_id = %s", (household_id,)
    ).fetchone()
    return None if row is None else household_row(row)


def household_of(cur: Cursor, customer_id: str) -> str | None:
    """The current household of a customer (None once merged away)."""
    row = cur.execute(
        "SELECT household_id FROM household_people WHERE customer_id = %s",
        (customer_id,),
    ).fetchone()
    return None if row is None else row["household_id"]


def list_households(
    cur: Cursor,
    branch_code: str | None = None,
    region_code: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Households ordered by id; pass the last id seen as `cursor` for the next page."""
    conditions: list[str] = ["1 = 1"]
    params: list[Any] = []
    if branch_code is not None:
        conditions.append("branch_code = %s")
        params.append(branch_code)
    if region_code is not None:
        conditions.append("region_code = %s")
        params.append(region_code)
    if cursor is not None:
        conditions.append("household_id > %s")
        params.append(cursor)
    rows = cur.execute(
        f"SELECT * FROM households WHERE {' AND '.join(conditions)} "
        "ORDER BY household_id LIMIT %s",
        (*params, max(1, min(limit, 1000))),
    ).fetchall()
    return [household_row(row) for row in rows]


def members(cur: Cursor, household_id: str) -> list[dict[str, Any]]:
    """Current members with their flags, earliest registered first."""
    rows = cur.execute(
        "SELECT p.customer_id, p.deceased, p.registered_position, p.balance_cents, "
        "p.head_designated_position, m.since, m.from_position, m.reason "
        "FROM household_people p JOIN household_memberships m "
        "ON m.customer_id = p.customer_id AND m.household_id = p.household_id "
        "AND m.to_position IS NULL "
        "WHERE p.household_id = %s ORDER BY p.registered_position, p.customer_id",
        (household_id,),
    ).fetchall()
    for row in rows:
        row["deceased"] = bool(row["deceased"])
    return rows


def membership_history(cur: Cursor, household_id: str) -> list[dict[str, Any]]:
    return cur.execute(
        f"SELECT {_MEMBERSHIP_COLUMNS} FROM household_memberships "
        "WHERE household_id = %s ORDER BY from_position, customer_id",
        (household_id,),
    ).fetchall()


def memberships_of(cur: Cursor, customer_id: str) -> list[dict[str, Any]]:
    """Every household a customer has been in, oldest first."""
    return cur.execute(
        f"SELECT {_MEMBERSHIP_COLUMNS} FROM household_memberships "
        "WHERE customer_id = %s ORDER BY from_position, household_id",
        (customer_id,),
    ).fetchall()


def _utc_text(moment: str | datetime) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def members_at(
    cur: Cursor,
    household_id: str,
    position: int | None = None,
    recorded_before: str | datetime | None = None,
) -> list[dict[str, Any]]:
    """Who was in the household after event `position` / as recorded at a time, and why.

    Without either argument: the current members. Each row carries the event that
    brought the customer in (joined_by_event_id/type) and the reason.
    """
    conditions = ["household_id = %s"]
    params: list[Any] = [household_id]
    if position is not None:
        conditions.append(
            "from_position <= %s AND (to_position IS NULL OR to_position > %s)"
        )
        params += [position, position]
    if recorded_before is not None:
        moment = _utc_text(recorded_before)
        conditions.append("since < %s AND (until IS NULL OR until >= %s)")
        params += [moment, moment]
    if position is None and recorded_before is None:
        conditions.append("to_position IS NULL")
    return cur.execute(
        f"SELECT {_MEMBERSHIP_COLUMNS} FROM household_memberships "
        f"WHERE {' AND '.join(conditions)} ORDER BY from_position, customer_id",
        params,
    ).fetchall()
